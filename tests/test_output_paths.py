"""Output paths are checked before any work, in the CLI and the recipes alike: a folder that cannot be written
(permission, read-only file system) or a disk without room for the model is one line naming the path, status 2,
before any data is built or any model is loaded."""

from __future__ import annotations

import errno
import importlib.util
import shutil
from pathlib import Path

import pytest
from conftest import tiny_model_dir

from hf_softnce import output_paths
from hf_softnce.cli import main

ROOT = Path(__file__).resolve().parents[1]
# As root a chmod does not stop a write; sysfs refuses to create files for anyone.
UNWRITABLE = "/sys/hf_softnce_output"


@pytest.fixture
def no_work(monkeypatch):
    """Fail if any data is built or any evaluation or training starts: the check must come first."""
    import hf_softnce.cli.evaluate
    import hf_softnce.training.data
    import hf_softnce.training.run

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(hf_softnce.training.data, "load_task_data", refuse)
    monkeypatch.setattr(hf_softnce.training.run, "train_retriever", refuse)
    monkeypatch.setattr(hf_softnce.cli.evaluate, "evaluate_model", refuse)


@pytest.fixture
def read_only(monkeypatch):
    """The probe file fails as on a read-only file system (errno 30), which a test cannot mount."""

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(output_paths.tempfile, "NamedTemporaryFile", refuse)


@pytest.fixture
def full_disk(monkeypatch):
    usage = shutil.disk_usage("/")
    monkeypatch.setattr(output_paths.shutil, "disk_usage", lambda path: usage._replace(free=1024 * 1024))


@pytest.fixture
def model(capsys):
    path = tiny_model_dir()
    capsys.readouterr()  # its saving bars
    return path


def _run(capsys, argv):
    status = main([str(part) for part in argv])
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    return status, captured.err.removeprefix("hf-softnce: error: ").rstrip("\n")


def test_train_to_an_unwritable_folder_stops_first(capsys, model, no_work):
    status, error = _run(capsys, ["train", "--output-dir", f"{UNWRITABLE}/run", f"model={model}"])
    assert status == 2
    assert error == f"--output-dir '{UNWRITABLE}/run' cannot be written: Permission denied (errno 13 in '/sys')."


def test_train_on_a_read_only_file_system_stops_first(capsys, model, tmp_path, no_work, read_only):
    out = tmp_path / "run"
    status, error = _run(capsys, ["train", "--output-dir", out, f"model={model}"])
    assert (status, error) == (2, f"--output-dir {str(out)!r} cannot be written: Read-only file system (errno 30 in "
                                  f"{str(tmp_path)!r}).")
    assert not out.exists()


def test_train_on_a_full_disk_stops_first(capsys, model, tmp_path, no_work, full_disk):
    out = tmp_path / "run"
    needed = 4 * output_paths.weights_bytes(model) / 2**20
    status, error = _run(capsys, ["train", "--output-dir", out, f"model={model}"])
    assert status == 2
    assert error == (f"output_dir {str(out)!r}: only 1 MB free on its disk, and about {needed:,.0f} MB will be written "
                     "(the model and a checkpoint); free some space or choose another folder.")


def test_evaluate_output_is_checked_before_evaluating(capsys, model, tmp_path, no_work):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "sort a list", "code": "def s(x):\\n    return sorted(x)"}\n')
    status, error = _run(capsys, ["evaluate", model, "--data", data, "--output", f"{UNWRITABLE}/m.json"])
    assert (status, error) == (2, f"--output '{UNWRITABLE}/m.json' cannot be written: Permission denied (errno 13 in "
                                  "'/sys').")


@pytest.mark.parametrize("recipe", ["train_soft_infonce", "train_order_infonce", "train_ranker", "train_simcse_weighter"])
def test_recipes_stop_first_with_status_2(capsys, model, tmp_path, no_work, read_only, recipe):
    spec = importlib.util.spec_from_file_location(recipe, ROOT / "recipes" / f"{recipe}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit:
        module.main([f"output_dir={out}", f"model={model}"])
    assert exit.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith(f"error: output_dir {str(out)!r} cannot be written: Read-only file system (errno 30 in "
                         f"{str(tmp_path)!r}).")
