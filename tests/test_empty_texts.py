"""Empty code or query: one rule in the loaders, the losses and the evaluator.

A CodeSearchNet record with empty ``code_tokens`` loaded even with ``errors="raise"`` (an empty docstring was
rejected) and stopped the miner later; an empty query whose gold code was empty scored MRR 1.0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_model

from hf_softnce.data import DataFormatError, load_codesearchnet, load_cosqa
from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation import CodeSearchEvaluator, evaluate_retrieval_sets
from hf_softnce.losses import CachedSoftInfoNCELoss, OrderInfoNCELoss, SoftInfoNCELoss
from loss_helpers import CODES, QUERIES, features

FIXTURES = Path(__file__).parent / "fixtures"


def with_line(path: Path, line: str) -> int:
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


@pytest.mark.parametrize("code_tokens", [[], ["", "  "]])
def test_codesearchnet_empty_code_is_rejected_or_counted_like_an_empty_docstring(tmp_path, code_tokens):
    folder = shutil.copytree(FIXTURES / "codesearchnet", tmp_path / "csn") / "python"
    record = json.loads((folder / "train.jsonl").read_text().splitlines()[0])
    line = with_line(folder / "train.jsonl", json.dumps({**record, "url": "u-empty", "code_tokens": code_tokens}))
    with pytest.raises(DataFormatError) as raised:
        load_codesearchnet("python", data_dir=folder)
    assert str(raised.value).startswith(f"{folder / 'train.jsonl'}:{line}: empty code")
    data = load_codesearchnet("python", data_dir=folder, errors="skip", verbose=False)
    assert len(data.train) == 4 and data.report.skipped == {"empty code": 1}
    assert data.report.examples["empty code"] == [f"{folder / 'train.jsonl'}:{line}"]


def test_codesearchnet_empty_codebase_code_and_raw_code_are_rejected(tmp_path):
    folder = shutil.copytree(FIXTURES / "codesearchnet", tmp_path / "csn") / "python"
    record = json.loads((folder / "codebase.jsonl").read_text().splitlines()[0])
    line = with_line(folder / "codebase.jsonl", json.dumps({**record, "url": "u-empty", "code_tokens": []}))
    with pytest.raises(DataFormatError) as raised:
        load_codesearchnet("python", data_dir=folder)
    assert str(raised.value).startswith(f"{folder / 'codebase.jsonl'}:{line}: empty code")


def test_cosqa_empty_code_is_rejected(tmp_path):
    folder = shutil.copytree(FIXTURES / "cosqa", tmp_path / "cosqa")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and "train" in p.name)
    if not files:
        pytest.skip("no CoSQA train fixture")
    records = json.loads(files[0].read_text())
    records[0] = {**records[0], "code": "   "}
    files[0].write_text(json.dumps(records))
    with pytest.raises(DataFormatError) as raised:
        load_cosqa(data_dir=folder)
    assert str(raised.value).startswith(f"{files[0]} record 0: empty code")


@pytest.mark.parametrize("loss_class", [SoftInfoNCELoss, CachedSoftInfoNCELoss, OrderInfoNCELoss])
def test_losses_reject_an_empty_query_or_code(loss_class):
    model = build_tiny_model()
    loss = loss_class(model, **({"order_weight": 0.0} if loss_class is OrderInfoNCELoss else {}))  # no labels
    queries, codes = list(QUERIES), list(CODES)
    queries[2], codes[4], codes[5] = "", "", "   "
    with pytest.raises(ValueError) as raised:
        loss(features(model, queries, codes), None)
    assert str(raised.value) == (
        f"{loss_class.__name__}: the batch holds 1 empty query text(s) and 2 empty code text(s); drop rows with an "
        "empty query or code from the training data (hf_softnce's loaders reject them with errors='raise' and "
        "count them with errors='skip').")
    assert torch.isfinite(loss(features(model, QUERIES, CODES), None))


def test_an_empty_query_is_never_a_hit():
    """Its gold code is empty too: identical embeddings put it first, MRR 1.0 for asking nothing."""
    model = build_tiny_model()
    retrieval_set = RetrievalSet(
        queries={"empty": "", "blank": "  ", "real": QUERIES[0]},
        corpus={"c-empty": "", "c0": CODES[0], "c1": CODES[1], "c2": CODES[2]},
        relevant={"empty": {"c-empty"}, "blank": {"c-empty"}, "real": {"c0"}},
        name="tiny",
    )
    query = model.encode([QUERIES[0]], convert_to_tensor=True)
    codes = model.encode(["", CODES[0], CODES[1], CODES[2]], convert_to_tensor=True)
    scores = torch.nn.functional.cosine_similarity(query, codes)
    rank_real = int((scores > scores[1]).sum()) + 1  # direct re-computation of the real query's rank
    metrics = CodeSearchEvaluator(retrieval_set, write_csv=False)(model)
    assert metrics["tiny_mrr@1000"] == pytest.approx((0 + 0 + 1 / rank_real) / 3, abs=1e-6)
    assert metrics["tiny_recall@1"] == pytest.approx((rank_real == 1) / 3, abs=1e-6)
    ranks: dict = {}
    evaluate_retrieval_sets(model, {"tiny": retrieval_set}, per_query=ranks)
    assert ranks == {"tiny": {"empty": 0, "blank": 0, "real": rank_real}}
