"""Training data that looks like real search: docstrings put back into code, search-style queries, CoNaLa."""

from __future__ import annotations

import ast
import json
import random

import pytest
from datasets import Dataset

from conftest import SHARED_DATA
from hf_softnce.data import all_columns, load_conala, repository_style, search_style_query
from hf_softnce.data.augment import code_with_docstring, docstring_rest

CODE = "def is_readonly(path,\n                mode=0):\n    st = os.stat(path)\n    return not st.st_mode & 0o200"


def test_code_with_docstring_puts_the_docstring_back_as_the_first_statement():
    documented = code_with_docstring(CODE, 'Return True if the file is read-only.\n\nUses "stat".')
    assert documented == (
        "def is_readonly(path,\n                mode=0):\n"
        '    """Return True if the file is read-only.\n\n    Uses "stat"."""\n'
        "    st = os.stat(path)\n    return not st.st_mode & 0o200"
    )
    assert ast.get_docstring(ast.parse(documented).body[0]) == 'Return True if the file is read-only.\n\nUses "stat".'
    # Triple quotes inside the text are escaped so the function still parses; empty docstrings change nothing.
    assert ast.parse(code_with_docstring(CODE, 'a """quoted""" word'))
    assert code_with_docstring(CODE, "  ") == CODE
    assert code_with_docstring("def f(): return 1", "Doc.") == "def f(): return 1"  # body on the def line


def test_docstring_rest_drops_the_paragraph_the_query_came_from():
    assert docstring_rest("First line.\n\nSecond para\nmore.\n\nThird.") == "Second para\nmore.\n\nThird."
    assert docstring_rest("Only one paragraph.") == ""


@pytest.mark.parametrize(
    ("docstring", "query"),
    [
        ("Return True if the file is read-only.", "check if file is read-only"),
        ("Returns the :func:`os.path.join` of the given ``parts``. More text.", "get os.path.join parts"),
        ("Compute the mean of a list of numbers!", "calculate mean list numbers"),
        ("Convert a\n    datetime string\n\nto a date.", "convert datetime string"),
    ],
)
def test_search_style_query_without_randomness(docstring, query):
    assert search_style_query(docstring) == query


def test_search_style_query_augmentation_is_seeded_and_adds_the_language_name_at_an_edge():
    outputs = {search_style_query("Return the list of distinct values.", random.Random(seed)) for seed in range(40)}
    assert "get list distinct values" in outputs
    assert any(o.startswith("python ") for o in outputs) and any(o.endswith(" python") for o in outputs)
    assert search_style_query("Return the list of distinct values.", random.Random(3)) == search_style_query(
        "Return the list of distinct values.", random.Random(3))


def test_repository_style_applies_each_rewrite_at_its_rate_deterministically():
    rows = Dataset.from_dict({
        "query": [f"Return the value number {i}." for i in range(200)],
        "code": [CODE] * 200,
        "docstring": [f"Return the value number {i}.\n\nDetails {i}." for i in range(200)],
    })
    out = repository_style(rows, docstring_rate=0.25, query_style_rate=0.5, seed=7)
    documented = [c != CODE for c in out["code"]]
    styled = [q != rows[i]["query"] for i, q in enumerate(out["query"])]
    # Each row draws from its own seeded generator: the same rows change on every call.
    again = repository_style(rows, docstring_rate=0.25, query_style_rate=0.5, seed=7)
    assert out["code"] == again["code"] and out["query"] == again["query"]
    assert 0.15 < sum(documented) / 200 < 0.35 and 0.38 < sum(styled) / 200 < 0.62
    i = documented.index(True)
    assert f'"""Details {i}."""' in out[i]["code"]  # "rest": the query's paragraph is not in the code
    assert repository_style(rows) is rows
    with pytest.raises(ValueError, match="docstring_rate=0.5 needs a 'docstring' column"):
        repository_style(rows.remove_columns("docstring"), docstring_rate=0.5)
    with pytest.raises(ValueError, match="query_style_rate must be in"):
        repository_style(rows, query_style_rate=1.5)


@pytest.fixture
def conala_dir(tmp_path):
    records = [
        {"intent": "How to sum a list?", "rewritten_intent": "sum list `x`", "snippet": "sum(x)", "question_id": 10},
        {"intent": "How to sum a list?", "rewritten_intent": None, "snippet": "functools.reduce(add, x)", "question_id": 10},
        {"intent": "strip a string", "rewritten_intent": "strip `s`", "snippet": "s.strip()", "question_id": 20},
        {"intent": "remove whitespace", "rewritten_intent": None, "snippet": "s.strip()", "question_id": 30},
        {"intent": "reverse a list", "rewritten_intent": None, "snippet": "x[::-1]", "question_id": 40},
    ]
    (tmp_path / "conala-train.json").write_text(json.dumps(records))
    (tmp_path / "conala-test.json").write_text(json.dumps(records[:2] + records[4:]))
    return tmp_path


