"""The selection set is never trained on, and sentence-transformers' peers are built exactly as its docs build them."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

from conftest import tiny_model_dir
from hf_softnce.data import RetrievalSet, all_columns
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import HELDOUT, HELDOUT_SEED, heldout_query_ids, hold_out
from hf_softnce.training.losses import build_loss
from hf_softnce.training.main_job import make_plan
from hf_softnce.training.report import describe_row_loss
from hf_softnce.training.plan import ROW


def _codebase(codes: list[str]) -> RetrievalSet:
    return RetrievalSet({"d": "dev query"}, {str(i): code for i, code in enumerate(codes)}, {"d": {"0"}},
                        groups={str(i): i for i in range(len(codes))}, name="cosqa-dev")


def test_held_out_queries_leave_training_by_id_and_by_text():
    codes = [f"def f{i}(): pass" for i in range(8)]
    queries = [f"python query number {i}" for i in range(8)]
    train = Dataset.from_dict({"query": queries + ["PYTHON  Query number 3"], "code": codes + [codes[0]],
                               "id": [f"q{i}" for i in range(8)] + ["q-copy"], "dup_group": list(range(8)) + [0]})
    ids = [f"q{i}" for i in range(8)] + ["q-copy"]
    held = heldout_query_ids(ids, size=3, seed=HELDOUT_SEED)
    kept, heldout = hold_out(train, _codebase(codes), size=3)
    assert heldout.name == HELDOUT and sorted(heldout.queries) == held and len(held) == 3
    gold = {qid: ("0" if qid == "q-copy" else qid[1:]) for qid in ids}
    assert all(heldout.relevant[q] == {gold[q]} for q in held)  # each query's gold is its own code, by codebase id
    assert heldout.corpus == _codebase(codes).corpus  # the whole codebase, as dev ranks it
    kept_ids = set(all_columns(kept)["id"])
    assert not kept_ids & set(held)
    texts = {" ".join(q.lower().split()) for q in heldout.queries.values()}
    assert not texts & {" ".join(q.lower().split()) for q in kept["query"]}
    # Query 3 and its copy under another id share a text: when one is held out, the other leaves training too.
    twins = {"q3", "q-copy"}
    assert len(kept) == 9 - len(held) - (len(twins & set(held)) == 1)
    assert (twins & kept_ids) in (set(), twins)
    # At most half of a small training set is held out; the draw is the same every time.
    assert heldout_query_ids([f"q{i}" for i in range(8)], size=1500) == heldout_query_ids(
        [f"q{i}" for i in reversed(range(8))], size=1500) and len(heldout_query_ids(["a", "b", "c"], 1500)) == 1


def test_cosqa_heldout_is_1500_training_queries_no_row_trains_on(cosqa_dir):
    from hf_softnce.training.data import load_task_data

    data = load_task_data(TrainConfig(data="cosqa", cosqa_dir=str(cosqa_dir), data_dir=str(cosqa_dir)), progress=False)
    heldout, dev = data.real_select, data.real_report
    assert (heldout.name, len(heldout), dev.name, len(dev)) == (HELDOUT, 1500, "cosqa-dev", 500)
    assert len(heldout.corpus) == len(dev.corpus) == 6267  # the whole codebase
    train = all_columns(data.train)
    assert len(train) == 9020 - 1500
    assert not set(train["id"]) & set(heldout.queries)
    key = lambda text: " ".join(text.lower().split())  # noqa: E731
    assert not {key(q) for q in train["query"]} & {key(q) for q in heldout.queries.values()}
    assert set(data.eval_sets()) == {HELDOUT, "cosqa-dev"}


def _features(model, rows):
    return [model.preprocess(list(column)) for column in zip(*rows)]


ROWS = [("parse a csv file", "def read_csv(path): ...", "def write_json(obj): ..."),
        ("sort a dict by value", "def sort_by_value(d): ...", "def sort_list(xs): ..."),
        ("check if a file exists", "def exists(path): ...", "def mkdir(path): ...")]


def test_mnrl_hardness_row_is_sentence_transformers_own_loss_with_its_documented_arguments(tiny_model):
    row = ROW["MNRL hardness (hard negatives, 5) + mined negatives"]
    for size in ("quick", "full"):  # the row as each size plans it: its strength is a row setting of the size
        assert make_plan(size).row_values(row, {})["hardness_strength"] == 5.0
    config = replace(TrainConfig(), **make_plan("full").row_values(row, {}))
    loss = build_loss(config, tiny_model, Dataset.from_dict({"query": ["q"], "code": ["c"]}))
    assert type(loss) is MultipleNegativesRankingLoss
    reference = MultipleNegativesRankingLoss(tiny_model, scale=20.0, hardness_mode="hard_negatives", hardness_strength=5.0)
    assert loss.get_config_dict() == reference.get_config_dict()
    features = _features(tiny_model, ROWS)
    assert loss(features, None).item() == reference(features, None).item()
    recorded = describe_row_loss(row, loss, config)
    assert recorded["loss"] == "MultipleNegativesRankingLoss" and recorded["family"] == "sentence-transformers"
    assert recorded["arguments"]["hardness_mode"] == "hard_negatives" and recorded["arguments"]["hardness_strength"] == 5.0
    assert recorded["arguments"]["directions"] == ["query_to_doc"] and recorded["negatives"] == "mined"


def test_peers_with_mini_batch_size_are_their_gradcache_twins_with_the_same_loss(tiny_model):
    """mini_batch_size, as for hf_softnce's losses, builds sentence-transformers' Cached* twin of a peer (it was
    ignored): same arguments, same loss value on a batch, mini-batches of the size asked."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedGISTEmbedLoss, CachedMultipleNegativesRankingLoss,
    )

    data = Dataset.from_dict({"query": ["q"], "code": ["c"]})
    mnrl = dict(loss="mnrl", hardness_mode="hard_negatives", hardness_strength=5.0)
    gist = dict(loss="gist", guide_model=tiny_model_dir(seed=1), gist_temperature=0.05, max_seq_length=64)
    features = _features(tiny_model, ROWS)
    for settings, cached_class in ((mnrl, CachedMultipleNegativesRankingLoss), (gist, CachedGISTEmbedLoss)):
        plain = build_loss(replace(TrainConfig(), **settings), tiny_model, data)
        cached = build_loss(replace(TrainConfig(), **settings, mini_batch_size=2), tiny_model, data)
        assert type(cached) is cached_class and cached.mini_batch_size == 2
        expected = plain(features, None).item()
        tiny_model.zero_grad()
        assert cached(features, None).item() == pytest.approx(expected, abs=1e-5)


