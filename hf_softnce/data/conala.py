"""CoNaLa (Yin et al., MSR 2018): real StackOverflow questions paired with the Python snippets that answer them.

Docstring sentences are not how people search; CoNaLa's ``intent`` is a question title as a person typed it
("How to convert a list of multiple integers into a single integer?"), which makes it training data that
looks like real search. Two Hub configs of ``neulab/conala``:

* ``curated``: 2,379 train / 500 test rows checked by annotators (``intent``, ``rewritten_intent``, ``snippet``,
  ``question_id``);
* ``mined``: ~594k automatically mined pairs with a confidence ``prob``; keep the confident ones
  (``min_prob``).

Several rows answer one StackOverflow question: they share a ``dup_group`` (the question id), so a loss never
treats one answer as a negative of another answer to the same question.

Where the Hub is unreachable, the curated split is read from a local copy in the published JSON layout
(``conala-train.json``, ``conala-test.json``): ``data_dir``, else the shared data folder
(``HF_SOFTNCE_DATA_DIR/conala`` or ``../shared/data/conala``).
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from hf_softnce.data.loaders import CodeSearchData
from hf_softnce.data.records import field, read_json_records
from hf_softnce.data.report import SkipReport, check_errors_mode
from hf_softnce.data.schema import RetrievalSet, identity_out_of_rows

CONALA_HUB_ID = "neulab/conala"
CONALA_FILES = {"train": "conala-train.json", "test": "conala-test.json"}
QUERY_FIELDS = ("intent", "rewritten_intent")


def load_conala(
    config: str = "curated",
    *,
    data_dir: str | Path | None = None,
    hub_id: str = CONALA_HUB_ID,
    revision: str | None = None,
    query_field: str = "intent",
    min_prob: float = 0.5,
    errors: str = "raise",
    verbose: bool = True,
    report: SkipReport | None = None,
) -> CodeSearchData:
    """CoNaLa as training pairs (``query``, ``code``, ``id``, ``dup_group``) and, for ``curated``, a test set.

    Args:
        config: ``"curated"`` or ``"mined"``.
        data_dir: a folder with ``conala-train.json`` / ``conala-test.json`` (curated only); ``None`` tries the
            Hub, then the shared data folder.
        query_field: ``"intent"`` (the question as typed) or ``"rewritten_intent"`` (an annotator's rewrite,
            curated only; rows without one fall back to ``intent``).
        min_prob: ``mined`` rows below this mining confidence are filtered (and counted).
        errors: ``"raise"`` or ``"skip"`` for malformed records (counted in the report with their location).

    The test split is searched over its own distinct snippets; a question's gold codes are all its snippets.
    """
    check_errors_mode(errors)
    if config not in ("curated", "mined"):
        raise ValueError(f"load_conala: config must be 'curated' or 'mined', got {config!r}.")
    if query_field not in QUERY_FIELDS:
        raise ValueError(f"load_conala: query_field must be one of {QUERY_FIELDS}, got {query_field!r}.")
    data = CodeSearchData(f"conala-{config}")
    splits, source = _records(config, data_dir, hub_id, revision)
    for split, records in splits.items():
        rows = []
        if isinstance(records, Path):
            records = read_json_records(records, f"CoNaLa {split}", errors, data.report)
        for index, (where, record) in enumerate(records):
            row = _row(record, where, config, query_field, min_prob, errors, data.report)
            if row is not None:
                # The id names the record, never where it was read from (a local path would leak into datasets
                # and cards): the same row has the same id from the Hub and from a local copy.
                row["id"] = f"conala-{config}-{split}-{index}"
                rows.append(row)
        if not rows:
            raise ValueError(f"load_conala: no usable rows in the {split} split of {data.name} ({source}).")
        _merge_groups(rows)
        if split == "train":
            data.train = identity_out_of_rows(
                Dataset.from_dict({key: [row[key] for row in rows] for key in ("query", "code", "id", "dup_group")})
            )
        else:
            data.test = _retrieval_set(rows, f"{data.name}-test")
    if report is not None:
        report.merge(data.report)
    if verbose and data.report:
        data.report.print(f"{data.name} report")
    return data


def _records(config: str, data_dir, hub_id: str, revision) -> tuple[dict, str]:
    """``({split: [(where, record), ...]}, where the records came from)``."""
    if data_dir is not None:
        return _local_records(Path(data_dir), config)
    try:
        return _hub_records(hub_id, config, revision)
    except (OSError, ValueError, ConnectionError) as hub_error:  # offline, not cached, not found
        local = _shared_conala_dir()
        if config == "curated" and local is not None:
            return _local_records(local, config)
        raise FileNotFoundError(
            f"load_conala: the Hub dataset {hub_id!r} ({config}) could not be loaded ({type(hub_error).__name__}: "
            f"{str(hub_error).splitlines()[0] if str(hub_error) else ''}) and no local copy of the curated split "
            "was found; pass data_dir=<folder with conala-train.json>."
        ) from hub_error


def _local_records(folder: Path, config: str) -> tuple[dict, str]:
    if config != "curated":
        raise ValueError(f"load_conala: a local data_dir holds the curated split only, not {config!r}.")
    if not (folder / CONALA_FILES["train"]).exists():
        raise FileNotFoundError(f"load_conala: {CONALA_FILES['train']} not found in {folder}.")
    # Lazily read: read_json_records reports non-object records itself, under the caller's errors mode.
    return {split: folder / name for split, name in CONALA_FILES.items() if (folder / name).exists()}, str(folder)


def _hub_records(hub_id: str, config: str, revision) -> tuple[dict, str]:
    from datasets import load_dataset

    loaded = load_dataset(hub_id, config, revision=revision)
    records = {split: [(f"{hub_id}[{config}/{split}] row {i}", row) for i, row in enumerate(loaded[split])]
               for split in ("train", "test") if split in loaded}
    return records, f"{hub_id} ({config})"


def _row(record, where, config, query_field, min_prob, errors, report) -> dict | None:
    wanted = (query_field, "intent") if query_field == "rewritten_intent" else ("intent",)
    query = field(record, wanted, where, errors, report)
    code = field(record, ("snippet",), where, errors, report)
    if query is None or code is None:
        return None
    question = field(record, ("question_id",), where, errors, report, kind="identifier")
    if question is None:
        return None
    if isinstance(question, bool) or not isinstance(question, int):
        report.bad_input(errors, "field 'question_id' is not an integer", where, repr(question)[:40])
        return None
    if not query.strip() or not code.strip():
        report.bad_input(errors, "empty intent or snippet", where)
        return None
    if config == "mined":
        prob = record.get("prob")
        if not isinstance(prob, (int, float)) or prob < min_prob:
            report.filter(f"mined pair with prob < {min_prob}", where)
            return None
    return {"query": " ".join(query.split()), "code": code.strip(), "dup_group": int(question),
            "question_id": int(question)}


def _merge_groups(rows: list[dict]) -> None:
    """One duplicate group per connected set of rows sharing a question or an identical snippet.

    Answers to one question are not negatives of each other; neither are two questions answered by the same
    snippet (``s.strip()`` answers several). Each group is named by its smallest question id.
    """
    parent: dict = {}

    def find(key):
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for row in rows:
        a, b = find(("q", row["dup_group"])), find(("c", row["code"]))
        if a != b:
            parent[b] = a
    smallest: dict = {}
    for row in rows:
        root = find(("q", row["dup_group"]))
        smallest[root] = min(smallest.get(root, row["dup_group"]), row["dup_group"])
    for row in rows:
        row["dup_group"] = smallest[find(("q", row["dup_group"]))]


def _retrieval_set(rows: list[dict], name: str) -> RetrievalSet:
    corpus_ids: dict[str, str] = {}
    queries, relevant, groups = {}, {}, {}
    for row in rows:
        cid = corpus_ids.setdefault(row["code"], f"{name}-code-{len(corpus_ids)}")
        qid = f"{name}-q{row['question_id']}"  # one query per StackOverflow question; its snippets are all gold
        queries.setdefault(qid, row["query"])
        relevant.setdefault(qid, set()).add(cid)
        groups[cid] = row["dup_group"]
    corpus = {cid: code for code, cid in corpus_ids.items()}
    return RetrievalSet(queries, corpus, relevant, groups=groups, name=name, metadata={"source": "conala"})


def _shared_conala_dir() -> Path | None:
    from hf_softnce.data.locate import find_shared_data_dir

    return find_shared_data_dir("conala", marker=CONALA_FILES["train"])
