"""Which checkpoint a run resumes from: only a complete one.

A run stopped while the trainer saves (SIGINT, a pre-empted node, a full disk) leaves a ``checkpoint-N`` folder
with some of its files; the trainer's own ``resume_from_checkpoint=True`` takes the highest step whatever it holds
and fails inside loading. A checkpoint counts here when the trainer's last write, ``trainer_state.json``, is there
and whole, and the model folder beside it is complete (its weights, and every file
:func:`hf_softnce.model_checks.check_model_folder` asks for).

Each checkpoint also holds the run's configuration (``hf_softnce_config.json``, :class:`SaveConfigCallback`): a
folder that held another run's checkpoints (another loss, learning rate or data) is refused on resume rather than
continued under settings it was not trained with. A longer run (``epochs``, ``max_steps``) and the keys that only
say how the run is driven (where and how often it saves, logs, evaluates or uploads; the device) may differ.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from hf_softnce.model_checks import WEIGHT_FILES, IncompleteModelFolder, check_model_folder
from hf_softnce.training.config import CHECKPOINT_KEYS, RUN_OPTION_KEYS, _plain as plain_values
from hf_softnce.training.manifest import write_atomically

logger = logging.getLogger(__name__)
TRAINER_STATE_NAME = "trainer_state.json"  # transformers.trainer's name for it
CONFIG_NAME = "hf_softnce_config.json"
# Keys a resumed run may change: how it is driven (logging, the Hub, the device), its checkpoints and the evaluations
# that judge them, and its length. dataloader_drop_last changes the steps of an epoch, so where a resume starts in
# the data: it may not.
RESUMABLE_KEYS = RUN_OPTION_KEYS + CHECKPOINT_KEYS + ("epochs", "max_steps", "num_train_epochs",
                                                      "per_device_eval_batch_size")
FIXED_KEYS = ("dataloader_drop_last",)


class SaveConfigCallback(TrainerCallback):
    """Writes ``config`` (a :class:`~hf_softnce.training.config.TrainConfig`) into every checkpoint the trainer saves
    (after the trainer's own files, atomically), so that :func:`resume_checkpoint` can tell a checkpoint of another
    run."""

    def __init__(self, config) -> None:
        self.values = json.dumps(_plain(config.to_dict()), indent=2)

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if args.should_save and folder.is_dir():  # every process that saves (save_on_each_node: one per node)
            write_atomically(folder / CONFIG_NAME, self.values)

    # With push_to_hub the trainer starts the checkpoint's background upload (hub_strategy "checkpoint" or
    # "all_checkpoints") before on_save: the record is written when the push begins too, so the Hub copy has it.
    on_push_begin = on_save


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
    record = os.path.join(folder, CONFIG_NAME)
    if os.path.isfile(record):
        try:
            with open(record, encoding="utf-8") as file:
                json.load(file)
        except (ValueError, OSError) as error:
            return f"{CONFIG_NAME} cannot be read ({type(error).__name__})"
    if not any(os.path.isfile(os.path.join(folder, name)) for name in WEIGHT_FILES):
        return f"no model weights ({' or '.join(WEIGHT_FILES[:2])})"
    try:
        check_model_folder(folder)
    except IncompleteModelFolder as error:
        return str(error)
    return None


def resume_checkpoint(resume: str | None, output_dir: str | os.PathLike, config=None) -> str | None:
    """The checkpoint folder to hand ``trainer.train(resume_from_checkpoint=...)``.

    ``resume``: None (start afresh), ``"last"`` (the complete checkpoint of highest step in ``output_dir``;
    incomplete ones above it are skipped with a warning each) or a checkpoint folder (refused if incomplete).
    ``config``: this run's :class:`~hf_softnce.training.config.TrainConfig`; a checkpoint saved under another one
    (:data:`RESUMABLE_KEYS` aside) is refused, naming the first differing key. A checkpoint without the record
    (saved by another tool) resumes unchecked.
    """
    if resume is None:
        return None
    if resume != "last":
        problem = checkpoint_problem(resume) if os.path.isdir(resume) else "no such folder"
        if problem:
            raise ValueError(f"resume_from_checkpoint {os.fspath(resume)!r} is not a complete checkpoint: {problem}.")
        return _same_run(os.fspath(resume), config)
    checkpoints = _checkpoints_by_step(os.fspath(output_dir))
    for folder in reversed(checkpoints):
        problem = checkpoint_problem(folder)
        if problem is None:
            return _same_run(folder, config)
        logger.warning("Skipping the incomplete checkpoint %s (%s); resuming from an earlier one.", folder, problem)
    skipped = f" ({len(checkpoints)} incomplete)" if checkpoints else ""
    raise ValueError(f"resume_from_checkpoint=last: no complete checkpoint in {os.fspath(output_dir)!r}{skipped}.")


def _same_run(folder: str, config) -> str:
    """``folder``, unless its recorded configuration differs from ``config`` in a key a resume may not change (a key
    one side lacks counts as its default: a record from a version before the key, a default set by name)."""
    path = os.path.join(folder, CONFIG_NAME)
    if config is None or not os.path.isfile(path):
        return folder
    with open(path, encoding="utf-8") as file:
        saved = json.load(file)  # readable: checkpoint_problem checked it
    now, defaults, missing = _plain(config.to_dict()), _default_values(), object()
    for key in sorted(set(saved) | set(now)):
        if key.startswith(RESUMABLE_KEYS) and key not in FIXED_KEYS:
            continue
        there, here = saved.get(key, defaults.get(key, missing)), now.get(key, defaults.get(key, missing))
        if there != here:
            shown = ["absent" if value is missing else repr(value) for value in (there, here)]
            raise ValueError(f"resume_from_checkpoint: {folder} was saved by a run with another configuration ({key}: "
                             f"{shown[0]} there, {shown[1]} now): resume with that run's settings, or train into "
                             "another output_dir.")
    return folder


def _plain(values: dict) -> dict:
    """JSON values, compared as such (``config._plain``: an enum as its value, a tuple as a list), an existing path as
    its real path (the same folder named from another working directory)."""
    values = {key: os.path.realpath(value) if isinstance(value, str) and value and os.path.exists(value) else value
              for key, value in plain_values(values).items()}
    return json.loads(json.dumps(values, default=str))


@lru_cache(maxsize=None)
def _default_values() -> dict:
    """Every key's default: hf_softnce's own, and sentence-transformers' training arguments'."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    from hf_softnce.training.config import TrainConfig

    args = {spec.name: spec.default for spec in dataclasses.fields(SentenceTransformerTrainingArguments)
            if spec.init and spec.default is not dataclasses.MISSING}
    return _plain({**args, **TrainConfig().to_dict()})


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