def test_gist_row_is_sentence_transformers_own_loss_with_a_frozen_guide(tiny_model):
    row = ROW["GISTEmbedLoss (guide: base) + mined negatives"]
    guide_dir = tiny_model_dir(seed=1)
    config = replace(TrainConfig(max_seq_length=64), **row.settings, guide_model=guide_dir)
    loss = build_loss(config, tiny_model, Dataset.from_dict({"query": ["q"], "code": ["c"]}))
    assert type(loss) is GISTEmbedLoss
    assert not any(p.requires_grad for p in loss.guide.parameters())  # frozen: the guide never trains
    reference = GISTEmbedLoss(tiny_model, SentenceTransformer(guide_dir, device="cpu"))  # the documented defaults
    ours, theirs = loss.get_config_dict(), reference.get_config_dict()
    assert {k: v for k, v in ours.items() if k != "guide"} == {k: v for k, v in theirs.items() if k != "guide"}
    tiny_model.eval()
    features = _features(tiny_model, ROWS)
    assert loss(features, None).item() == pytest.approx(reference(features, None).item(), abs=1e-6)
    recorded = describe_row_loss(row, loss, config)
    assert recorded["arguments"]["guide"] == guide_dir and recorded["arguments"]["temperature"] == 0.01
    assert (recorded["loss"], recorded["teacher"]) == ("GISTEmbedLoss", "base")


def test_gist_without_a_guide_is_one_line(tiny_model):
    with pytest.raises(ValueError, match="^loss='gist' needs guide_model"):
        build_loss(TrainConfig(loss="gist"), tiny_model, Dataset.from_dict({"query": ["q"], "code": ["c"]}))


def test_mined_rows_carry_the_sizes_mining_settings_and_in_batch_rows_do_not():
    from hf_softnce.training.main_job import make_plan

    plan = make_plan("full")
    mined = plan.row_values(ROW["InfoNCE + mined negatives"], {})
    assert mined == dict(num_negatives=1, mining_strategy="top", mining_relative_margin=0.05, loss="infonce",
                         weighter="none")
    assert plan.row_values(ROW["InfoNCE"], {}) == dict(loss="infonce", weighter="none")
    assert torch.equal(torch.tensor([row.negatives for row in plan.rows]).any(), torch.tensor(True))


