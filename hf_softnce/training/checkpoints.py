"""Which checkpoint a run resumes from: only a complete one.

A run stopped while the trainer saves (SIGINT, a pre-empted node, a full disk) leaves a ``checkpoint-N`` folder
with some of its files; the trainer's own ``resume_from_checkpoint=True`` takes the highest step whatever it holds
and fails inside loading. A checkpoint counts here when the trainer's last write, ``trainer_state.json``, is there
and whole, and the model folder beside it is complete (its weights, and every file
:func:`hf_softnce.model_checks.check_model_folder` asks for).
"""

from __future__ import annotations

import json
import logging
import os
import re

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_softnce.model_checks import WEIGHT_FILES, IncompleteModelFolder, check_model_folder

logger = logging.getLogger(__name__)
TRAINER_STATE_NAME = "trainer_state.json"  # transformers.trainer's name for it


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None when it is."""
    folder = os.fspath(folder)
    state = os.path.join(folder, TRAINER_STATE_NAME)
    if not os.path.isfile(state):
        return f"no {TRAINER_STATE_NAME} (the trainer writes it last)"
    try:
        with open(state, encoding="utf-8") as file:
            json.load(file)
    except (ValueError, OSError) as error:
        return f"{TRAINER_STATE_NAME} cannot be read ({type(error).__name__})"
    if not any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHT_FILES):
        return f"no model weights ({' or '.join(WEIGHT_FILES[:2])})"
    try:
        check_model_folder(folder)
    except IncompleteModelFolder as error:
        return str(error)
    return None


def resume_checkpoint(resume: str | None, output_dir: str | os.PathLike) -> str | None:
    """The checkpoint folder to hand ``trainer.train(resume_from_checkpoint=...)``.

    ``resume``: None (start afresh), ``"last"`` (the complete checkpoint of highest step in ``output_dir``;
    incomplete ones above it are skipped with a warning each) or a checkpoint folder (refused if incomplete).
    """
    if resume is None:
        return None
    if resume != "last":
        problem = checkpoint_problem(resume) if os.path.isdir(resume) else "no such folder"
        if problem:
            raise ValueError(f"resume_from_checkpoint {os.fspath(resume)!r} is not a complete checkpoint: {problem}.")
        return os.fspath(resume)
    checkpoints = _checkpoints_by_step(os.fspath(output_dir))
    for folder in reversed(checkpoints):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder
        logger.warning("Skipping the incomplete checkpoint %s (%s); resuming from an earlier one.", folder, problem)
    skipped = f" ({len(checkpoints)} incomplete)" if checkpoints else ""
    raise ValueError(f"resume_from_checkpoint=last: no complete checkpoint in {os.fspath(output_dir)!r}{skipped}.")


def _checkpoints_by_step(output_dir: str) -> list[str]:
    """The ``checkpoint-N`` folders of ``output_dir``, lowest step first (10 after 9, as the trainer orders them)."""
    if not os.path.isdir(output_dir):
        return []
    steps = []
    for name in os.listdir(output_dir):
        match = re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)", name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append((int(match.group(1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(steps)]
