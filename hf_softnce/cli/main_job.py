"""``hf-softnce main``: the main job, base model vs InfoNCE vs hf_softnce's losses."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import check_output_dir


def register(subparsers) -> None:
    main = subparsers.add_parser("main", help="the main job: base model vs InfoNCE vs hf_softnce's losses")
    size = main.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help="<= 15 min on 2 CPU cores")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="all data, 3 seeds (default)")
    main.add_argument("--output-dir", default="runs/main")
    main.add_argument("--seeds", type=int, nargs="+")
    main.add_argument("--methods", nargs="+", help="subset of the table's rows")
    main.add_argument("--push-to-hub", metavar="REPO_ID")
    main.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the shared training settings")
    main.set_defaults(func=run_main, size="full")


def run_main(args: argparse.Namespace) -> int:
    check_output_dir(args.output_dir, "--output-dir")
    from hf_softnce.training.config import parse_override
    from hf_softnce.training.main_job import run_main_job

    run_main_job(
        args.size,
        args.output_dir,
        seeds=args.seeds,
        methods=args.methods,
        overrides=dict(parse_override(o) for o in args.overrides),
        push_to_hub=args.push_to_hub,
    )
    return 0
