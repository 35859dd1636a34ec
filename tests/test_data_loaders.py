"""Loaders on fixture files in the published formats, the real CoSQA dev files, bad input, and offline errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hf_softnce.data import CodeSearchData, all_columns, DataFormatError, RetrievalSet, SkipReport
from hf_softnce.data import load_advtest, load_codesearchnet, load_cosqa

FIXTURES = Path(__file__).parent / "fixtures"
CSN = FIXTURES / "codesearchnet"
CSN_URL = "https://github.com/{}/blob/sha/{}"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


def test_codesearchnet_pairs_and_codebase_evaluation():
    data = load_codesearchnet("python", data_dir=CSN, verbose=False)
    assert isinstance(data, CodeSearchData) and data.name == "codesearchnet-python"
    train = all_columns(data.train)  # the identity columns, read by name
    assert len(train) == 4
    assert train[0]["query"] == "Add two numbers ."
    assert train[0]["code"] == "def add ( a , b ) : return a + b"
    assert train[0]["id"] == CSN_URL.format("org/repo", "pkg/mod.py#L1-L3")
    assert (train[0]["package"], train[0]["path"], train[0]["func_name"], train[0]["language"]) == (
        "org/repo", "pkg/mod.py", "add", "python")
    # add(a, b) and add(x, y) differ by names only: not exact duplicates; the other rows are unrelated.
    assert len(set(train["dup_group"])) == 4

    valid, test = data.valid, data.test
    assert isinstance(valid, RetrievalSet) and isinstance(test, RetrievalSet)
    assert len(valid.corpus) == len(test.corpus) == 4  # the whole codebase.jsonl for both splits
    reverse = CSN_URL.format("v/repo", "a.py#L1-L3")
    assert valid.queries[reverse] == "Reverse a list of items ."
    assert valid.relevant[reverse] == {reverse}
    assert valid.corpus[reverse] == "def reverse ( items ) : return items [ : : - 1 ]"
    assert list(test.queries) == [CSN_URL.format("t/repo", "b.py#L1-L3")]
    assert set(valid.groups) == set(valid.corpus)


def test_codesearchnet_raw_code_has_no_docstring_and_split_selection():
    data = load_codesearchnet("python", data_dir=CSN, splits=("train",), code_format="raw", verbose=False)
    assert data.valid is None and data.test is None
    assert data.train[0]["code"] == "def add(a, b):\n    return a + b"
    assert all('"""' not in code for code in data.train["code"])


def test_advtest_each_split_searches_its_own_functions():
    data = load_advtest(data_dir=FIXTURES / "advtest", verbose=False)
    assert len(data.train) == 3
    assert data.train[1]["code"] == "def join ( items ) : return ',' . join ( items )"
    assert data.train[1]["query"] == "Join strings with commas"
    assert len(data.valid.corpus) == 2 and len(data.test.corpus) == 3
    url = "https://github.com/c/r/blob/s/z.py#L7"
    assert data.test.queries[url] == "Return the first element of a list"
    assert data.test.relevant[url] == {url}
    assert data.test.corpus[url] == "def func_name ( arg_0 ) : return arg_0 [ 0 ]"


def test_cosqa_fixture_train_filters_label_zero():
    report = SkipReport()
    data = load_cosqa(data_dir=FIXTURES / "cosqa", report=report, verbose=False)
    assert data.test is None  # no test file in the fixture
    assert data.train["query"] == ["python flatten list of lists", "python string to integer"]
    assert report.filtered == {"CoSQA pair labelled 0 (code does not answer the query)": 1}
    assert data.valid.relevant == {"cosqa-train-1": {"0"}, "cosqa-train-2": {"3"}}
    assert len(data.valid.corpus) == 4


def test_loaded_data_reads_like_a_dataset_dict():
    """One shape for every loader's output and build_python_corpus()'s DatasetDict: data["train"], "dev" in data."""
    data = load_cosqa(data_dir=FIXTURES / "cosqa", verbose=False)
    assert data.keys() == ["train", "valid"] and "dev" in data and "test" not in data
    assert data["train"] is data.train and data["dev"] is data["valid"] is data.valid
    assert data["dev"].name == "cosqa-dev"  # CoSQA's own name for the split, everywhere
    with pytest.raises(KeyError, match="has no 'test' split; loaded: \\['train', 'valid'\\]"):
        data["test"]


