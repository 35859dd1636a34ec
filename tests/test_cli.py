"""The ``hf-softnce`` console script: fast --help, one-line user errors with status 2, --debug tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hf_softnce.cli import build_parser, main
from hf_softnce.cli._errors import CLIError

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "datasets", "sentence_transformers", "transformers", "faiss", "huggingface_hub", "pandas")


def test_help_imports_none_of_the_heavy_libraries():
    # A fresh interpreter: this test process has them all loaded already.
    code = (
        "import sys\n"
        "from hf_softnce.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
    assert "build-corpus" in done.stdout and "--debug" in done.stdout


def test_every_subcommand_is_registered_with_its_flags():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert list(commands) == ["build-corpus", "train", "main", "mine-negatives", "label-order", "evaluate", "push"]
    args = parser.parse_args(["main", "lr=1", "--quick", "--output-dir", "x", "--seeds", "1", "2"])
    assert (args.size, args.output_dir, args.seeds, args.overrides) == ("quick", "x", [1, 2], ["lr=1"])


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["build-corpus", "--output-dir", "{file}"], "--output-dir"),
        (["main", "--quick", "--output-dir", "{file}"], "--output-dir"),
        (["mine-negatives", "--data", "d", "--output", "{file}"], "--output"),
        (["label-order", "--data", "d", "--output", "{file}", "--teacher", "bm25"], "--output"),
    ],
)
def test_output_folder_that_is_a_file_is_one_line_and_status_2(tmp_path, capsys, argv, flag):
    file = tmp_path / "results.txt"
    file.write_text("not a folder")
    assert main([part.replace("{file}", str(file)) for part in argv]) == 2
    assert capsys.readouterr().err == f"hf-softnce: error: {flag} {str(file)!r} is a file, not a folder.\n"
    assert file.read_text() == "not a folder"


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["mine-negatives", "--data", str(missing), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hf-softnce: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(missing) in err
    with pytest.raises(CLIError):
        main(["--debug", "mine-negatives", "--data", str(missing), "--output", str(tmp_path / "out")])

    assert main(["label-order", "--data", "d", "--output", str(tmp_path / "o"), "--action", "judge"]) == 2
    assert capsys.readouterr().err == "hf-softnce: error: --action judge needs --judge module:function.\n"


def test_a_bug_is_not_hidden_as_a_user_error(monkeypatch):
    import hf_softnce.cli.build_corpus as command

    def broken(args):
        raise ZeroDivisionError("a bug")

    parser_args = ["build-corpus"]
    monkeypatch.setattr(command, "run_build_corpus", broken)
    with pytest.raises(ZeroDivisionError):
        main(parser_args)


def test_python_dash_m_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "hf_softnce.cli", "evaluate", "m"], cwd=ROOT, capture_output=True,
                          text=True)
    assert (done.returncode, done.stderr) == (2, "hf-softnce: error: evaluate: give --data PATH and/or --cosqa DIR.\n")
