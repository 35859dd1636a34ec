"""The command line every recipe shares: ``--config FILE``, ``key=value`` overrides, and a few flag spellings.

    python recipes/train_soft_infonce.py --config recipes/configs/default.yaml max_steps=50 learning_rate=1e-5
    accelerate launch --multi_gpu --num_processes 2 recipes/train_soft_infonce.py --config ... --push-to-hub me/model

Flags are only other spellings of config keys (``--push-to-hub X`` is ``push_to_hub=X``), so a recipe, a YAML file
and ``hf-softnce train`` all mean the same run. Any ``SentenceTransformerTrainingArguments`` field is a key too
(``gradient_accumulation_steps=4 lr_scheduler_type=cosine report_to=wandb``). A bad key or value exits with status 2
and a one-line message naming the file (and line) or the command line, and the key (argparse's ``error``), before
anything is loaded.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hf_softnce.output_paths import check_training_output
from hf_softnce.training.config import TrainConfig, load_config, parse_override

# flag -> (config key, value when the flag is given without a value)
FLAG_KEYS = {
    "push_to_hub": ("push_to_hub", None),
    "resume_from_checkpoint": ("resume_from_checkpoint", "last"),
    "output_dir": ("output_dir", None),
}


def add_config_arguments(parser: argparse.ArgumentParser, default_config: str | None = None) -> argparse.ArgumentParser:
    """Add ``--config``, the ``key=value`` overrides and the flag spellings of config keys to ``parser``."""
    parser.add_argument("--config", default=default_config, help="YAML config (keys: hf_softnce/training/config.py and any SentenceTransformerTrainingArguments field)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override a config key (value parsed as YAML)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                        help="push the trained model to this Hub repo (access is checked before training)")
    parser.add_argument("--resume-from-checkpoint", metavar="PATH", nargs="?", const="last", default=None,
                        help="continue from a checkpoint folder, or from the last one in output_dir (no value)")
    parser.add_argument("--output-dir", default=None, help="same as output_dir=...")
    return parser


def config_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> TrainConfig:
    """The :class:`TrainConfig` that ``args`` describe; errors go through ``parser.error`` when one is given."""
    try:
        overrides = dict(parse_override(item) for item in args.overrides)
        for flag, (key, _) in FLAG_KEYS.items():
            value = getattr(args, flag, None)
            if value is not None:
                overrides[key] = value
        config = load_config(args.config, overrides)
        # Before any data is built or model loaded: a run that cannot save its results stops here.
        check_training_output(config.output_dir, config.model)
        return config
    except (ValueError, TypeError, FileNotFoundError) as error:
        if parser is None:
            raise
        parser.error(str(error))  # exits with status 2, the message (valid keys included) on stderr


def parse_recipe_args(
    argv: Sequence[str] | None = None, *, description: str | None = None, default_config: str | None = None
) -> TrainConfig:
    """Parse a recipe's command line into a :class:`TrainConfig`."""
    parser = add_config_arguments(argparse.ArgumentParser(description=description), default_config)
    # intermixed: key=value overrides may come before or after the flags
    return config_from_args(parser.parse_intermixed_args(flags_as_overrides(parser, argv)), parser)


def flags_as_overrides(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> list[str]:
    """``--any_key value`` / ``--any-key=value`` / ``--flag`` (HfArgumentParser's spellings) as ``key=value``.

    The parser's own options are left as they are, so ``--config`` and ``--push-to-hub`` keep their meaning.
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    own = {option for action in parser._actions for option in action.option_strings}
    result, index = [], 0
    while index < len(argv):
        item = argv[index]
        name = item.split("=", 1)[0]
        if not item.startswith("--") or item == "--" or name in own:
            result.append(item)
        elif "=" in item:
            result.append(f"{name[2:]}={item.split('=', 1)[1]}")
        elif index + 1 < len(argv) and not argv[index + 1].startswith("--"):
            result.append(f"{item[2:]}={argv[index + 1]}")
            index += 1
        else:
            result.append(f"{item[2:]}=true")  # a bare flag: --gradient_checkpointing
        index += 1
    return result
