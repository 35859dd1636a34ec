"""The on-disk embedding cache under concurrency (two processes, one cache) and damage (files recomputed by name)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_model

from hf_softnce.embedding_cache import write_entry
from hf_softnce.weighting import TrainedModelWeighter
from loss_helpers import CODES, QUERIES

RACE = Path(__file__).parent / "distributed" / "cache_race.py"


def test_two_processes_fitting_one_estimator_encode_each_entry_once(tmp_path):
    cache, counter, ready = tmp_path / "cache", tmp_path / "encodes.txt", tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen([sys.executable, str(RACE), str(cache), str(counter), str(ready), str(rank)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for rank in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    encoded = [line.split("\t", 1)[1] for line in counter.read_text().splitlines()]
    # Ten fits, each with its own queries and codes: 20 entries, each encoded by exactly one of the processes.
    assert len(encoded) == 20 and len(set(encoded)) == 20
    assert len(list(cache.glob("*.pt"))) == 20 and not list(cache.glob("*.tmp"))


def _fit(model, cache):
    return TrainedModelWeighter(model, cache=cache, show_progress_bar=False).fit(QUERIES, CODES)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_shape(path: Path) -> None:
    entry = torch.load(path, weights_only=True)
    write_entry(path, entry["key"], entry["embeddings"][:3].clone())


def _plain_tensor(path: Path) -> None:
    torch.save(torch.zeros(3, 32), path)  # a file of another version's format, of the wrong shape


@pytest.mark.parametrize("damage", [_truncate, _empty, _wrong_shape, _plain_tensor])
def test_a_damaged_cache_file_is_logged_by_name_and_recomputed(tmp_path, caplog, damage):
    model = build_tiny_model(seed=2)
    expected = _fit(model, tmp_path)
    files = sorted(tmp_path.glob("*.pt"))
    assert len(files) == 2
    for path in files:
        damage(path)
    calls = []
    original_encode = model.encode
    model.encode = lambda texts, *a, **k: calls.append(len(texts)) or original_encode(texts, *a, **k)
    with caplog.at_level(logging.WARNING, logger="hf_softnce.embedding_cache"):
        weighter = _fit(model, tmp_path)
    assert calls == [len(QUERIES), len(CODES)]  # both entries recomputed
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    named = {path for path in files for warning in warnings if f"file {path} is damaged or stale" in warning}
    assert len(warnings) == 2 and named == set(files)
    torch.testing.assert_close(weighter._query_embeddings, expected._query_embeddings)
    torch.testing.assert_close(weighter._code_embeddings, expected._code_embeddings)
    # Rewritten whole: the next fit reads both entries without a warning or an encode.
    caplog.clear()
    _fit(model, tmp_path)
    assert calls == [len(QUERIES), len(CODES)] and not caplog.records


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_fit(tmp_path, caplog, monkeypatch):
    import errno

    from hf_softnce import embedding_cache

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(embedding_cache.torch, "save", full_disk)
    model = build_tiny_model(seed=2)
    with caplog.at_level(logging.WARNING, logger="hf_softnce.embedding_cache"):
        weighter = _fit(model, tmp_path)
    assert weighter._query_embeddings.shape == (len(QUERIES), 32)
    assert [r.getMessage().endswith("could not be written (No space left on device).") for r in caplog.records] == [True] * 2
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.tmp"))
