"""A checkpoint counts only when complete: ``resume_from_checkpoint: last`` skips a folder a stopped save left half
written (no weights, no or a truncated trainer_state.json, a model folder missing a file), warning once for each."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

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


def test_a_checkpoint_of_another_run_is_refused_and_driving_keys_may_differ(tmp_path, monkeypatch, complete_checkpoint):
    """The run's configuration recorded in each checkpoint: a resume under another loss setting or learning rate is
    refused naming the key; a longer run, logging, DDP timeout, the same folder by another path, a key the record
    lacks (an older version) or a training argument set to its default by name resume."""
    from types import SimpleNamespace

    from hf_softnce.training.checkpoints import CONFIG_NAME, SaveConfigCallback
    from hf_softnce.training.config import TrainConfig

    run = tmp_path / "run"
    folder = _checkpoint(run, 2, complete_checkpoint)
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    config = TrainConfig(output_dir=str(run), learning_rate=1e-4, data_dir="data", max_steps=10)
    args = SimpleNamespace(output_dir=str(run), should_save=True)
    SaveConfigCallback(config).on_save(args, SimpleNamespace(global_step=2), None)
    record = json.loads((folder / CONFIG_NAME).read_text())
    assert record["learning_rate"] == 1e-4 and record["data_dir"] == str((tmp_path / "data").resolve())

    def resumes(**changes):
        values = {**config.to_dict(), **changes}
        return resume_checkpoint("last", run, TrainConfig.from_dict(values)) == str(folder)

    assert resumes()
    assert resumes(max_steps=20, logging_steps=1, ddp_timeout=7200, data_dir=str(tmp_path / "data"),
                   max_grad_norm=1.0, per_device_eval_batch_size=4)
    del record["ranker_judged_pairs"]  # a version before the key: its default
    (folder / CONFIG_NAME).write_text(json.dumps(record))
    assert resumes()
    for key, value, shown in (("learning_rate", 5e-4, "0.0001 there, 0.0005 now"),
                              ("dataloader_drop_last", True, "False there, True now"),
                              ("ranker_judged_pairs", True, "False there, True now")):
        with pytest.raises(ValueError) as error:
            resumes(**{key: value})
        assert str(error.value) == (f"resume_from_checkpoint: {folder} was saved by a run with another configuration "
                                    f"({key}: {shown}): resume with that run's settings, or train into another "
                                    "output_dir.")
    (folder / CONFIG_NAME).write_text('{"learning_rate": ')  # a write cut off: not a complete checkpoint
    with pytest.raises(ValueError, match=r"no complete checkpoint .*\(1 incomplete\)"):
        resume_checkpoint("last", run, config)


def test_a_checkpoint_pushed_to_the_hub_carries_the_record(tmp_path, monkeypatch):
    """hub_strategy="checkpoint" uploads the checkpoint in the background before the trainer's on_save: the upload
    must already see the run's record (the Hub API is replaced by one that lists what each upload holds)."""
    from types import SimpleNamespace

    import transformers.trainer
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hf_softnce.training.checkpoints import CONFIG_NAME, SaveConfigCallback
    from hf_softnce.training.config import TrainConfig

    uploads = []

    class Hub:
        def create_repo(self, repo_id, **kwargs):
            return SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, *, folder_path, path_in_repo=None, **kwargs):
            uploads.append((path_in_repo, sorted(p.name for p in Path(folder_path).iterdir())))
            return SimpleNamespace(done=lambda: True)

    monkeypatch.setattr(transformers.trainer, "hf_api", Hub)
    model = build_tiny_model()
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"), max_steps=1, per_device_train_batch_size=2, save_strategy="steps",
        save_steps=1, push_to_hub=True, hub_model_id="me/run", hub_strategy="checkpoint", report_to="none")
    pairs = Dataset.from_dict({"anchor": ["sort a list", "read a file"],
                               "positive": ["def s(x): ...", "def r(p): ..."]})
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs,
                                         loss=MultipleNegativesRankingLoss(model),
                                         callbacks=[SaveConfigCallback(TrainConfig(learning_rate=1e-4))])
    trainer.train()
    checkpoint = [files for path, files in uploads if path == "last-checkpoint"]
    assert len(checkpoint) == 1 and CONFIG_NAME in checkpoint[0] and "trainer_state.json" in checkpoint[0]
    record = json.loads((tmp_path / "run" / "checkpoint-1" / CONFIG_NAME).read_text())
    assert record["learning_rate"] == 1e-4
