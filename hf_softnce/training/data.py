"""Turn a config's ``data`` setting into training pairs and evaluation sets."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, concatenate_datasets, load_from_disk

from hf_softnce.data import (
    RetrievalSet,
    all_columns,
    build_python_corpus,
    load_conala,
    repository_style,
    load_advtest,
    load_codesearchnet,
    load_cosqa,
    retrieval_set_from_pairs,
    standardize_columns,
)
from hf_softnce.data.loaders import _query_key
from hf_softnce.data.locate import find_shared_data_dir
from hf_softnce.training.config import TrainConfig

logger = logging.getLogger(__name__)
# The real-query sets: the selection set (CoSQA training queries held out from every run) and the report set.
HELDOUT, DEV = "cosqa-heldout", "cosqa-dev"
HELDOUT_SIZE, HELDOUT_SEED = 1500, 2024


@dataclass
class TaskData:
    """Training pairs, the in-domain valid/test sets and the real-query sets of one run."""

    name: str
    train: Dataset
    valid: RetrievalSet | None
    test: RetrievalSet | None
    # Real queries over CoSQA's whole codebase: every choice is made on ``real_select`` (cosqa-heldout, 1,500 CoSQA
    # train queries no row trains on); ``real_report`` (cosqa-dev, the whole dev-500) is only ever reported.
    real_select: RetrievalSet | None = None
    real_report: RetrievalSet | None = None
    sources: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # data a run wanted but could not have (no Hub, no copy)
    # {code: duplicate group} of the codebase the real queries search (CoSQA's 6,267 functions): what hard
    # negatives are mined from when the training pairs answer queries over that same codebase.
    codebase: dict[str, int] | None = None
    train_pool: int | None = None  # the pairs ``train`` was sampled from (``max_train_pairs``); None: all of them

    def eval_sets(self) -> dict[str, RetrievalSet]:
        # Both real-query sets rank one codebase, so the held-out set costs only its queries' encoding.
        sets = {"test": self.test, HELDOUT: self.real_select, DEV: self.real_report}
        return {name: s for name, s in sets.items() if s is not None}


def _limit(dataset: Dataset, n: int | None, seed: int) -> Dataset:
    return dataset if n is None or n >= len(dataset) else dataset.shuffle(seed=seed).select(range(n))


def _limit_queries(retrieval_set: RetrievalSet | None, n: int | None, seed: int) -> RetrievalSet | None:
    if retrieval_set is None or n is None or n >= len(retrieval_set):
        return retrieval_set
    qids = sorted(retrieval_set.queries)
    random.Random(seed).shuffle(qids)
    return retrieval_set.subset(sorted(qids[:n]))


def _shrink_corpus(retrieval_set: RetrievalSet, size: int | None) -> RetrievalSet:
    """Keep every gold code plus a fixed random sample of distractors, ``size`` codes in all."""
    if size is None or size >= len(retrieval_set.corpus):
        return retrieval_set
    gold = {cid for cids in retrieval_set.relevant.values() for cid in cids}
    others = sorted(set(retrieval_set.corpus) - gold)
    random.Random(0).shuffle(others)
    keep = gold | set(others[: max(0, size - len(gold))])
    corpus = {cid: code for cid, code in retrieval_set.corpus.items() if cid in keep}
    groups = None if retrieval_set.groups is None else {c: g for c, g in retrieval_set.groups.items() if c in keep}
    return RetrievalSet(retrieval_set.queries, corpus, retrieval_set.relevant, groups, retrieval_set.name,
                        {**retrieval_set.metadata, "corpus_subset": len(corpus)})


def cosqa_folder(cosqa_dir: str | None) -> Path | None:
    """The CoSQA folder a config names: ``"auto"`` looks in $HF_SOFTNCE_DATA_DIR, ../shared/data from the working
    directory, then beside the source checkout; ``None``/``"none"``: no CoSQA."""
    if cosqa_dir in (None, "none", False):
        return None
    if cosqa_dir == "auto":
        return find_shared_data_dir("cosqa", marker="cosqa-retrieval-dev-500.json")
    return Path(cosqa_dir)


def heldout_query_ids(query_ids, size: int = HELDOUT_SIZE, seed: int = HELDOUT_SEED) -> list[str]:
    """The selection set's query ids among ``query_ids``: sorted, shuffled with ``seed``, the first ``size`` kept (at
    most half of them, for a small copy of CoSQA): the same set for every run, size and row."""
    ids = sorted(set(query_ids))
    random.Random(seed).shuffle(ids)
    return sorted(ids[:min(size, len(ids) // 2)])


def hold_out(train: Dataset, codebase: RetrievalSet, size: int = HELDOUT_SIZE,
             seed: int = HELDOUT_SEED) -> tuple[Dataset, RetrievalSet]:
    """CoSQA's training pairs without the selection set, and the selection set (``cosqa-heldout``).

    The held-out queries rank the same whole codebase as dev (``codebase``: CoSQA dev's :class:`RetrievalSet`,
    whose corpus holds every training code of the published protocol); each query's gold is its own code, so only
    queries whose code is in the codebase can be held out. No training row keeps a held-out query, by ``id`` or by
    text (up to case and spacing), so nothing chosen on this set was trained on.
    """
    columns = all_columns(train)
    cid_of_code = {code: cid for cid, code in codebase.corpus.items()}
    held = set(heldout_query_ids([qid for qid, code in zip(columns["id"], columns["code"]) if code in cid_of_code],
                                 size, seed))
    queries, relevant = {}, {}
    for qid, query, code in zip(columns["id"], columns["query"], columns["code"]):
        if qid in held:
            queries[qid] = query
            relevant.setdefault(qid, set()).add(cid_of_code[code])
    texts = {_query_key(query) for query in queries.values()}
    keep = [i for i, (qid, query) in enumerate(zip(columns["id"], columns["query"]))
            if qid not in held and _query_key(query) not in texts]
    heldout = RetrievalSet(queries, codebase.corpus, relevant, groups=codebase.groups, name=HELDOUT,
                           metadata={**codebase.metadata, "held_out_from": "cosqa-retrieval-train", "seed": seed})
    return train.select(keep), heldout


def cosqa_sets(cosqa_dir: str | None, corpus_size: int | None = None) -> tuple[RetrievalSet | None, RetrievalSet | None]:
    """(cosqa-heldout, cosqa-dev) for a run that does not train on CoSQA: the selection set when CoSQA's training
    split is present (none of it is trained on), and the whole dev-500 over the 6,267-function codebase."""
    folder = cosqa_folder(cosqa_dir)
    if folder is None:
        return None, None
    if not (folder / "cosqa-retrieval-dev-500.json").exists():
        raise FileNotFoundError(f"No CoSQA dev split (cosqa-retrieval-dev-500.json) in {folder}.")
    # Without a training file there is no selection set (CoCLR's QA file is read in its place, leaks filtered).
    has_train = any((folder / name).exists() for name in ("cosqa-retrieval-train-19604.json", "cosqa-train.json"))
    loaded = load_cosqa(data_dir=folder, splits=("train", "valid") if has_train else ("valid",), verbose=False)
    return _real_sets(loaded, corpus_size)[1:]


def _real_sets(loaded, corpus_size: int | None):
    """(training pairs without the held-out queries, cosqa-heldout, cosqa-dev) of a loaded CoSQA."""
    dev = _shrink_corpus(loaded.valid, corpus_size)
    dev.name = DEV
    if loaded.train is None:
        return None, None, dev
    train, heldout = hold_out(loaded.train, loaded.valid)
    if not heldout.queries:
        return train, None, dev
    return train, _shrink_corpus(heldout, corpus_size), dev


def _load_cosqa_train(config: TrainConfig) -> TaskData:
    """CoSQA's retrieval train split, its dev split as the two real-query halves, and its codebase for mining.

    The published protocol (CoCLR, R2PS, CoIR): the training codes are entries of the codebase dev is ranked
    against. Local files (``data_dir``, else ``cosqa_dir``), else CoIR's Hub datasets.
    """
    from hf_softnce.data.loaders import COIR_COSQA_HUB_ID

    folder = config.data_dir or cosqa_folder(config.cosqa_dir)
    loaded = load_cosqa(data_dir=folder, hub_id=None if folder else COIR_COSQA_HUB_ID, splits=("train", "valid"),
                        verbose=False)
    train, heldout, dev = _real_sets(loaded, config.cosqa_corpus_size)
    data = TaskData("cosqa", train, None, None, real_select=heldout, real_report=dev,
                    sources=["cosqa-retrieval-train"])
    data.codebase = {loaded.valid.corpus[cid]: group for cid, group in (loaded.valid.groups or {}).items()} or None
    return data


def _mix_conala(data: TaskData, config: TrainConfig) -> Dataset:
    """The training pairs with CoNaLa questions mixed in, so that ``conala_mix`` of the result is CoNaLa.

    ``conala_mix=1``: CoNaLa alone, the pairs of ``data`` only a fallback. Without the Hub or a local copy the run
    goes on with the pairs it has, and says what it left out.
    """
    if not 0.0 < config.conala_mix <= 1.0:
        raise ValueError(f"conala_mix must be in [0, 1], got {config.conala_mix}.")
    try:
        conala = all_columns(load_conala(config.conala_config, verbose=False).train)
    except FileNotFoundError as error:
        logger.warning("conala_mix=%s: CoNaLa left out, training on %s alone (%s)", config.conala_mix, data.name,
                       str(error).splitlines()[0])
        data.left_out.append(f"CoNaLa ({config.conala_config}): neither on the Hub nor in a local copy; "
                             f"trained on {data.name} alone")
        return data.train
    if config.conala_mix == 1.0:
        data.sources = [f"conala-{config.conala_config}"]
        return _limit(conala, config.max_train_pairs, config.seed)
    wanted = round(len(data.train) * config.conala_mix / (1.0 - config.conala_mix))
    conala = conala.shuffle(seed=config.seed).select(range(min(wanted, len(conala))))
    # Duplicate groups are numbered per source; keep them apart so a stdlib group never matches a question id.
    own = data.train.map(lambda row: {"dup_group": 2 * row["dup_group"]}) if "dup_group" in data.train.column_names else data.train
    conala = conala.map(lambda row: {"dup_group": 2 * row["dup_group"] + 1})
    keep = [c for c in own.column_names if c in conala.column_names]
    mixed = concatenate_datasets([own.select_columns(keep), conala.select_columns(keep)]).shuffle(seed=config.seed)
    data.sources.append(f"conala-{config.conala_config} ({len(conala)} pairs)")
    return mixed


def load_task_data(config: TrainConfig, *, progress: bool = True) -> TaskData:
    kind, _, language = config.data.partition(":")
    if kind == "python":
        corpus = build_python_corpus(sources=config.sources, progress=progress)
        data = TaskData(
            "python",
            corpus["train"],
            retrieval_set_from_pairs(corpus["valid"], name="valid"),
            retrieval_set_from_pairs(corpus["test"], name="test"),
            sources=list(config.sources),
        )
    elif kind == "conala":
        loaded = load_conala(language or config.conala_config, verbose=False)
        data = TaskData(loaded.name, loaded.train, None, loaded.test, sources=[loaded.name])
    elif kind == "cosqa":
        data = _load_cosqa_train(config)
    elif kind in ("codesearchnet", "advtest"):
        loader = {"codesearchnet": lambda: load_codesearchnet(language or "python", data_dir=config.data_dir),
                  "advtest": lambda: load_advtest(data_dir=config.data_dir)}[kind]
        loaded = loader()
        if loaded.train is None:
            raise ValueError(f"data={config.data!r} has no training split in {config.data_dir or 'the default location'}.")
        data = TaskData(loaded.name, loaded.train, loaded.valid, loaded.test, sources=[loaded.name])
    elif os.path.isdir(config.data):
        saved = load_from_disk(config.data)
        if not isinstance(saved, DatasetDict) or "train" not in saved:
            raise ValueError(f"{config.data} must hold a saved DatasetDict with a 'train' split.")
        # Any column names, read by position like sentence-transformers (anchor/positive/negative_*, ...); renamed
        # once here so the losses, weighters and duplicate groups downstream see query/code/negative_<n>/label.
        splits = {name: standardize_columns(saved[name], f"{config.data} [{name}]") for name in saved}
        data = TaskData(
            Path(config.data).name,
            splits["train"],
            retrieval_set_from_pairs(splits["valid"], name="valid") if "valid" in splits else None,
            retrieval_set_from_pairs(splits["test"], name="test") if "test" in splits else None,
            sources=[config.data],
        )
    else:
        raise ValueError(
            f"Unknown data={config.data!r}: use python, codesearchnet:<language>, cosqa, advtest, "
            "or the path of a saved DatasetDict."
        )
    # The job reads identity columns (dup_group for the losses and the card) and hands the trainer
    # to_training_dataset(data.train) itself.
    pool = len(data.train)
    data.train = all_columns(_limit(data.train, config.max_train_pairs, config.seed))
    data.train_pool = pool if len(data.train) < pool else None
    data.train = repository_style(data.train, docstring_rate=config.docstring_rate,
                                  docstring_part=config.docstring_part, query_style_rate=config.query_style_rate,
                                  seed=config.seed)
    if config.conala_mix > 0 and kind != "conala":
        data.train = _mix_conala(data, config)
    data.valid = _limit_queries(data.valid, config.max_eval_queries, 0)
    data.test = _limit_queries(data.test, config.max_eval_queries, 1)
    if data.real_report is None:
        data.real_select, data.real_report = cosqa_sets(config.cosqa_dir, config.cosqa_corpus_size)
    return data


def _train_count(data: TaskData) -> str:
    count = f"{len(data.train):,}"
    return f"a seeded sample of {count} of its {data.train_pool:,}" if data.train_pool else count


def protocol_statement(data: TaskData) -> str:
    """One sentence saying what a run trained on and what its real-query numbers were ranked against."""
    if data.real_report is None:
        return f"Trained on {', '.join(data.sources)} ({len(data.train):,} pairs); no CoSQA dev evaluation."
    evaluated = (f"evaluated on CoSQA dev ({len(data.real_report):,} real web queries), each query ranked against "
                 f"the whole {len(data.real_report.corpus):,}-function codebase")
    if data.real_select is not None:
        evaluated += (f"; every choice is made on {HELDOUT} ({len(data.real_select):,} CoSQA training queries no "
                      f"row trains on, same codebase), never on dev")
    if data.name == "cosqa":
        held_out = "" if data.real_select is None else f", once the {len(data.real_select):,} of {HELDOUT} are held out"
        return (f"Protocol (CoSQA's published one: CoCLR, R2PS, CoIR): trained on CoSQA's retrieval training split "
                f"({_train_count(data)} real web queries with a human 'answers the query' label{held_out}), "
                f"{evaluated}; the "
                f"training codes are functions of that codebase, as in the published protocol, and no dev query is "
                f"in training.")
    return f"Trained on {', '.join(data.sources)} ({len(data.train):,} pairs); {evaluated}."
