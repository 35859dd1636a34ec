"""Code-search metrics, the `evaluate` module, CodeSearchEvaluator and the `evaluate` subcommand."""

from __future__ import annotations

import argparse
import csv
import json
import math

import pytest
import torch
from conftest import build_tiny_model
from datasets import Dataset, DatasetDict
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

from hf_softnce.data.schema import RetrievalSet
from hf_softnce.evaluation import (
    CODE_SEARCH_METRIC_PATH,
    CodeSearchEvaluator,
    code_search_metrics,
    load_code_search_metric,
)
from hf_softnce.cli.evaluate import cosqa_sets, data_set, register

# Three hand-made rankings. Expected values computed by hand below.
RANKINGS = [["c3", "c1", "c2"], ["c1", "c2", "c3", "c4"], ["c5", "c6"]]
RELEVANT = [{"c1"}, {"c2", "c4"}, {"c9"}]
DISCOUNT_2, DISCOUNT_4 = 1 / math.log2(3), 1 / math.log2(5)  # gains at ranks 2 and 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The CI box is shared: one intra-op thread avoids oversubscribed, spinning BLAS threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------- metrics.py


def test_metrics_on_hand_made_rankings():
    metrics = code_search_metrics(RANKINGS, RELEVANT, mrr_at_k=[1, 1000], recall_at_k=[1, 2, 5], ndcg_at_k=[10])
    # Query 1: gold at rank 2. Query 2: golds at ranks 2 and 4. Query 3: gold never ranked.
    assert metrics["mrr@1000"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert metrics["mrr@1"] == 0.0
    assert metrics["recall@1"] == 0.0
    assert metrics["recall@2"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    assert metrics["recall@5"] == pytest.approx((1 + 1 + 0) / 3)
    ndcg_1 = DISCOUNT_2 / 1.0
    ndcg_2 = (DISCOUNT_2 + DISCOUNT_4) / (1.0 + DISCOUNT_2)  # ideal: both golds at ranks 1 and 2
    assert metrics["ndcg@10"] == pytest.approx((ndcg_1 + ndcg_2 + 0) / 3)
    assert list(metrics) == ["mrr@1", "mrr@1000", "recall@1", "recall@2", "recall@5", "ndcg@10"]


def test_default_metric_keys():
    keys = list(code_search_metrics(RANKINGS, RELEVANT))
    assert keys == ["mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10"]


def test_group_aware_metrics_count_a_duplicate_of_the_gold_as_a_hit():
    # "d" duplicates the gold "g"; "a1"/"a2" duplicate each other and collapse into one ranked entry.
    groups = {"g": 7, "d": 7, "a1": "x", "a2": "x"}
    metrics = code_search_metrics(
        [["d", "z", "g"], ["a1", "a2", "g", "d"]],
        [{"g"}, {"g"}],
        mrr_at_k=10,
        recall_at_k=[1, 5],
        ndcg_at_k=[10],
        groups=groups,
    )
    assert metrics["mrr@10"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert metrics["dedup_mrr@10"] == pytest.approx((1 + 1 / 2) / 2)  # query 2 ranks [x, g-group]
    assert metrics["dedup_recall@1"] == pytest.approx(1 / 2)
    assert metrics["dedup_recall@5"] == 1.0  # the gold group counts once, though two members are ranked
    assert metrics["dedup_ndcg@10"] == pytest.approx((1 + DISCOUNT_2) / 2)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="one of each per query"):
        code_search_metrics([["a"]], [{"a"}, {"b"}])
    with pytest.raises(ValueError, match="no relevant id"):
        code_search_metrics([["a"]], [set()])
    with pytest.raises(ValueError, match="same id twice"):
        code_search_metrics([["a", "a"]], [{"a"}])
    with pytest.raises(ValueError, match="recall_at_k"):
        code_search_metrics([["a"]], [{"a"}], recall_at_k=[0])


# ---------------------------------------------------------------- the `evaluate` module


def test_evaluate_module_loads_offline_and_agrees_with_metrics(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = load_code_search_metric()
    assert isinstance(metric, evaluate.Metric)
    expected = code_search_metrics(RANKINGS, RELEVANT)
    result = metric.compute(predictions=RANKINGS, references=[sorted(r) for r in RELEVANT])
    assert result == pytest.approx(expected)
    assert set(result) == {"mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10"}

    # The folder itself loads with plain evaluate.load; integer ids, configurable cut-offs and groups work.
    same = evaluate.load(CODE_SEARCH_METRIC_PATH)
    integer = same.compute(predictions=[[3, 1, 2]], references=[[1]], mrr_at_k=10, recall_at_k=[1, 2], ndcg_at_k=5)
    assert integer == pytest.approx({"mrr@10": 0.5, "recall@1": 0.0, "recall@2": 1.0, "ndcg@5": DISCOUNT_2})
    grouped = same.compute(predictions=[["d", "g"]], references=[["g"]], groups={"d": 1, "g": 1})
    assert grouped["mrr@1000"] == 0.5 and grouped["dedup_mrr@1000"] == 1.0


# ---------------------------------------------------------------- CodeSearchEvaluator

CODES = [
    "def add(a, b):\n    return a + b",
    "def read_json(path):\n    return json.load(open(path))",
    "def reverse(s):\n    return s[::-1]",
    "def fetch(url):\n    return requests.get(url).text",
    "def md5(data):\n    return hashlib.md5(data).hexdigest()",
    "def count_words(text):\n    return len(text.split())",
    "def mkdir(path):\n    os.makedirs(path, exist_ok=True)",
    "def now():\n    return time.time()",
    "def first(items):\n    return items[0]",
    "def is_even(n):\n    return n % 2 == 0",
    "def flatten(xs):\n    return [y for x in xs for y in x]",
    "def square(x):\n    return x * x",
]
QUERIES = [
    "add two numbers",
    "load a json file",
    "reverse a string",
    "download a web page",
    "hash bytes with md5",
    "how many words in a text",
    "create a folder",
    "current unix time",
]


def toy_set(groups=None) -> RetrievalSet:
    return RetrievalSet(
        queries={f"q{i}": q for i, q in enumerate(QUERIES)},
        corpus={f"c{i}": c for i, c in enumerate(CODES)},
        # Some queries have two relevant codes, to exercise recall and NDCG beyond one gold.
        relevant={f"q{i}": {f"c{i}", f"c{i + 4}"} if i % 3 == 0 else {f"c{i}"} for i in range(len(QUERIES))},
        groups=groups,
        name="toy",
    )


def test_evaluator_perfect_retrieval_when_codes_equal_queries(tmp_path):
    texts = QUERIES
    identical = RetrievalSet(
        queries={f"q{i}": t for i, t in enumerate(texts)},
        corpus={f"c{i}": t for i, t in enumerate(texts)},
        relevant={f"q{i}": {f"c{i}"} for i in range(len(texts))},
        name="identical",
    )
    evaluator = CodeSearchEvaluator(identical)
    metrics = evaluator(build_tiny_model(), output_path=str(tmp_path), epoch=1, steps=5)
    headline = {key: value for key, value in metrics.items() if "cosine" not in key}
    assert headline == {
        "identical_mrr@1000": 1.0,
        "identical_recall@1": 1.0,
        "identical_recall@5": 1.0,
        "identical_recall@10": 1.0,
        "identical_ndcg@10": 1.0,
    }
    assert evaluator.primary_metric == "identical_mrr@1000"
    assert evaluator.depth == len(texts)  # ranked down to min(1000, corpus size)
    with open(tmp_path / "CodeSearch_evaluation_identical_results.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["epoch", "steps", "mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10"]
    assert rows[1][:3] == ["1", "5", "1.0"] and len(rows) == 2


def test_evaluator_agrees_with_information_retrieval_evaluator():
    model = build_tiny_model(seed=1)
    retrieval_set = toy_set()
    ours = CodeSearchEvaluator(retrieval_set, mrr_at_k=10, recall_at_k=[1, 5, 10], ndcg_at_k=[10], write_csv=False)(
        model
    )
    theirs = InformationRetrievalEvaluator(
        retrieval_set.queries,
        retrieval_set.corpus,
        retrieval_set.relevant,
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 5, 10],
        map_at_k=[10],
        name="toy",
        write_csv=False,
    )(model)
    assert 0 < ours["toy_mrr@10"] < 1  # a random model: the comparison is not between two perfect scores
    for key in ("mrr@10", "recall@1", "recall@5", "recall@10", "ndcg@10"):
        assert ours[f"toy_{key}"] == pytest.approx(theirs[f"toy_cosine_{key}"], abs=1e-6), key


def test_evaluator_reports_group_aware_metrics():
    groups = {f"c{i}": i % 10 for i in range(len(CODES))}  # c10 duplicates c0, c11 duplicates c1
    metrics = CodeSearchEvaluator(toy_set(groups), write_csv=False)(build_tiny_model(seed=2))
    names = ("mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10")
    assert {key for key in metrics if "dedup" in key} == {
        *(f"toy_dedup_{name}" for name in names), *(f"toy_cosine_dedup_{name}" for name in names)
    }
    assert metrics["toy_dedup_mrr@1000"] >= metrics["toy_mrr@1000"]
    assert all(metrics[f"toy_dedup_{name}"] == metrics[f"toy_cosine_dedup_{name}"] for name in names)


def test_evaluator_is_an_information_retrieval_evaluator_with_its_keys_and_truncate_dim():
    """Same keys and values as InformationRetrievalEvaluator (per Matryoshka dimension too), plus the headline."""
    model = build_tiny_model(seed=3)
    retrieval_set = toy_set({f"c{i}": i % 10 for i in range(len(CODES))})
    for dim in (None, 8):
        ours = CodeSearchEvaluator(retrieval_set, write_csv=False, truncate_dim=dim)
        assert isinstance(ours, InformationRetrievalEvaluator)
        metrics = ours(model)
        theirs = InformationRetrievalEvaluator(
            retrieval_set.queries, retrieval_set.corpus, retrieval_set.relevant, mrr_at_k=[1000], ndcg_at_k=[10],
            accuracy_at_k=[1, 5, 10], precision_recall_at_k=[1, 5, 10], map_at_k=[100], name="toy",
            write_csv=False, truncate_dim=dim,
        )(model)
        assert {key: metrics[key] for key in theirs} == theirs
        assert metrics["toy_mrr@1000"] == theirs["toy_cosine_mrr@1000"]
        if dim is None:
            full = metrics["toy_mrr@1000"]
        else:
            assert metrics["toy_mrr@1000"] != full  # 8 of 32 dimensions rank differently
    # The whole codebase is ranked: MRR counted to rank 1000, down to the corpus size.
    assert ours.depth == len(CODES) and ours.primary_metric == "toy_mrr@1000"


def test_evaluator_selects_the_best_model_in_sentence_transformer_trainer(tmp_path):
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = build_tiny_model()
    evaluator = CodeSearchEvaluator(toy_set(), name="toy-valid")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=4,
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="steps",
        save_steps=1,
        load_best_model_at_end=True,
        metric_for_best_model="eval_toy-valid_mrr@1000",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    train = Dataset.from_dict({"query": QUERIES, "code": CODES[: len(QUERIES)]})
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model), evaluator=evaluator
    )
    trainer.train()
    evaluations = [entry for entry in trainer.state.log_history if "eval_toy-valid_mrr@1000" in entry]
    assert len(evaluations) == 2
    assert trainer.state.best_metric == max(entry["eval_toy-valid_mrr@1000"] for entry in evaluations)
    assert (tmp_path / "eval" / "CodeSearch_evaluation_toy-valid_results.csv").is_file()


# ---------------------------------------------------------------- DDP: computed and written once


def _ddp_worker(rank: int, world_size: int, port: int, folder: str, model_dir: str) -> None:
    import os

    import torch.distributed as dist
    from sentence_transformers import SentenceTransformer

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        evaluator = CodeSearchEvaluator(toy_set(), name="toy")
        metrics = evaluator(SentenceTransformer(model_dir, device="cpu"), output_path=folder, epoch=0, steps=1)
        with open(os.path.join(folder, f"rank{rank}.json"), "w") as file:
            json.dump(metrics, file)
    finally:
        dist.destroy_process_group()


def test_evaluator_under_two_gloo_ranks_writes_once_and_returns_the_same_dict(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = build_tiny_model(seed=1)
    model.save(str(tmp_path / "model"))
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), str(tmp_path / "model")), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert results[0] == results[1]
    single = CodeSearchEvaluator(toy_set(), name="toy", write_csv=False)(model)
    assert results[0] == pytest.approx(single)
    with open(tmp_path / "CodeSearch_evaluation_toy_results.csv", newline="") as file:
        assert len(list(csv.reader(file))) == 2  # header + one row: written by rank 0 only


