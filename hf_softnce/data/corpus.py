"""``build_python_corpus``: (docstring, function) training pairs mined from Python source on this machine.

The embedded default of hf_softnce: with no Hub access the project still trains and evaluates on real
code. Files are found by :mod:`hf_softnce.data.sources`, parsed in parallel by
:mod:`hf_softnce.data.python_functions` (``ast`` only, nothing imported or run), grouped by
:mod:`hf_softnce.data.duplicates`, split by package by :mod:`hf_softnce.data.splits`, and saved as an
Arrow ``DatasetDict``. The saved corpus is reused while the sources' files and the options are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from functools import partial
from pathlib import Path

from datasets import Dataset, DatasetDict, Features, Value, load_from_disk
from datasets.utils import logging as datasets_logging
from tqdm.auto import tqdm

from hf_softnce.data import python_functions
from hf_softnce.data.duplicates import assign_duplicate_groups, check_similarity_threshold, normalize_code
from hf_softnce.data.python_functions import ExtractionOptions, SourceFile
from hf_softnce.data.report import SkipReport, check_errors_mode
from hf_softnce.data.schema import identity_out_of_rows
from hf_softnce.data.sources import resolve_sources
from hf_softnce.data.splits import SPLIT_NAMES, assign_package_splits
from hf_softnce.defaults import cache_dir

# Bump when the extraction rules or the saved layout change, so old caches are not reused.
CORPUS_FORMAT_VERSION = 3
INFO_FILE = "hf_softnce_corpus.json"
CORPUS_FEATURES = Features(
    {
        "query": Value("string"),
        "code": Value("string"),
        "docstring": Value("string"),
        "id": Value("string"),
        "dup_group": Value("int64"),
        "package": Value("string"),
        "path": Value("string"),
        "func_name": Value("string"),
        "line": Value("int64"),
        "language": Value("string"),
        "license": Value("string"),
    }
)
# Below this many files a process pool costs more than it saves.
_MIN_FILES_FOR_POOL = 64


def build_python_corpus(
    sources=("stdlib",),
    *,
    output_dir: str | os.PathLike | None = None,
    cache: bool = True,
    split_ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_query_words: int = 3,
    max_code_lines: int = 100,
    near_duplicate_threshold: float | None = 0.8,
    drop_cross_split_duplicates: bool = True,
    workers: int | None = None,
    errors: str = "skip",
    progress: bool = True,
    show_report: bool | None = None,
    report: SkipReport | None = None,
) -> DatasetDict:
    """Mine CodeSearchNet-style (query, code) pairs from Python source, split by package, saved as Arrow.

    Args:
        sources: ``"stdlib"``, installed distribution names (``"requests"``), ``"requires:<dist>"`` (the
            installed direct requirements of ``<dist>``, e.g. ``"requires:hf_softnce"``), or directory
            paths (git checkouts list tracked files only). See :mod:`hf_softnce.data.sources`.
        output_dir: where the ``DatasetDict`` is saved; default ``<hf_softnce cache>/corpus/<cache key>``.
        cache: reuse a corpus saved under the same key (sources, options, and every file's size and
            mtime) instead of parsing again. ``False`` always rebuilds.
        split_ratios: train/valid/test shares of functions, assigned per package (see
            :mod:`hf_softnce.data.splits`).
        seed: reshuffles equal-size packages between splits.
        min_query_words: drop functions whose query (docstring's first paragraph) is shorter.
        max_code_lines: drop functions whose code (docstring removed) is longer.
        near_duplicate_threshold: token 3-gram Jaccard similarity for near-duplicate groups; ``None``
            groups exact duplicates only.
        drop_cross_split_duplicates: drop valid/test rows whose duplicate group also occurs in train, so
            evaluation does not reward memorized copies (counted in the report).
        workers: processes parsing files in parallel; default: all CPU cores.
        errors: ``"skip"`` (default: installed code contains Python-2 files and templates) counts
            non-UTF-8 and unparsable files in the report; ``"raise"`` stops at the first, naming file and line.
        progress: show progress bars.
        show_report: print the filtered/skipped report. Default: once, when the corpus is built (with
            ``progress``); a corpus reused from the cache prints it only with ``show_report=True``.
        report: a :class:`SkipReport` to add this build's filtered/skipped counts to (also filled on a
            cache hit, from the saved build's report).

    Returns:
        ``DatasetDict`` with ``train``/``valid``/``test``; columns ``query``, ``code`` and the identity
        columns ``id``, ``dup_group``, ``package``, ``path``, ``func_name``, ``line``, ``language``, ``license``.
    """
    start = time.perf_counter()
    check_errors_mode(errors)
    check_similarity_threshold(near_duplicate_threshold, "near_duplicate_threshold", allow_none=True)
    report = report if report is not None else SkipReport()
    build_report = SkipReport()
    options = ExtractionOptions(min_query_words=min_query_words, max_code_lines=max_code_lines, errors=errors)
    resolved = resolve_sources(sources, build_report)
    files = [file for source in resolved for file in source.files]
    if not files:
        raise ValueError(f"build_python_corpus: the sources {sources!r} contain no Python files.")
    settings = {
        "format": CORPUS_FORMAT_VERSION,
        "sources": [(source.spec if isinstance(source.spec, str) else str(source.spec), source.kind, source.root)
                    for source in resolved],
        "options": asdict(options),
        "split_ratios": list(split_ratios),
        "seed": seed,
        "near_duplicate_threshold": near_duplicate_threshold,
        "drop_cross_split_duplicates": drop_cross_split_duplicates,
    }
    key = corpus_cache_key(settings, files)
    path = Path(output_dir) if output_dir is not None else cache_dir("corpus") / key[:20]

    if path.exists() and any(path.iterdir()) and not (path / INFO_FILE).exists():
        # Never overwrite a folder that is not one of our corpora.
        raise FileExistsError(f"build_python_corpus: {path} exists, is not empty and holds no corpus ({INFO_FILE}).")
    if cache and _saved_key(path) == key:
        info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        saved_report = SkipReport.from_dict(info["report"])
        report.merge(saved_report)
        if progress:
            print(f"Reusing the corpus saved at {path} (same sources, options and files).", file=sys.stderr)
        if show_report:  # None: the report was printed when this corpus was built
            saved_report.print("Corpus report (from the saved build)")
        return _training_view(load_from_disk(str(path)))

    timings = {"resolve_seconds": round(time.perf_counter() - start, 2)}
    rows = _extract_all(files, options, workers, progress, build_report)
    timings["parse_seconds"] = round(time.perf_counter() - start - timings["resolve_seconds"], 2)
    if progress:
        print(f"Grouping duplicates among {len(rows)} functions...", file=sys.stderr)
    groups = assign_duplicate_groups(
        [row["code"] for row in rows], near_duplicate_threshold, normalized=[row.pop("normalized") for row in rows]
    )
    for row, group in zip(rows, groups):
        row["dup_group"] = group
    timings["duplicates_seconds"] = round(time.perf_counter() - start - sum(timings.values()), 2)
    splits = split_rows(rows, split_ratios, seed, drop_cross_split_duplicates, build_report)
    warn_empty_splits(splits, split_ratios, build_report)
    corpus = DatasetDict(
        {
            name: Dataset.from_dict({column: [row[column] for row in split] for column in CORPUS_FEATURES},
                                    features=CORPUS_FEATURES)
            for name, split in splits.items()
        }
    )
    seconds = time.perf_counter() - start
    info = {
        "cache_key": key,
        "settings": settings,
        "files": len(files),
        "counts": {name: len(split) for name, split in splits.items()},
        "dup_groups": len(set(groups)),
        "build_seconds": round(seconds, 2),
        **timings,
        "python": sys.version.split()[0],
        "report": build_report.to_dict(),
    }
    _save_atomically(corpus, info, path, progress)
    report.merge(build_report)
    if progress:
        print(f"Built the corpus from {len(files)} files in {seconds:.1f} s; saved at {path}.", file=sys.stderr)
    if progress if show_report is None else show_report:
        build_report.print("Corpus report")
    return _training_view(load_from_disk(str(path)))


def _training_view(corpus: DatasetDict) -> DatasetDict:
    """Each split with its identity columns (id, package, path, license, dup_group, ...) out of the rows it hands
    to a trainer, so ``SentenceTransformerTrainer(train_dataset=corpus["train"])`` trains on query and code alone;
    ``all_columns(corpus["train"])`` reads every column."""
    return DatasetDict({name: identity_out_of_rows(split) for name, split in corpus.items()})


def corpus_cache_key(settings: dict, files: list[SourceFile]) -> str:
    """sha256 over the settings and every file's identity, size and modification time."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for file in files:
        try:
            stat = os.stat(file.abs_path)
            fingerprint = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            fingerprint = None
        digest.update(json.dumps([file.abs_path, file.rel_path, file.package, file.license, fingerprint]).encode())
    return digest.hexdigest()


def _saved_key(path: Path) -> str | None:
    try:
        return json.loads((path / INFO_FILE).read_text(encoding="utf-8")).get("cache_key")
    except (OSError, ValueError):
        return None


def _extract_with_normalized(source: SourceFile, options: ExtractionOptions):
    # Normalizing here puts the tokenize pass in the worker processes too.
    rows, report = python_functions.extract_file(source, options)
    for row in rows:
        row["normalized"] = normalize_code(row["code"])
    return rows, report


def _extract_all(files, options, workers, progress, report: SkipReport) -> list[dict]:
    workers = workers or os.cpu_count() or 1
    work = partial(_extract_with_normalized, options=options)
    bar = dict(total=len(files), desc="Parsing Python files", unit="file", disable=not progress)
    rows = []
    if workers <= 1 or len(files) < _MIN_FILES_FOR_POOL:
        results = map(work, files)
        for file_rows, file_report in tqdm(results, **bar):
            rows.extend(file_rows)
            report.merge(file_report)
        return rows
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        # map keeps the input order, so the corpus is the same whatever the scheduling.
        results = pool.map(work, files, chunksize=max(1, len(files) // (workers * 32)))
        for file_rows, file_report in tqdm(results, **bar):
            rows.extend(file_rows)
            report.merge(file_report)
    except BaseException:
        # errors="raise" (or Ctrl-C): stop now rather than parse the remaining files first.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return rows


def split_rows(rows, ratios, seed: int, drop_cross_split_duplicates: bool, report: SkipReport) -> dict:
    package_counts: dict[str, int] = {}
    for row in rows:
        package_counts[row["package"]] = package_counts.get(row["package"], 0) + 1
    assignment = assign_package_splits(package_counts, ratios, seed)
    splits = {name: [] for name in SPLIT_NAMES}
    for row in rows:
        splits[assignment[row["package"]]].append(row)
    if drop_cross_split_duplicates:
        train_groups = {row["dup_group"] for row in splits["train"]}
        for name in SPLIT_NAMES[1:]:
            kept = [row for row in splits[name] if row["dup_group"] not in train_groups]
            if len(kept) < len(splits[name]):
                report.filter(f"duplicate of a train function ({name} split)", count=len(splits[name]) - len(kept))
            splits[name] = kept
    return splits


def warn_empty_splits(splits: dict, ratios, report: SkipReport) -> None:
    """An empty split (too few packages for the ratios, or all its rows duplicates of train) is a warning."""
    packages = len({row["package"] for split in splits.values() for row in split})
    for (name, split), ratio in zip(splits.items(), ratios):
        if not split and ratio > 0:
            report.warn(f"the {name} split is empty ({packages} package(s) for ratios {tuple(ratios)}; splits are "
                        f"by package, so add sources or change split_ratios)")


def save_dataset(dataset, path: str | Path, *, progress: bool = True, **kwargs) -> None:
    """``dataset.save_to_disk(path, **kwargs)`` with datasets' "Saving the dataset" bar only when ``progress`` is on."""
    bars_were_enabled = datasets_logging.is_progress_bar_enabled()
    if not progress:
        datasets_logging.disable_progress_bar()
    try:
        dataset.save_to_disk(str(path), **kwargs)
    finally:
        if not progress and bars_were_enabled:
            datasets_logging.enable_progress_bar()


def _save_atomically(corpus: DatasetDict, info: dict, path: Path, progress: bool) -> None:
    """Write to a sibling temp folder, then swap it in: a crash never leaves a half corpus under the key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    # One shard per split even when a split is empty: datasets cannot load a split saved with none.
    save_dataset(corpus, staging, progress=progress, num_shards={name: 1 for name in corpus})
    (staging / INFO_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    if path.exists():
        shutil.rmtree(path)
    os.replace(staging, path)
