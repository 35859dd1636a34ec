"""``hf-softnce``: the console script, one module per subcommand (laid out like ``huggingface_hub.cli``).

``app.py`` builds the parser and turns user errors into one line and exit status 2; each subcommand module
has ``register(subparsers)`` (argparse only) and a handler that imports the heavy libraries when it runs,
so ``hf-softnce --help`` does not load torch, datasets or sentence-transformers.
"""

from hf_softnce.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
