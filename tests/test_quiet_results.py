"""Quiet, readable results: no duplicated metric keys, tables of the headline numbers, short reprs, ids without
local paths, the corpus report once per build, and the evaluate module's example from any directory."""

from __future__ import annotations

import json

import pytest

from hf_softnce.evaluation.report import CascadeResults, drop_duplicate_keys, markdown_table, split_by_set


def test_duplicated_score_function_keys_are_dropped_and_distinct_ones_kept():
    metrics = {"toy_mrr@1000": 0.5, "toy_cosine_mrr@1000": 0.5, "toy_cosine_map@100": 0.4,
               "toy_dot_mrr@1000": 0.3, "toy_dedup_recall@1": 0.2, "toy_cosine_dedup_recall@1": 0.2}
    assert drop_duplicate_keys(metrics) == {"toy_mrr@1000": 0.5, "toy_cosine_map@100": 0.4, "toy_dot_mrr@1000": 0.3,
                                            "toy_dedup_recall@1": 0.2}
    assert split_by_set({**metrics, "cosqa-dev_recall@10": 0.9}) == {
        "toy": {"mrr@1000": 0.5, "dedup_recall@1": 0.2}, "toy_dot": {"mrr@1000": 0.3}, "cosqa-dev": {"recall@10": 0.9}}


def test_evaluate_cascade_prints_a_table_and_stays_a_dict():
    results = CascadeResults(retriever={"mrr@1000": 0.5, "recall@1": 0.25}, cascade={"mrr@1000": 0.625, "recall@1": 0.5},
                             latency_ms_per_query={"retriever": 1.25, "ranker": 80.0, "cascade": 81.25})
    assert results["cascade"]["mrr@1000"] == 0.625 and json.loads(json.dumps(results)) == dict(results)
    assert str(results) == ("| stage | MRR@1000 | R@1 | ms/query |\n|---|---|---|---|\n"
                            "| retriever | 0.5000 | 0.250 | 1.2 |\n| cascade | 0.6250 | 0.500 | 81.2 |")
    assert markdown_table({"a": {"ndcg@10": 1.0}}) == "| model | NDCG@10 |\n|---|---|\n| a | 1.0000 |"


def test_a_retrieval_set_repr_is_one_short_line():
    from hf_softnce.data import RetrievalSet

    codes = {f"c{i}": "def f():\n    return " + "x" * 200 for i in range(500)}
    retrieval_set = RetrievalSet({f"q{i}": "a query " * 20 for i in range(500)}, codes,
                                 {f"q{i}": {f"c{i}"} for i in range(500)}, groups={c: 1 for c in codes}, name="big")
    assert repr(retrieval_set) == "RetrievalSet('big', 500 queries, 500 codes, 1 duplicate groups)"


def test_conala_ids_name_the_record_not_the_local_file(tmp_path):
    from hf_softnce.data import all_columns, load_conala

    rows = [{"intent": "how to sort a list in python", "rewritten_intent": None, "snippet": "sorted(x)",
             "question_id": 1},
            {"intent": "how to reverse a string in python", "rewritten_intent": "reverse 's'", "snippet": "s[::-1]",
             "question_id": 2}]
    (tmp_path / "conala-train.json").write_text(json.dumps(rows))
    (tmp_path / "conala-test.json").write_text(json.dumps(rows))
    data = load_conala(data_dir=tmp_path, verbose=False)
    assert all_columns(data.train)["id"] == ["conala-curated-train-0", "conala-curated-train-1"]
    assert not any(str(tmp_path) in value for value in data.test.queries | data.test.corpus)
    assert repr(data.test) == "RetrievalSet('conala-curated-test', 2 queries, 2 codes, 2 duplicate groups)"


def test_the_corpus_report_prints_once_per_build(tmp_path, capsys):
    import sysconfig
    from pathlib import Path

    from hf_softnce.data import build_python_corpus

    source = tmp_path / "src"
    source.mkdir()
    (source / "shlex.py").write_text((Path(sysconfig.get_paths()["stdlib"]) / "shlex.py").read_text())
    for _ in range(2):
        build_python_corpus([str(source)], output_dir=tmp_path / "corpus", workers=1)
    err = capsys.readouterr().err
    assert err.count("Corpus report") == 1 and "Reusing the corpus saved at" in err
    build_python_corpus([str(source)], output_dir=tmp_path / "corpus", workers=1, show_report=True)
    assert "Corpus report (from the saved build)" in capsys.readouterr().err  # on request