# ---------------------------------------------------------------- `hf-softnce evaluate`


def test_evaluate_command_on_a_saved_corpus(tmp_path):
    model_dir = tmp_path / "model"
    build_tiny_model().save(str(model_dir))
    split = Dataset.from_dict(
        {
            "query": QUERIES,
            "code": CODES[: len(QUERIES)],
            "id": [f"f{i}" for i in range(len(QUERIES))],
            "dup_group": list(range(len(QUERIES))),
        }
    )
    DatasetDict({"train": split, "test": split}).save_to_disk(str(tmp_path / "corpus"))

    parser = argparse.ArgumentParser(prog="hf-softnce")
    register(parser.add_subparsers(dest="command"))
    output = tmp_path / "out" / "results.json"
    args = parser.parse_args(["evaluate", str(model_dir), "--data", str(tmp_path / "corpus"), "--output", str(output)])
    assert args.func(args) == 0
    results = json.loads(output.read_text())["results"]
    assert list(results) == ["corpus-test"]
    assert set(results["corpus-test"]) >= {"mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10", "dedup_mrr@1000"}



def test_evaluate_command_user_errors_are_one_line_and_status_2(tmp_path, capsys):
    from hf_softnce.cli import main

    DatasetDict({"test": Dataset.from_dict({"query": ["q"], "code": ["c"]})}).save_to_disk(str(tmp_path / "corpus"))
    capsys.readouterr()  # the progress bar of save_to_disk
    assert main(["evaluate", "no-model", "--data", str(tmp_path / "corpus"), "--split", "valid"]) == 2
    assert capsys.readouterr().err == (f"hf-softnce: error: --split 'valid' is not in {tmp_path / 'corpus'} "
                                       "(splits: ['test']).\n")
    assert main(["evaluate", "no-model"]) == 2
    assert capsys.readouterr().err == "hf-softnce: error: evaluate: give --data PATH and/or --cosqa DIR.\n"
    (tmp_path / "taken").mkdir()
    assert main(["evaluate", "no-model", "--data", str(tmp_path / "corpus"), "--output", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err == f"hf-softnce: error: --output {str(tmp_path / 'taken')!r} is a folder, not a file.\n"


def test_cosqa_option_reads_the_real_dev_split(cosqa_dir, tmp_path):
    (cosqa,) = cosqa_sets(cosqa_dir)  # the test split is not shipped: only dev is evaluated
    assert cosqa.name == "cosqa-dev"  # the name CoSQA's papers, the README and the main job use
    assert len(cosqa.queries) == 500 and len(cosqa.corpus) == 6267
    assert all(len(gold) == 1 for gold in cosqa.relevant.values())
    with pytest.raises(FileNotFoundError, match="no CoSQA retrieval split"):
        cosqa_sets(tmp_path)


def test_evaluate_quick_check_keeps_gold_codes_and_says_it_is_one(tmp_path, capsys):
    """--max-queries/--max-codes: a smoke test in seconds, printed and saved as what it is."""
    from hf_softnce.cli import main
    from conftest import tiny_model_dir

    rows = [{"query": f"how to do thing {i}", "code": f"def f{i}(x): return x * {i}"} for i in range(20)]
    (tmp_path / "pairs.json").write_text(json.dumps(rows))
    full = data_set(str(tmp_path / "pairs.json"), None)
    small = full.shrunk(max_queries=3, max_codes=5)
    assert list(small.queries) == list(full.queries)[:3] and len(small.corpus) == 5
    assert all(small.relevant[q] <= set(small.corpus) for q in small.queries)  # every gold code is searched
    assert full.shrunk(max_queries=3, max_codes=2).corpus.keys() >= {c for q in list(full.queries)[:3]
                                                                      for c in full.relevant[q]}
    output = tmp_path / "quick.json"
    assert main(["evaluate", tiny_model_dir(), "--data", str(tmp_path / "pairs.json"), "--max-queries", "3",
                 "--max-codes", "5", "--quiet", "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Quick check, not the full evaluation: at most 3 queries per set and a codebase of at "
                          "most 5 codes") and "**pairs** (3 queries, 5 codes)" in out
    assert json.loads(output.read_text())["quick_check"].startswith("Quick check")
    assert main(["evaluate", tiny_model_dir(), "--data", str(tmp_path / "pairs.json"), "--max-queries", "0"]) == 2
