"""``hf-softnce train`` and ``hf-softnce main``."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a retriever from a YAML config (same code path as the recipes)")
    train.add_argument("--config", help="YAML config, e.g. recipes/configs/default.yaml")
    train.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the model, card and evaluation")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. learning_rate=1e-5")
    train.set_defaults(func=run_train)

    main = subparsers.add_parser("main", help="the main job: base model vs InfoNCE vs hf_softnce's losses")
    size = main.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="size", action="store_const", const="quick", help="<= 10 min on 2 CPU cores")
    size.add_argument("--full", dest="size", action="store_const", const="full", help="all data, 3 seeds (default)")
    main.add_argument("--output-dir", default="runs/main")
    main.add_argument("--seeds", type=int, nargs="+")
    main.add_argument("--methods", nargs="+", help="subset of the table's rows")
    main.add_argument("--push-to-hub", metavar="REPO_ID")
    main.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the shared training settings")
    main.set_defaults(func=run_main, size="full")


def run_train(args: argparse.Namespace) -> int:
    from hf_softnce.training.config import load_config
    from hf_softnce.training.run import train_retriever

    overrides = list(args.overrides)
    if args.push_to_hub:
        overrides.append(f"push_to_hub={args.push_to_hub}")
    result = train_retriever(load_config(args.config, overrides))
    print({k: round(v, 4) for k, v in result.metrics.items()})
    return 0


def run_main(args: argparse.Namespace) -> int:
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