def test_load_conala_groups_answers_of_one_question_and_identical_snippets(conala_dir):
    data = load_conala(data_dir=conala_dir, verbose=False)
    train = all_columns(data.train)
    assert train["query"][0] == "How to sum a list?" and train["code"][0] == "sum(x)"
    # Question 10's two answers share a group; questions 20 and 30 share the snippet s.strip(), so one group.
    assert train["dup_group"] == [10, 10, 20, 20, 40]
    assert data.test.relevant[f"{data.test.name}-q10"] == {
        cid for cid, code in data.test.corpus.items() if code in ("sum(x)", "functools.reduce(add, x)")}
    rewritten = load_conala(data_dir=conala_dir, query_field="rewritten_intent", verbose=False).train
    assert rewritten["query"][:2] == ["sum list `x`", "How to sum a list?"]  # no rewrite: the intent


def test_load_conala_bad_records_name_their_location(conala_dir):
    records = json.loads((conala_dir / "conala-train.json").read_text())
    records[2]["snippet"] = 5
    (conala_dir / "conala-train.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"conala-train.json record 2: field .snippet. is not a string"):
        load_conala(data_dir=conala_dir, verbose=False)
    data = load_conala(data_dir=conala_dir, errors="skip", verbose=False)
    assert len(data.train) == 4 and data.report.total_skipped == 1


def test_load_conala_falls_back_to_the_shared_copy_when_the_hub_is_unreachable(monkeypatch):
    conala = SHARED_DATA / "conala"
    if not (conala / "conala-train.json").exists():
        pytest.skip("no shared CoNaLa copy")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = load_conala(verbose=False)
    published = json.loads((conala / "conala-train.json").read_text())
    assert len(data.train) == sum(1 for r in published if r["intent"] and r["snippet"].strip())
    assert data.train[0]["query"] == " ".join(published[0]["intent"].split())


def test_task_data_mixes_conala_at_the_asked_share_with_groups_kept_apart(monkeypatch, conala_dir, small_corpus):
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.data import load_task_data

    monkeypatch.setenv("HF_SOFTNCE_DATA_DIR", str(conala_dir.parent))
    (conala_dir.parent / "conala").mkdir(exist_ok=True)
    for name in ("conala-train.json", "conala-test.json"):
        (conala_dir.parent / "conala" / name).write_text((conala_dir / name).read_text())
    config = TrainConfig.from_dict(dict(data=str(small_corpus), max_train_pairs=15, conala_mix=0.25, cosqa_dir=None))
    data = load_task_data(config, progress=False)
    from_conala = [code for code in data.train["code"] if code in ("sum(x)", "functools.reduce(add, x)", "s.strip()", "x[::-1]")]
    assert len(data.train) == 20 and len(from_conala) == 5  # 15 own pairs + 5 = 25% CoNaLa
    groups = dict(zip(data.train["code"], all_columns(data.train)["dup_group"]))
    assert groups["sum(x)"] == groups["functools.reduce(add, x)"] == 2 * 10 + 1  # odd: CoNaLa; even: the corpus
    assert all(g % 2 == 0 for c, g in groups.items() if c not in from_conala)
    alone = load_task_data(TrainConfig.from_dict(dict(data=str(small_corpus), conala_mix=1.0, cosqa_dir=None)), progress=False)
    assert sorted(alone.train["code"]) == sorted(["sum(x)", "functools.reduce(add, x)", "s.strip()", "s.strip()", "x[::-1]"])


def test_task_data_without_conala_trains_on_its_own_pairs_and_says_what_it_left_out(monkeypatch, small_corpus):
    import hf_softnce.data.conala as conala_module
    from hf_softnce.training.config import TrainConfig
    from hf_softnce.training.data import load_task_data

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(conala_module, "_shared_conala_dir", lambda: None)
    config = TrainConfig.from_dict(dict(data=str(small_corpus), max_train_pairs=12, conala_mix=0.5, cosqa_dir=None))
    data = load_task_data(config, progress=False)
    assert len(data.train) == 12
    assert len(data.left_out) == 1 and data.left_out[0].startswith("CoNaLa (curated): neither on the Hub nor in a local copy")
