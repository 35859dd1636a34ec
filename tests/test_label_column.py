"""A label column is checked once, before training: NaN/inf/missing scores and ragged rows are one line naming the
row of the data (the losses' per-batch checks stay, but come after the set-up and name rows of a batch)."""

from __future__ import annotations

import math

import pytest
from datasets import Dataset

from hf_softnce.data.schema import check_label_column
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import TaskData


def _pairs(labels):
    n = len(labels)
    return Dataset.from_dict({"query": [f"q{i}" for i in range(n)], "code": [f"c{i}" for i in range(n)],
                              "negative_1": [f"n{i}" for i in range(n)], "label": labels})


@pytest.mark.parametrize(
    "labels, message",
    [
        ([[1.0, 0.2], [1.0, 0.3], [1.0, math.nan]],
         "Training data: column 'label' has a NaN, infinite or missing score in row 2: [1.0, nan]."),
        ([[1.0, 0.2], [1.0, math.inf], [1.0, 0.1]],
         "Training data: column 'label' has a NaN, infinite or missing score in row 1: [1.0, inf]."),
        ([[1.0, 0.2], [1.0, 0.3, 0.1], [1.0, 0.1]],
         "Training data: column 'label' is ragged: row 0 holds a list of 2 score(s) but row 1 holds a list of 3 "
         "score(s); give every row one score per candidate column (code, then negative_*)."),
    ],
)
def test_bad_label_columns_are_one_line_naming_the_row(labels, message):
    with pytest.raises(ValueError) as error:
        check_label_column(_pairs(labels))
    assert str(error.value) == message


def test_good_label_columns_and_none_pass():
    check_label_column(_pairs([[1.0, 0.2], [1.0, 0.0], [0.5, -1.0]]))
    check_label_column(_pairs([1.0, 0.5, 0.0]))
    check_label_column(Dataset.from_dict({"query": ["q"], "code": ["c"]}))


def test_train_retriever_checks_labels_before_loading_the_model(tmp_path, monkeypatch):
    import hf_softnce.training.run as run

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the labels were checked")

    monkeypatch.setattr(run, "load_model", refuse)
    data = TaskData(name="pairs", train=_pairs([[1.0, 0.2], [1.0, math.nan]]), valid=None, test=None)
    config = TrainConfig(output_dir=str(tmp_path / "run"), evaluate_base=False)
    with pytest.raises(ValueError, match=r"column 'label' has a NaN, infinite or missing score in row 1"):
        run.train_retriever(config, data, progress=False)
