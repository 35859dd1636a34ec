"""Output paths checked before any work: a run that cannot write its results must stop at its first line, not after
hours of training (a read-only or full disk used to end in a 40-line traceback at the final save).

:func:`check_output_folder` and :func:`check_output_file` refuse, in one line naming the path: a folder that is a
file, a place where no file can be created (a probe file is created and removed in the nearest existing folder,
so nothing is left behind and nothing is created early), and, when the caller says how much it will write, a disk
with less free space than that.
"""

from __future__ import annotations

import os
import shutil
import tempfile

# A checkpoint holds the weights and the optimizer's state (AdamW: two more copies): with the final model,
# a training run writes about four times the weights' size.
TRAINING_WRITES_PER_WEIGHT_BYTE = 4
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")
_MB = 1024 * 1024


class OutputPathError(ValueError):
    """An output path that cannot be written (one line naming it); a ``ValueError`` like the other bad inputs."""


def check_output_folder(path: str | os.PathLike, what: str = "output_dir", *, needed_bytes: int = 0) -> None:
    """Refuse a folder ``path`` that is a file, or that cannot be created or written, or whose disk has less than
    ``needed_bytes`` free. ``what`` names it in the message (a flag or a config key)."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputPathError(f"{what} {path!r} is a file, not a folder.")
    _check_writable(path, what, _nearest_existing(path), needed_bytes)


def check_output_file(path: str | os.PathLike, what: str = "--output", *, needed_bytes: int = 0) -> None:
    """Refuse a file ``path`` that is a folder, or whose folder cannot be created or written (see above)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputPathError(f"{what} {path!r} is a folder, not a file.")
    _check_writable(path, what, _nearest_existing(os.path.dirname(os.path.abspath(path))), needed_bytes)


def check_training_output(output_dir: str | os.PathLike, model: str, what: str = "output_dir") -> None:
    """``output_dir`` writable, with room for ``model``'s weights about four times over (the final model and a
    checkpoint with its optimizer state). ``model``: a folder, a Hub id (size unknown: not counted) or "default"."""
    if model == "default":
        from hf_softnce.defaults import default_model_path

        try:
            model = default_model_path()
        except ImportError:
            model = ""  # reported where the model is loaded
    check_output_folder(output_dir, what, needed_bytes=TRAINING_WRITES_PER_WEIGHT_BYTE * weights_bytes(model))


def weights_bytes(model_path: str | os.PathLike) -> int:
    """The size of a local model folder's weight files (0 for a Hub id: unknown without a download)."""
    model_path = os.fspath(model_path)
    if not os.path.isdir(model_path):
        return 0
    total = 0
    for folder, _, files in os.walk(model_path):
        total += sum(os.path.getsize(os.path.join(folder, name)) for name in files if name.endswith(WEIGHT_SUFFIXES))
    return total


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _check_writable(path: str, what: str, existing: str, needed_bytes: int) -> None:
    if not os.path.isdir(existing):
        raise OutputPathError(f"{what} {path!r}: {existing!r} is a file, not a folder.")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hf_softnce-write-probe-"):
            pass
    except OSError as error:  # errno 30 (read-only), 13 (permission), 28 (no space), 122 (quota), ...
        reason = error.strerror or type(error).__name__
        raise OutputPathError(f"{what} {path!r} cannot be written: {reason} (errno {error.errno} in {existing!r}).") \
            from None
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise OutputPathError(
            f"{what} {path!r}: only {free / _MB:,.0f} MB free on its disk, and about {needed_bytes / _MB:,.0f} MB "
            "will be written (the model and a checkpoint); free some space or choose another folder."
        )


def readable_as_umask_allows(folder: str | os.PathLike) -> None:
    """Give the weight files of a saved model folder the permissions the user's umask allows (``0o644`` under the
    usual ``022``): safetensors writes them ``0o600``, unlike every other file of the folder, so a model folder
    shared from a run (the main job's ``hub/``) would be readable by its owner alone."""
    mask = os.umask(0)
    os.umask(mask)
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(WEIGHT_SUFFIXES):
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
