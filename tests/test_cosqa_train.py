"""CoSQA's retrieval training split (the published protocol): label-1 pairs, codebase duplicate groups shared with
the evaluation sets, evaluation-leak filtering by idx and text, and CoIR's Hub layout mapped to the same shapes."""

from __future__ import annotations

from hf_softnce.data import all_columns

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from hf_softnce.data import SkipReport, load_cosqa
from hf_softnce.data.cosqa_coir import coir_to_coclr

FIXTURE = Path(__file__).parent / "fixtures" / "cosqa"
LEAK = "CoSQA training query is a dev/test query (evaluation leak)"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cosqa"
    shutil.copytree(FIXTURE, folder)
    return folder


def test_qa_file_rows_holding_dev_queries_are_dropped_counted_and_warned(tmp_path):
    folder = _folder(tmp_path)
    qa = json.loads((folder / "cosqa-train.json").read_text())
    qa += [
        # the dev query cosqa-train-1 under its own idx, and the dev query cosqa-train-2 under another idx,
        # re-cased and re-spaced: both are the evaluation's queries
        {"idx": "cosqa-train-1", "doc": "anything", "code": "def f():\n    pass", "label": 1},
        {"idx": "cosqa-qa-77", "doc": "Python  get size of FILE in bytes", "code": "def g():\n    pass", "label": 1},
    ]
    (folder / "cosqa-train.json").write_text(json.dumps(qa))
    report = SkipReport()
    with pytest.warns(UserWarning, match=r"^CoSQA: dropped 2 training rows of cosqa-train\.json whose query is a "
                                         r"dev/test query"):
        data = load_cosqa(data_dir=folder, report=report, verbose=False)
    assert all_columns(data.train)["query"] == ["python flatten list of lists", "python string to integer"]
    assert report.filtered[LEAK] == 2


def test_retrieval_train_file_is_preferred_to_the_qa_file(tmp_path):
    folder = _folder(tmp_path)
    rows = [{"idx": "cosqa-train-10", "doc": "python reverse a list", "code": "def rev(x):\n    return x[::-1]",
             "label": "1", "retrieval_idx": "9"},
            {"idx": "cosqa-train-11", "doc": "python flatten nested list",
             "code": "def flatten(lists):\n    return [x for l in lists for x in l]", "label": "1", "retrieval_idx": "2"}]
    (folder / "cosqa-retrieval-train-19604.json").write_text(json.dumps(rows))
    data = load_cosqa(data_dir=folder, verbose=False)
    assert all_columns(data.train)["id"] == ["cosqa-train-10", "cosqa-train-11"]
    # the flatten code is codebase entry "2": the pair carries that entry's duplicate group; rev() is not in the
    # codebase and gets a group of its own past the codebase's
    assert all_columns(data.train)["dup_group"][1] == data.valid.groups["2"]
    assert all_columns(data.train)["dup_group"][0] not in set(data.valid.groups.values())
    qa = load_cosqa(data_dir=folder, train_file="cosqa-train.json", splits=("train",), verbose=False)
    assert all_columns(qa.train)["id"] == ["cosqa-train-3", "cosqa-train-4"]


def test_real_retrieval_train_split(cosqa_dir):
    report = SkipReport()
    data = load_cosqa(data_dir=cosqa_dir, report=report, verbose=False)
    raw = json.loads((cosqa_dir / "cosqa-retrieval-train-19604.json").read_text())
    positives = [r for r in raw if str(r["label"]) == "1"]
    assert len(data.train) == len(positives) == 9020
    assert report.filtered == {"CoSQA pair labelled 0 (code does not answer the query)": 19604 - 9020}
    assert LEAK not in report.filtered  # the retrieval split was built without the dev/test queries
    # Every training code is a codebase entry, and its pair carries that entry's group.
    cid_of = {code: str(i) for code, i in json.loads((cosqa_dir / "code_idx_map.txt").read_text()).items()}
    assert all(all_columns(data.train)["dup_group"][i] == data.valid.groups[cid_of[r["code"]]] for i, r in enumerate(positives))
    # Codes repeat across queries: 4,187 distinct codes answer 9,020 queries.
    assert len(set(all_columns(data.train)["code"])) == 4187
    by_code = Counter(all_columns(data.train)["code"])
    assert sum(1 for n in by_code.values() if n > 1) == 2062


def test_coir_layout_maps_to_the_coclr_shapes(tmp_path, monkeypatch):
    queries = Dataset.from_dict({"_id": ["q1", "q2", "q3"], "text": ["python sort a list", "python read file",
                                                                     "python sort list"]})
    # CoIR keeps one corpus entry per query: c1 and c3 are the same code
    corpus = Dataset.from_dict({"_id": ["c1", "c2", "c3"],
                                "text": ["def s(x):\n    return sorted(x)", "def r(p):\n    return open(p).read()",
                                         "def s(x):\n    return sorted(x)"]})
    qrels = {"train": Dataset.from_dict({"query-id": ["q1", "q2"], "corpus-id": ["c1", "c2"], "score": [1, 0]}),
             "valid": Dataset.from_dict({"query-id": ["q3"], "corpus-id": ["c3"], "score": [1]})}
    code_idx_map, files = coir_to_coclr(queries, corpus, qrels)
    assert code_idx_map == {"def s(x):\n    return sorted(x)": 0, "def r(p):\n    return open(p).read()": 1}
    assert files["cosqa-retrieval-dev-500.json"] == [
        {"idx": "q3", "doc": "python sort list", "code": "def s(x):\n    return sorted(x)", "retrieval_idx": 0, "label": 1}]

    import datasets

    hub = {"CoIR-Retrieval/cosqa-queries-corpus": DatasetDict(queries=queries, corpus=corpus),
           "CoIR-Retrieval/cosqa-qrels": DatasetDict(qrels)}
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, revision=None: hub[repo])
    monkeypatch.setattr("hf_softnce.data.loaders._default_dir", lambda name: tmp_path / name)
    data = load_cosqa(hub_id="CoIR-Retrieval/cosqa", verbose=False)
    assert all_columns(data.train)["query"] == ["python sort a list"]  # q2 is labelled 0
    assert data.valid.queries == {"q3": "python sort list"} and data.valid.relevant == {"q3": {"0"}}
    assert len(data.valid.corpus) == 2
