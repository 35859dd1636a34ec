"""The main job end to end on a tiny model and a small real corpus: intervals, table, JSON, plot and model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard
from sentence_transformers import SentenceTransformer

from conftest import tiny_model_dir
from hf_softnce.evaluation.bootstrap import PairedBootstrap
from hf_softnce.hub import COSQA_DATASET_ID
from hf_softnce.training.main_job import CASCADE, run_main_job

FIXTURE_COSQA = Path(__file__).parent / "fixtures" / "cosqa"


def test_main_job_compares_every_row_with_paired_intervals_and_saves_the_averaged_model(tmp_path, small_corpus):
    overrides = dict(
        model=tiny_model_dir(), ranker_model=tiny_model_dir(), data=str(small_corpus), cosqa_dir=str(FIXTURE_COSQA),
        max_train_pairs=None, max_steps=3, batch_size=8, max_seq_length=64, use_cpu=True, conala_mix=0.0,
        ranker_top_k=3,
    )
    payload = run_main_job(
        "quick", tmp_path, seeds=[1, 2], overrides=overrides,
        methods=["InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)", CASCADE],
    )
    rows = set(payload["comparison"]["cosqa-dev"])
    assert rows == {"base model (zero-shot)", "InfoNCE", "SoftInfoNCE (BM25)", "SoftInfoNCE (trained model)", CASCADE}
    # The trained-model estimator is that seed's InfoNCE model, loaded as a separate frozen copy.
    trained_config = json.loads((tmp_path / "softinfonce-trained-model" / "seed-2" / "config.json").read_text())
    assert trained_config["weighter_model"] == str(tmp_path / "infonce" / "seed-2" / "final")
    # Every row's interval is a paired bootstrap over the whole dev set (both halves), seeds averaged per query:
    # recompute the BM25 row's difference against the base model directly from the saved per-query ranks.
    ranks = payload["per_query_ranks"]

    def rr(run):
        return {f"{half}/{q}": (1.0 / r if r else 0.0) for half in ("cosqa-select", "cosqa-report")
                for q, r in run[half].items()}

    base = rr(ranks["base model (zero-shot)"][0])
    soft = [rr(run) for run in ranks["SoftInfoNCE (BM25)"]]
    assert len(soft) == 2
    soft_mean = {q: (soft[0][q] + soft[1][q]) / 2 for q in base}
    expected = float(np.mean([soft_mean[q] - base[q] for q in base]))
    got = payload["comparison"]["cosqa-dev"]["SoftInfoNCE (BM25)"]["vs_base"]
    assert got["diff"] == pytest.approx(expected, abs=1e-12)
    boot = PairedBootstrap(sorted(base)).difference(soft_mean, base)
    assert (got["low"], got["high"]) == pytest.approx((boot.low, boot.high), abs=1e-12)
    assert "vs_infonce" in payload["comparison"]["cosqa-dev"][CASCADE]
    assert set(payload["latency_ms_per_query"]) == {"InfoNCE", CASCADE}
    # Every sentence the job prints claims only what its interval supports.
    for sentence in payload["verdicts"]:
        assert ("no measurable difference" in sentence) or ("better by" in sentence) or ("worse by" in sentence)
    table = (tmp_path / "results.md").read_text()
    assert "Δ vs base" in table and "| SoftInfoNCE (BM25) |" in table
    assert (tmp_path / "results.png").stat().st_size > 10_000

    folder = tmp_path / "hub"
    card = ModelCard.load(folder / "README.md")
    assert "SoftInfoNCELoss" in card.text and "WiSE-FT" in card.text
    cosqa = [r for r in card.data.eval_results if r.dataset_type == COSQA_DATASET_ID]
    assert {r.metric_type for r in cosqa} >= {"mrr@1000"}
    mrr = next(r.metric_value for r in cosqa if r.metric_type == "mrr@1000")
    # The model-index holds the saved weights' numbers: the first seed's model, on both dev halves together.
    soft = payload["results"]["SoftInfoNCE (BM25)"]
    sizes = {half: payload["data"][half]["queries"] for half in ("cosqa-select", "cosqa-report")}
    first_seed = sum(soft[f"{half}_mrr@1000"][0] * n for half, n in sizes.items()) / sum(sizes.values())
    assert mrr == pytest.approx(first_seed, abs=1e-12)
    assert all(r.dataset_args["corpus_size"] == payload["data"]["cosqa-report"]["codes"] for r in cosqa)
    # The table shows the seeds' mean, which is the comparison's (reciprocal ranks averaged per query).
    mean = payload["comparison"]["cosqa-dev"]["SoftInfoNCE (BM25)"]["metrics"]["mrr@1000"]
    assert f"{mean:.4f} ± " in card.text and "Side by side with the `InfoNCE` baseline" in card.text
    assert COSQA_DATASET_ID not in (card.data.datasets or [])  # evaluation data is not training data
    assert str(tmp_path) not in card.content and "sentence_transformers_model_id" not in card.content
    config = yaml.safe_load((folder / "training_config.yaml").read_text())
    assert f"| duplicate groups | {config['loss']['config']['duplicate_groups']:,} |" in card.text
    # The folder holds the saved (WiSE-FT-averaged) weights that were evaluated.
    reloaded = SentenceTransformer(str(folder), device="cpu")
    trained = SentenceTransformer(str(tmp_path / "softinfonce-bm25" / "seed-1" / "final"), device="cpu")
    assert (reloaded.encode(["parse a csv file"]) == trained.encode(["parse a csv file"])).all()


def test_main_job_rejects_unknown_methods_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="Unknown method"):
        run_main_job("quick", tmp_path, methods=["SoftInfoNCE (magic)"])
    with pytest.raises(ValueError, match="size must be one of"):
        run_main_job("medium", tmp_path)
