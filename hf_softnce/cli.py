"""``hf-softnce``: one console script over the same code paths as the recipes.

Each area of the library registers its own subcommands (``register(subparsers)``), so this file only
assembles them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# (module, what it adds) in the order they are listed in --help.
COMMAND_MODULES = (
    "hf_softnce.data.commands",  # build-corpus
    "hf_softnce.training.commands",  # train, main
    "hf_softnce.mining.commands",  # mine-negatives
    "hf_softnce.mining.label_order_commands",  # label-order
    "hf_softnce.evaluation.commands",  # evaluate
    "hf_softnce.hub_commands",  # push
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-softnce",
        description="Negative-aware training, mining, evaluation and Hub upload for code-search embedding models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