def test_cosqa_real_dev_files(cosqa_dir):
    data = load_cosqa(data_dir=cosqa_dir, duplicate_groups=False, verbose=False)
    valid = data.valid
    assert len(data.train) == 9020 and data.test is None  # train: cosqa-retrieval-train-19604.json
    assert len(valid.queries) == 500 and len(valid.corpus) == 6267
    assert valid.queries["cosqa-train-8333"] == "python check if a variable is iterable"
    assert valid.relevant["cosqa-train-8333"] == {"1640"}
    assert valid.corpus["1640"].startswith("def is_iterable_but_not_string(obj):")
    assert all(len(cids) == 1 and next(iter(cids)) in valid.corpus for cids in valid.relevant.values())
    assert not data.report.skipped  # nothing bad; only the train split's label-0 pairs are filtered, by rule
    assert dict(data.report.filtered) == {"CoSQA pair labelled 0 (code does not answer the query)": 10584}


# -- bad input ------------------------------------------------------------------------------------------
def append_line(path: Path, line: str) -> int:
    """Append a line; return its line number."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


def test_malformed_jsonl_line_raises_with_file_and_line_or_is_counted(tmp_path):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    line = append_line(folder / "train.jsonl", '{"url": "broken", "docstring_tokens": [')
    with pytest.raises(DataFormatError, match=rf"train\.jsonl:{line}: malformed JSON line"):
        load_codesearchnet("python", data_dir=folder, verbose=False)
    data = load_codesearchnet("python", data_dir=folder, errors="skip", verbose=False)
    assert len(data.train) == 4
    assert data.report.skipped == {"malformed JSON line": 1}
    assert data.report.examples["malformed JSON line"] == [f"{folder / 'train.jsonl'}:{line}"]


def test_missing_field_and_empty_docstring(tmp_path, capsys):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    train = folder / "train.jsonl"
    original = train.read_text()
    record = json.loads(original.splitlines()[0])
    without_code = json.dumps({key: value for key, value in record.items() if key != "code_tokens"})
    empty_docstring = json.dumps({**record, "url": "u2", "docstring_tokens": []})

    line = append_line(train, without_code)
    with pytest.raises(DataFormatError, match=rf"train\.jsonl:{line}: missing field 'code_tokens'"):
        load_codesearchnet("python", data_dir=folder)
    train.write_text(original)
    line = append_line(train, empty_docstring)
    with pytest.raises(DataFormatError, match=rf"train\.jsonl:{line}: empty docstring"):
        load_codesearchnet("python", data_dir=folder)

    append_line(train, without_code)
    data = load_codesearchnet("python", data_dir=folder, errors="skip")
    assert len(data.train) == 4
    assert data.report.skipped == {"empty docstring": 1, "missing field 'code_tokens'": 1}
    printed = capsys.readouterr().err  # printed at the end, with the counts
    assert "codesearchnet-python report" in printed and "missing field 'code_tokens'" in printed


def test_answer_missing_from_codebase(tmp_path):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    lines = (folder / "codebase.jsonl").read_text().splitlines()
    (folder / "codebase.jsonl").write_text("\n".join(lines[1:]) + "\n")  # drop the first valid answer
    with pytest.raises(DataFormatError, match=r"valid\.jsonl:1: answer url not in codebase\.jsonl"):
        load_codesearchnet("python", data_dir=folder, splits=("valid",))
    data = load_codesearchnet("python", data_dir=folder, splits=("valid",), errors="skip", verbose=False)
    assert len(data.valid) == 1 and data.report.skipped == {"answer url not in codebase.jsonl": 1}


def test_non_utf8_jsonl_names_the_line(tmp_path):
    folder = copy_fixture("advtest", tmp_path)
    with open(folder / "valid.jsonl", "ab") as handle:
        handle.write(b'{"url": "x", "docstring_tokens": ["caf\xe9"]}\n')
    with pytest.raises(DataFormatError, match=r"valid\.jsonl:3: line is not valid UTF-8"):
        load_advtest(data_dir=folder, verbose=False)
    data = load_advtest(data_dir=folder, errors="skip", verbose=False)
    assert len(data.valid) == 2 and data.report.skipped == {"line is not valid UTF-8": 1}


def test_cosqa_bad_records(tmp_path):
    folder = copy_fixture("cosqa", tmp_path)
    dev = json.loads((folder / "cosqa-retrieval-dev-500.json").read_text())
    dev.append({"idx": "cosqa-train-9", "doc": "python unknown", "code": "x", "label": 1, "retrieval_idx": 99})
    (folder / "cosqa-retrieval-dev-500.json").write_text(json.dumps(dev))
    with pytest.raises(DataFormatError, match=r"cosqa-retrieval-dev-500\.json record 2: retrieval_idx not in code_idx_map"):
        load_cosqa(data_dir=folder, splits=("valid",))
    (folder / "code_idx_map.txt").write_text('{"def f(): pass": 0,')
    with pytest.raises(DataFormatError, match=r"code_idx_map\.txt:1: malformed JSON"):
        load_cosqa(data_dir=folder, splits=("valid",))


# -- nothing local, offline -----------------------------------------------------------------------------
def test_offline_without_local_files_names_what_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_SOFTNCE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as raised:
        load_codesearchnet("python")
    message = str(raised.value)
    assert "codebase.jsonl" in message and str(tmp_path / "cache" / "datasets" / "codesearchnet" / "python") in message
    with pytest.raises(FileNotFoundError, match="someone/codesearchnet-filtered") as raised:
        load_codesearchnet("python", hub_id="someone/codesearchnet-filtered")
    assert "data_dir=" in str(raised.value)
    with pytest.raises(FileNotFoundError, match="code_idx_map.txt"):
        load_cosqa()
    with pytest.raises(FileNotFoundError, match=r"no such|none of|missing"):
        load_advtest(data_dir=tmp_path / "empty-dir")
    partial = copy_fixture("codesearchnet", tmp_path) / "python"
    (partial / "test.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['test.jsonl'\]"):
        load_codesearchnet("python", data_dir=partial, splits=("train", "test"))


# -- the Hub paths, wired to local fixtures (no network here) ---------------------------------------------
def test_hub_snapshot_path_reads_the_published_layout(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(CSN)  # a snapshot holding <language>/train.jsonl ...

    monkeypatch.setenv("HF_SOFTNCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    data = load_codesearchnet("python", hub_id="org/csn-graphcodebert", revision="v1", duplicate_groups=False,
                              verbose=False)
    assert len(data.train) == 4 and len(data.valid) == 2
    (repo_id, kwargs), = calls
    assert repo_id == "org/csn-graphcodebert"
    assert kwargs["repo_type"] == "dataset" and kwargs["revision"] == "v1"
    assert "python/codebase.jsonl" in kwargs["allow_patterns"]


def test_advtest_hub_dataset_path_maps_splits(tmp_path, monkeypatch):
    import datasets

    rows = [json.loads(line) for line in (FIXTURES / "advtest" / "test.jsonl").read_text().splitlines()]
    # The Hub copy names the token column code_tokens and the validation split "validation".
    hub_rows = [{**{k: v for k, v in row.items() if k != "function_tokens"}, "code_tokens": row["function_tokens"]}
                for row in rows]
    requested = []

    def fake_load_dataset(path, split=None, revision=None):
        requested.append((path, split))
        return datasets.Dataset.from_list(hub_rows)

    monkeypatch.setenv("HF_SOFTNCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_advtest(splits=("valid", "test"), duplicate_groups=False, verbose=False)
    assert requested == [("google/code_x_glue_tc_nl_code_search_adv", "validation"),
                         ("google/code_x_glue_tc_nl_code_search_adv", "test")]
    url = "https://github.com/c/r/blob/s/z.py#L7"
    assert data.test.corpus[url] == "def func_name ( arg_0 ) : return arg_0 [ 0 ]"


# -- wrongly typed fields, empty inputs -------------------------------------------------------
def first_train_record(folder: Path) -> dict:
    return json.loads((folder / "train.jsonl").read_text().splitlines()[0])


@pytest.mark.parametrize(
    "column, value, expected",
    [
        ("docstring_tokens", 5, "field 'docstring_tokens' is not a list of strings (got int 5)"),
        ("url", ["a", "b"], "field 'url' is not a string (got list ['a', 'b'])"),
        ("code_tokens", {"a": 1}, "field 'code_tokens' is not a list of strings (got dict {'a': 1})"),
        ("code_tokens", [None, 3], "field 'code_tokens' is not a list of strings (got list [None, 3])"),
        ("docstring_tokens", ["Add", None], "field 'docstring_tokens' is not a list of strings (got list ['Add', None])"),
        ("repo", ["org", "repo"], "field 'repo' is not a string (got list ['org', 'repo'])"),
    ],
)
def test_wrongly_typed_field_names_file_line_and_field_or_is_a_counted_skip(tmp_path, column, value, expected):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    line = append_line(folder / "train.jsonl", json.dumps({**first_train_record(folder), "url": "u9", column: value}))
    with pytest.raises(DataFormatError) as raised:
        load_codesearchnet("python", data_dir=folder, splits=("train",), verbose=False)
    assert str(raised.value) == (f"{folder / 'train.jsonl'}:{line}: {expected}. "
                                 "Pass errors='skip' to skip such input and count it instead.")
    data = load_codesearchnet("python", data_dir=folder, splits=("train",), errors="skip", verbose=False)
    assert len(data.train) == 4  # the other records are all loaded
    reason = expected.split(" (got")[0]
    assert data.report.skipped == {reason: 1}
    assert data.report.examples[reason] == [f"{folder / 'train.jsonl'}:{line}"]


def test_every_bad_line_keeps_its_location(tmp_path):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    record = first_train_record(folder)
    lines = [append_line(folder / "train.jsonl", json.dumps({**record, "docstring_tokens": 5})) for _ in range(10)]
    data = load_codesearchnet("python", data_dir=folder, splits=("train",), errors="skip", verbose=False)
    reason = "field 'docstring_tokens' is not a list of strings"
    assert data.report.skipped == {reason: 10}
    assert data.report.examples[reason] == [f"{folder / 'train.jsonl'}:{line}" for line in lines]
    printed = data.report.format()
    assert f"at {folder / 'train.jsonl'}:{lines[0]}, " in printed and "(+7 more; all in .examples)" in printed


@pytest.mark.parametrize("split", ["train", "valid"])
@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_empty_split_file_is_an_error_naming_it(tmp_path, split, errors):
    folder = copy_fixture("codesearchnet", tmp_path) / "python"
    (folder / f"{split}.jsonl").write_text("\n")
    with pytest.raises(DataFormatError) as raised:
        load_codesearchnet("python", data_dir=folder, splits=(split,), errors=errors, verbose=False)
    assert str(raised.value) == (f"{folder / f'{split}.jsonl'}: no records (the file is empty or holds only blank "
                                 "or unreadable lines).")


def test_split_whose_records_are_all_bad_is_an_error_under_skip(tmp_path):
    folder = copy_fixture("advtest", tmp_path)
    (folder / "valid.jsonl").write_text('{"url": "x"}\n{"url": "y", "docstring_tokens": 3}\n')
    with pytest.raises(DataFormatError) as raised:
        load_advtest(data_dir=folder, errors="skip", verbose=False)
    assert str(raised.value) == (f"{folder / 'valid.jsonl'}: none of its 2 records is usable "
                                 "(2 skipped as bad input, 0 filtered by rule so far).")


def test_cosqa_string_label_is_read_as_a_number_other_labels_are_bad_input(tmp_path):
    folder = copy_fixture("cosqa", tmp_path)
    train = json.loads((folder / "cosqa-train.json").read_text())
    assert [record["label"] for record in train] == [1, 1, 0]
    train[0]["label"], train[2]["label"] = "1", "0"
    (folder / "cosqa-train.json").write_text(json.dumps(train))
    data = load_cosqa(data_dir=folder, splits=("train",), verbose=False)
    assert data.train["query"] == ["python flatten list of lists", "python string to integer"]
    assert data.report.filtered == {"CoSQA pair labelled 0 (code does not answer the query)": 1}

    train[1]["label"] = "yes"
    (folder / "cosqa-train.json").write_text(json.dumps(train))
    with pytest.raises(DataFormatError, match=r"cosqa-train\.json record 1: field 'label' is not 0 or 1 \(got str 'yes'\)"):
        load_cosqa(data_dir=folder, splits=("train",), verbose=False)
    data = load_cosqa(data_dir=folder, splits=("train",), errors="skip", verbose=False)
    assert data.train["query"] == ["python flatten list of lists"]
    assert data.report.skipped == {"field 'label' is not 0 or 1": 1}


def test_cosqa_wrongly_typed_query_is_skipped_with_its_record(tmp_path):
    folder = copy_fixture("cosqa", tmp_path)
    dev = json.loads((folder / "cosqa-retrieval-dev-500.json").read_text())
    dev.append({**dev[0], "idx": "cosqa-train-9", "doc": {"text": "x"}})
    (folder / "cosqa-retrieval-dev-500.json").write_text(json.dumps(dev))
    with pytest.raises(DataFormatError, match=r"dev-500\.json record 2: field 'doc' is not a list of strings"):
        load_cosqa(data_dir=folder, splits=("valid",), verbose=False)
    data = load_cosqa(data_dir=folder, splits=("valid",), errors="skip", verbose=False)
    assert list(data.valid.queries) == ["cosqa-train-1", "cosqa-train-2"]


def test_cosqa_codebase_index_of_the_wrong_type(tmp_path):
    folder = copy_fixture("cosqa", tmp_path)
    index = json.loads((folder / "code_idx_map.txt").read_text())
    index["def extra(): pass"] = [7]
    (folder / "code_idx_map.txt").write_text(json.dumps(index))
    with pytest.raises(DataFormatError) as raised:
        load_cosqa(data_dir=folder, splits=("valid",), verbose=False)
    assert str(raised.value).startswith(f"{folder / 'code_idx_map.txt'}: retrieval_idx in code_idx_map.txt is not a "
                                        "string or an integer (got list [7])")
    data = load_cosqa(data_dir=folder, splits=("valid",), errors="skip", verbose=False)
    assert len(data.valid.corpus) == len(index) - 1


def test_a_duplicate_code_index_or_query_url_is_bad_input_not_a_silent_overwrite(tmp_path):
    """Two CoSQA codes under one retrieval_idx would make a query's gold code whichever came last; two CodeSearchNet
    test records with one url would keep only the second query: each is a one-line error, or a counted skip that
    keeps the first."""
    folder = copy_fixture("cosqa", tmp_path)
    index = json.loads((folder / "code_idx_map.txt").read_text())
    first_code, first_index = next(iter(index.items()))
    index["def another(): return 1"] = first_index
    (folder / "code_idx_map.txt").write_text(json.dumps(index))
    duplicate = rf"duplicate retrieval_idx in code_idx_map.txt \({first_index!r} \(a second code; the first is kept"
    with pytest.raises(DataFormatError, match=rf"^{folder / 'code_idx_map.txt'}: {duplicate}"):
        load_cosqa(data_dir=folder, splits=("valid",), verbose=False)
    data = load_cosqa(data_dir=folder, splits=("valid",), errors="skip", verbose=False)
    assert data.valid.corpus[str(first_index)] == first_code and data.report.skipped == {
        "duplicate retrieval_idx in code_idx_map.txt": 1}

    csn = copy_fixture("codesearchnet", tmp_path) / "python"
    lines = (csn / "test.jsonl").read_text().splitlines()
    (csn / "test.jsonl").write_text("\n".join(lines + [lines[0]]) + "\n")
    with pytest.raises(DataFormatError, match=rf"test.jsonl:{len(lines) + 1}: duplicate url in the test split"):
        load_codesearchnet("python", data_dir=csn.parent, splits=("test",), verbose=False)
    data = load_codesearchnet("python", data_dir=csn.parent, splits=("test",), errors="skip", verbose=False)
    assert len(data.test.queries) == len(lines) and data.report.skipped == {"duplicate url in the test split": 1}
