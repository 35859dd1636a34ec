"""Where the shared data folders (CoSQA dev, CoNaLa) live, for a source checkout and an installed package alike."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "HF_SOFTNCE_DATA_DIR"
# The checkout's ../shared/data: hf_softnce/data/locate.py -> parents[2] is the checkout root.
_CHECKOUT_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def shared_data_dirs() -> list[Path]:
    """The folders searched, in order: ``$HF_SOFTNCE_DATA_DIR``, ``../shared/data`` from the working directory,
    then ``../shared/data`` beside the source checkout (absent meaning for an installed package)."""
    candidates = []
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(Path(os.environ[DATA_DIR_ENV]).expanduser())
    candidates += [Path.cwd().parent / "shared" / "data", _CHECKOUT_SHARED]
    return list(dict.fromkeys(path.resolve() for path in candidates))


def find_shared_data_dir(name: str, marker: str | None = None) -> Path | None:
    """The first ``<dir>/<name>`` folder among :func:`shared_data_dirs` (holding ``marker`` when given), else None."""
    for root in shared_data_dirs():
        folder = root / name
        if folder.is_dir() and (marker is None or (folder / marker).exists()):
            return folder
    return None