def test_the_evaluate_module_example_runs_from_any_directory(tmp_path, monkeypatch):
    import doctest
    import importlib.util
    from pathlib import Path

    import evaluate

    from hf_softnce.evaluation import CODE_SEARCH_METRIC_PATH

    script = Path(CODE_SEARCH_METRIC_PATH) / "code_search_metric.py"
    spec = importlib.util.spec_from_file_location("code_search_metric_docs", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.chdir(tmp_path)  # the example must load the module from any directory, not only the repository root
    test = doctest.DocTestParser().get_doctest(module._KWARGS_DESCRIPTION, {"evaluate": evaluate}, "example", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert (runner.failures, runner.tries) == (0, 3)


def _small_set():
    from hf_softnce.data import RetrievalSet

    codes = {f"c{i}": f"def f{i}(x):\n    return x + {i}" for i in range(12)}
    return RetrievalSet({f"q{i}": f"add {i} to x" for i in range(12)}, codes, {f"q{i}": {f"c{i}"} for i in range(12)},
                        name="small")


def test_evaluate_cascade_shows_its_bars_and_the_switch_hides_them(capsys):
    from sentence_transformers.cross_encoder import CrossEncoder

    from conftest import build_tiny_model, tiny_model_dir
    from hf_softnce.evaluation import evaluate_cascade
    from hf_softnce.retrieval import RetrieverRanker

    cascade = RetrieverRanker(build_tiny_model(), CrossEncoder(tiny_model_dir(seed=1), num_labels=1, device="cpu"),
                              top_k=5, cache=False)
    capsys.readouterr()
    evaluate_cascade(cascade, _small_set())
    shown = capsys.readouterr().err
    bars = [line for line in shown.split("\n") if "Batches" in line]  # a bar's redraws share its line
    assert len(bars) == 3  # the codebase, the queries, the ranker's re-scoring
    evaluate_cascade(cascade, _small_set(), show_progress_bar=False)
    assert "Batches" not in capsys.readouterr().err


def test_end_of_run_evaluation_says_what_it_ranks(capsys):
    from conftest import build_tiny_model
    from hf_softnce.evaluation import evaluate_retrieval_sets

    model = build_tiny_model()
    capsys.readouterr()
    evaluate_retrieval_sets(model, {"small": _small_set()})
    err = capsys.readouterr().err
    assert "Evaluating on small: 12 queries against the whole codebase (12 codes)" in err and "Batches" in err
    evaluate_retrieval_sets(model, {"small": _small_set()}, show_progress_bar=False)
    assert capsys.readouterr().err == ""


def test_label_refinement_shows_progress(capsys):
    from datasets import Dataset

    from hf_softnce.mining import label_order

    rows = Dataset.from_dict({"query": ["add one", "add two"], "code": ["x + 1", "x + 2"],
                              "negative_1": ["x + 2", "x + 1"]})
    label_order(rows, "bm25", refine=["near_duplicate"])
    assert "Finding near-duplicates" in capsys.readouterr().err
    label_order(rows, "bm25", refine=["near_duplicate"], show_progress_bar=False)
    assert "Finding near-duplicates" not in capsys.readouterr().err


def test_with_stderr_not_a_terminal_every_bar_shows_once_nested_encode_bars_included(tmp_path, capsys):
    """sentence-transformers' "Batches" bar runs inside its evaluator's "Corpus Chunks" bar; a nested bar is redrawn
    one line lower with a cursor-up escape, which a log keeps on every update."""
    from conftest import tiny_model_dir

    from hf_softnce.cli import main

    rows = [{"query": f"how to do thing {i} with a list", "code": f"def f{i}(x): return x * {i}"} for i in range(100)]
    (tmp_path / "pairs.json").write_text(json.dumps(rows))
    assert main(["evaluate", tiny_model_dir(), "--data", str(tmp_path / "pairs.json")]) == 0
    err = capsys.readouterr().err
    assert "\x1b[A" not in err and "Batches" in err and "Corpus Chunks" in err
    bars = [line for line in err.splitlines() if "%|" in line]
    assert bars and all("100%|" in line for line in bars), "\n".join(bars)  # each bar once, in its final state
