"""CoSQA's human-judged pairs as the ranker's second task: which rows are read, and how they share its steps."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

from hf_softnce.data import SkipReport, load_cosqa_judged_pairs
from hf_softnce.losses import R2PSRankerLoss
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.ranker import train_ranker

from conftest import tiny_model_dir

TRAIN = [
    {"idx": "t1", "doc": "read a json file", "code": "def a(): pass", "label": 1, "retrieval_idx": 0},
    {"idx": "t2", "doc": "read a json file", "code": "def b(): pass", "label": 0, "retrieval_idx": 1},
    {"idx": "t3", "doc": "Reverse  a String", "code": "def c(): pass", "label": 0, "retrieval_idx": 2},  # dev text
    {"idx": "d9", "doc": "sort a list", "code": "def d(): pass", "label": 1, "retrieval_idx": 3},  # dev idx
    {"idx": "t5", "doc": "make a directory", "code": "def e(): pass", "label": 0, "retrieval_idx": 4},  # held out
    {"idx": "t6", "doc": "open a socket", "code": "def f(): pass", "label": 0, "retrieval_idx": 5},
]
DEV = [{"idx": "d9", "doc": "reverse a string", "code": "def g(): pass", "label": 1, "retrieval_idx": 6}]


@pytest.fixture
def cosqa(tmp_path):
    (tmp_path / "cosqa-retrieval-train-19604.json").write_text(json.dumps(TRAIN))
    (tmp_path / "cosqa-retrieval-dev-500.json").write_text(json.dumps(DEV))
    return tmp_path


def test_both_labels_are_read_and_every_held_out_query_is_left_out_and_counted(cosqa):
    report = SkipReport()
    pairs = load_cosqa_judged_pairs(cosqa, exclude_queries=["MAKE a directory"], report=report)
    assert pairs.to_dict() == {"query": ["read a json file", "read a json file", "open a socket"],
                               "code": ["def a(): pass", "def b(): pass", "def f(): pass"],
                               "label": [1.0, 0.0, 0.0]}
    assert report.total_filtered == 3 and report.total_skipped == 0


def test_a_missing_training_file_names_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="cosqa-retrieval-train-19604.json not found"):
        load_cosqa_judged_pairs(tmp_path)


def test_a_file_with_no_usable_pair_is_an_error_not_an_empty_dataset(cosqa):
    from hf_softnce.data import DataFormatError

    path = cosqa / "cosqa-retrieval-train-19604.json"
    path.write_text("[]")
    with pytest.raises(DataFormatError, match=rf"^{path}: no records"):
        load_cosqa_judged_pairs(cosqa)
    path.write_text(json.dumps(TRAIN[2:4]))  # both held out: nothing left to train on
    with pytest.raises(DataFormatError, match=rf"^{path}: none of its 2 records is usable \(0 skipped as bad input, "
                                              r"2 filtered by rule so far\)"):
        load_cosqa_judged_pairs(cosqa)


def test_judged_batches_alternate_with_the_listwise_ones_at_their_labels(tmp_path, monkeypatch):
    seen = {"listwise": 0, "judged": []}
    listwise_forward, judged_forward = R2PSRankerLoss.forward, BinaryCrossEntropyLoss.forward

    def count_listwise(self, inputs, labels=None, **kwargs):
        seen["listwise"] += 1
        return listwise_forward(self, inputs, labels, **kwargs)

    def record_judged(self, inputs, labels, **kwargs):
        seen["judged"].append(sorted(zip(inputs[0], inputs[1], labels.tolist())))
        return judged_forward(self, inputs, labels, **kwargs)

    monkeypatch.setattr(R2PSRankerLoss, "forward", count_listwise)
    monkeypatch.setattr(BinaryCrossEntropyLoss, "forward", record_judged)
    mined = Dataset.from_dict({"query": [f"q{i}" for i in range(4)], "code": [f"def p{i}(): pass" for i in range(4)],
                               "negative_1": [f"def n{i}(): pass" for i in range(4)]})
    judged = Dataset.from_dict({"query": ["a", "b"], "code": ["def a(): pass", "def b(): pass"], "label": [1.0, 0.0],
                                "extra": [1, 2]})  # a column the task does not train on is dropped
    config = TrainConfig.from_dict(dict(ranker_model=tiny_model_dir(), ranker_head="released", max_steps=2,
                                        batch_size=2, max_seq_length=32, output_dir=str(tmp_path / "ranker"),
                                        save_strategy="no", ranker_warmup_ratio=0.0))
    train_ranker(config, mined, judged)
    assert seen["listwise"] == 2  # max_steps counts the listwise steps; a judged batch follows each
    assert seen["judged"] == [[("a", "def a(): pass", 1.0), ("b", "def b(): pass", 0.0)]] * 2


def test_the_rankers_fresh_head_is_drawn_from_the_config_seed(tmp_path):
    import torch

    mined = Dataset.from_dict({"query": ["q0", "q1"], "code": ["def p0(): pass", "def p1(): pass"],
                               "negative_1": ["def n0(): pass", "def n1(): pass"]})

    def trained(seed: int, global_seed: int) -> dict:
        torch.manual_seed(global_seed)  # whatever ran before: the head must not depend on it
        config = TrainConfig.from_dict(dict(ranker_model=tiny_model_dir(), ranker_head="released", max_steps=1,
                                            batch_size=2, max_seq_length=32, seed=seed, save_strategy="no",
                                            output_dir=str(tmp_path / f"ranker-{seed}-{global_seed}")))
        return {k: v.clone() for k, v in train_ranker(config, mined).state_dict().items()}  # head included

    first, again, other = trained(3, 1), trained(3, 2), trained(4, 1)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def _mined_rows(n: int = 4) -> Dataset:
    return Dataset.from_dict({"query": [f"read file {i}" for i in range(n)],
                              "code": [f"def read{i}(p): return open(p).read()" for i in range(n)],
                              "negative_1": [f"def add{i}(a, b): return a + b" for i in range(n)],
                              "negative_2": [f"def now{i}(): return time.time()" for i in range(n)]})


def test_a_ranker_whose_tanh_saturated_is_named_collapsed_and_a_fresh_one_is_not():
    import numpy as np
    import torch

    from hf_softnce.losses import R2PSRankerLoss
    from hf_softnce.training.ranker import COLLAPSED_SPREAD, r2ps_ranker, scores_collapsed

    mined = _mined_rows()
    ranker = r2ps_ranker(tiny_model_dir(), head="released", max_length=32, device="cpu")
    R2PSRankerLoss(ranker)  # sets the tanh the trained ranker predicts with
    pairs = [(row["query"], row[c]) for row in mined for c in ("code", "negative_1", "negative_2")]
    fresh = np.asarray(ranker.predict(pairs, show_progress_bar=False)).reshape(4, 3)
    assert (fresh.max(1) - fresh.min(1)).mean() > COLLAPSED_SPREAD  # a fresh head tells the candidates apart
    assert scores_collapsed(ranker, mined) is None

    with torch.no_grad():  # every logit +40: tanh is 1.0 for each candidate, as the collapsed CoSQA ranker's were
        ranker[-1].linear.bias.fill_(40.0)
    problem = scores_collapsed(ranker, mined)
    assert problem is not None
    assert "mean spread 0.0e+00 over 4 training queries' 3 candidates, mean score +1.0000): its tanh is saturated" \
        in problem
    assert "\n" not in problem

    with torch.no_grad():  # every logit 0: alike, but not saturated, so not the learning-rate advice
        ranker[-1].linear.weight.zero_()
        ranker[-1].linear.bias.zero_()
    problem = scores_collapsed(ranker, mined)
    assert problem is not None and "mean score +0.0000): it has learned nothing that tells them apart" in problem


def test_the_rankers_learning_rate_is_its_own_when_set(tmp_path):
    mined = _mined_rows(2)

    def change(ranker_learning_rate):
        config = TrainConfig.from_dict(dict(ranker_model=tiny_model_dir(), ranker_head="released", max_steps=1,
                                            batch_size=2, max_seq_length=32, learning_rate=0.1, warmup_ratio=0.0,
                                            ranker_learning_rate=ranker_learning_rate, save_strategy="no",
                                            output_dir=str(tmp_path / f"ranker-{ranker_learning_rate}")))
        from transformers import set_seed

        from hf_softnce.training.ranker import r2ps_ranker

        set_seed(config.seed)  # the head train_ranker starts from
        fresh = r2ps_ranker(tiny_model_dir(), head="released", max_length=32, device="cpu").state_dict()
        trained = train_ranker(config, mined).state_dict()
        return max((trained[k] - fresh[k].to(trained[k].device)).abs().max().item() for k in trained
                   if k.endswith("linear.weight"))

    # One AdamW step moves a weight by about the learning rate: 0.1 from learning_rate, ~1e-9 from the ranker's own.
    assert change(None) > 0.01
    assert change(1e-9) < 1e-8
