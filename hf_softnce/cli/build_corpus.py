"""``hf-softnce build-corpus``: build (or reuse) the Python corpus and print its splits and report."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import check_output_dir
from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "build-corpus",
        help="Mine (docstring, function) pairs from installed Python source into a train/valid/test DatasetDict.",
        description="Mine CodeSearchNet-style (docstring, function) pairs from Python source with ast (nothing is "
        "imported or run), split by package, and save them as an Arrow DatasetDict (reused while unchanged).",
    )
    parser.add_argument(
        "--source", dest="sources", action="append", metavar="SOURCE",
        help="'stdlib', an installed distribution name, 'requires:<dist>' (its installed direct requirements), "
        "or a directory / git checkout. Repeat for several. Default: stdlib.",
    )
    parser.add_argument("--output-dir", default=None, help="Where to save the DatasetDict (default: the hf_softnce cache).")
    parser.add_argument("--rebuild", action="store_true", help="Parse again even if a saved corpus matches.")
    parser.add_argument("--workers", type=int, default=None, help="Parsing processes (default: all cores).")
    parser.add_argument("--split-ratios", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VALID", "TEST"),
                        help="shares of functions per split, assigned by package")
    parser.add_argument("--seed", type=int, default=0, help="reshuffles equal-size packages between splits")
    parser.add_argument("--min-query-words", type=int, default=3, help="drop functions whose query is shorter")
    parser.add_argument("--max-code-lines", type=int, default=100, help="drop functions whose code is longer")
    parser.add_argument("--near-duplicate-threshold", type=float, default=0.8,
                        help="token 3-gram Jaccard for near-duplicate groups; 1 groups exact duplicates only")
    parser.add_argument("--errors", choices=("skip", "raise"), default="skip",
                        help="skip and count unparsable/non-UTF-8 files, or stop at the first")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_build_corpus)
    return parser


def run_build_corpus(args: argparse.Namespace) -> int:
    check_output_dir(args.output_dir, "--output-dir")
    from hf_softnce.data.corpus import build_python_corpus
    from hf_softnce.data.schema import all_columns
    from hf_softnce.data.report import SkipReport

    report = SkipReport()
    corpus = build_python_corpus(
        args.sources or ["stdlib"],
        output_dir=args.output_dir,
        cache=not args.rebuild,
        split_ratios=tuple(args.split_ratios),
        seed=args.seed,
        min_query_words=args.min_query_words,
        max_code_lines=args.max_code_lines,
        near_duplicate_threshold=args.near_duplicate_threshold,
        workers=args.workers,
        errors=args.errors,
        progress=not args.quiet,
        show_report=False,
        report=report,
    )
    corpus = {name: all_columns(split) for name, split in corpus.items()}  # its identity columns, to count them
    groups = {group for split in corpus.values() for group in split["dup_group"]}
    for name, split in corpus.items():
        print(f"{name:<6} {len(split):>7} pairs  {len(set(split['package'])):>4} packages")
    print(f"duplicate groups: {len(groups)}")
    print(f"saved at: {corpus['train'].cache_files[0]['filename'].rsplit('/', 2)[0]}")
    print(report.format("Corpus report"))
    return 0
