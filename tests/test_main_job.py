"""The main job end to end on a tiny model and a small real corpus: table, JSON, plot and model card folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from sentence_transformers import SentenceTransformer

from conftest import tiny_model_dir
from hf_softnce.training.main_job import run_main_job

FIXTURE_COSQA = Path(__file__).parent / "fixtures" / "cosqa"


def test_main_job_writes_comparison_and_a_loadable_model_folder(tmp_path, small_corpus):
    overrides = dict(
        model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA), cosqa_corpus_size=None,
        max_train_pairs=None, max_steps=3, batch_size=8, max_seq_length=64, use_cpu=True,
    )
    payload = run_main_job(
        "quick", tmp_path, seeds=[1, 2], overrides=overrides,
        methods=["InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)"],
    )
    rows = set(payload["summary"])
    assert rows == {"base model (zero-shot)", "InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)"}
    # The trained-model estimator is that seed's InfoNCE model, loaded as a separate frozen copy.
    trained_config = json.loads((tmp_path / "softinfonce-trained-model" / "seed-2" / "config.json").read_text())
    assert trained_config["weighter_model"] == str(tmp_path / "infonce" / "seed-2" / "final")
    # Every trained row has one value per seed, for the held-out split and the real-query half.
    for method in ("InfoNCE", "SoftInfoNCE (BM25)"):
        assert len(payload["results"][method]["test_mrr@1000"]) == 2
        assert len(payload["results"][method]["cosqa-report_mrr@1000"]) == 2
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"]["InfoNCE"]["test_mrr@1000"]["mean"] == pytest.approx(
        sum(payload["results"]["InfoNCE"]["test_mrr@1000"]) / 2
    )
    table = (tmp_path / "results.md").read_text()
    assert "| SoftInfoNCE (BM25) |" in table and "CoSQA real queries" in table
    assert (tmp_path / "results.png").stat().st_size > 10_000

    folder = tmp_path / "hub"
    card = ModelCard.load(folder / "README.md")
    assert "SoftInfoNCELoss" in card.text and "Rethinking Negative Pairs" in card.text
    assert card.data.eval_results and {r.metric_type for r in card.data.eval_results} >= {"mrr@1000"}
    reloaded = SentenceTransformer(str(folder), device="cpu")
    trained = SentenceTransformer(str(tmp_path / "softinfonce-bm25" / "seed-1" / "final"), device="cpu")
    assert (reloaded.encode(["parse a csv file"]) == trained.encode(["parse a csv file"])).all()


def test_main_job_rejects_unknown_methods_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="Unknown method"):
        run_main_job("quick", tmp_path, methods=["SoftInfoNCE (magic)"])
    with pytest.raises(ValueError, match="size must be one of"):
        run_main_job("medium", tmp_path)
