"""``hf-softnce main``: the main job, base model vs InfoNCE vs hf_softnce's losses."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import CLIError, check_output_dir
from hf_softnce.cli._parser import add_command

# A size is required: the full size takes hours on a CPU, too long to start by leaving out a flag. The job prints
# each size's last measured time (benchmarks/results/main_<size>.json) when it starts.
SIZES = {
    "quick": "CoSQA train, base + InfoNCE + the default row + the strongest peer, 160 steps of 16 at 64 tokens, 1 seed",
    "full": "CoSQA train, one epoch at batch 64, every row (hf_softnce's, sentence-transformers' peers on mined "
            "negatives, the R2PS cascade), seed 42, then seed 43 for the rows within 0.01 of the best",
}


def register(subparsers) -> argparse.ArgumentParser:
    main = add_command(
        subparsers,
        "main",
        help="The main job: base model vs InfoNCE vs hf_softnce's losses, same data, seeds and steps.",
        description="Train every method of the comparison on CoSQA's training split (real web queries) with the "
        "same data, seeds and steps, rank the whole CoSQA codebase for every dev query with paired bootstrap "
        "intervals, and write the table (Markdown), JSON, a plot and the model card. Choose a size: --quick or --full.",
    )
    size = main.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help=SIZES["quick"])
    size.add_argument("--full", dest="size", action="store_const", const="full", help=SIZES["full"])
    main.add_argument("--output-dir", default="runs/main", help="where the results and models go")
    main.add_argument("--seeds", type=int, nargs="+",
                      help="seeds to run (default: the size's: 42 for --quick, 42 43 for --full)")
    main.add_argument("--methods", nargs="+", help="subset of the table's rows (default: the size's methods)")
    main.add_argument("--overwrite", action="store_true",
                      help="start afresh in an output dir holding another run (default: resume a stopped run of the "
                      "same configuration, refuse another one)")
    main.add_argument("--report-only", action="store_true",
                      help="write the table from the folder's completed steps only: train, mine and evaluate nothing "
                      "(a row or seed that did not complete is left out and named)")
    main.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the default method's model (default: no upload)")
    main.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the shared training settings")
    main.set_defaults(func=run_main, size=None)
    return main


def run_main(args: argparse.Namespace) -> int:
    if args.size is None:
        raise CLIError(f"main: choose a size: --quick ({SIZES['quick']}) or --full ({SIZES['full']}).")
    check_output_dir(args.output_dir, "--output-dir")
    from hf_softnce.training.plan import SIZES as PLANNED, PlanError, check_plan

    try:  # before the heavy imports and any model: a row left out is one line in a second
        check_plan(args.methods or PLANNED[args.size].rows)
    except PlanError as error:
        raise CLIError(f"main: {error}") from None
    from hf_softnce.training.config import parse_override
    from hf_softnce.training.main_job import run_main_job

    run_main_job(
        args.size,
        args.output_dir,
        seeds=args.seeds,
        methods=args.methods,
        overrides=dict(parse_override(o) for o in args.overrides),
        push_to_hub=args.push_to_hub,
        overwrite=args.overwrite,
        report_only=args.report_only,
    )
    return 0
