"""The CLI's inputs: models resolved local-first, JSON/JSONL and saved datasets, empty or unreadable inputs as
one line with status 2, before any model is loaded; each progress bar printed once."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_model_dir

from hf_softnce.cli import main

PAIRS = [
    {"intent": f"how do I {verb} a list in python", "rewritten_intent": None, "snippet": f"{verb}(items)  # {i}",
     "question_id": i}
    for i, verb in enumerate(["sort", "reverse", "copy", "sum", "shuffle", "flatten", "count", "clear"])
]


@pytest.fixture
def conala_json(tmp_path):
    path = tmp_path / "conala-train.json"
    path.write_text(json.dumps(PAIRS, indent=1))
    return path


@pytest.fixture
def pairs_jsonl(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"anchor": r["intent"], "positive": r["snippet"]}) for r in PAIRS) + "\n")
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _run(capsys, argv):
    status = main([str(part) for part in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _never_loaded(monkeypatch):
    """Fail if a SentenceTransformer is built: the error must come before any model loading."""
    import sentence_transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refuse)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["evaluate", "nope-model", "--data", "{data}"], "MODEL"),
        (["mine-negatives", "--model", "nope-model", "--data", "{data}", "--output", "{out}"], "--model"),
        (["label-order", "--teacher", "nope-model", "--data", "{data}", "--output", "{out}"], "--teacher"),
    ],
)
def test_a_hub_id_while_offline_is_one_line_naming_the_argument(capsys, monkeypatch, offline, pairs_jsonl, tmp_path,
                                                               argv, flag):
    _never_loaded(monkeypatch)
    argv = [a.replace("{data}", str(pairs_jsonl)).replace("{out}", str(tmp_path / "out")) for a in argv]
    status, _, err = _run(capsys, argv)
    assert status == 2
    assert err == (f"hf-softnce: error: {flag} 'nope-model': no such folder, and no cached copy of that Hub model while "
                   "HF_HUB_OFFLINE is set; give a model folder, or 'default' for the packaged all-MiniLM-L6-v2.\n")


@pytest.mark.parametrize("model", ["./nope-model", "runs/x/final", "~/models/nope"])
def test_a_missing_path_that_is_no_hub_id_is_one_line(capsys, monkeypatch, pairs_jsonl, model):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # decided without asking the Hub
    _never_loaded(monkeypatch)
    status, _, err = _run(capsys, ["evaluate", model, "--data", pairs_jsonl])
    assert (status, err) == (2, f"hf-softnce: error: MODEL {model!r}: no such folder, and not a Hugging Face Hub "
                                "model id.\n")


def test_an_unreachable_hub_is_one_quick_question_not_retries(capsys, monkeypatch, pairs_jsonl):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("hf_softnce.cli._models._offline", lambda: False)
    asked = []

    def unreachable(self, repo_id, **kwargs):
        asked.append((repo_id, kwargs.get("timeout")))
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    _never_loaded(monkeypatch)
    status, _, err = _run(capsys, ["evaluate", "someone/nope-model", "--data", pairs_jsonl])
    assert status == 2 and asked == [("someone/nope-model", 10)]
    assert err == ("hf-softnce: error: MODEL 'someone/nope-model': no such folder, and the Hugging Face Hub could not "
                   "be reached (Name or service not known); give a model folder, or set HF_HUB_OFFLINE=1 to use only "
                   "locally cached models.\n")


def test_a_folder_that_is_not_a_model_and_a_file_are_refused(capsys, tmp_path, pairs_jsonl):
    (tmp_path / "empty").mkdir()
    status, _, err = _run(capsys, ["evaluate", tmp_path / "empty", "--data", pairs_jsonl])
    assert status == 2 and "is not a model folder (it holds none of modules.json" in err
    status, _, err = _run(capsys, ["evaluate", pairs_jsonl, "--data", pairs_jsonl])
    assert (status, err) == (2, f"hf-softnce: error: MODEL {str(pairs_jsonl)!r} is a file, not a model folder.\n")


def test_empty_inputs_are_one_line(capsys, tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_dict({"query": [], "code": []}).save_to_disk(str(tmp_path / "saved"))  # load_from_disk: IndexError
    DatasetDict({"train": Dataset.from_dict({"query": [], "code": []})}).save_to_disk(str(tmp_path / "saved_dict"))
    capsys.readouterr()  # the saving bars above
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "empty.json").write_text("[]")
    for name in ("saved", "saved_dict", "empty.jsonl", "empty.json"):
        path = tmp_path / name
        status, _, err = _run(capsys, ["mine-negatives", "--data", path, "--output", tmp_path / "out"])
        assert (status, err) == (2, f"hf-softnce: error: --data {str(path)!r} holds no rows.\n"), name


def test_unreadable_inputs_are_one_line_naming_file_and_line(capsys, tmp_path):
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"query": "a", "code": "b"}\n{"query": "a",\n')
    not_object = tmp_path / "list.json"
    not_object.write_text('[{"query": "a", "code": "b"}, 3]')
    not_data = tmp_path / "notes.txt"
    not_data.write_text("hello")
    plain_folder = tmp_path / "folder"
    plain_folder.mkdir()
    expected = {
        bad_line: f"--data {bad_line}:2: malformed JSON line (Expecting property name enclosed in double quotes).",
        not_object: f"--data {not_object} record 2: expected a JSON object, got int.",
        not_data: f"--data {str(not_data)!r} is neither a folder saved with save_to_disk nor a .json/.jsonl file.",
        plain_folder: f"--data {str(plain_folder)!r} is a folder but not a dataset saved with save_to_disk.",
    }
    for path, message in expected.items():
        status, _, err = _run(capsys, ["label-order", "--teacher", "bm25", "--data", path, "--output", tmp_path / "o"])
        assert (status, err) == (2, f"hf-softnce: error: {message}\n")


def test_evaluate_names_the_line_of_a_non_utf8_input(capsys, tmp_path):
    bad = tmp_path / "pairs.jsonl"
    good = '{"query": "sort a list", "code": "def s(x):\\n    return sorted(x)"}\n'
    bad.write_bytes(good.encode() * 2 + b'{"query": "caf\xe9", "code": "pass"}\n' + good.encode())
    offset = 2 * len(good.encode()) + len('{"query": "caf')
    status, out, err = _run(capsys, ["evaluate", "default", "--data", bad])
    assert (status, out) == (2, "")
    assert err == f"hf-softnce: error: --data {bad}:3: line is not valid UTF-8 (invalid continuation byte at byte {offset}).\n"


def test_mine_negatives_reads_a_json_array_with_chosen_columns(capsys, conala_json, tmp_path):
    from datasets import load_from_disk

    status, out, err = _run(capsys, ["mine-negatives", "--model", tiny_model_dir(), "--data", conala_json,
                                     "--columns", "intent,snippet", "--num-negatives", "2", "--no-cache",
                                     "--output", tmp_path / "mined"])
    assert status == 0, err
    mined = load_from_disk(str(tmp_path / "mined"))
    assert mined.column_names == ["query", "code", "negative_1", "negative_2"]
    assert mined["query"] == [r["intent"] for r in PAIRS] and mined["code"] == [r["snippet"] for r in PAIRS]
    assert all(row["negative_1"] != row["code"] for row in mined)
    assert "Mined negatives for 8 of 8 rows" in out
    # Each bar once, even where datasets redraws its bar with a new description.
    assert err.count("Mining negatives") == 1 and err.count("Saving the dataset") == 1


def test_mine_negatives_reads_jsonl_by_position_and_says_so(capsys, pairs_jsonl, tmp_path):
    from datasets import load_from_disk

    status, _, err = _run(capsys, ["mine-negatives", "--model", tiny_model_dir(), "--data", pairs_jsonl, "--quiet",
                                   "--num-negatives", "1", "--no-cache", "--output", tmp_path / "mined"])
    assert status == 0
    assert f"Reading {pairs_jsonl}: query = column 'anchor', code = column 'positive' (by position;" in err
    assert "Mining negatives" not in err and "Saving the dataset" not in err  # --quiet
    assert load_from_disk(str(tmp_path / "mined")).column_names == ["anchor", "positive", "negative_1"]


def test_label_order_reads_jsonl_columns_by_position(capsys, tmp_path):
    from datasets import load_from_disk

    path = tmp_path / "mined.jsonl"
    rows = [{"anchor": r["intent"], "positive": r["snippet"], "hard": PAIRS[(i + 1) % len(PAIRS)]["snippet"]}
            for i, r in enumerate(PAIRS)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    status, out, err = _run(capsys, ["label-order", "--teacher", "bm25", "--data", path, "--output", tmp_path / "o"])
    assert status == 0, err
    labelled = load_from_disk(str(tmp_path / "o"))
    assert labelled.column_names == ["query", "code", "negative_1", "label"]
    assert labelled["negative_1"] == [row["hard"] for row in rows] and all(len(v) == 2 for v in labelled["label"])
    assert out.startswith("Labelled 8 rows (8 negatives) with BM25Weighter.")


def test_evaluate_reads_a_json_file_and_prints_a_table_with_the_base(capsys, conala_json, tmp_path):
    output = tmp_path / "results.json"
    status, out, err = _run(capsys, ["evaluate", tiny_model_dir(), "--data", conala_json, "--columns",
                                     "intent,snippet", "--base", tiny_model_dir(seed=1), "--output", output])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "**conala-train** (8 queries, 8 codes)"
    assert lines[2] == "| model | MRR@1000 | R@1 | R@5 | R@10 | NDCG@10 | Δ MRR vs base |"
    assert lines[4].startswith(f"| {tiny_model_dir(seed=1)} | ") and lines[5].startswith(f"| {tiny_model_dir()} | ")
    assert lines[-1] == f"Saved every metric to {output}"
    saved = json.loads(output.read_text())
    for results in (saved["results"]["conala-train"], saved["base_results"]["conala-train"]):
        assert "mrr@1000" in results and "cosine_map@100" in results
        assert not [key for key in results if key.replace("cosine_", "") in results and key.startswith("cosine_")]


def test_a_split_or_columns_the_data_cannot_take_are_one_line_not_ignored(capsys, monkeypatch, tmp_path, pairs_jsonl):
    """--split names a split of a saved DatasetDict: for a JSON file or a saved Dataset it is an error, as are
    --columns and --split without --data; a DatasetDict without --split reads the command's default split."""
    from datasets import Dataset, DatasetDict

    _never_loaded(monkeypatch)
    rows = {"query": ["sort a list", "read a file"], "code": ["sorted(x)", "open(p).read()"]}
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    DatasetDict({"train": Dataset.from_dict(rows)}).save_to_disk(str(tmp_path / "saved_dict"))
    capsys.readouterr()
    out = tmp_path / "out"
    for argv, message in (
        (["evaluate", "m", "--cosqa", tmp_path, "--columns", "a,b"],
         "evaluate: --columns and --split describe --data, which is not given."),
        (["evaluate", "m", "--cosqa", tmp_path, "--split", "test"],
         "evaluate: --columns and --split describe --data, which is not given."),
        (["evaluate", "m", "--data", pairs_jsonl, "--split", "nosuch"],
         f"--split 'nosuch': --data {str(pairs_jsonl)!r} is a JSON file, which has no splits."),
        (["mine-negatives", "--data", tmp_path / "saved", "--split", "train", "--output", out],
         f"--split 'train': --data {str(tmp_path / 'saved')!r} is a saved Dataset, which has no splits."),
        (["mine-negatives", "--data", tmp_path / "saved_dict", "--split", "test", "--output", out],
         f"--split 'test' is not in {tmp_path / 'saved_dict'} (splits: ['train'])."),
        (["evaluate", "m", "--data", tmp_path / "saved_dict"],  # evaluate's default split is test
         f"--split 'test' is not in {tmp_path / 'saved_dict'} (splits: ['train'])."),
    ):
        status, _, err = _run(capsys, argv)
        assert (status, err) == (2, f"hf-softnce: error: {message}\n"), argv


