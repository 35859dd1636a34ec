"""The module graph: no import cycle between the main job and the publishing code."""

from __future__ import annotations

import ast
from pathlib import Path

import hf_softnce

PACKAGE = Path(hf_softnce.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (a deferred import is still a cycle)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_main_job_and_publish_do_not_import_each_other():
    publish = imported_modules(PACKAGE / "training" / "publish.py")
    main_job = imported_modules(PACKAGE / "training" / "main_job.py")
    assert "hf_softnce.training.main_job" not in publish
    assert "hf_softnce.training.publish" in main_job  # the direction that stays: the job writes the card
