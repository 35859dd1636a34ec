"""The subcommands' shared parser settings: every option's default shown in ``--help``."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (argparse's ``ArgumentDefaultsHelpFormatter`` rule, without
    ``(default: None)`` or ``(default: False)`` noise on flags and optional values)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        # Identity, not ==: a default of 0 is a value to show, unlike a flag's False.
        if "default" in text.lower() or default is None or default is False or default is argparse.SUPPRESS \
                or not action.option_strings:
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(str(value) for value in default)
        return f"{text} (default: {default})" if text else f"default: {default}"


def add_command(subparsers, name: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand parser with hf_softnce's help formatter; ``help`` doubles as the description when none is given."""
    kwargs.setdefault("description", kwargs.get("help"))
    return subparsers.add_parser(name, formatter_class=HelpFormatter, **kwargs)
