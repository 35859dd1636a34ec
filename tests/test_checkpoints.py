"""A checkpoint counts only when complete: ``resume_from_checkpoint: last`` skips a folder a stopped save left half
written (no weights, no or a truncated trainer_state.json, a model folder missing a file), warning once for each."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from conftest import build_tiny_model

from hf_softnce.training.checkpoints import resume_checkpoint


@pytest.fixture(scope="module")
def complete_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("complete") / "checkpoint"
    build_tiny_model().save(str(folder))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    return folder


def _checkpoint(run, step, complete_checkpoint, damage=None):
    folder = run / f"checkpoint-{step}"
    shutil.copytree(complete_checkpoint, folder)
    if damage == "truncated state":
        (folder / "trainer_state.json").write_text('{"global_step": ')
    elif damage:
        (folder / damage).unlink()
    return folder


def test_last_skips_incomplete_checkpoints_with_a_warning_each(tmp_path, caplog, complete_checkpoint):
    run = tmp_path / "run"
    good = _checkpoint(run, 2, complete_checkpoint)
    _checkpoint(run, 10, complete_checkpoint)  # numbers, not names, order the steps: 10 is after 2
    skipped = {
        20: _checkpoint(run, 20, complete_checkpoint, "model.safetensors"),
        30: _checkpoint(run, 30, complete_checkpoint, "trainer_state.json"),
        40: _checkpoint(run, 40, complete_checkpoint, "truncated state"),
        50: _checkpoint(run, 50, complete_checkpoint, "tokenizer.json"),
    }
    with caplog.at_level(logging.WARNING, logger="hf_softnce.training.checkpoints"):
        assert resume_checkpoint("last", run) == str(run / "checkpoint-10")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        f"Skipping the incomplete checkpoint {skipped[50]} (model folder {str(skipped[50])!r} is missing its Transformer "
        "module's tokenizer files (none of tokenizer.json, vocab.txt, vocab.json, spiece.model, sentencepiece.bpe.model, "
        "tokenizer.model).); resuming from an earlier one.",
        f"Skipping the incomplete checkpoint {skipped[40]} (trainer_state.json cannot be read (JSONDecodeError)); "
        "resuming from an earlier one.",
        f"Skipping the incomplete checkpoint {skipped[30]} (no trainer_state.json (the trainer writes it last)); "
        "resuming from an earlier one.",
        f"Skipping the incomplete checkpoint {skipped[20]} (no model weights (model.safetensors or pytorch_model.bin)); "
        "resuming from an earlier one.",
    ]
    assert resume_checkpoint(str(good), run) == str(good)
    assert resume_checkpoint(None, run) is None


def test_no_complete_checkpoint_and_an_incomplete_one_named_are_one_line_errors(tmp_path, complete_checkpoint):
    run = tmp_path / "run"
    broken = _checkpoint(run, 4, complete_checkpoint, "model.safetensors")
    with pytest.raises(ValueError, match=r"^resume_from_checkpoint=last: no complete checkpoint in '.*run' \(1 incomplete\)\.$"):
        resume_checkpoint("last", run)
    with pytest.raises(ValueError) as error:
        resume_checkpoint(str(broken), run)
    assert str(error.value) == (f"resume_from_checkpoint {str(broken)!r} is not a complete checkpoint: no model weights "
                                "(model.safetensors or pytorch_model.bin).")
