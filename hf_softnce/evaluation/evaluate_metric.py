"""Load the packaged ``evaluate`` metric module (no Hub access needed)."""

from __future__ import annotations

from pathlib import Path

# The folder name equals the script name, which is what ``evaluate.load(<folder>)`` looks for.
CODE_SEARCH_METRIC_PATH = str(Path(__file__).with_name("code_search_metric"))


def load_code_search_metric(**kwargs):
    """``evaluate.load`` of hf_softnce's code-search metric; ``kwargs`` go to ``evaluate.load``."""
    import evaluate

    return evaluate.load(CODE_SEARCH_METRIC_PATH, **kwargs)
