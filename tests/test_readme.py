"""The README's and docs' examples run as printed (the packaged model swapped for tiny local models, data shrunk),
and the README keeps the shape of a product page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import tiny_model_dir

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
# One marker per python block of README.md and docs/: the test that runs the block finds it by its marker.
MARKERS = ("SoftInfoNCELoss(model, BM25Weighter", "CrossEncoderTrainer(", "repository_style(", "label_order(mined",
           "load_codesearchnet(", "PairedBootstrap(ranks", "write_model_card(")


def python_blocks() -> list[tuple[Path, str]]:
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        blocks += [(page, block) for block in re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)]
    return blocks


def block_with(marker: str) -> tuple[Path, str]:
    found = [(page, block) for page, block in python_blocks() if marker in block]
    assert len(found) == 1, f"{len(found)} python blocks in README.md and docs/ contain {marker!r}"
    return found[0]


def run_as_printed(found: tuple[Path, str], replacements: dict[str, str], tmp_path, monkeypatch) -> dict:
    page, code = found
    for old, new in replacements.items():
        assert old in code, f"the example in {page.name} no longer contains {old!r}; update the test's replacements"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)  # the trainer writes its checkpoints under the working directory
    namespace: dict = {}
    exec(compile(code, str(page), "exec"), namespace)
    return namespace


def test_every_python_block_of_the_readme_and_docs_is_run_by_a_test():
    for page, block in python_blocks():
        assert sum(marker in block for marker in MARKERS) == 1, f"a block in {page.name} no test runs:\n{block}"


def test_docs_ranker_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
    """mine() output goes straight into CrossEncoderTrainer: identity columns stay out of its rows (an integer id
    would stop the trainer with `ValueError: Unsupported input type: int`)."""
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
    # The setting chosen on valid is the best of the retriever alone and the three tried, and the cascade keeps it.
    choice, cascade = namespace["choice"], namespace["cascade"]
    tried = [(t["top_k"], t["combine"], t["ranker_weight"]) for t in choice["tried"]]
    assert tried == [(0, None, None), (5, "add", 0.5), (10, "add", 1.0), (10, "replace", None)]
    best = max(choice["tried"], key=lambda t: t["select_mrr"])
    assert (choice["top_k"], choice["combine"]) == (best["top_k"], best["combine"]) and cascade.top_k == best["top_k"]
    assert printed.count("\n| cascade | ") == 2  # the test set's table after valid's


def test_readme_soft_infonce_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
    code = block_with("SoftInfoNCELoss(model, BM25Weighter")
    namespace = run_as_printed(
        code,
        {
            "default_model_path()": repr(tiny_model_dir()),
            "model.max_seq_length = 128": "model.max_seq_length = 64",  # the tiny model has 66 positions
            'build_python_corpus()["train"].select(range(320))':
                f"__import__('datasets').load_from_disk({str(small_corpus)!r})['train'].select(range(64))",
        },
        tmp_path,
        monkeypatch,
    )
    assert type(namespace["loss"]).__name__ == "SoftInfoNCELoss"
    from sentence_transformers import SentenceTransformer

    untrained = SentenceTransformer(tiny_model_dir(), device="cpu")
    trained = namespace["model"]
    assert any(not a.detach().cpu().equal(b.detach()) for a, b in zip(trained.parameters(), untrained.parameters()))
    saved = SentenceTransformer(str(tmp_path / "runs" / "readme" / "final"), device="cpu")  # the example saves it
    assert all(a.detach().cpu().equal(b) for a, b in zip(saved.parameters(), trained.parameters()))


def test_docs_card_example_writes_hf_softnce_card_for_a_plain_trainer_model(tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    run_as_printed(block_with("write_model_card("), {"default_model_path()": repr(tiny_model_dir())}, tmp_path,
                   monkeypatch)
    card = ModelCard.load(tmp_path / "runs" / "my-model" / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and "loss:InfoNCE" in card.data.tags
    assert "hf_softnce" in card.text and (tmp_path / "runs" / "my-model" / "modules.json").exists()


def test_docs_real_search_data_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
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


def test_docs_order_labels_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
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


def test_docs_data_example_runs_as_printed(small_corpus, tmp_path, monkeypatch):
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


def test_docs_bootstrap_example_runs_as_printed(small_corpus, tmp_path, monkeypatch, capsys):
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


def test_every_example_runs_offline_and_every_training_example_is_bounded_timed_and_saved():
    """Examples name the packaged model, never a Hub id; a Trainer never runs the default 3 epochs (hours on a CPU)
    and the trained model is saved."""
    blocks = python_blocks()
    for page, block in blocks:
        code = "\n".join(line.split("#")[0] for line in block.splitlines())
        # A model named by a string literal is a Hub id (or a folder the reader does not have).
        assert not re.search(r"(SentenceTransformer|CrossEncoder)\(\s*[\"']", code), f"a named model in {page.name}:\n{block}"
    training = [block for _, block in blocks if "Trainer(" in block]
    assert len(training) == 3  # SoftInfoNCE, OrderInfoNCE, the R2PS ranker
    for block in training:
        assert "max_steps=" in block and re.search(r"≈ [\d.]+ min on 2 CPU cores", block), block
        assert ".save(" in block, block


def cli_lines() -> list[list[str]]:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL).group(1)
    return [line.split("#")[0].split() for line in block.splitlines() if line.strip()]


def test_docs_command_line_examples_run_as_printed(tmp_path, monkeypatch, capsys):
    """Each `hf-softnce` line of docs/cli.md's block, with the packaged model swapped for a tiny one and the shared
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
    assert ran == ["--version", "evaluate", "evaluate", "evaluate", "mine-negatives", "label-order"]
    out = capsys.readouterr().out
    assert "**conala-test** (9 queries, 9 codes)" in out and "| model | MRR@1000 |" in out
    assert json.loads((tmp_path / "runs" / "cosqa-eval.json").read_text())["results"]
    assert (tmp_path / "runs" / "conala-labelled" / "dataset_info.json").exists()


def setup_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    assert block.start() < len("\n".join(text.splitlines()[:15])), "the set-up block is on the first screen"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_readme_first_screen_holds_exactly_the_two_set_up_commands_and_ci_runs_the_second():
    main_job, tests = setup_commands()
    assert main_job.endswith("hf-softnce main --quick") and ".[all]" in main_job  # the embedded default, as printed
    assert tests.endswith("python -m pytest -q tests")
    ci_command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci_command == tests, "CI runs the README's test command verbatim"


def test_readme_is_a_product_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 170
    for section in ("## Install the library", "## Components", "## Results", "## Citation", "## License"):
        assert section in text, section
    assert text.count("\n| method |") == 1, "one results table"
    assert "Apache-2.0" in text and text.count("@inproceedings{") + text.count("@misc{") + text.count("@software{") == 4


def test_pages_say_what_is_true_without_work_history_and_link_to_pages_that_exist():
    history = re.compile(r"\bissue\s*#?\d+|\(#\d+\)|previous run|earlier run|no GPU was lent", re.IGNORECASE)
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not history.search(text), f"{page.name}: {history.search(text).group(0)!r}"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name} links to a missing {target}"
