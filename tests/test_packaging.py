"""Installed-package habits: every dependency is used, and the shared data folders are found outside a checkout."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hf_softnce.data import find_shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
# Distribution name -> the module it installs, where the two differ.
MODULE_OF = {"scikit-learn": "sklearn", "PyYAML": "yaml", "Jinja2": "jinja2", "huggingface-hub": "huggingface_hub",
             "sentence-transformers": "sentence_transformers"}


def install_requires() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    requires = next(kw.value for kw in call.keywords if kw.arg == "install_requires")
    return [re.split(r"[<>=!~ ]", ast.literal_eval(item))[0] for item in requires.elts]


def test_every_install_requirement_is_imported():
    sources = "\n".join(path.read_text() for folder in ("hf_softnce", "recipes") for path in (ROOT / folder).rglob("*.py"))
    unused = [
        name for name in install_requires()
        if not re.search(rf"^\s*(import|from) {MODULE_OF.get(name, name)}\b", sources, flags=re.MULTILINE)
    ]
    assert unused == []


def test_shared_data_dir_from_the_environment_then_the_working_directory(tmp_path, monkeypatch):
    env_root, work = tmp_path / "env", tmp_path / "project" / "run"
    (env_root / "conala").mkdir(parents=True)
    (tmp_path / "project" / "shared" / "data" / "cosqa").mkdir(parents=True)
    (tmp_path / "project" / "shared" / "data" / "cosqa" / "marker.json").write_text("{}")
    work.mkdir(parents=True)
    (tmp_path / "project" / "shared" / "data" / "conala").mkdir()
    monkeypatch.chdir(work)  # ../shared/data from here is tmp_path/project/shared/data
    monkeypatch.setenv("HF_SOFTNCE_DATA_DIR", str(env_root))
    assert find_shared_data_dir("conala") == (env_root / "conala").resolve()  # the variable comes first
    assert find_shared_data_dir("cosqa", marker="marker.json") == (tmp_path / "project/shared/data/cosqa").resolve()
    assert find_shared_data_dir("cosqa", marker="missing.json") is None
    assert find_shared_data_dir("no-such-folder") is None
