"""Loaders for the published code-search benchmarks, all returning :class:`CodeSearchData`.

* :func:`load_codesearchnet`: CodeSearchNet as filtered by GraphCodeBERT (the version Soft-InfoNCE
  reports on): ``train.jsonl``, ``valid.jsonl``, ``test.jsonl`` and ``codebase.jsonl`` per language; a
  valid/test query's answer is the codebase entry with the same ``url``.
* :func:`load_cosqa`: CoSQA's retrieval files: ``code_idx_map.txt`` (JSON ``{code: retrieval_idx}``, the
  codebase), ``cosqa-retrieval-{dev,test}-500.json`` (queries ``doc`` with their ``retrieval_idx``) and
  ``cosqa-retrieval-train-19604.json`` (``doc``/``code``/``label``; label-1 rows are the training pairs), or
  CoIR's Hub datasets mapped to the same shapes; training rows holding a dev/test query are dropped and counted.
* :func:`load_advtest`: CodeXGLUE AdvTest: ``train.jsonl``, ``valid.jsonl``, ``test.jsonl``; a valid/test
  split is searched within its own functions, answers identified by ``url``.

Each reads a local folder in the published layout (``data_dir``), or fetches one from the Hugging Face
Hub (``hub_id``; ``huggingface_hub.snapshot_download`` for file layouts, ``datasets.load_dataset`` for
AdvTest's Hub dataset). Queries and codes are the published token lists joined by spaces
(``code_format="tokens"``, the protocol of the papers) or the raw source (``code_format="raw"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path

from datasets import Dataset

from hf_softnce.data.duplicates import assign_duplicate_groups
from hf_softnce.data.python_functions import strip_docstring
from hf_softnce.data.records import (
    binary_label,
    field,
    joined_tokens,
    optional_field,
    read_json,
    read_json_records,
    read_jsonl,
)
from hf_softnce.data.report import DataFormatError, SkipReport, check_errors_mode
from hf_softnce.data.schema import RetrievalSet, all_columns, identity_out_of_rows
from hf_softnce.defaults import cache_dir

CODESEARCHNET_LANGUAGES = ("go", "java", "javascript", "php", "python", "ruby")
ADVTEST_HUB_ID = "google/code_x_glue_tc_nl_code_search_adv"
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"dev": "valid"}
# The names of CoSQA's evaluation sets: its papers (and CoIR) call the validation split "dev".
COSQA_SET_NAMES = {"valid": "cosqa-dev", "test": "cosqa-test"}


@dataclass
class CodeSearchData:
    """What every loader returns; subscriptable like a ``DatasetDict`` (``data["train"]``, ``data["dev"]``).

    Attributes:
        name: e.g. ``"codesearchnet-python"``, ``"cosqa"``, ``"advtest"``.
        train: training pairs in the shared schema (``query``, ``code`` + identity columns), or ``None``.
        valid, test: evaluation sets (queries, corpus, relevant, duplicate ``groups``), or ``None``.
        report: what was filtered or skipped while loading.
    """

    name: str
    train: Dataset | None = None
    valid: RetrievalSet | None = None
    test: RetrievalSet | None = None
    report: SkipReport = dataclass_field(default_factory=SkipReport)

    def __getitem__(self, split: str):
        """``data["train"]`` (a Dataset), ``data["valid"]`` / ``data["test"]`` (RetrievalSets), as a DatasetDict
        is read; ``"dev"`` is the same split as ``"valid"`` (CoSQA calls it dev). A split not loaded is a KeyError."""
        name = SPLIT_ALIASES.get(split, split)
        value = getattr(self, name) if name in SPLITS else None
        if value is None:
            raise KeyError(f"{self.name} has no {split!r} split; loaded: {self.keys()}.")
        return value

    def __contains__(self, split: str) -> bool:
        return SPLIT_ALIASES.get(split, split) in self.keys()

    def keys(self) -> list[str]:
        """The loaded splits, in the order train, valid, test."""
        return [split for split in SPLITS if getattr(self, split) is not None]

    def __repr__(self) -> str:
        parts = [f"train={len(self.train) if self.train is not None else None} pairs"]
        for split in ("valid", "test"):
            value = getattr(self, split)
            parts.append(f"{split}={f'{len(value)} queries/{len(value.corpus)} codes' if value else None}")
        return f"CodeSearchData({self.name!r}, {', '.join(parts)})"


# -- locating the files -------------------------------------------------------------------------------
def _default_dir(name: str) -> Path:
    return cache_dir("datasets") / name


def _has_any(folder: Path, files) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in files)


def _snapshot(what: str, hub_id: str, revision: str | None, patterns: list[str], looked: list[Path]) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(snapshot_download(hub_id, repo_type="dataset", revision=revision, allow_patterns=patterns))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{what}: no local files in {', '.join(map(str, looked))}, and the Hub dataset {hub_id!r} could not be "
            f"fetched ({type(error).__name__}: {error}). Offline (HF_HUB_OFFLINE=1) only the Hugging Face cache is "
            f"read. Pass data_dir=<folder with the published files>."
        ) from error


def _locate(what: str, data_dir, hub_id, revision, files: list[str], subfolder: str | None = None,
            mention_hub: bool = True) -> Path:
    """The folder holding the published files: ``data_dir``, else the default folder, else a Hub snapshot."""
    roots = [Path(data_dir)] if data_dir is not None else [_default_dir(what.split(" ")[0].lower())]
    candidates = [folder for root in roots for folder in ([root / subfolder] if subfolder else []) + [root]]
    for folder in candidates:
        if _has_any(folder, files):
            return folder
    if data_dir is None and hub_id is not None:
        patterns = [f"{subfolder}/{name}" for name in files] + list(files) if subfolder else list(files)
        snapshot = _snapshot(what, hub_id, revision, patterns, candidates)
        for folder in ([snapshot / subfolder] if subfolder else []) + [snapshot]:
            if _has_any(folder, files):
                return folder
        candidates = [snapshot]
    raise FileNotFoundError(
        f"{what}: none of {files} found; looked in {', '.join(map(str, candidates))}"
        + ("" if hub_id or data_dir is not None or not mention_hub else " (no hub_id given)")
        + ". Pass data_dir=<folder with the published files>" + (" or hub_id=<dataset repo>." if mention_hub else ".")
    )


def _split_files(folder: Path, names: dict[str, str], splits, what: str) -> dict[str, Path]:
    """Files of the requested splits; ``splits=None`` takes those present."""
    if splits is None:
        present = {split: folder / name for split, name in names.items() if (folder / name).exists()}
        if not present:
            raise FileNotFoundError(f"{what}: none of {sorted(names.values())} in {folder}.")
        return present
    unknown = set(splits) - set(names)
    if unknown:
        raise ValueError(f"{what}: unknown split(s) {sorted(unknown)}; choose from {list(names)}.")
    missing = [names[split] for split in splits if not (folder / names[split]).exists()]
    if missing:
        raise FileNotFoundError(f"{what}: missing {missing} in {folder}.")
    return {split: folder / names[split] for split in splits}


# -- building the outputs -----------------------------------------------------------------------------
def _pairs_dataset(rows: list[dict], duplicate_groups: bool, threshold, language: str) -> Dataset:
    columns = ["query", "code", "id", "package", "path", "func_name", "language"]
    data = {column: [row.get(column) for row in rows] for column in columns}
    # Identity columns a dataset does not publish (CoSQA has no repo or path) are left out, not all-null.
    data = {column: values for column, values in data.items()
            if column in ("query", "code", "id") or any(value is not None for value in values)}
    if duplicate_groups:
        data["dup_group"] = assign_duplicate_groups(data["code"], threshold, language=language)
    # Handed to a trainer as is, the pairs train on query and code alone; all_columns(train)["id"] reads the rest.
    return identity_out_of_rows(Dataset.from_dict(data))


def _retrieval_set(name, queries, corpus, relevant, duplicate_groups, threshold, language, metadata) -> RetrievalSet:
    groups = None
    if duplicate_groups:
        cids = list(corpus)
        groups = dict(zip(cids, assign_duplicate_groups([corpus[c] for c in cids], threshold, language=language)))
    return RetrievalSet(queries, corpus, relevant, groups=groups, name=name, metadata=metadata)


def _non_empty(text, what: str, where, errors, report):
    """The one rule for empty text in every loader: a query or code that is empty (or only whitespace) is bad input,
    rejected under ``errors="raise"``, counted under ``"skip"``. Loaded, it would stop the miner later, be the
    same text as every other empty one in the losses, and make an empty query "find" an empty gold code."""
    if text is None:
        return None
    if not text.strip():
        report.bad_input(errors, f"empty {what}", where)
        return None
    return text


def _code_text(record, where, code_format, language, token_fields, raw_fields, errors, report):
    if code_format == "tokens":
        value = field(record, token_fields, where, errors, report, kind="tokens")
        return None if value is None else _non_empty(joined_tokens(value), "code", where, errors, report)
    value = _non_empty(field(record, raw_fields, where, errors, report, kind="text"), "code", where, errors, report)
    if value is None or language != "python":
        return value
    # Raw CodeSearchNet code still holds the docstring the query was made from: cut it.
    stripped = strip_docstring(value)
    if stripped is None:
        report.filter("raw code kept with its docstring (does not parse as one function)", where)
        return value
    return _non_empty(stripped, "code", where, errors, report)


def _query_text(record, where, fields, errors, report):
    value = field(record, fields, where, errors, report, kind="tokens")
    return None if value is None else _non_empty(joined_tokens(value), "docstring", where, errors, report)


class _Counted:
    """Iterate records and count them, so an input that yields no usable row can say how many it held."""

    def __init__(self, records) -> None:
        self.records, self.read = records, 0

    def __iter__(self):
        for item in self.records:
            self.read += 1
            yield item


def _require_rows(count: int, source, records: _Counted, report: SkipReport) -> None:
    """No usable row is an error in both ``errors`` modes: an empty split only fails later, far from its cause."""
    if count:
        return
    if records.read == 0:
        raise DataFormatError(f"{source}: no records (the file is empty or holds only blank or unreadable lines).")
    raise DataFormatError(
        f"{source}: none of its {records.read} records is usable ({report.total_skipped} skipped as bad input, "
        f"{report.total_filtered} filtered by rule so far)."
    )


def _identity(record, where, errors, report, language) -> dict | None:
    """The optional string identity columns; ``None`` when one of them has the wrong type (record skipped)."""
    identity = {}
    for column, name, default in (("package", "repo", None), ("path", "path", None),
                                  ("func_name", "func_name", None), ("language", "language", language)):
        ok, identity[column] = optional_field(record, name, where, errors, report, default)
        if not ok:
            return None
    return identity


def _finish(data: CodeSearchData, verbose: bool, report: SkipReport | None) -> CodeSearchData:
    if report is not None:
        report.merge(data.report)
    if verbose and data.report:
        data.report.print(f"{data.name} report")
    return data


def _check(code_format: str, errors: str) -> None:
    check_errors_mode(errors)
    if code_format not in ("tokens", "raw"):
        raise ValueError(f"code_format must be 'tokens' or 'raw', got {code_format!r}.")


# -- CodeSearchNet (GraphCodeBERT filtering) ----------------------------------------------------------
def load_codesearchnet(
    language: str = "python",
    *,
    data_dir=None,
    hub_id: str | None = None,
    revision: str | None = None,
    splits=None,
    code_format: str = "tokens",
    duplicate_groups: bool = True,
    duplicate_threshold: float | None = 0.8,
    errors: str = "raise",
    report: SkipReport | None = None,
    verbose: bool = True,
) -> CodeSearchData:
    """CodeSearchNet, GraphCodeBERT-filtered: training pairs and valid/test sets ranked against ``codebase.jsonl``.

    Args:
        language: one of go, java, javascript, php, python, ruby.
        data_dir: folder with ``train.jsonl``, ``valid.jsonl``, ``test.jsonl``, ``codebase.jsonl``, directly
            or under ``<language>/`` (GraphCodeBERT's ``dataset/`` layout). Default: ``<hf_softnce cache>/
            datasets/codesearchnet``.
        hub_id: a Hub dataset repo holding that layout, fetched when no local files are found.
        revision: Hub revision (branch, tag or commit).
        splits: subset of ``("train", "valid", "test")``; ``None`` loads those present.
        code_format: ``"tokens"``: ``code_tokens`` joined by spaces (GraphCodeBERT and the papers);
            ``"raw"``: ``code``/``original_string`` (Python docstrings removed; other languages as published).
        duplicate_groups: add ``dup_group`` to the pairs and ``groups`` to the evaluation sets.
        duplicate_threshold: near-duplicate Jaccard threshold (``None``: exact duplicates only).
        errors: ``"raise"`` on bad input (naming file and line) or ``"skip"`` and count it.
        report: a :class:`SkipReport` to add the counts to; ``verbose`` prints them at the end.
    """
    _check(code_format, errors)
    if language not in CODESEARCHNET_LANGUAGES:
        raise ValueError(f"CodeSearchNet language must be one of {CODESEARCHNET_LANGUAGES}, got {language!r}.")
    name = f"codesearchnet-{language}"
    names = {"train": "train.jsonl", "valid": "valid.jsonl", "test": "test.jsonl"}
    folder = _locate(f"CodeSearchNet ({language})", data_dir, hub_id, revision,
                     [*names.values(), "codebase.jsonl"], subfolder=language)
    files = _split_files(folder, names, splits, f"CodeSearchNet ({language})")
    data = CodeSearchData(name)
    read = dict(code_format=code_format, language=language, errors=errors, report=data.report)

    if "train" in files:
        rows, records = [], _Counted(read_jsonl(files["train"], errors, data.report))
        for where, record in records:
            row = _csn_row(record, where, **read)
            if row is not None:
                rows.append(row)
        _require_rows(len(rows), files["train"], records, data.report)
        data.train = _pairs_dataset(rows, duplicate_groups, duplicate_threshold, language)

    eval_splits = [split for split in ("valid", "test") if split in files]
    if eval_splits:
        codebase_file = folder / "codebase.jsonl"
        if not codebase_file.exists():
            raise FileNotFoundError(f"CodeSearchNet ({language}): {eval_splits} need codebase.jsonl, not found in {folder}.")
        corpus, records = {}, _Counted(read_jsonl(codebase_file, errors, data.report))
        for where, record in records:
            url = field(record, ("url",), where, errors, data.report)
            if url is None:
                continue
            code = _code_text(record, where, code_format, language, ("code_tokens",), ("code", "original_string"),
                              errors, data.report)
            if code is None:
                continue
            if url in corpus:
                data.report.bad_input(errors, "duplicate url in codebase.jsonl", where, url)
                continue
            corpus[url] = code
        _require_rows(len(corpus), codebase_file, records, data.report)
        for split in eval_splits:
            queries, relevant = {}, {}
            records = _Counted(read_jsonl(files[split], errors, data.report))
            for where, record in records:
                url = field(record, ("url",), where, errors, data.report)
                if url is None:
                    continue
                query = _query_text(record, where, ("docstring_tokens",), errors, data.report)
                if query is None:
                    continue
                if url not in corpus:
                    data.report.bad_input(errors, "answer url not in codebase.jsonl", where, url)
                    continue
                if url in queries:  # the query id is its answer's url: a second one would replace the first
                    data.report.bad_input(errors, f"duplicate url in the {split} split", where, url)
                    continue
                queries[url], relevant[url] = query, {url}
            _require_rows(len(queries), files[split], records, data.report)
            setattr(data, split, _retrieval_set(f"{name}-{split}", queries, corpus, relevant, duplicate_groups,
                                                duplicate_threshold, language, {"source": str(folder)}))
    return _finish(data, verbose, report)


def _csn_row(record, where, code_format, language, errors, report) -> dict | None:
    # One bad field skips the record once: the fields after it are not checked (nor counted).
    url = field(record, ("url",), where, errors, report)
    if url is None:
        return None
    query = _query_text(record, where, ("docstring_tokens",), errors, report)
    if query is None:
        return None
    code = _code_text(record, where, code_format, language, ("code_tokens",), ("code", "original_string"),
                      errors, report)
    if code is None:
        return None
    identity = _identity(record, where, errors, report, language)
    if identity is None:
        return None
    return {"query": query, "code": code, "id": url, **identity}


# -- CodeXGLUE AdvTest --------------------------------------------------------------------------------
def load_advtest(
    *,
    data_dir=None,
    hub_id: str | None = ADVTEST_HUB_ID,
    revision: str | None = None,
    splits=None,
    code_format: str = "tokens",
    duplicate_groups: bool = True,
    duplicate_threshold: float | None = 0.8,
    errors: str = "raise",
    report: SkipReport | None = None,
    verbose: bool = True,
) -> CodeSearchData:
    """CodeXGLUE AdvTest (Python; test-set function and variable names normalized).

    A local ``data_dir`` (or the default ``<hf_softnce cache>/datasets/advtest``) holds CodeXGLUE's
    ``train.jsonl``/``valid.jsonl``/``test.jsonl``; otherwise the Hub dataset ``hub_id`` is read with
    ``datasets.load_dataset`` (splits train/validation/test). Codes are ``function_tokens`` (or
    ``code_tokens``) joined by spaces; ``code_format="raw"`` takes ``function``/``code``/``original_string``.
    Each valid/test split is searched within its own functions; the answer of a query is the function
    with the same ``url``. Other arguments as in :func:`load_codesearchnet`.
    """
    _check(code_format, errors)
    names = {"train": "train.jsonl", "valid": "valid.jsonl", "test": "test.jsonl"}
    data = CodeSearchData("advtest")
    try:
        folder = _locate("AdvTest", data_dir, None, revision, list(names.values()), mention_hub=False)
        records = {split: (path, read_jsonl(path, errors, data.report))
                   for split, path in _split_files(folder, names, splits, "AdvTest").items()}
    except FileNotFoundError as missing:
        if data_dir is not None or hub_id is None:
            raise
        records = _hub_records(hub_id, revision, splits, missing)
    read = dict(code_format=code_format, errors=errors, report=data.report)
    for split, (source, split_records) in records.items():
        split_records = _Counted(split_records)
        rows = [row for where, record in split_records if (row := _advtest_row(record, where, **read)) is not None]
        _require_rows(len(rows), source, split_records, data.report)
        if split == "train":
            data.train = _pairs_dataset(rows, duplicate_groups, duplicate_threshold, "python")
            continue
        queries, corpus, relevant = {}, {}, {}
        for row in rows:
            if row["id"] in corpus:
                data.report.bad_input(errors, f"duplicate url in the {split} split", row["where"], row["id"])
                continue
            queries[row["id"]], corpus[row["id"]], relevant[row["id"]] = row["query"], row["code"], {row["id"]}
        setattr(data, split, _retrieval_set(f"advtest-{split}", queries, corpus, relevant, duplicate_groups,
                                            duplicate_threshold, "python", {}))
    return _finish(data, verbose, report)


def _hub_records(hub_id: str, revision, splits, missing: FileNotFoundError) -> dict:
    """AdvTest's Hub dataset, read with ``datasets.load_dataset`` (its splits are named train/validation/test)."""
    from datasets import load_dataset

    hub_split = {"train": "train", "valid": "validation", "test": "test"}
    try:
        loaded = {split: load_dataset(hub_id, split=hub_split[split], revision=revision)
                  for split in (splits or SPLITS)}
    except (OSError, ValueError) as error:  # offline, not cached, not found
        raise FileNotFoundError(
            f"{missing} The Hub dataset {hub_id!r} could not be loaded either ({type(error).__name__}: {error}); "
            f"offline (HF_HUB_OFFLINE=1) only the Hugging Face cache is read."
        ) from error
    return {split: (f"{hub_id}[{hub_split[split]}]",
                    ((f"{hub_id}[{hub_split[split]}] row {i}", record) for i, record in enumerate(dataset)))
            for split, dataset in loaded.items()}


def _advtest_row(record, where, code_format, errors, report) -> dict | None:
    url = field(record, ("url",), where, errors, report)
    if url is None:
        return None
    query = _query_text(record, where, ("docstring_tokens",), errors, report)
    if query is None:
        return None
    code = _code_text(record, where, code_format, "python", ("function_tokens", "code_tokens"),
                      ("function", "code", "original_string"), errors, report)
    if code is None:
        return None
    identity = _identity(record, where, errors, report, "python")
    if identity is None:
        return None
    return {"query": query, "code": code, "id": url, **identity, "language": "python", "where": where}


# -- CoSQA --------------------------------------------------------------------------------------------
COSQA_FILES = {
    # The retrieval training split of the published protocol (CoCLR's cosqa-retrieval-train-19604.json, CoIR's
    # CoSQA train): real queries with a human label, none of them a dev/test query.
    "train": "cosqa-retrieval-train-19604.json",
    "valid": "cosqa-retrieval-dev-500.json",
    "test": "cosqa-retrieval-test-500.json",
}
# CoCLR's QA file: a question-answering split that holds 966 of the 1,000 retrieval dev/test queries. Read only
# when the retrieval train file is absent, and then always through the evaluation-leak filter.
COSQA_QA_TRAIN = "cosqa-train.json"
COSQA_CODEBASE = "code_idx_map.txt"
COIR_COSQA_HUB_ID = "CoIR-Retrieval/cosqa"


def load_cosqa(
    *,
    data_dir=None,
    hub_id: str | None = None,
    revision: str | None = None,
    splits=None,
    train_file: str | None = None,
    duplicate_groups: bool = True,
    duplicate_threshold: float | None = 0.8,
    errors: str = "raise",
    report: SkipReport | None = None,
    verbose: bool = True,
) -> CodeSearchData:
    """CoSQA (Huang et al., ACL 2021: real Bing queries, Python functions) in the CoCLR retrieval format.

    ``data_dir`` (default ``<hf_softnce cache>/datasets/cosqa``) holds ``code_idx_map.txt`` (the 6,267-function
    codebase, ``{code: retrieval_idx}``) and any of ``cosqa-retrieval-train-19604.json`` (→ ``train``: its
    label-1 rows; label-0 rows are counted as filtered), ``cosqa-retrieval-dev-500.json`` (→ ``valid``) and
    ``cosqa-retrieval-test-500.json`` (→ ``test``). Query ids are the records' ``idx``; corpus ids are
    ``str(retrieval_idx)``. Codes are as published (with docstrings, as in CoSQA's own evaluation).

    Without a local copy, ``hub_id`` is read from the Hub: ``"CoIR-Retrieval/cosqa"`` maps CoIR's
    ``CoIR-Retrieval/cosqa-queries-corpus`` and ``CoIR-Retrieval/cosqa-qrels`` (train/valid/test) to the same
    shapes (codes with identical text become one corpus entry, as in ``code_idx_map.txt``); any other id is a
    dataset repo holding CoCLR's files.

    Evaluation leaks: a training row whose query is a query of the dev/test files present (same ``idx``, or the
    same text up to case and spacing) is dropped, counted in the report and warned about by number. This
    matters for CoCLR's QA file ``cosqa-train.json`` (``train_file="cosqa-train.json"``, also read when the
    retrieval train file is absent), which holds 966 of the 1,000 retrieval dev/test queries.

    ``dup_group`` of a training pair is the duplicate group of its code within the codebase (identical code
    after normalization, and near duplicates at ``duplicate_threshold``), the same ids as ``valid.groups`` and
    ``test.groups``: many CoSQA codes answer several queries, and two such queries in one batch are each
    other's false negatives. Other arguments as in :func:`load_codesearchnet`.

    Raises:
        FileNotFoundError: no CoSQA files locally and none on the Hub.
        DataFormatError: a bad record under ``errors="raise"`` (file, record and field named).
    """
    check_errors_mode(errors)
    if data_dir is None and hub_id and hub_id.startswith(COIR_COSQA_HUB_ID) and not _has_any(
            _default_dir("cosqa"), [COSQA_CODEBASE, *COSQA_FILES.values()]):
        from hf_softnce.data.cosqa_coir import coir_to_coclr_folder

        data_dir = coir_to_coclr_folder(hub_id, revision, _default_dir("cosqa-coir"))
        hub_id = None
    folder = _locate("CoSQA", data_dir, hub_id, revision, [COSQA_CODEBASE, COSQA_QA_TRAIN, *COSQA_FILES.values()])
    names = dict(COSQA_FILES)
    if train_file is not None:
        names["train"] = train_file
    elif not (folder / names["train"]).exists() and (folder / COSQA_QA_TRAIN).exists():
        names["train"] = COSQA_QA_TRAIN
    files = _split_files(folder, names, splits, "CoSQA")
    data = CodeSearchData("cosqa")
    code_index = _cosqa_codebase(folder, errors, data.report) if (folder / COSQA_CODEBASE).exists() else None
    corpus = code_index or {}
    groups = None
    if duplicate_groups and corpus:
        # One grouping of the codebase serves the evaluation sets and the training pairs alike, so a training
        # pair's dup_group names the same codes the miner and the evaluator treat as its duplicates.
        cids = list(corpus)
        groups = dict(zip(cids, assign_duplicate_groups([corpus[c] for c in cids], duplicate_threshold,
                                                        language="python")))

    if "train" in files:
        held_out = _cosqa_held_out_queries(folder, names, errors)
        rows, leaks = [], 0
        records = _Counted(read_json_records(files["train"], "CoSQA training pairs", errors, data.report))
        for where, record in records:
            row = _cosqa_record(record, where, errors, data.report, need_index=False)
            if row is None:
                continue
            if row[0] in held_out[0] or _query_key(row[1]) in held_out[1]:
                data.report.filter("CoSQA training query is a dev/test query (evaluation leak)", where)
                leaks += 1
                continue
            rows.append({"query": row[1], "code": record["code"], "id": row[0], "language": "python"})
        _require_rows(len(rows), files["train"], records, data.report)
        if leaks:
            warnings.warn(f"CoSQA: dropped {leaks:,} training rows of {files['train'].name} whose query is a "
                          f"dev/test query (same idx or text); they would leak the evaluation.", stacklevel=2)
        data.train = _cosqa_pairs(rows, groups, corpus, duplicate_groups, duplicate_threshold)

    eval_splits = [split for split in ("valid", "test") if split in files]
    if eval_splits:
        if code_index is None:
            raise FileNotFoundError(f"CoSQA: {eval_splits} need {COSQA_CODEBASE}, not found in {folder}.")
        for split in eval_splits:
            queries, relevant = {}, {}
            records = _Counted(read_json_records(files[split], f"CoSQA {split} queries", errors, data.report))
            for where, record in records:
                row = _cosqa_record(record, where, errors, data.report, need_index=True)
                if row is None:
                    continue
                qid, query, cid = row
                if qid in queries:
                    data.report.bad_input(errors, "duplicate query idx", where, qid)
                    continue
                if cid not in corpus:
                    data.report.bad_input(errors, f"retrieval_idx not in {COSQA_CODEBASE}", where, cid)
                    continue
                queries[qid], relevant[qid] = query, {cid}
            _require_rows(len(queries), files[split], records, data.report)
            setattr(data, split, RetrievalSet(queries, corpus, relevant, groups=groups, name=COSQA_SET_NAMES[split],
                                              metadata={"source": str(folder)}))
    return _finish(data, verbose, report)


def _cosqa_codebase(folder: Path, errors: str, report: SkipReport) -> dict[str, str]:
    """``{retrieval_idx: code}`` from ``code_idx_map.txt``."""
    code_index = read_json(folder / COSQA_CODEBASE, "CoSQA codebase")
    if not isinstance(code_index, dict):
        raise ValueError(f"{folder / COSQA_CODEBASE}: expected a JSON object {{code: retrieval_idx}}.")
    if not code_index:
        raise DataFormatError(f"{folder / COSQA_CODEBASE}: no records (an empty codebase).")
    corpus = {}
    for code, index in code_index.items():
        if isinstance(index, bool) or not isinstance(index, (str, int)):
            report.bad_input(errors, f"retrieval_idx in {COSQA_CODEBASE} is not a string or an integer",
                             str(folder / COSQA_CODEBASE), f"got {type(index).__name__} {index!r:.40}")
            continue
        if str(index) in corpus:  # two codes under one index: a query's gold code would be whichever came last
            report.bad_input(errors, f"duplicate retrieval_idx in {COSQA_CODEBASE}", str(folder / COSQA_CODEBASE),
                             f"{index!r} (a second code; the first is kept)")
            continue
        if _non_empty(code, "code", str(folder / COSQA_CODEBASE), errors, report) is not None:
            corpus[str(index)] = code
    return corpus


def load_cosqa_judged_pairs(data_dir, *, exclude_queries=(), errors: str = "raise",
                            report: SkipReport | None = None) -> Dataset:
    """CoSQA's human-judged training pairs, both labels: ``query``, ``code``, ``label`` (1.0: the code answers the
    query; 0.0: a code a search engine returned for it, judged by annotators not to answer it: CoSQA's QA task).

    The retrieval training split of ``data_dir`` (``cosqa-retrieval-train-19604.json``: 9,020 label-1 and 10,584
    label-0 rows). A row whose query is a dev/test query of the folder (same ``idx`` or text up to case and spacing)
    or one of ``exclude_queries`` (texts, e.g. a held-out selection set) is dropped and counted in ``report`` as
    filtered. Shape: one row per pair, in file order.

    Raises:
        FileNotFoundError: the training file is not in ``data_dir``.
        DataFormatError: a bad record under ``errors="raise"`` (file, record and field named).
    """
    check_errors_mode(errors)
    report = report if report is not None else SkipReport()
    folder = Path(data_dir)
    path = folder / COSQA_FILES["train"]
    if not path.is_file():
        raise FileNotFoundError(f"CoSQA's judged pairs: {path} not found.")
    held_ids, held_texts = _cosqa_held_out_queries(folder, COSQA_FILES, errors)
    held_texts |= {_query_key(text) for text in exclude_queries}
    rows = {"query": [], "code": [], "label": []}
    records = _Counted(read_json_records(path, "CoSQA judged pairs", errors, report))
    for where, record in records:
        fields = _cosqa_judged_record(record, where, errors, report, need_index=False)
        if fields is None:
            continue
        qid, query, code, _, label = fields
        if str(qid) in held_ids or _query_key(query) in held_texts:
            report.filter("CoSQA judged pair whose query is held out (dev/test or the selection set)", where)
            continue
        rows["query"].append(query)
        rows["code"].append(code)
        rows["label"].append(float(label))
    _require_rows(len(rows["query"]), path, records, report)
    return Dataset.from_dict(rows)


def _query_key(query: str) -> str:
    # CoSQA holds the same web query under several idx values; compare texts up to case and spacing.
    return " ".join(query.lower().split())


def _cosqa_held_out_queries(folder: Path, names: dict[str, str], errors: str) -> tuple[set[str], set[str]]:
    """(idx values, query keys) of every dev/test file present: whatever is requested, training never sees them."""
    ids, texts = set(), set()
    for split in ("valid", "test"):
        path = folder / names[split]
        if not path.exists():
            continue
        for _, record in read_json_records(path, f"CoSQA {split} queries", "skip", SkipReport()):
            if isinstance(record, dict):
                if record.get("idx") is not None:
                    ids.add(str(record["idx"]))
                if isinstance(record.get("doc"), str):
                    texts.add(_query_key(record["doc"]))
    return ids, texts


def _cosqa_pairs(rows: list[dict], groups, corpus, duplicate_groups: bool, threshold) -> Dataset:
    """Training pairs whose ``dup_group`` is their code's group in the codebase (new groups past it otherwise)."""
    if not duplicate_groups or groups is None:
        return _pairs_dataset(rows, duplicate_groups, threshold, "python")
    group_of_code = {corpus[cid]: group for cid, group in groups.items()}
    outside = [row["code"] for row in rows if row["code"] not in group_of_code]
    if outside:
        # A code missing from the codebase (not in the published protocol) still gets a group: grouped among
        # themselves, numbered past the codebase's groups.
        offset = max(groups.values(), default=-1) + 1
        unique = list(dict.fromkeys(outside))
        for code, group in zip(unique, assign_duplicate_groups(unique, threshold, language="python")):
            group_of_code[code] = offset + group
    dataset = all_columns(_pairs_dataset(rows, False, threshold, "python"))
    return identity_out_of_rows(dataset.add_column("dup_group", [group_of_code[row["code"]] for row in rows]))


def _cosqa_judged_record(record, where, errors, report, need_index: bool):
    """``(qid, query, code, cid, label)`` of a record, either label; ``None`` when skipped as bad input."""
    # One bad field skips the record once: the fields after it are not checked (nor counted).
    qid = field(record, ("idx",), where, errors, report, kind="identifier")
    if qid is None:
        return None
    query = _query_text(record, where, ("doc",), errors, report)
    code = field(record, ("code",), where, errors, report) if query is not None else None
    if _non_empty(code, "code", where, errors, report) is None:
        return None
    cid = field(record, ("retrieval_idx",), where, errors, report, kind="identifier") if need_index else ""
    if cid is None:
        return None
    label = binary_label(record, where, errors, report)
    if label is None:
        return None
    return qid, query, code, cid, label


def _cosqa_record(record, where, errors, report, need_index: bool):
    """``(qid, query, cid)`` for a label-1 record; ``None`` when skipped or filtered."""
    fields = _cosqa_judged_record(record, where, errors, report, need_index)
    if fields is None:
        return None
    qid, query, _, cid, label = fields
    if label != 1:
        report.filter("CoSQA pair labelled 0 (code does not answer the query)", where)
        return None
    return str(qid), query, str(cid)
