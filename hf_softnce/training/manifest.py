"""A main-job folder's manifest and its completed steps: a stopped run resumes, a different run never mixes in.

``manifest.json`` is written before any work: the run's configuration (size, seeds, rows, every setting) and the
code version (on a resume under another version, every version that worked in the folder). Each finished step (the
zero-shot evaluation, a row's seed, a cascade's seed) writes ``complete.json`` in its own folder after all its other
files, atomically, so a step counts only when it is whole. A re-run with the same manifest reads the completed steps
back and does the rest; a re-run with another one stops with one line before any work, unless ``overwrite`` starts
the folder afresh. The seeds and rows may differ between runs of one
folder: each seed's and row's steps live in their own folders, so a finished run takes another seed or more rows
(the same settings), and a run stopped mid-way can report the seeds it completed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

MANIFEST = "manifest.json"
COMPLETE = "complete.json"
# Keys of the run that may change between runs of one folder (each seed's and row's steps are folders of their own).
PER_STEP_KEYS = ("seeds", "rows", "cascade")


class RunFolderMismatch(ValueError):
    """The output folder holds another run's work: the message is one line naming the first difference."""


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    partial.replace(path)


def code_version() -> str:
    """hf_softnce's version, and the source checkout's commit when there is one."""
    from hf_softnce import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def open_run_folder(output_dir: Path, run: dict, *, overwrite: bool = False, defaults: dict | None = None,
                    works: bool = True, remedy: str = "use another --output-dir or --overwrite") -> bool:
    """Claim ``output_dir`` for ``run`` (the planned configuration); True when it resumes an earlier, stopped run.

    ``defaults``: ``{section: {key: value}}``, the value a key of ``run[section]`` has when a run does not set it. A
    key one manifest lacks counts as that value, so a run stopped under a version without the key resumes when
    this run leaves it at its default (a new key's default keeps the behaviour of the version before it).
    ``works``: False for a run that only reports (``--report-only``): its version is not added to ``code_versions``.
    ``remedy``: the refusal's last words (what the user can do).

    Raises:
        RunFolderMismatch: the folder's manifest describes another configuration (and ``overwrite`` is False); the
            message names the first differing key (``settings.max_steps``) and both values.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / MANIFEST
    version = code_version()
    manifest = {"run": run, "code_versions": [version]}
    stored = None if overwrite else check_run_folder(output_dir, run, defaults=defaults, remedy=remedy)
    if stored is not None:
        earlier = stored["run"]
        # Every version that worked in the folder, oldest first (a manifest before the list: its one code_version):
        # completed steps keep the code they ran under. A run that only reports does no work.
        versions = list(stored.get("code_versions") or [stored.get("code_version", version)])
        if works and version != versions[-1]:
            print(f"resuming a run started under hf_softnce {versions[0]}, now {version}: completed steps keep "
                  "the code they ran under (manifest.json lists each version)")
            versions.append(version)
        manifest["code_versions"] = versions
        if earlier != run or stored.get("code_versions") != versions:  # other seeds, rows or keys; a new version
            write_atomically(path, json.dumps(manifest, indent=2))
        return True
    if overwrite:
        for done in output_dir.rglob(COMPLETE):
            done.unlink()
        for summary in ("results.json", "results.md", "results.png"):
            (output_dir / summary).unlink(missing_ok=True)
        shutil.rmtree(output_dir / "hub", ignore_errors=True)
    write_atomically(path, json.dumps(manifest, indent=2))
    return False


def check_run_folder(output_dir: Path, run: dict, *, defaults: dict | None = None,
                     remedy: str = "use another --output-dir or --overwrite") -> dict | None:
    """The folder's stored manifest when it describes ``run``'s configuration, None when it has none; writes nothing
    (a run checks before it loads its data, and claims the folder with :func:`open_run_folder` after).

    Raises:
        RunFolderMismatch: as :func:`open_run_folder` does.
    """
    path = Path(output_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        stored = json.loads(path.read_text())
        earlier = stored["run"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunFolderMismatch(f"{path} is unreadable: {remedy}.") from None
    differs = _differences(earlier, run, defaults or {})
    if differs:
        key, there, now = differs[0]
        raise RunFolderMismatch(
            f"{output_dir} holds a run with another configuration ({key}: {there} there, {now} now): {remedy}.")
    return stored


def _differences(earlier: dict, run: dict, defaults: dict) -> list[tuple[str, str, str]]:
    """``(key, earlier value, this run's value)`` for each difference, sorted by key; a section (a dict on both sides)
    is compared key by key, a key one side lacks taken at its default in ``defaults`` when it has one."""
    missing = object()

    def shown(value) -> str:
        return "absent" if value is missing else repr(value)

    found = []
    for key in sorted(set(earlier) | set(run)):
        if key in PER_STEP_KEYS:
            continue
        there, now = earlier.get(key, missing), run.get(key, missing)
        if isinstance(there, dict) and isinstance(now, dict):
            section = defaults.get(key, {})
            for name in sorted(set(there) | set(now)):
                a, b = there.get(name, section.get(name, missing)), now.get(name, section.get(name, missing))
                if a != b:
                    found.append((f"{key}.{name}", shown(a), shown(b)))
        elif there != now:
            found.append((key, shown(there), shown(now)))
    return found


def completed(folder: Path) -> dict | None:
    """What a finished step saved in ``folder``, or None when it did not finish."""
    try:
        return json.loads((folder / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def run_step(folder: Path, work) -> dict:
    """What the step in ``folder`` saved; when it did not complete, ``work()``'s payload with the step's own
    ``seconds`` (a resumed run sums them), marked complete."""
    saved = completed(folder)
    if saved is None:
        started = time.perf_counter()
        saved = {**work(), "seconds": time.perf_counter() - started}
        mark_complete(folder, saved)
    return saved


def mark_complete(folder: Path, payload: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / COMPLETE, json.dumps(payload))
