"""CoSQA as CoIR publishes it on the Hub, written out in CoCLR's retrieval layout so one reader serves both.

CoIR (Li et al., 2024) splits CoSQA into ``CoIR-Retrieval/cosqa-queries-corpus`` (splits ``queries`` and
``corpus``, BEIR columns ``_id``/``text``) and ``CoIR-Retrieval/cosqa-qrels`` (splits ``train``/``valid``/``test``,
columns ``query-id``/``corpus-id``/``score``). CoCLR's files are what :func:`hf_softnce.data.load_cosqa` reads:
``code_idx_map.txt`` ``{code: retrieval_idx}`` and one JSON list per split of ``{idx, doc, code, retrieval_idx,
label}``. CoIR keeps one corpus entry per query, so identical codes repeat there; as in ``code_idx_map.txt``
they become one codebase entry (the first id of each text), and a qrel on any copy points at it.
"""

from __future__ import annotations

import json
from pathlib import Path

QRELS_SPLITS = {"train": "cosqa-retrieval-train-19604.json", "valid": "cosqa-retrieval-dev-500.json",
                "test": "cosqa-retrieval-test-500.json"}


def _columns(dataset, wanted: tuple[str, ...], where: str) -> None:
    missing = [c for c in wanted if c not in dataset.column_names]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; found {dataset.column_names}.")


def coir_to_coclr(queries, corpus, qrels: dict) -> tuple[dict[str, int], dict[str, list[dict]]]:
    """``(code_idx_map, {file name: records})`` from CoIR's queries, corpus and ``{split: qrels}`` datasets."""
    _columns(queries, ("_id", "text"), "CoIR CoSQA queries")
    _columns(corpus, ("_id", "text"), "CoIR CoSQA corpus")
    query_text = dict(zip(map(str, queries["_id"]), queries["text"]))
    code_idx_map: dict[str, int] = {}
    code_of: dict[str, str] = {}
    for cid, text in zip(map(str, corpus["_id"]), corpus["text"]):
        code_idx_map.setdefault(text, len(code_idx_map))
        code_of[cid] = text
    files = {}
    for split, dataset in qrels.items():
        _columns(dataset, ("query-id", "corpus-id", "score"), f"CoIR CoSQA qrels [{split}]")
        records = []
        for qid, cid, score in zip(map(str, dataset["query-id"]), map(str, dataset["corpus-id"]), dataset["score"]):
            if qid not in query_text or cid not in code_of:
                raise ValueError(f"CoIR CoSQA qrels [{split}]: query {qid!r} or code {cid!r} is not in queries/corpus.")
            code = code_of[cid]
            records.append({"idx": qid, "doc": query_text[qid], "code": code,
                            "retrieval_idx": code_idx_map[code], "label": int(float(score) > 0)})
        files[QRELS_SPLITS[split]] = records
    return code_idx_map, files


def coir_to_coclr_folder(hub_id: str, revision: str | None, folder: Path) -> Path:
    """Load ``{hub_id}-queries-corpus`` and ``{hub_id}-qrels`` from the Hub; write CoCLR's files into ``folder``."""
    from datasets import load_dataset

    try:
        pairs = load_dataset(f"{hub_id}-queries-corpus", revision=revision)
        qrels = load_dataset(f"{hub_id}-qrels", revision=revision)
    except (OSError, ValueError) as error:  # offline, not cached, not found
        raise FileNotFoundError(
            f"CoSQA: no local files, and the Hub datasets {hub_id}-queries-corpus / {hub_id}-qrels could not be "
            f"loaded ({type(error).__name__}: {error}). Pass data_dir=<folder with CoCLR's files>."
        ) from error
    code_idx_map, files = coir_to_coclr(pairs["queries"], pairs["corpus"],
                                        {split: qrels[split] for split in QRELS_SPLITS if split in qrels})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "code_idx_map.txt").write_text(json.dumps(code_idx_map))
    for name, records in files.items():
        (folder / name).write_text(json.dumps(records))
    return folder