def test_a_record_without_a_query_or_code_text_is_one_line_before_any_model(capsys, monkeypatch, tmp_path):
    """A query or code missing, null or not text: one line before any model; columns the command does not read (a
    negative some records lack, a number column beside query and code) are not its concern."""
    from hf_softnce.cli._inputs import load_rows

    _never_loaded(monkeypatch)
    for name, second in (("null", '{"query": "b", "code": null}'), ("missing", '{"query": "b"}')):
        path = tmp_path / f"{name}.jsonl"
        path.write_text('{"query": "a", "code": "x"}\n' + second + "\n")
        for argv in (["evaluate", "m", "--data", path],
                     ["mine-negatives", "--data", path, "--output", tmp_path / "out"]):
            status, _, err = _run(capsys, argv)
            assert (status, err) == (2, f"hf-softnce: error: --data {str(path)!r} record 2: 'code' is missing or null; "
                                        "every query and code is text.\n"), (name, argv)
    numbers = tmp_path / "numbers.json"
    numbers.write_text('[{"query": "a", "code": 1}, {"query": "b", "code": 2}]')
    status, _, err = _run(capsys, ["evaluate", "m", "--data", numbers])
    assert (status, err) == (2, f"hf-softnce: error: --data {str(numbers)!r}: column 'code' holds int64 values; "
                                "every query and code is text.\n")
    other = tmp_path / "other.jsonl"
    other.write_text('{"query": "a", "code": "x", "negative_1": "z", "stars": 3}\n{"query": "b", "code": "y"}\n')
    assert len(load_rows(str(other))) == 2


def test_label_order_refuses_model_flags_with_the_bm25_teacher(capsys, tmp_path):
    """BM25 encodes nothing: --device, --batch-size and the cache flags would be ignored, so they are refused."""
    for flags, named in ((["--device", "cpu"], "--device"), (["--cache-dir", str(tmp_path)], "--cache-dir"),
                         (["--batch-size", "8", "--no-cache"], "--batch-size, --no-cache")):
        status, out, err = _run(capsys, ["label-order", "--teacher", "BM25", "--data", tmp_path / "absent.jsonl",
                                         "--output", tmp_path / "o", *flags])
        assert (status, out, err) == (2, "", f"hf-softnce: error: {named} set how a model teacher encodes; --teacher "
                                             "bm25 has none.\n")
