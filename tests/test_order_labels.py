"""Order labels: teacher scores re-computed directly, and OASIS refinement on hand-made cases."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk

from conftest import tiny_model_dir
from hf_softnce.losses.order_infonce import OrderInfoNCELoss
from hf_softnce.cli.label_order import register
from hf_softnce.mining.order_labels import _gmm_threshold, OrderLabelReport, label_order, refine_order_labels
from hf_softnce.weighting import BM25Weighter
from loss_helpers import CODES, NEGATIVES, QUERIES, features

POSITIVE = "def count_lines(path):\n    with open(path) as f:\n        return sum(1 for _ in f)"
# The positive with a renamed variable, a comment and a docstring: the same tokens but one name.
NEAR_DUPLICATE = (
    'def count_lines(path):\n    """Count lines."""\n    # one pass over the file\n'
    "    with open(path) as handle:\n        return sum(1 for _ in handle)"
)


def small_dataset() -> Dataset:
    negatives_2 = [*NEGATIVES[1:], NEGATIVES[0]]
    return Dataset.from_dict(
        {
            "query": QUERIES,
            "code": CODES,
            "negative_1": NEGATIVES,
            "negative_2": negatives_2,
            "dup_group": list(range(len(QUERIES))),
        }
    )


def test_bi_encoder_teacher_scores_are_cosines(tiny_model):
    data = small_dataset()
    labelled, report = label_order(data, tiny_model, refine=False, cache=False, show_progress_bar=False)
    assert labelled.column_names == ["query", "code", "negative_1", "negative_2", "label", "dup_group"]
    queries = tiny_model.encode(QUERIES, convert_to_tensor=True, normalize_embeddings=True)
    for column in (0, 1, 2):
        texts = data[["code", "negative_1", "negative_2"][column]]
        codes = tiny_model.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
        expected = (queries * codes).sum(dim=1)
        got = torch.tensor([row[column] for row in labelled["label"]], dtype=torch.float64)
        torch.testing.assert_close(got, expected.double(), atol=1e-5, rtol=0)
    assert report.flagged == 0 and report.refine == () and "No refinement" in report.summary()


def test_cross_encoder_teacher_scores_are_predictions():
    from sentence_transformers.cross_encoder import CrossEncoder

    torch.manual_seed(0)
    ranker = CrossEncoder(tiny_model_dir(), num_labels=1, device="cpu")
    data = small_dataset()
    labelled, _ = label_order(data, ranker, refine=False, show_progress_bar=False)
    pairs = [[q, c] for q, c in zip(QUERIES, data["negative_2"])]
    expected = ranker.predict(pairs, show_progress_bar=False)
    got = np.array([row[2] for row in labelled["label"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bm25_teacher_matches_the_weighters_scores():
    data = small_dataset()
    labelled, report = label_order(data, "bm25", refine=False)
    weighter = BM25Weighter().fit(data)
    dense = (weighter._query_terms @ weighter._code_documents).toarray()
    for row, label in enumerate(labelled["label"]):
        q = weighter.queries.index(QUERIES[row])
        expected = [dense[q, weighter.codes.index(data[name][row])] for name in ("code", "negative_1", "negative_2")]
        assert label == pytest.approx(expected, rel=1e-5)
    assert report.teacher == "BM25Weighter"


def planted_dataset() -> Dataset:
    """Row 0's negative_1 is a near-duplicate of its positive; row 1's negative_2 scores as high as its positive;
    negative scores fall in two clusters (about 0.2 and about 0.8, the latter in rows 2-5)."""
    rng = np.random.default_rng(0)
    rows = 40
    queries = [f"query number {i}" for i in range(rows)]
    codes = [POSITIVE] + [f"def f{i}(x):\n    return x * {i} + {i % 7}" for i in range(1, rows)]
    negative_1 = [NEAR_DUPLICATE] + [f"def g{i}(items):\n    return sorted(items)[:{i}]" for i in range(1, rows)]
    negative_2 = [f"def h{i}(text):\n    return text.split()[{i}]" for i in range(rows)]
    labels = np.column_stack([np.full(rows, 1.0), rng.normal(0.2, 0.02, rows), rng.normal(0.2, 0.02, rows)])
    labels[2:6, 2] = rng.normal(0.8, 0.02, 4)  # the high cluster
    labels[1, 2] = 1.0  # ties with the positive
    return Dataset.from_dict(
        {"query": queries, "code": codes, "negative_1": negative_1, "negative_2": negative_2, "label": labels.tolist()}
    )


def test_gmm_threshold_separates_two_planted_clusters():
    rng = np.random.default_rng(1)
    low, high = rng.normal(0.2, 0.03, 200), rng.normal(0.7, 0.05, 30)
    report = OrderLabelReport(rows=0, negatives=0, teacher="", action="raise")
    threshold = _gmm_threshold(np.concatenate([low, high]), 0.5, 0, report)
    assert low.max() < threshold <= high.min()
    assert report.gmm_threshold == threshold and report.gmm_means[0] < 0.25 < 0.65 < report.gmm_means[1]
    # Too little to fit a mixture: a counted note, not a silent default.
    report = OrderLabelReport(rows=0, negatives=0, teacher="", action="raise")
    assert _gmm_threshold(np.full(10, 0.3), 0.5, 0, report) is None and "distinct" in report.gmm_note


def test_refinement_flags_the_planted_negatives_and_raises_them():
    data = planted_dataset()
    before = np.array(data["label"])
    refined, report = refine_order_labels(data, action="raise", raise_by=0.25)
    after = np.array(refined["label"])
    assert report.flagged_by_reason == {"above_positive": 1, "gmm": 5, "near_duplicate": 1}
    expected = np.zeros_like(before, dtype=bool)
    expected[0, 1] = True  # near-duplicate of the positive
    expected[1, 2] = True  # at the positive's score (and in the high cluster)
    expected[2:6, 2] = True  # the high cluster
    assert report.flagged == expected.sum() == 6 and report.raised == 6
    np.testing.assert_allclose(after - before, 0.25 * expected)
    assert report.gmm_threshold is not None and before[6:, 1:].max() < report.gmm_threshold <= before[2:6, 2].min()
    assert refined["negative_1"] == data["negative_1"]  # raising keeps the texts
    assert (0, "negative_1", ("near_duplicate",)) in report.examples
    summary = report.summary()
    assert "Flagged 6 negatives" in summary and "raised 6" in summary


def test_refinement_flags_can_be_chosen():
    _, report = refine_order_labels(planted_dataset(), refine=["near_duplicate"])
    assert report.flagged == 1 and report.flagged_by_reason["gmm"] == 0
    _, report = refine_order_labels(planted_dataset(), refine="above_positive")
    assert report.flagged == 1 and report.flagged_by_reason["above_positive"] == 1


def test_drop_replaces_the_negative_by_the_positive_which_the_loss_removes(tiny_model):
    data = planted_dataset()
    refined, report = refine_order_labels(data, refine=["near_duplicate", "above_positive"], action="drop")
    assert report.dropped == 2 and report.raised == 0 and report.rows_without_kept_negatives == 0
    assert refined["negative_1"][0] == data["code"][0] and refined["negative_2"][1] == data["code"][1]
    labels = np.array(refined["label"])
    assert labels[0, 1] == labels[0, 0] and labels[1, 2] == labels[1, 0]
    assert refined["negative_2"][0] == data["negative_2"][0]  # unflagged negatives are untouched
    # In the loss, a dropped negative takes part in neither term of its row.
    rows = refined.select(range(4))
    feats = features(tiny_model, rows["query"], rows["code"], rows["negative_1"], rows["negative_2"])
    loss = OrderInfoNCELoss(tiny_model)
    with torch.no_grad():
        embeddings = [tiny_model(f)["sentence_embedding"] for f in feats]
        _, batch = loss.candidate_batch(embeddings, loss.column_hashes(feats), torch.tensor(rows["label"]))
        _, participating = loss.order_labels(batch)
    own = batch.own_column_indices()
    assert not batch.negative_mask[0, own[0, 1]] and not participating[0, own[0, 1]]
    assert not batch.negative_mask[1, own[1, 2]] and not participating[1, own[1, 2]]
    assert participating[0, own[0, 2]] and participating[2, own[2, 1]]


def test_judge_decides_and_is_counted():
    data = planted_dataset()
    calls = []

    def judge(query, positive, negative):
        calls.append((query, positive, negative))
        if negative == NEAR_DUPLICATE:
            return True  # a false negative: raised
        if query == "query number 1":
            return 0.5  # rescored
        return False  # a true negative: kept

    before = np.array(data["label"])
    refined, report = refine_order_labels(data, action="judge", judge=judge, raise_by=0.1)
    after = np.array(refined["label"])
    assert len(calls) == report.judged == report.flagged == 6
    assert ("query number 0", POSITIVE, NEAR_DUPLICATE) in calls
    assert report.judged_relevant == 1 and report.judged_rescored == 1 and report.judged_not_relevant == 4
    assert after[0, 1] == pytest.approx(before[0, 1] + 0.1) and after[1, 2] == 0.5
    assert np.array_equal(after[2:6], before[2:6])
    with pytest.raises(TypeError, match="must return a bool"):
        refine_order_labels(data, action="judge", judge=lambda q, p, n: "yes")


def test_bad_inputs_raise_clear_errors():
    data = planted_dataset()
    with pytest.raises(ValueError, match="needs a judge"):
        refine_order_labels(data, action="judge")
    with pytest.raises(ValueError, match="pass action='judge'"):
        refine_order_labels(data, judge=lambda q, p, n: True)
    with pytest.raises(ValueError, match="Unknown refinement"):
        refine_order_labels(data, refine=["bm25"])
    for threshold in (float("nan"), 0.0, 5.0):  # NaN would flag no near-duplicate, silently
        with pytest.raises(ValueError, match=rf"^near_duplicate_threshold must lie in \(0, 1\], got {threshold}\.$"):
            refine_order_labels(data, near_duplicate_threshold=threshold)
    with pytest.raises(ValueError, match="3 scores per row"):
        refine_order_labels(data.remove_columns("label").add_column("label", [[0.1, 0.2]] * len(data)))
    nan_labels = [list(row) for row in data["label"]]
    nan_labels[3][1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite scores in rows \[3\]"):
        refine_order_labels(data.remove_columns("label").add_column("label", nan_labels))
    with pytest.raises(ValueError, match="lacks column"):
        label_order(data.remove_columns("code"), "bm25")
    with pytest.raises(ValueError, match="pass 'bm25'"):
        label_order(data, "tfidf")


def test_label_order_command(tmp_path):
    small_dataset().save_to_disk(str(tmp_path / "data"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["label-order", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--teacher", "bm25",
         "--refine", "above_positive,near_duplicate", "--action", "drop"]
    )
    assert args.func(args) == 0
    labelled = load_from_disk(str(tmp_path / "out"))
    assert len(labelled["label"][0]) == 3 and "dup_group" in labelled.column_names


def test_labels_train_order_infonce_in_the_trainer_and_reach_the_model_card(tiny_model, tmp_path):
    """label_order's output goes straight into SentenceTransformerTrainer; the loss is cited in the card."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from hf_softnce.data import to_training_dataset

    labelled, _ = label_order(small_dataset(), "bm25")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=3, max_steps=2, use_cpu=True,
        report_to="none", save_strategy="no", logging_steps=1, learning_rate=1e-3,
    )
    loss = OrderInfoNCELoss(tiny_model, order_weight=0.5)
    trainer = SentenceTransformerTrainer(
        model=tiny_model, args=args, train_dataset=to_training_dataset(labelled), loss=loss
    )
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(np.isfinite(losses))
    tiny_model.save(str(tmp_path / "model"))
    card = (tmp_path / "model" / "README.md").read_text()
    assert "OrderInfoNCELoss" in card and "Order-Augmented Strategy for Improved Code Search" in card
