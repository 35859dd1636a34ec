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


def subpackage_graph() -> dict[str, set[str]]:
    """``{subpackage: subpackages it imports}``; a top-level module (``embedding_cache``) is its own node."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        node = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        targets = {name.split(".")[1] for name in imported_modules(path) if name.startswith("hf_softnce.")}
        graph.setdefault(node, set()).update(targets - {node})
    return graph


def test_subpackages_import_each_other_in_one_direction_only():
    """It failed on `evaluation` <-> `retrieval`: the evaluator searched with retrieval's top-k, and the cascade's
    evaluation imported evaluation's metrics. A cycle between rooms means neither can be read or loaded alone."""
    graph = subpackage_graph()
    assert "retrieval" in graph["evaluation"]  # the direction that stays: evaluators search
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert cycles == []


def test_losses_hold_losses_and_import_only_the_estimator_interface():
    """losses/ builds on the shared batch module and the estimator interface, never on an estimator, a model
    factory or a training loop: a loss can then be read, and an estimator changed, alone."""
    for path in (PACKAGE / "losses").glob("*.py"):
        imported = imported_modules(path)
        weighting = {name for name in imported if name.startswith("hf_softnce.weighting")}
        assert weighting <= {"hf_softnce.weighting.base"}, (path.name, weighting)
        assert not {name for name in imported if name.startswith(("hf_softnce.training", "hf_softnce.mining"))}
