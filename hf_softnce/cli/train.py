"""``hf-softnce train``: train a retriever from a YAML config, the recipes' code path and defaults."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import check_output_dir
from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    train = add_command(
        subparsers,
        "train",
        help="Train a retriever from a YAML config (the recipes' code path and defaults).",
        description="Train a code-search retriever as recipes/train_soft_infonce.py does: data, loss with its "
        "weighter, SentenceTransformerTrainer, evaluation, model card. Without --config it runs "
        "recipes/configs/default.yaml (the packaged all-MiniLM-L6-v2, SoftInfoNCE with BM25 weights, 2,000 stdlib "
        "pairs, one epoch); any config key can be overridden as key=value, e.g. max_steps=20.",
    )
    from hf_softnce.training.cli_args import add_config_arguments

    add_config_arguments(train)
    # The shared flags were written for the recipes; here every default is spelled out in --help.
    for action in train._actions:
        if action.dest == "config":
            action.help = "YAML config (keys: hf_softnce/training/config.py and any " \
                "SentenceTransformerTrainingArguments field) (default: recipes/configs/default.yaml)"
        elif action.dest == "output_dir":
            action.help = "where checkpoints, final/ (model and card) and metrics.json go (default: the config's " \
                "output_dir, runs/soft_infonce)"
        elif action.dest == "push_to_hub":
            action.help += " (default: no upload)"
        elif action.dest == "resume_from_checkpoint":
            action.help += " (default: start afresh)"
    train.add_argument("--no-base", action="store_true",
                       help="skip the base model's evaluation beside the trained one (evaluate_base=false; default: "
                       "the base is evaluated once and shown in the table and on the card)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=run_train)
    return train


def run_train(args: argparse.Namespace) -> int:
    check_output_dir(args.output_dir, "--output-dir")
    from hf_softnce.cli._models import resolve_model
    from hf_softnce.defaults import default_config_path
    from hf_softnce.training.cli_args import config_from_args

    if args.config is None:
        args.config = default_config_path()
    if args.no_base:
        args.overrides = [*args.overrides, "evaluate_base=false"]
    config = config_from_args(args)
    check_output_dir(config.output_dir, "output_dir")
    resolve_model(config.model, "model")  # a model that cannot be loaded stops here, before the data is built

    from hf_softnce.training.data import load_task_data
    from hf_softnce.training.results import print_run
    from hf_softnce.training.run import train_retriever

    data = load_task_data(config, progress=not args.quiet)
    print_run(train_retriever(config, data, progress=not args.quiet))
    return 0
