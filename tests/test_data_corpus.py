"""build_python_corpus on hand-written modules: exact pairs, filters, splits, cache, bad input, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from hf_softnce.data import DataFormatError, SkipReport, all_columns
from hf_softnce.data import build_python_corpus as _build_python_corpus
from hf_softnce.data import python_functions
from hf_softnce.cli import main as cli_main
from hf_softnce.data.splits import assign_package_splits


def build_python_corpus(*args, **kwargs):
    """The builder, with every column readable by name: these tests inspect the identity columns, which the
    builder keeps out of the rows a trainer reads (tests/test_training_outputs.py)."""
    from datasets import DatasetDict

    return DatasetDict({name: all_columns(split) for name, split in _build_python_corpus(*args, **kwargs).items()})

CORE = '''\
"""Module docstring: not a function."""
import os


def add_numbers(a, b):
    """Add two numbers and return the sum.

    The second paragraph is not part of the query.
    """
    # the comment stays in the code
    return a + b


def short_doc(x):
    """Too short."""
    return x


def no_doc(x):
    return x


def stub(x):
    """This one is not implemented yet."""
    raise NotImplementedError("later")


def ellipsis_stub(x):
    """This one is a typing stub only."""
    ...


def test_helper_behaviour():
    """Check that the helper behaves well."""
    assert add_numbers(1, 2) == 3


def very_long(x):
    """Compute a long chain of steps."""
    a = x + 1
    b = a + 1
    c = b + 1
    d = c + 1
    e = d + 1
    f = e + 1
    g = f + 1
    return g


class Parser:
    """A tiny parser."""

    def parse_line(self, line):
        """Split a line into words by whitespace."""
        return line.split()

    async def fetch(self, url):
        """Fetch the given url without blocking."""
        return await self.get(url)


class TestParser:
    def check_words(self):
        """Make sure words are split correctly."""
        assert Parser().parse_line("a b") == ["a", "b"]


def outer(n):
    """Return a function that adds n to its argument."""

    def inner(x):
        """Add n to x, nested: part of outer's code."""
        return x + n

    return inner
'''

BETA = '''\
def multiply(a, b):
    """Multiply two values together."""
    return a * b
'''

TEST_MODULE = '''\
def helper_in_test_module(a):
    """Would be a pair if this were not a test module."""
    return a
