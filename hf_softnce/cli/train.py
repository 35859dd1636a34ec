"""``hf-softnce train``: train a retriever from a YAML config, the recipes' code path."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    train = subparsers.add_parser("train", help="train a retriever from a YAML config (same code path as the recipes)")
    train.add_argument("--config", help="YAML config, e.g. recipes/configs/default.yaml")
    train.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the model, card and evaluation")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. learning_rate=1e-5")
    train.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from hf_softnce.training.config import load_config
    from hf_softnce.training.run import train_retriever

    overrides = list(args.overrides)
    if args.push_to_hub:
        overrides.append(f"push_to_hub={args.push_to_hub}")
    result = train_retriever(load_config(args.config, overrides))
    print({k: round(v, 4) for k, v in result.metrics.items()})
    return 0
