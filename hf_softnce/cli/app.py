"""The ``hf-softnce`` console script: the parser, logging, and one-line errors.

Every subcommand lives in its own module of this package and adds itself with ``register(subparsers)``;
only ``argparse`` is imported to build the parser, and each handler imports what it needs when it runs.
A user error (bad value, missing or misplaced file, no Hub access, bad YAML) prints
``hf-softnce: error: <message>`` and exits with status 2, as argparse does for a bad command line;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hf_softnce.cli._errors import USER_ERROR_STATUS, one_line, user_error_types
from hf_softnce.cli._parser import HelpFormatter
from hf_softnce.cli._quiet import bars_once

PROG = "hf-softnce"
# Subcommand modules, in the order --help lists them.
COMMAND_MODULES = (
    "hf_softnce.cli.build_corpus",  # build-corpus
    "hf_softnce.cli.train",  # train
    "hf_softnce.cli.main_job",  # main
    "hf_softnce.cli.mine_negatives",  # mine-negatives
    "hf_softnce.cli.label_order",  # label-order
    "hf_softnce.cli.evaluate",  # evaluate
    "hf_softnce.cli.push",  # push
)


def build_parser() -> argparse.ArgumentParser:
    from hf_softnce import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Negative-aware training, mining, evaluation and Hub upload for code-search embedding models.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A redirected stdout is block-buffered while stderr (progress bars, warnings) is not: flushed per line, a log of
    # both keeps the order things happened in.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        with bars_once():
            return int(args.func(args) or 0)
    except Exception as error:
        if args.debug or not isinstance(error, user_error_types()):
            raise  # a bug, or --debug: the traceback is what is needed
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return USER_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())
