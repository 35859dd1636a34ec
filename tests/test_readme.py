"""The README's examples run as printed (the packaged model swapped for tiny local models, data shrunk)."""

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
            "default_model_path()": repr(tiny_model_dir()),
            "max_length=256": "max_length=64",  # the tiny model has 66 positions
            "build_python_corpus()": f"__import__('datasets').load_from_disk({str(small_corpus)!r})",
            "num_negatives=31": "num_negatives=3",
        },
        tmp_path,
        monkeypatch,
    )
    mined = namespace["mined"]
    assert mined.column_names == ["query", "code", "negative_1", "negative_2", "negative_3", "label"]
    printed = capsys.readouterr().out
    assert "Mined negatives for" in printed
    assert "| stage | MRR@1000 | R@1 | R@5 | R@10 | NDCG@10 | ms/query |" in printed and "\n| cascade | " in printed


def test_readme_soft_infonce_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
    code = block_with("SoftInfoNCELoss(model")
    namespace = run_as_printed(
        code,
        {
            "default_model_path()": repr(tiny_model_dir()),
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
            "default_model_path()": repr(tiny_model_dir()),
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
            'data_dir="../shared/data/cosqa"': f"data_dir={str(fixtures / 'cosqa')!r}",
        },
        tmp_path,
        monkeypatch,
    )
    assert namespace["test_set"].name == "stdlib-test" and len(namespace["test_set"]) > 0
    assert "csn" not in namespace  # commented out: it needs files a fresh clone does not have
    assert namespace["cosqa"].valid is not None


def test_readme_bootstrap_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
    """The interval names its metric and is computed from reciprocal ranks, re-computed here from the ranks."""
    import numpy as np

    code = block_with("PairedBootstrap(ranks")
    namespace = run_as_printed(
        code,
        {
            "default_model_path()": repr(tiny_model_dir(max_seq_length=256)),  # the example's 256
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


def test_every_example_runs_offline_and_every_training_example_is_bounded_and_timed():
    """Examples name the packaged model, never a Hub id; a Trainer never runs the default 3 epochs (hours on a CPU)."""
    blocks = python_blocks()
    for block in blocks:
        code = "\n".join(line.split("#")[0] for line in block.splitlines())
        # A model named by a string literal is a Hub id (or a folder the reader does not have).
        assert not re.search(r"(SentenceTransformer|CrossEncoder)\(\s*[\"']", code), f"a named model:\n{block}"
    training = [block for block in blocks if "Trainer(" in block]
    assert len(training) == 3  # SoftInfoNCE, OrderInfoNCE, the R2PS ranker
    for block in training:
        assert "max_steps=" in block and re.search(r"≈ [\d.]+ min on 2 CPU cores", block), block


def cli_lines() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Command line", 1)[1]
    block = re.search(r"^```bash\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL).group(1)
    return [line.split("#")[0].split() for line in block.splitlines() if line.strip()]


def test_readme_command_line_examples_run_as_printed(tmp_path, monkeypatch, capsys):
    """Each `hf-softnce` line of the Command line block, with the packaged model swapped for a tiny one and the shared
    data for small files of the same layout. build-corpus, train and main are not run here (minutes to hours);
    test_cli.py covers what they print."""
    import json

    from hf_softnce.cli import main

    conala = [{"intent": f"how to {verb} a list", "rewritten_intent": None, "snippet": f"{verb}(x)", "question_id": i}
              for i, verb in enumerate(["sort", "reverse", "copy", "sum", "shuffle", "flatten", "count", "clear", "pop"])]
    for name in ("conala-train.json", "conala-test.json"):
        (tmp_path / name).write_text(json.dumps(conala))
    swaps = {"default": tiny_model_dir(), "../shared/data/conala": str(tmp_path),
             "../shared/data/cosqa": str(Path(__file__).parent / "fixtures" / "cosqa")}
    monkeypatch.chdir(tmp_path)
    ran = []
    for argv in cli_lines():
        assert argv[0] == "hf-softnce"
        if argv[1] in ("build-corpus", "train", "main"):
            continue
        args = [swaps.get(arg, arg) for arg in argv[1:]]
        args = [arg.replace("../shared/data/conala", str(tmp_path)) for arg in args]
        if args == ["--version"]:
            with pytest.raises(SystemExit) as done:
                main(args)
            assert done.value.code == 0
        else:
            assert main(args) == 0, (argv, capsys.readouterr().err)
        ran.append(argv[1])
    assert ran == ["--version", "evaluate", "evaluate", "mine-negatives", "label-order"]
    out = capsys.readouterr().out
    assert "**conala-test** (9 queries, 9 codes)" in out and "| model | MRR@1000 |" in out
    assert json.loads((tmp_path / "runs" / "cosqa-eval.json").read_text())["results"]
    assert (tmp_path / "runs" / "conala-labelled" / "dataset_info.json").exists()
