"""The README's Python examples run as printed (Hub model ids swapped for tiny local models, data shrunk)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import tiny_model_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def block_with(marker: str) -> str:
    blocks = [block for block in python_blocks() if marker in block]
    assert len(blocks) == 1, f"{len(blocks)} README python blocks contain {marker!r}"
    return blocks[0]


def run_as_printed(code: str, replacements: dict[str, str], tmp_path, monkeypatch) -> dict:
    for old, new in replacements.items():
        assert old in code, f"the README example no longer contains {old!r}; update the test's replacements"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)  # the trainer writes its checkpoints under the working directory
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_readme_ranker_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
    """It crashed with `ValueError: Unsupported input type: int`: mine() output kept the identity columns."""
    code = block_with("CrossEncoderTrainer(")
    namespace = run_as_printed(
        code,
        {
            '"sentence-transformers/all-MiniLM-L6-v2"': repr(tiny_model_dir()),
            '"microsoft/unixcoder-base"': repr(tiny_model_dir(seed=1)),
            "build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})",
            "num_negatives=31": "num_negatives=3",
        },
        tmp_path,
        monkeypatch,
    )
    mined = namespace["mined"]
    assert mined.column_names == ["query", "code", "negative_1", "negative_2", "negative_3", "label"]
    printed = capsys.readouterr().out
    assert "Mined negatives for" in printed and "'cascade'" in printed


def test_readme_soft_infonce_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
    code = block_with("SoftInfoNCELoss(model")
    namespace = run_as_printed(
        code,
        {
            '"sentence-transformers/all-MiniLM-L6-v2"': repr(tiny_model_dir()),
            'build_python_corpus()["train"]': f"__import__('datasets').load_from_disk({str(small_corpus)!r})['train'].select(range(64))",
        },
        tmp_path,
        monkeypatch,
    )
    assert type(namespace["loss"]).__name__ == "SoftInfoNCELoss"
    from sentence_transformers import SentenceTransformer

    untrained = SentenceTransformer(tiny_model_dir(), device="cpu")
    trained = namespace["model"]
    assert any(not a.detach().cpu().equal(b.detach()) for a, b in zip(trained.parameters(), untrained.parameters()))


def test_readme_real_search_data_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
    from hf_softnce.data import find_shared_data_dir

    if find_shared_data_dir("conala", marker="conala-train.json") is None:
        pytest.skip("no local CoNaLa copy (../shared/data/conala)")
    code = block_with("repository_style(")
    namespace = run_as_printed(
        code, {"build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})"},
        tmp_path, monkeypatch,
    )
    assert len(namespace["conala"].train) == 2378  # the curated train split, rows with an intent and a snippet
    pairs = namespace["pairs"]
    assert any(chr(34) * 3 in code for code in pairs["code"])  # docstrings put back
    assert sum(q.endswith(".") for q in pairs["query"]) == 0  # search-style queries, no sentence punctuation


def test_readme_order_labels_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
    code = block_with("label_order(mined")
    namespace = run_as_printed(
        code,
        {
            '"sentence-transformers/all-MiniLM-L6-v2"': repr(tiny_model_dir()),
            "build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})",
            "num_negatives=7": "num_negatives=3",
        },
        tmp_path,
        monkeypatch,
    )
    train = namespace["train"]
    assert {"query", "code", "negative_1", "negative_3", "label", "id", "dup_group"} <= set(train.column_names)
    assert list(train[0]) == ["query", "code", "negative_1", "negative_2", "negative_3", "label"]  # what is tokenized
    assert len(train) == 352 and all(len(labels) == 4 for labels in train["label"])  # positive + 3 graded negatives
    assert type(namespace["loss"]).__name__ == "OrderInfoNCELoss"
    assert "Labelled 352 rows (1,056 negatives) with BM25Weighter. Flagged" in capsys.readouterr().out
    # It failed here with `ValueError: Unsupported input type: int` (the id column reached the tokenizer).
    assert namespace["trainer"].state.global_step == 10


def test_readme_data_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
    fixtures = Path(__file__).parent / "fixtures"
    code = block_with("load_codesearchnet(")
    namespace = run_as_printed(
        code,
        {
            "build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})",
            'data_dir="dataset/python"': f"data_dir={str(fixtures / 'codesearchnet' / 'python')!r}",
            'data_dir="../shared/data/cosqa"': f"data_dir={str(fixtures / 'cosqa')!r}",
        },
        tmp_path,
        monkeypatch,
    )
    assert namespace["test_set"].name == "stdlib-test" and len(namespace["test_set"]) > 0
    assert namespace["csn"].train is not None and namespace["cosqa"].valid is not None


def test_readme_bootstrap_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
    """The interval names its metric and is computed from reciprocal ranks, re-computed here from the ranks."""
    import numpy as np

    code = block_with("PairedBootstrap(ranks")
    namespace = run_as_printed(
        code,
        {
            '"sentence-transformers/all-MiniLM-L6-v2"': repr(tiny_model_dir(max_seq_length=256)),  # the example's 256
            "build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})",
        },
        tmp_path,
        monkeypatch,
    )
    ranks = namespace["ranks"]
    rr = {name: np.array([1.0 / r if 0 < r <= 1000 else 0.0 for r in ranks[name].values()]) for name in ranks}
    printed = capsys.readouterr().out.splitlines()
    assert [float(line) for line in printed[:2]] == pytest.approx([rr["max256"].mean(), rr["max64"].mean()], abs=1e-12)
    n = len(rr["max64"])
    indices = np.random.default_rng(0).integers(0, n, size=(2000, n))
    low, high = np.percentile((rr["max64"] - rr["max256"])[indices].mean(axis=1), [2.5, 97.5])
    difference = rr["max64"].mean() - rr["max256"].mean()
    if low > 0 or high < 0:
        word = "better" if difference > 0 else "worse"
        expected = f"{word} by {abs(difference):.3f} ± {(high - low) / 2:.3f} MRR@1000 (95% CI [{low:+.3f}, {high:+.3f}])"
    else:
        expected = f"no measurable difference in MRR@1000 ({difference:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}])"
    assert printed[2] == expected
