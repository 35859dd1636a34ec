"""Which exceptions are the user's to fix (one line, exit status 2) and how they are printed."""

from __future__ import annotations

import os
import sys

# argparse's status for a bad command line; used for every error the user can fix by changing the input.
USER_ERROR_STATUS = 2


class CLIError(Exception):
    """A bad command line or input noticed by a subcommand itself (printed as ``hf-softnce: error: ...``)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input rather than a bug: bad values or data (``ValueError``, which covers
    ``DataFormatError`` and ``RunFolderError``), missing or misplaced paths, Hub access, YAML syntax.

    Looked up when an error happens, so that the optional modules are only imported if already loaded.
    """
    types: list[type[BaseException]] = [
        CLIError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
        PermissionError,
    ]
    hub = sys.modules.get("hf_softnce.hub")
    if hub is not None:
        types.append(hub.HubAccessError)
    yaml = sys.modules.get("yaml")
    if yaml is not None:
        types.append(yaml.YAMLError)
    return tuple(types)


def one_line(error: BaseException) -> str:
    """The error's message on one line (``KeyError`` quotes its key; multi-line YAML marks are joined)."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text or type(error).__name__


def check_output_dir(path: str | os.PathLike | None, flag: str) -> None:
    """A folder argument that is a file, or that cannot be written, is refused before any work is done."""
    if path is not None:
        from hf_softnce.output_paths import check_output_folder

        check_output_folder(path, flag)


def check_output_file(path: str | os.PathLike | None, flag: str) -> None:
    """A file argument that names an existing folder, sits below a file, or cannot be written, is refused before
    any work."""
    if path is not None:
        from hf_softnce.output_paths import check_output_file as check

        check(path, flag)
