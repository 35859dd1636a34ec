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


# Within one process: embeddings an evaluation computed are read by a later encode of the same texts by the same
# weights, for the texts both lengths read whole.
SHORT, LONG = "def f(x): return x", "def g(items):\n    return sorted(set(items), key=len, reverse=True)[:10]"


@pytest.fixture
def remembered():
    from hf_softnce import embedding_cache

    embedding_cache.forget_embeddings()
    yield embedding_cache
    embedding_cache.forget_embeddings()


def _counting(model):
    calls = []
    original_encode = model.encode
    model.encode = lambda texts, *a, **k: calls.append(list(texts)) or original_encode(texts, *a, **k)
    return calls


def _tokens(model, text):
    return int(model.preprocess([text])["attention_mask"].sum())


def test_the_disk_key_holds_the_length(tmp_path, remembered):
    model = build_tiny_model(seed=3, max_seq_length=64)
    texts = [SHORT, LONG]
    assert _tokens(model, SHORT) < 24 < _tokens(model, LONG) < 64
    at_64 = remembered.encode_cached(model, texts, cache=tmp_path, show_progress_bar=False)
    model.max_seq_length = 24
    at_24 = remembered.encode_cached(model, texts, cache=tmp_path, show_progress_bar=False)
    torch.testing.assert_close(at_24, model.encode(texts, convert_to_tensor=True))  # not the entry made at 64
    assert not torch.allclose(at_24[1], at_64[1], atol=1e-3)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_the_disk_and_remembered_keys_hold_what_the_weights_do_not(tmp_path, remembered):
    """A default prompt, truncate_dim or another pooling mode over the same weights gives other embeddings: each is
    an entry of its own on disk and in memory, equal to the model's own encode."""
    texts = [SHORT, LONG]

    def variants():
        yield "plain", build_tiny_model(seed=3, max_seq_length=64)
        prompted = build_tiny_model(seed=3, max_seq_length=64)
        prompted.prompts["code"], prompted.default_prompt_name = "Represent this code: ", "code"
        yield "default prompt", prompted
        truncated = build_tiny_model(seed=3, max_seq_length=64)
        truncated.truncate_dim = 8
        yield "truncate_dim", truncated
        pooled = build_tiny_model(seed=3, max_seq_length=64)
        pooled[1].pooling_mode = "max"
        yield "max pooling", pooled

    models = dict(variants())
    assert len({remembered.model_fingerprint(model) for model in models.values()}) == 1  # the same weights
    for name, model in models.items():
        cached = remembered.encode_cached(model, texts, cache=tmp_path, show_progress_bar=False)
        torch.testing.assert_close(cached, model.encode(texts, convert_to_tensor=True), msg=name)
    assert len(list(tmp_path.glob("*.pt"))) == len(models)
    plain = models.pop("plain")
    remembered.remember_embeddings(plain, texts, plain.encode(texts, convert_to_tensor=True))
    for name, model in models.items():
        calls = _counting(model)
        read = remembered.encode_cached(model, texts, cache=False, show_progress_bar=False)
        assert calls == [texts], name  # encoded, not read from the plain model's remembered rows
        torch.testing.assert_close(read, model.encode(texts, convert_to_tensor=True), msg=name)


def test_a_remembered_text_is_read_where_both_lengths_read_it_whole(remembered):
    model = build_tiny_model(seed=3, max_seq_length=64)
    texts = CODES + [SHORT, LONG]
    evaluated = model.encode(texts, convert_to_tensor=True)
    remembered.remember_embeddings(model, texts, evaluated)
    # The same weights loaded again, read at 24 tokens: only the texts 24 tokens cut are encoded.
    again = build_tiny_model(seed=3, max_seq_length=64)
    again.max_seq_length = 24
    calls = _counting(again)
    cut = [text for text in texts if _tokens(model, text) > 24]
    assert SHORT not in cut and LONG in cut and len(cut) < len(texts)
    read = remembered.encode_cached(again, texts, cache=False, show_progress_bar=False)
    assert calls == [cut]
    whole = [i for i, text in enumerate(texts) if text not in cut]
    torch.testing.assert_close(read[whole], evaluated[whole], rtol=0, atol=0)  # the remembered rows themselves
    torch.testing.assert_close(read, again.encode(texts, convert_to_tensor=True), rtol=1e-4, atol=1e-5)
    normalized = remembered.encode_cached(again, texts, normalize=True, cache=False, show_progress_bar=False)
    torch.testing.assert_close(normalized, again.encode(texts, convert_to_tensor=True, normalize_embeddings=True),
                               rtol=1e-4, atol=1e-5)
    # At the remembered length every text is read, cut or not; sentence-transformers' empty "document" prompt is no
    # prompt; other weights or a real prompt read nothing.
    calls.clear()
    again.max_seq_length = 64
    torch.testing.assert_close(remembered.encode_cached(again, texts, cache=False, show_progress_bar=False),
                               evaluated, rtol=0, atol=0)
    assert again.prompts.get("document") == ""
    remembered.encode_cached(again, texts, prompt_name="document", cache=False, show_progress_bar=False)
    assert calls == []
    other = build_tiny_model(seed=4, max_seq_length=64)
    other_calls = _counting(other)
    remembered.encode_cached(other, texts, cache=False, show_progress_bar=False)
    again.prompts["code"] = "Represent this code: "
    remembered.encode_cached(again, texts, prompt_name="code", cache=False, show_progress_bar=False)
    assert other_calls == [texts] and calls == [texts]


def test_the_evaluation_remembers_the_codebase_for_mining(remembered):
    from hf_softnce.data.schema import RetrievalSet
    from hf_softnce.evaluation.multi import evaluate_retrieval_sets

    model = build_tiny_model(seed=5, max_seq_length=32)
    corpus = {f"c{i}": code for i, code in enumerate(CODES)}
    retrieval_set = RetrievalSet(queries={f"q{i}": q for i, q in enumerate(QUERIES)}, corpus=corpus,
                                 relevant={f"q{i}": {f"c{i}"} for i in range(len(QUERIES))}, name="set")
    evaluate_retrieval_sets(model, {"set": retrieval_set}, show_progress_bar=False)
    assert not remembered._REMEMBERED  # only when asked
    evaluate_retrieval_sets(model, {"set": retrieval_set}, show_progress_bar=False, remember_embeddings=True)
    calls = _counting(model)
    read = remembered.encode_cached(model, CODES, cache=False, show_progress_bar=False)
    assert calls == []
    torch.testing.assert_close(read, model.encode(CODES, convert_to_tensor=True), rtol=1e-4, atol=1e-5)
