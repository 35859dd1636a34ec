"""Which Python files a corpus is mined from: the standard library, installed distributions, directories.

A source spec is one of

* ``"stdlib"``: the running interpreter's standard library (license PSF-2.0); package = top-level module;
* ``"requires:<dist>"``: every installed direct requirement of distribution ``<dist>`` (extras excluded),
  e.g. ``"requires:hf_softnce"`` for this project's dependencies;
* a distribution name (``"requests"``): the ``.py`` files its RECORD lists (via ``importlib.metadata``),
  license from its metadata; package = the distribution name;
* a directory path: a git checkout is listed with ``git ls-files`` (tracked files only), any other
  directory is walked; package = the top-level module or package (below ``src/`` for src layouts).

Test modules (``test_*.py``, ``*_test.py``, ``conftest.py``, anything under a ``test``/``tests`` folder)
are left out here and counted in the report.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hf_softnce.data.python_functions import SourceFile
from hf_softnce.data.report import SkipReport

STDLIB = "stdlib"
REQUIRES_PREFIX = "requires:"
STDLIB_LICENSE = "PSF-2.0"
TEST_DIRS = {"test", "tests", "idle_test"}
# Folders that hold other projects' files or build products, never the project's own modules.
SKIPPED_DIRS = {"__pycache__", "site-packages", "dist-packages", "node_modules", "build", "dist"}


@dataclass
class ResolvedSource:
    spec: str
    kind: str  # "stdlib" | "distribution" | "directory"
    root: str
    files: list[SourceFile] = field(default_factory=list)


def is_test_module(rel_path: str) -> bool:
    path = PurePosixPath(rel_path)
    name = path.name
    if name == "conftest.py" or name == "tests.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    return any(part in TEST_DIRS for part in path.parts[:-1])


def _walk_python_files(root: Path, importable_only: bool) -> list[str]:
    """Posix paths of ``.py`` files under root, relative to it, in sorted order."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        keep = []
        for name in dirnames:
            if name.startswith(".") or name in SKIPPED_DIRS:
                continue
            if importable_only and not name.isidentifier():
                continue  # e.g. the stdlib's lib-dynload, config-3.11-x86_64-linux-gnu
            if (Path(dirpath) / name / "pyvenv.cfg").exists():
                continue  # a virtual environment inside a checkout
            keep.append(name)
        dirnames[:] = sorted(keep)
        rel_dir = Path(dirpath).relative_to(root)
        found.extend((rel_dir / name).as_posix() for name in sorted(filenames) if name.endswith(".py"))
    return found


def _top_level_package(rel_path: str) -> str:
    parts = PurePosixPath(rel_path).parts
    if len(parts) > 1 and parts[0] == "src":
        parts = parts[1:]
    return parts[0][:-3] if parts[0].endswith(".py") else parts[0]


def _keep(rel_paths, report: SkipReport, where: str):
    for rel_path in rel_paths:
        if is_test_module(rel_path):
            report.filter("test module (whole file)", f"{where}/{rel_path}")
        else:
            yield rel_path


def resolve_stdlib(report: SkipReport) -> ResolvedSource:
    root = Path(sysconfig.get_paths()["stdlib"])
    source = ResolvedSource(STDLIB, "stdlib", str(root))
    for rel_path in _keep(_walk_python_files(root, importable_only=True), report, str(root)):
        package = _top_level_package(rel_path)
        source.files.append(SourceFile(str(root / rel_path), rel_path, package, STDLIB_LICENSE))
    return source


def distribution_license(dist: metadata.Distribution) -> str | None:
    """The declared license: License-Expression, else a one-line License field, else the trove classifiers."""
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    declared = (meta.get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 80 and declared.upper() != "UNKNOWN":
        return declared
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return " OR ".join(classifiers) or None


def resolve_distribution(name: str, report: SkipReport) -> ResolvedSource:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ValueError(f"Corpus source {name!r}: no installed distribution by that name and no such directory.")
    if dist.files is None:
        raise ValueError(f"Corpus source {name!r}: the distribution lists no files (no RECORD in its metadata).")
    package = dist.metadata["Name"]
    license_ = distribution_license(dist)
    root = Path(dist.locate_file(""))
    source = ResolvedSource(name, "distribution", str(root))
    # RECORD paths starting with ".." are scripts installed outside site-packages (bin/).
    rel_paths = sorted(str(f) for f in dist.files if str(f).endswith(".py") and not str(f).startswith(".."))
    for rel_path in _keep(rel_paths, report, package):
        abs_path = Path(dist.locate_file(rel_path))
        if abs_path.is_file():
            source.files.append(SourceFile(str(abs_path), PurePosixPath(rel_path).as_posix(), package, license_))
        else:
            report.skip("file listed in RECORD but missing on disk", str(abs_path))
    return source


def direct_requirements(name: str, report: SkipReport) -> list[str]:
    """Installed direct requirements of a distribution; extras and unmet markers excluded."""
    from packaging.requirements import Requirement

    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        raise ValueError(f"Corpus source '{REQUIRES_PREFIX}{name}': no installed distribution {name!r}.")
    names = []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            report.skip("requirement not installed", f"{name} -> {requirement.name}")
            continue
        names.append(requirement.name)
    return names


def _git_tracked_python_files(root: Path) -> list[str] | None:
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", "*.py"], capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # not a usable git checkout: walk it instead
    return sorted(path for path in listed.decode("utf-8", "surrogateescape").split("\0") if path)


def resolve_directory(path: str | os.PathLike, report: SkipReport) -> ResolvedSource:
    root = Path(path).resolve()
    if not root.is_dir():
        raise ValueError(f"Corpus source {str(path)!r}: no such directory.")
    rel_paths = _git_tracked_python_files(root) if (root / ".git").exists() else None
    if rel_paths is None:
        rel_paths = _walk_python_files(root, importable_only=False)
    source = ResolvedSource(str(path), "directory", str(root))
    for rel_path in _keep(rel_paths, report, str(root)):
        source.files.append(SourceFile(str(root / rel_path), rel_path, _top_level_package(rel_path), None))
    return source


def resolve_sources(specs, report: SkipReport) -> list[ResolvedSource]:
    """Resolve specs to files; a file reached twice (same real path) belongs to the first source only."""
    expanded = []
    for spec in [specs] if isinstance(specs, (str, os.PathLike)) else list(specs):
        if isinstance(spec, str) and spec.startswith(REQUIRES_PREFIX):
            expanded.extend(direct_requirements(spec[len(REQUIRES_PREFIX) :], report))
        else:
            expanded.append(spec)
    resolved, seen = [], set()
    for spec in expanded:
        if spec == STDLIB:
            source = resolve_stdlib(report)
        elif isinstance(spec, os.PathLike) or os.path.isdir(spec):
            source = resolve_directory(spec, report)
        else:
            source = resolve_distribution(spec, report)
        unique = []
        for file in source.files:
            real = os.path.realpath(file.abs_path)
            if real not in seen:
                seen.add(real)
                unique.append(file)
        source.files = unique
        resolved.append(source)
    return resolved
