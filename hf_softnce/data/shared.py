"""Where the project's shared data folders are (CoSQA dev, CoNaLa), from a source checkout or an installed package."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "HF_SOFTNCE_DATA_DIR"


def shared_data_dir(name: str, *, required_file: str) -> Path | None:
    """The first ``<root>/<name>`` holding ``required_file``, or ``None``.

    Roots, in order: ``$HF_SOFTNCE_DATA_DIR``; ``shared/data`` beside the source checkout; ``../shared/data``
    from the working directory and each of its parents (an installed package has no checkout to look beside).
    """
    roots = []
    if os.environ.get(DATA_DIR_ENV):
        roots.append(Path(os.environ[DATA_DIR_ENV]))
    roots.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    cwd = Path.cwd().resolve()
    roots += [folder / "shared" / "data" for folder in (cwd, *cwd.parents)]
    for root in roots:
        if (root / name / required_file).is_file():
            return root / name
    return None