@pytest.mark.parametrize("name, arguments", [
    ("GISTEmbedLoss (guide: base, temperature 0.05) + mined negatives", dict(temperature=0.05)),
    ("GISTEmbedLoss (guide: InfoNCE, temperature 0.05) + mined negatives", dict(temperature=0.05)),
    ("GISTEmbedLoss (guide: InfoNCE, temperature 0.05, relative margin 0.05) + mined negatives",
     dict(temperature=0.05, margin_strategy="relative", margin=0.05)),
])
def test_gists_other_settings_are_sentence_transformers_own_loss_with_those_arguments(tiny_model, name, arguments):
    guide_dir = tiny_model_dir(seed=1)
    values = make_plan("full").row_values(ROW[name], {"InfoNCE": guide_dir})
    values["guide_model"] = guide_dir  # the base teacher is the run's model: the tiny one here
    loss = build_loss(replace(TrainConfig(max_seq_length=64), **values), tiny_model,
                      Dataset.from_dict({"query": ["q"], "code": ["c"]}))
    reference = GISTEmbedLoss(tiny_model, SentenceTransformer(guide_dir, device="cpu"), **arguments)
    ours, theirs = loss.get_config_dict(), reference.get_config_dict()
    assert {k: v for k, v in ours.items() if k != "guide"} == {k: v for k, v in theirs.items() if k != "guide"}
    tiny_model.eval()
    features = _features(tiny_model, ROWS)
    assert loss(features, None).item() == pytest.approx(reference(features, None).item(), abs=1e-6)


def test_each_peers_setting_is_chosen_on_the_held_out_set_with_the_documented_one_on_a_near_tie():
    """Of a peer's rows, the highest cosqa-heldout MRR at the first seed wins; within 0.002 the documented setting
    (listed first) stays; dev-500 never enters."""
    from hf_softnce.training.plan import PEERS
    from hf_softnce.training.report import peer_choices

    def ranks(first: int, dev_first: int = 0) -> dict:  # 1000 queries: MRR = (first + (1000 - first) / 2) / 1000
        return {HELDOUT: {f"q{i}": 1 if i < first else 2 for i in range(1000)},
                "cosqa-dev": {f"d{i}": 1 if i < dev_first else 2 for i in range(10)}}

    gist_base, gist_infonce, mnrl = PEERS.values()
    per_query = {gist_base[0]: [ranks(500)], gist_base[1]: [ranks(503, dev_first=0)],  # +0.0015: a near tie
                 gist_infonce[0]: [ranks(500, dev_first=10)], gist_infonce[1]: [ranks(505)],  # +0.0025
                 gist_infonce[2]: [ranks(520), ranks(0)],  # +0.010 at the first seed
                 mnrl[0]: [ranks(500)]}  # one setting run: no choice
    choices = peer_choices(per_query)
    assert set(choices) == {"GISTEmbedLoss (guide: base)", "GISTEmbedLoss (guide: InfoNCE)"}
    assert choices["GISTEmbedLoss (guide: base)"]["chosen"] == gist_base[0]
    assert choices["GISTEmbedLoss (guide: InfoNCE)"]["chosen"] == gist_infonce[2]
    assert choices["GISTEmbedLoss (guide: InfoNCE)"][f"{HELDOUT} mrr@1000"][gist_infonce[1]] == pytest.approx(0.7525)


def test_the_protocol_line_says_when_the_training_pairs_are_a_seeded_sample():
    from hf_softnce.training.data import TaskData, protocol_statement

    dev = RetrievalSet({"d": "dev query"}, {"0": "def f(): pass"}, {"d": {"0"}}, name="cosqa-dev")
    pairs = Dataset.from_dict({"query": ["q1", "q2"], "code": ["c1", "c2"]})
    whole = protocol_statement(TaskData("cosqa", pairs, None, None, real_report=dev))
    sample = protocol_statement(TaskData("cosqa", pairs, None, None, real_report=dev, train_pool=7520))
    assert "training split (2 real web queries" in whole
    assert "training split (a seeded sample of 2 of its 7,520 real web queries" in sample
    from hf_softnce.training.publish import data_summary  # the card's data section says it too

    card = data_summary(TaskData("cosqa", pairs, None, None, real_report=dev, sources=["cosqa-retrieval-train"],
                                 train_pool=7520))
    assert card.splits == {"train": 2}
    assert card.description.endswith("Trained on a seeded sample of 2 of its 7,520 training pairs (`max_train_pairs`).")
    whole_card = data_summary(TaskData("cosqa", pairs, None, None, real_report=dev, sources=["cosqa-retrieval-train"]))
    assert "seeded sample" not in whole_card.description
    assert whole_card.description == "CoSQA as published."  # no set held out of this one's training split
    held = RetrievalSet({"h1": "a", "h2": "b", "h3": "c"}, {"0": "def f(): pass"},
                        {h: {"0"} for h in ("h1", "h2", "h3")}, name="cosqa-heldout")
    held_card = data_summary(TaskData("cosqa", pairs, None, None, real_select=held, real_report=dev,
                                      sources=["cosqa-retrieval-train"], train_pool=7520))
    assert held_card.description == ("CoSQA's training split as published, less the 3 queries (and their pairs) held "
                                     "out to choose settings on (`cosqa-heldout`: the query ids whose code is in "
                                     "the codebase, sorted, shuffled with `random.Random(2024)`, the first 1,500; "
                                     "`hf_softnce.training.data.hold_out`). Trained on a seeded sample of 2 of its "
                                     "7,520 training pairs (`max_train_pairs`).")
