"""Columns read the way sentence-transformers reads them: by position with any names, label/scores, identity by name."""

from __future__ import annotations

import pytest
from datasets import Dataset, DatasetDict

from hf_softnce.data import resolve_columns, standardize_columns, to_training_dataset, training_columns


def st_shaped(n: int = 4) -> Dataset:
    return Dataset.from_dict(
        {
            "id": [f"r{i}" for i in range(n)],
            "anchor": [f"sort list {i}" for i in range(n)],
            "positive": [f"def sort_{i}(x): return sorted(x)" for i in range(n)],
            "dup_group": [i // 2 for i in range(n)],
            "negative": [f"def save_{i}(x): pass" for i in range(n)],
            "negative_2": [f"def load_{i}(x): pass" for i in range(n)],
            "scores": [[1.0, 0.5, 0.2]] * n,
        }
    )


def test_sentence_transformers_shaped_data_is_taken_by_position():
    data = st_shaped()
    columns = resolve_columns(data.column_names)
    assert (columns.query, columns.code, columns.negatives) == ("anchor", "positive", ("negative", "negative_2"))
    assert (columns.label, columns.identity) == ("scores", ("id", "dup_group"))
    trained = to_training_dataset(data)
    assert trained.column_names == ["anchor", "positive", "negative", "negative_2", "scores"]
    standard = standardize_columns(data)
    assert standard.column_names == ["id", "query", "code", "dup_group", "negative_1", "negative_2", "label"]
    assert standard["negative_1"] == data["negative"] and standard["label"] == data["scores"]


def test_hf_softnce_names_keep_their_meaning_and_order():
    names = ["negative_10", "code", "label", "negative_2", "query", "path", "negative_1"]
    assert training_columns(names) == ["query", "code", "negative_1", "negative_2", "negative_10", "label"]
    # One text column left once identity and scores are set aside: the error names what was found.
    with pytest.raises(
        ValueError,
        match=r"^Training data lacks the column\(s\) \['query', 'code'\]: it needs two text columns \(query, then code; "
        r"any names, taken by position\) but has \['id', 'anchor', 'label'\], of which \['id'\] are identity columns "
        r"and 'label' the scores\.$",
    ):
        training_columns(["id", "anchor", "label"])
    with pytest.raises(ValueError, match=r"several score columns \['label', 'scores'\]"):
        training_columns(["a", "b", "label", "scores"])


def test_saved_dataset_with_any_column_names_trains(tmp_path):
    """load_task_data renames once, so run.py's duplicate groups and the weighters see query/code."""
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.data import load_task_data

    path = tmp_path / "pairs"
    DatasetDict({"train": st_shaped(6), "valid": st_shaped(4).select_columns(["id", "anchor", "positive"])}).save_to_disk(
        str(path)
    )
    data = load_task_data(TrainConfig(data=str(path), cosqa_dir=None), progress=False)
    assert data.train.column_names == ["id", "query", "code", "dup_group", "negative_1", "negative_2", "label"]
    assert data.valid.queries == {f"r{i}": f"sort list {i}" for i in range(4)}


def test_weighter_fit_and_duplicate_groups_take_sentence_transformers_column_names(tiny_model):
    from datasets import Dataset

    from hf_softnce.losses import SoftInfoNCELoss
    from hf_softnce.weighting import BM25Weighter

    ours = Dataset.from_dict({"query": ["read a file", "sort a list"], "code": ["open(p).read()", "sorted(x)"],
                              "negative_1": ["x.sort()", "open(p)"], "dup_group": [1, 2]})
    theirs = ours.rename_columns({"query": "anchor", "code": "positive", "negative_1": "negative"})
    a, b = BM25Weighter().fit(ours), BM25Weighter().fit(theirs)
    assert (a.queries, a.codes) == (b.queries, b.codes) == (["read a file", "sort a list"],
                                                            ["open(p).read()", "sorted(x)", "x.sort()", "open(p)"])
    loss_ours = SoftInfoNCELoss(tiny_model, duplicate_groups=ours)
    loss_theirs = SoftInfoNCELoss(tiny_model, duplicate_groups=theirs)
    # The same codes hashed into the same groups, whichever names the columns have.
    assert loss_ours.num_duplicate_groups == loss_theirs.num_duplicate_groups == 2
    assert loss_ours._group_index.sorted_hashes.tolist() == loss_theirs._group_index.sorted_hashes.tolist()
    assert loss_ours._group_index.sorted_rows.tolist() == loss_theirs._group_index.sorted_rows.tolist()
