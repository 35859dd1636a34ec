"""Jinja templates for the model cards hf_softnce writes (rendered by :mod:`hf_softnce.hub.card`).

Installed as the subpackage ``hf_softnce.model_cards`` (setup.py maps this folder), so the templates are
read with importlib.resources; in a source checkout hub/card.py falls back to this folder's path.
"""

MODEL_CARD_TEMPLATE = "model_card.md.j2"