'''

EXPECTED = {
    ("alpha", "alpha/core.py", "add_numbers", 5): (
        "Add two numbers and return the sum.",
        "def add_numbers(a, b):\n    # the comment stays in the code\n    return a + b",
    ),
    ("alpha", "alpha/core.py", "Parser.parse_line", 53): (
        "Split a line into words by whitespace.",
        "def parse_line(self, line):\n    return line.split()",
    ),
    ("alpha", "alpha/core.py", "Parser.fetch", 57): (
        "Fetch the given url without blocking.",
        "async def fetch(self, url):\n    return await self.get(url)",
    ),
    ("alpha", "alpha/core.py", "outer", 68): (
        "Return a function that adds n to its argument.",
        'def outer(n):\n\n    def inner(x):\n        """Add n to x, nested: part of outer\'s code."""\n'
        "        return x + n\n\n    return inner",
    ),
    ("beta", "beta.py", "multiply", 1): ("Multiply two values together.", "def multiply(a, b):\n    return a * b"),
}


def write_project(root: Path) -> Path:
    (root / "alpha").mkdir(parents=True)
    (root / "alpha" / "__init__.py").write_text("")
    (root / "alpha" / "core.py").write_text(CORE)
    (root / "beta.py").write_text(BETA)
    (root / "tests").mkdir()
    (root / "tests" / "helpers.py").write_text(TEST_MODULE)
    (root / "test_beta.py").write_text(TEST_MODULE)
    return root


def all_rows(corpus):
    return [row for split in corpus.values() for row in split]


def test_builder_extracts_exactly_the_expected_pairs_and_counts_the_rest(tmp_path):
    project = write_project(tmp_path / "project")
    report = SkipReport()
    corpus = build_python_corpus([str(project)], output_dir=tmp_path / "out", max_code_lines=8, progress=False,
                                 report=report)
    assert set(corpus) == {"train", "valid", "test"}
    rows = all_rows(corpus)
    got = {(r["package"], r["path"], r["func_name"], r["line"]): (r["query"], r["code"]) for r in rows}
    assert got == EXPECTED
    for row in rows:
        assert row["language"] == "python"
        assert row["id"] == f"{row['package']}:{row['path']}:{row['line']}:{row['func_name']}"
        assert row["license"] is None
    assert len({row["dup_group"] for row in rows}) == len(rows)  # nothing here is a duplicate
    assert report.filtered == {
        "no docstring": 1,
        "docstring shorter than 3 words": 1,
        "trivial body (pass / ... / raise NotImplementedError)": 2,
        "test function": 2,  # test_helper_behaviour, TestParser.check_words
        "longer than 8 lines": 1,
        "test module (whole file)": 2,  # tests/helpers.py, test_beta.py
    }
    assert report.skipped == {}


def write_many_packages(root: Path, count: int = 70) -> Path:
    for index in range(count):
        package = root / f"pkg{index:02d}"
        package.mkdir(parents=True)
        functions = "\n\n".join(
            f'def function_{index}_{j}(value):\n    """Return the value scaled by {index} and {j}."""\n'
            f"    return value * {index} + {j} * {index * 7 + j}\n"
            for j in range(1 + index % 9)
        )
        (package / "module.py").write_text(functions)
    return root


def test_splits_are_by_package_deterministic_and_sized(tmp_path):
    root = write_many_packages(tmp_path / "many")
    # 70 files: parsed by the process pool.
    first = build_python_corpus([str(root)], output_dir=tmp_path / "a", workers=2, progress=False)
    second = build_python_corpus([str(root)], output_dir=tmp_path / "b", workers=1, progress=False)
    packages = {name: set(split["package"]) for name, split in first.items()}
    assert not packages["train"] & packages["valid"]
    assert not packages["train"] & packages["test"]
    assert not packages["valid"] & packages["test"]
    for name in first:
        assert first[name]["id"] == second[name]["id"]
    total = sum(len(split) for split in first.values())
    assert total == sum(1 + i % 9 for i in range(70))
    shares = {name: len(split) / total for name, split in first.items()}
    assert shares["train"] == pytest.approx(0.8, abs=0.03)
    assert shares["valid"] == pytest.approx(0.1, abs=0.03)
    assert shares["test"] == pytest.approx(0.1, abs=0.03)


def test_split_assignment_balances_a_dominant_package():
    counts = {"big": 500, **{f"p{i}": 10 for i in range(50)}}
    assignment = assign_package_splits(counts, (0.8, 0.1, 0.1))
    assert assignment["big"] == "train"
    sizes = {name: sum(c for p, c in counts.items() if assignment[p] == name) for name in ("train", "valid", "test")}
    assert sizes == {"train": 800, "valid": 100, "test": 100}
    assert assign_package_splits(counts, (0.8, 0.1, 0.1)) == assignment
    with pytest.raises(ValueError, match="split ratios"):
        assign_package_splits(counts, (0.8, 0.2))
    with pytest.raises(ValueError, match=r"finite non-negative numbers, got \(nan, 0.1, 0.1\)"):
        assign_package_splits(counts, (float("nan"), 0.1, 0.1))  # NaN compares false: every package in train


def test_cross_split_duplicates_are_dropped_and_counted(tmp_path):
    root = write_many_packages(tmp_path / "many", count=20)
    copy = 'def copy_of_train(value):\n    """A copied helper returns the value doubled."""\n    return value * 2\n'
    for index in range(20):
        with open(root / f"pkg{index:02d}" / "module.py", "a") as handle:
            handle.write("\n\n" + copy)
    report = SkipReport()
    corpus = build_python_corpus([str(root)], output_dir=tmp_path / "out", progress=False, report=report)
    copies = {name: split["func_name"].count("copy_of_train") for name, split in corpus.items()}
    assert copies["train"] > 0 and copies["valid"] == 0 and copies["test"] == 0
    dropped = sum(count for reason, count in report.filtered.items() if reason.startswith("duplicate of a train"))
    assert dropped == 20 - copies["train"]
    kept = build_python_corpus([str(root)], output_dir=tmp_path / "kept", progress=False,
                               drop_cross_split_duplicates=False)
    assert sum(split["func_name"].count("copy_of_train") for split in kept.values()) == 20


def test_second_call_reuses_the_saved_corpus_without_parsing(tmp_path, monkeypatch):
    project = write_project(tmp_path / "project")
    parsed = []
    original = python_functions.extract_file

    def counting_extract_file(source, options):
        parsed.append(source.rel_path)
        return original(source, options)

    monkeypatch.setattr(python_functions, "extract_file", counting_extract_file)
    monkeypatch.setenv("HF_SOFTNCE_CACHE", str(tmp_path / "cache"))
    first = build_python_corpus([str(project)], workers=1, progress=False)
    assert sorted(parsed) == ["alpha/__init__.py", "alpha/core.py", "beta.py"]
    report = SkipReport()
    second = build_python_corpus([str(project)], workers=1, progress=False, report=report)
    assert len(parsed) == 3  # nothing parsed again
    assert report.filtered["test module (whole file)"] == 2  # the saved build's report comes back
    assert second["train"]["id"] == first["train"]["id"]
    assert second["train"].cache_files == first["train"].cache_files
    assert str(tmp_path / "cache" / "corpus") in second["train"].cache_files[0]["filename"]

    # Other options or a changed file: a new key, parsed again.
    build_python_corpus([str(project)], workers=1, progress=False, min_query_words=2)
    assert len(parsed) == 6
    (project / "beta.py").write_text(BETA + "\n\ndef more(a):\n    \"\"\"Another function with a docstring.\"\"\"\n    return a\n")
    third = build_python_corpus([str(project)], workers=1, progress=False)
    assert len(parsed) == 9
    assert "more" in [name for split in third.values() for name in split["func_name"]]
    build_python_corpus([str(project)], workers=1, progress=False, cache=False)
    assert len(parsed) == 12


def test_bad_source_files_raise_with_file_and_line_or_are_counted(tmp_path):
    project = write_project(tmp_path / "project")
    (project / "latin1.py").write_bytes(b'def f(x):\n    """Caf\xe9 au lait is served."""\n    return x\n')
    (project / "broken.py").write_text('def ok(x):\n    """Fine so far here."""\n    return x\n\ndef bad(:\n    pass\n')

    with pytest.raises(DataFormatError) as raised:
        build_python_corpus([str(project)], output_dir=tmp_path / "strict", errors="raise", progress=False)
    message = str(raised.value)
    assert f"{project / 'broken.py'}:5" in message and "unparsable Python source" in message

    report = SkipReport()
    corpus = build_python_corpus([str(project)], output_dir=tmp_path / "lenient", errors="skip", progress=False,
                                 report=report)
    assert report.skipped == {"source file is not valid text in its declared encoding": 1,
                              "unparsable Python source": 1}
    assert report.examples["unparsable Python source"] == [f"{project / 'broken.py'}:5"]
    assert report.examples["source file is not valid text in its declared encoding"] == [f"{project / 'latin1.py'}:2"]
    assert "ok" not in [name for split in corpus.values() for name in split["func_name"]]
    text = report.format()
    assert "2 skipped as bad input" in text and "broken.py:5" in text


def test_declared_encoding_is_honoured(tmp_path):
    root = tmp_path / "enc"
    root.mkdir()
    (root / "latin.py").write_bytes(
        b'# -*- coding: latin-1 -*-\ndef greet(x):\n    """Say caf\xe9 to the user politely."""\n    return x\n'
    )
    corpus = build_python_corpus([str(root)], output_dir=tmp_path / "out", progress=False, errors="raise")
    assert [row["query"] for row in all_rows(corpus)] == ["Say caf\u00e9 to the user politely."]


def test_installed_distribution_source_has_identity_and_license(tmp_path):
    corpus = build_python_corpus(["datasketch"], output_dir=tmp_path / "out", progress=False)
    rows = all_rows(corpus)
    assert rows and {row["package"] for row in rows} == {"datasketch"}
    assert {row["license"] for row in rows} == {"MIT"}
    assert all(row["path"].startswith("datasketch/") for row in rows)
    assert "MinHash.jaccard" in [row["func_name"] for row in rows]


def test_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no-such-distribution-xyz"):
        build_python_corpus(["no-such-distribution-xyz"], output_dir=tmp_path / "out", progress=False)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    project = write_project(tmp_path / "project")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        build_python_corpus([str(project)], output_dir=foreign, progress=False)
    assert (foreign / "precious.txt").read_text() == "keep me"


def test_build_corpus_command_prints_counts_and_report(tmp_path, capsys):
    project = write_project(tmp_path / "project")
    status = cli_main(["build-corpus", "--source", str(project), "--output-dir", str(tmp_path / "out"),
                            "--max-code-lines", "8", "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    corpus_rows = sum(int(line.split()[1]) for line in out.splitlines() if line.split()[:1] in (["train"], ["valid"], ["test"]))
    assert corpus_rows == len(EXPECTED)
    assert "duplicate groups: 5" in out
    assert "test module (whole file)" in out
    assert (tmp_path / "out" / "hf_softnce_corpus.json").exists()


def test_code_keeps_trailing_comments_and_non_ascii_and_cuts_inline_docstrings(tmp_path):
    root = tmp_path / "edge"
    root.mkdir()
    (root / "edge.py").write_text(
        'class Café:\n'
        '    @property\n'
        '    def näme(self):\n'
        '        """The name of the café, as a string."""\n'
        '        return self._näme  # cached\n'
        '\n'
        'def inline(x): "Return x plus one, inline."; return x + 1\n',
        encoding="utf-8",
    )
    corpus = build_python_corpus([str(root)], output_dir=tmp_path / "out", progress=False, errors="raise")
    codes = {row["func_name"]: row["code"] for row in all_rows(corpus)}
    assert codes == {
        "Café.näme": "def näme(self):\n    return self._näme  # cached",
        "inline": "def inline(x): return x + 1",
    }


def test_git_checkout_lists_tracked_files_only(tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "tracked.py").write_text(BETA)
    (root / "scratch.py").write_text(BETA.replace("multiply", "scratch_multiply"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "tracked.py"], check=True)
    corpus = build_python_corpus([str(root)], output_dir=tmp_path / "out", progress=False)
    assert [(row["package"], row["func_name"]) for row in all_rows(corpus)] == [("tracked", "multiply")]


# -- special files and empty splits -----------------------------------------------------------
def test_fifo_named_like_a_module_is_skipped_not_read(tmp_path):
    import os
    import signal

    project = write_project(tmp_path / "project")
    os.mkfifo(project / "pipe.py")

    def hung(signum, frame):
        # Not a TimeoutError: that is an OSError, which the reader would count as an unreadable file.
        raise AssertionError("build_python_corpus blocked on the FIFO")

    # Opening a FIFO for reading blocks until a writer comes: fail the test instead of hanging the suite.
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(DataFormatError) as raised:
            build_python_corpus([str(project)], output_dir=tmp_path / "strict", errors="raise", workers=1,
                                progress=False)
        report = SkipReport()
        corpus = build_python_corpus([str(project)], output_dir=tmp_path / "out", workers=1, progress=False,
                                     max_code_lines=8, report=report)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert str(raised.value) == (f"{project / 'pipe.py'}: not a regular file (a FIFO). "
                                 "Pass errors='skip' to skip such input and count it instead.")
    assert report.skipped == {"not a regular file": 1}
    assert report.examples["not a regular file"] == [str(project / "pipe.py")]
    got = {(r["package"], r["path"], r["func_name"], r["line"]) for r in all_rows(corpus)}
    assert got == set(EXPECTED)


def test_empty_splits_are_warnings_in_the_report_naming_the_split(tmp_path):
    root = write_many_packages(tmp_path / "three", count=3)  # packages of 1, 2 and 3 functions
    report = SkipReport()
    corpus = build_python_corpus([str(root)], output_dir=tmp_path / "out", workers=1, progress=False, report=report)
    # Targets 4.8 / 0.6 / 0.6 functions, largest package first to the largest deficit: 3 and 2 -> train,
    # 1 -> valid (ties go to the earlier split), nothing left for test.
    assert {name: len(split) for name, split in corpus.items()} == {"train": 5, "valid": 1, "test": 0}
    warning = ("the test split is empty (3 package(s) for ratios (0.8, 0.1, 0.1); splits are by package, so add "
               "sources or change split_ratios)")
    assert report.warnings == [warning]
    assert f"  warning  {warning}" in report.format().splitlines()
    # A cache hit reports the same warning (it is saved with the corpus).
    again = SkipReport()
    build_python_corpus([str(root)], output_dir=tmp_path / "out", workers=1, progress=False, report=again)
    assert again.warnings == [warning]

    root = write_many_packages(tmp_path / "one", count=1)
    report = SkipReport()
    build_python_corpus([str(root)], output_dir=tmp_path / "out1", workers=1, progress=False, report=report)
    assert [message.split(" (")[0] for message in report.warnings] == ["the valid split is empty",
                                                                        "the test split is empty"]
