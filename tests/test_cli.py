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


def test_redirected_stdout_is_flushed_per_line_so_a_log_keeps_its_order(tmp_path, monkeypatch):
    import io

    redirected = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # block-buffered, as a file is
    monkeypatch.setattr(sys, "stdout", redirected)
    assert not redirected.line_buffering
    main(["label-order", "--data", "d", "--output", str(tmp_path / "o"), "--action", "judge"])
    assert redirected.line_buffering
    print("a line")
    assert redirected.buffer.getvalue() == b"a line\n"  # on its way to the file before anything else is written


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


def test_version_and_python_dash_m_hf_softnce():
    from hf_softnce import __version__

    done = subprocess.run([sys.executable, "-m", "hf_softnce", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"hf-softnce {__version__}\n")


def _option_actions():
    parser = build_parser()
    yield "hf-softnce", parser
    yield from parser._subparsers._group_actions[0].choices.items()


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    missing = []
    for command, parser in _option_actions():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            text = formatter._get_help_string(action) if action.help else ""
            # A switch (--quiet, --quick) is off unless given; a required option has no default to show.
            needs_default = action.nargs != 0 and not action.required
            if not text or (needs_default and "default" not in text.lower()):
                missing.append(f"{command} {action.option_strings[0]}")
    assert missing == []


def test_help_shows_the_defaults_that_were_missing(capsys):
    with pytest.raises(SystemExit):
        main(["mine-negatives", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("negatives per row (R2PS: 31) (default: 31)", "(default: skip)", "(default: no margin)"):
        assert expected in text
    with pytest.raises(SystemExit):
        main(["label-order", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "or ask --judge (default: raise)" in text and "label increase of a flagged negative (default: 0.1)" in text
    for command in ("train", "main"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "options:" in capsys.readouterr().out.split("\n\n", 2)[2]  # a description before the options


def test_main_without_a_size_says_what_each_size_runs_and_stops(capsys, monkeypatch):
    import hf_softnce.training.main_job as job
    from hf_softnce.training.plan import SIZES

    # What the message says each size runs is what the plan runs.
    assert SIZES["quick"].seeds == [42] and SIZES["full"].seeds == [42, 43]
    assert SIZES["full"].more_seeds_within == 0.01 and SIZES["quick"].settings["max_steps"] == 160
    assert SIZES["quick"].settings["max_seq_length"] == 64 and SIZES["quick"].settings["max_train_pairs"] == 2560

    monkeypatch.setattr(job, "run_main_job", lambda *a, **k: pytest.fail("the main job started"))
    assert main(["main"]) == 2
    assert capsys.readouterr().err == (
        "hf-softnce: error: main: choose a size: --quick (CoSQA train, base + InfoNCE + the default row + the "
        "strongest peer, 160 steps of 16 at 64 tokens, 1 seed) or --full (CoSQA train, one epoch at batch 64, every "
        "row (hf_softnce's, sentence-transformers' peers on mined negatives, the R2PS cascade), seed 42, then seed 43 "
        "for the rows within 0.01 of the best).\n"
    )


def test_train_defaults_are_the_recipes_default_yaml_and_it_says_where_things_went(capsys, monkeypatch, tmp_path):
    import hf_softnce.training.data as data_module
    import hf_softnce.training.run as run_module
    from hf_softnce.training.config import load_config

    seen = {}

    def fake_train(config, data, progress=True):
        seen["config"], seen["data"] = config, data
        final = tmp_path / "run" / "final"
        final.mkdir(parents=True)
        (final / "README.md").write_text("card")
        metrics = {"test_mrr@1000": 0.5, "test_cosine_mrr@1000": 0.5, "test_recall@1": 0.25, "test_ndcg@10": 0.6}
        return run_module.RunResult(config, None, None, metrics, tmp_path / "run")

    monkeypatch.setattr(data_module, "load_task_data", lambda config, progress=True: "the data")
    monkeypatch.setattr(run_module, "train_retriever", fake_train)
    argv = ["train", "max_steps=2", "--output-dir", str(tmp_path / "run"), "--resume-from-checkpoint"]
    assert main(argv) == 0
    expected = load_config(ROOT / "recipes" / "configs" / "default.yaml",
                           {"max_steps": 2, "output_dir": str(tmp_path / "run"), "resume_from_checkpoint": "last"})
    assert seen == {"config": expected, "data": "the data"}
    out = capsys.readouterr().out
    assert out.count("| model | MRR@1000 | R@1 | NDCG@10 |") == 1 and "| trained | 0.5000 | 0.250 | 0.6000 |" in out
    assert out.endswith(f"Saved the model to {tmp_path / 'run' / 'final'}\nSaved the model card to "
                        f"{tmp_path / 'run' / 'final' / 'README.md'}\nSaved every metric to "
                        f"{tmp_path / 'run' / 'metrics.json'}\n")


def test_train_with_a_model_that_cannot_load_stops_before_the_data(capsys, monkeypatch):
    import hf_softnce.training.data as data_module

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(data_module, "load_task_data", lambda *a, **k: pytest.fail("the data was built"))
    assert main(["train", "model=nope-model"]) == 2
    assert capsys.readouterr().err.startswith("hf-softnce: error: model 'nope-model': no such folder")
