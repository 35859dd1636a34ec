"""From a finished run to the card every saved model carries, and to the Hub.

Two kinds of card: a single run's (:func:`single_run_summary`, written by ``train_retriever`` into ``final/`` and
the run folder, offline) and the main job's (:func:`run_summary` with the whole comparison). Both report the saved
weights' numbers, each evaluation set with the size of the corpus it ranked, and the training data by Hub id.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

from hf_softnce.data import all_columns
from hf_softnce.hub import (
    CARD_FILE,
    DATASET_IDS,
    FINAL_FOLDER,
    DataSummary,
    EvalSummary,
    RunSummary,
    dataset_id,
    describe_loss,
    push_run,
    save_run_folder,
    write_model_card,
)
from hf_softnce.hub.public import is_local_path
from hf_softnce.hub.summary import DATASET_NAMES
from hf_softnce.training.comparison import BASE_ROW
from hf_softnce.training.config import CHECKPOINT_KEYS, RUN_OPTION_KEYS, TrainConfig
from hf_softnce.training.data import DEV, HELDOUT, HELDOUT_SEED, HELDOUT_SIZE, TaskData, protocol_statement
from hf_softnce.training.losses import LOSS_ONLY_KEYS, WEIGHTER_KEYS
from hf_softnce.training.models import display_name, load_model

THIS_RUN = "fine-tuned"
RETRIEVER_ROW = "retriever alone"
CASCADE_ROW = "retriever → ranker"
# Split names as the Hub dataset has them (CoIR calls CoSQA's dev split "valid"; the loader's Hub fallback reads
# dev-500 from it); the held-out queries are a subset of its train split, named in the model-index's args.
REAL_SETS = {
    HELDOUT: ({"name": "CoSQA train, held-out queries", "split": "train", "args": {"subset": HELDOUT}},
              f"Real web queries of the train split held out from training (`{HELDOUT}`): this model never saw them; every "
              "choice was made on this set."),
    DEV: ({"name": "CoSQA dev-500", "split": "valid"},
          "Real web queries (CoSQA's dev split, which the Hub dataset names `valid`); never used for a choice."),
}


# ------------------------------------------------------------------------------------------------ training data


def _source_line(source: str) -> tuple[str, str | None]:
    """A training source as the card shows it (never a local path), and its Hub id when it has one."""
    hub_id = dataset_id(source)
    if hub_id is not None:
        family = next(name for name, id_ in DATASET_IDS.items() if id_ == hub_id)
        return f"{DATASET_NAMES[family]} (`{source}`)", hub_id
    if source == "stdlib":
        return "the Python standard library: (docstring, function) pairs mined with `ast` (embedded corpus, no Hub id)", None
    if is_local_path(source):
        return "a local dataset (not on the Hub)", None
    return source, None


def data_summary(data: TaskData, loss_config: dict | None = None) -> DataSummary:
    """The training data: sources with their Hub ids, rows, and the duplicate groups the loss masked."""
    lines, datasets = [], []
    for source in data.sources:
        line, hub_id = _source_line(source)
        lines.append(line)
        if hub_id:
            datasets.append(hub_id)
    counts = {}
    if loss_config and loss_config.get("duplicate_group_count") is not None:
        # The number the loss config reports (every group the masking knows, singletons included).
        counts["duplicate groups"] = int(loss_config["duplicate_group_count"])
    if "dup_group" in data.train.column_names:
        # Groups of two or more training rows: the duplicates the losses mask (a singleton masks nothing).
        sizes = Counter(all_columns(data.train)["dup_group"])
        shared = sum(1 for group, size in sizes.items() if group is not None and size > 1)
        counts["duplicate groups with two or more rows" if counts else "duplicate groups"] = shared
    parts = []
    if any(source.startswith("conala") for source in data.sources):
        parts.append("CoNaLa: real StackOverflow questions (`intent`) paired with the snippets that answer them; "
                     "answers to one question share a duplicate group.")
    if data.name == "python" and not all(source.startswith("conala") for source in data.sources):
        parts.append("(docstring, function) pairs mined with `ast` from the Python sources, CodeSearchNet-style, "
                     "split by package.")
    if data.name == "cosqa" and data.real_select is not None:
        parts.append(f"CoSQA's training split as published, less the {len(data.real_select):,} queries (and their "
                     f"pairs) held out to choose settings on (`{HELDOUT}`: the query ids whose code is in the "
                     f"codebase, sorted, shuffled with `random.Random({HELDOUT_SEED})`, the first {HELDOUT_SIZE:,}; "
                     "`hf_softnce.training.data.hold_out`).")
    if not parts:
        parts.append(f"{DATASET_NAMES.get(data.name.split('-')[0], 'The training pairs')} as published.")
    if data.train_pool:
        parts.append(f"Trained on a seeded sample of {len(data.train):,} of its {data.train_pool:,} training pairs "
                     "(`max_train_pairs`).")
    return DataSummary(sources=lines, splits={"train": len(data.train)}, counts=counts, description=" ".join(parts),
                       datasets=list(dict.fromkeys(datasets)))


# ------------------------------------------------------------------------------------------------ evaluation sets


def _set_description(data: TaskData, set_name: str, selected: str | None) -> dict:
    """Name, Hub id, split and note of one of ``data.eval_sets()``."""
    retrieval_set = data.eval_sets()[set_name]
    if set_name in REAL_SETS:
        # Its own split name: the model-index tells results apart by dataset type and split, not by name.
        named, note = REAL_SETS[set_name]
        described = {**named, "dataset_id": DATASET_IDS["cosqa"]}
    else:
        family = data.name.split("-")[0]
        pretty = {"python": "Embedded Python corpus, held-out packages"}.get(family, DATASET_NAMES.get(family, data.name))
        described = {"name": f"{pretty} ({set_name})", "dataset_id": dataset_id(data.name), "split": set_name}
        note = ""
    if set_name == selected:
        note = "The best checkpoint was chosen on it, so its numbers are optimistic."
    if retrieval_set.metadata.get("corpus_subset"):
        note += " The corpus is a fixed subset of the codebase (every gold code plus random distractors)."
    return {**described, "note": note.strip(), "queries": len(retrieval_set), "corpus_size": len(retrieval_set.corpus)}


def _set_rows(rows: dict[str, dict], set_name: str) -> dict[str, dict]:
    """``{row: {metric: value}}`` of one evaluation set, from flat ``{f"{set}_{metric}": value}`` results."""
    prefix = f"{set_name}_"
    table = {row: {key[len(prefix):]: value for key, value in metrics.items() if key.startswith(prefix)}
             for row, metrics in rows.items()}
    return {row: metrics for row, metrics in table.items() if metrics}


def evaluations(data: TaskData, rows: dict[str, dict], selected: str | None = None,
                comparison: dict | None = None) -> list[EvalSummary]:
    """One :class:`EvalSummary` per evaluation set of ``data`` that ``rows`` (``{row: flat metrics}``) measured, with
    that set's paired intervals from ``comparison`` (the main job's ``{set: {row: entry}}``) when given."""
    summaries = []
    for set_name in data.eval_sets():
        results = _set_rows(rows, set_name)
        if results:
            summaries.append(EvalSummary(results=results, intervals=_interval_rows(comparison or {}, set_name),
                                         **_set_description(data, set_name, selected)))
    return summaries


# ------------------------------------------------------------------------------------------------ a single run


def single_run_summary(config: TrainConfig, loss, data: TaskData, metrics: dict, base_metrics: dict | None = None,
                       *, repo_id: str | None = None, selected: str | None = None, **fields) -> RunSummary:
    """The card of one ``train_retriever`` run: the saved weights' ``metrics`` (after WiSE-FT) on every evaluation
    set, the base model's ``base_metrics`` beside them when the base was evaluated. No comparison table: a single
    run has no other training to compare with. ``fields``: other :class:`RunSummary` fields (model_name, ...)."""
    rows = {**({BASE_ROW: base_metrics} if base_metrics else {}), THIS_RUN: metrics}
    return _summary(config, loss, data, THIS_RUN, evaluations(data, rows, selected),
                    base_row=BASE_ROW if base_metrics else None, seeds=[config.seed],
                    repo_id=repo_id or config.push_to_hub, **fields)


def _summary(config: TrainConfig, loss, data: TaskData, method: str, summaries: list[EvalSummary],
             **fields) -> RunSummary:
    """What every card shares: names, loss, training data, training arguments and WiSE-FT; ``fields`` win.

    ``loss``: the loss object, or what :func:`describe_loss` said of it (a resumed run keeps only that)."""
    loss_fields = dict(loss if isinstance(loss, dict) else describe_loss(loss))
    loss_fields["loss_config"] = card_loss_config(config, loss_fields["loss_config"])
    base = display_name(config.model)
    name = loss_fields["loss_name"] if method == THIS_RUN else method
    values = dict(
        model_name=f"{short_model_name(base)} fine-tuned for code search with {name}",
        base_model=base,
        method=method,
        **loss_fields,
        data=data_summary(data, loss_fields["loss_config"]),
        evaluations=summaries,
        training_args=card_training_args(config, loss_fields["loss_config"], ranker=fields.get("kind") == "ranker"),
        wise_ft_weight=config.wise_ft_weight,
    )
    return RunSummary(**{**values, **fields})


def card_model_name(value):
    """A model setting as a card names it: the packaged model (``"default"``) by its Hub id, the main job's teacher
    (``"<row name>"``, that row's saved model of the same seed) in words; any other value as it is."""
    if value == "default":
        return display_name(value)
    if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
        row = value[1:-1]
        return f"this run's {row} model (the {row} row of its results: same pairs and seed; not published)"
    return value


def card_loss_config(config: TrainConfig, loss_config: dict) -> dict:
    """The loss's config with the models inside it (a weighter's, GIST's guide) named as the training arguments name
    them: a loaded model only knows its class or a local path, the config knows what it was."""
    shown = dict(loss_config)
    weighter = shown.get("weighter")
    if isinstance(weighter, dict) and "model" in weighter and config.weighter_model:
        shown["weighter"] = {**weighter, "model": card_model_name(config.weighter_model)}
    if "guide" in shown and config.guide_model:
        shown["guide"] = card_model_name(config.guide_model)
    return shown


# A data option at 0 is off: the option and its settings say nothing the training data section does not.
DATA_SWITCHES = {"conala_mix": ("conala_mix", "conala_config"), "docstring_rate": ("docstring_rate", "docstring_part"),
                 "query_style_rate": ("query_style_rate",)}
MINING_KEYS = ("miner_model", "mining_strategy", "mining_window_start", "mining_relative_margin",
               "mining_absolute_margin")


def card_training_args(config: TrainConfig, loss_config: dict, *, ranker: bool = False) -> dict:
    """The training arguments as a card shows them: the settings the card's model was trained with, not every key.

    A loss setting left to the loss's default (``None``) is shown as the value the loss used; ``sources`` (the stdlib
    corpus's packages) only where that corpus trained the model; another loss's settings, the ranker's (``ranker_*``)
    on a retriever's card and the retriever losses' on the ranker's (``ranker=True``), the miner's where no
    negative was mined (``num_negatives=0``, a retriever), a data option that is off and its settings (CoNaLa's
    config without ``conala_mix``, ``docstring_part`` without ``docstring_rate``), how the run was driven
    (:data:`RUN_OPTION_KEYS`: logging, the Hub, the device, by name or prefix), the checkpoint and evaluation keys
    where no checkpoint was chosen (:data:`CHECKPOINT_KEYS` under ``select_on="none"``) and settings left to ``None``
    are left out; ``miner_model`` left to ``None`` is shown as the model
    that mined (the base, before training)."""
    args = config.to_dict()
    for key, value in args.items():
        if value is None and loss_config.get(key) is not None:
            args[key] = loss_config[key]
    if config.data != "python":
        args.pop("sources", None)
    if config.num_negatives and not ranker and config.miner_model is None:
        args["miner_model"] = display_name(config.model)  # None: the model being trained mined, before training
    for key in ("model", "miner_model", "weighter_model", "guide_model", "ranker_model"):
        if key in args:
            args[key] = card_model_name(args[key])
    unused = [key for switch, keys in DATA_SWITCHES.items() if not args.get(switch) for key in keys]
    unused += [key for loss, keys in LOSS_ONLY_KEYS.items() if ranker or loss != config.loss for key in keys]
    if ranker or config.loss not in ("soft_infonce", "order_infonce"):
        unused += WEIGHTER_KEYS
    if not ranker:
        unused += [key for key in args if key.startswith("ranker_")]
        if not config.num_negatives:
            unused += MINING_KEYS
    driven = RUN_OPTION_KEYS + (CHECKPOINT_KEYS if args.get("select_on") == "none" else ())
    unused += [key for key in args if key.startswith(driven)]
    for key in unused:
        args.pop(key, None)
    return {key: value for key, value in args.items() if value is not None}


def ranker_summary(config: TrainConfig, loss, data: TaskData, cascade_metrics: dict, *,
                   repo_id: str | None = None) -> RunSummary:
    """The card of the ranker recipe's cross-encoder: on every evaluation set the retriever alone beside the
    retriever -> this ranker cascade (``cascade_metrics``: :func:`~hf_softnce.retrieval.evaluate_cascade` per set),
    both over the same whole corpus, which is the ranker's own contribution."""
    retriever = display_name(config.miner_model or config.model)
    rows: dict[str, dict] = {RETRIEVER_ROW: {}, CASCADE_ROW: {}}
    for set_name, result in cascade_metrics.items():
        for row, stage in ((RETRIEVER_ROW, "retriever"), (CASCADE_ROW, "cascade")):
            rows[row].update({f"{set_name}_{k}": v for k, v in result[stage].items() if "@" in k})
    ranker_config = replace(config, model=config.ranker_model, wise_ft_weight=None)
    return _summary(
        ranker_config, loss, data, CASCADE_ROW, evaluations(data, rows),
        model_name=f"{short_model_name(display_name(config.ranker_model))} R2PS code-search ranker",
        baseline=RETRIEVER_ROW, seeds=[config.seed], repo_id=repo_id or config.push_to_hub, kind="ranker",
        retriever=retriever,
        description=(f"Numbers: the retriever ranks the whole corpus, this ranker re-scores its top "
                     f"{config.ranker_top_k} (`combine={config.ranker_combine}`"
                     f"{f', ranker_weight={config.ranker_weight:g}' if config.ranker_combine == 'add' else ''})."
                     if config.ranker_top_k else
                     "Numbers: the retriever ranks the whole corpus and this ranker re-scores none of it "
                     "(`ranker_top_k=0`), so the cascade is the retriever alone."),
    )


def short_model_name(model: str) -> str:
    return "a local model" if is_local_path(model) else model.split("/")[-1]


def write_run_card(output_dir: str | Path, model, summary: RunSummary, folder: str = FINAL_FOLDER) -> Path:
    """hf_softnce's card in the run's saved model (``final/``, the ranker's ``ranker/``) and a copy at the run
    folder's top, so that ``hf-softnce push RUN_DIR`` finds it; returns the model folder."""
    output_dir = Path(output_dir)
    final = write_model_card(output_dir / folder, model, summary)
    shutil.copyfile(final / CARD_FILE, output_dir / CARD_FILE)
    return final


def publish_run(config: TrainConfig, repo_id: str) -> None:
    """A single run: upload its saved model folder (the card is already there) with the config's Hub options."""
    push_run(config.output_dir, repo_id, private=config.hub_private, revision=config.hub_revision,
             create_pr=config.hub_create_pr)


# ------------------------------------------------------------------------------------------------ the main job


def _comparison_paragraph(comparison: dict, method: str) -> str:
    from hf_softnce.training.comparison import verdicts

    sentences = [s for s in verdicts(comparison) if s.startswith(method + " ")]
    if not sentences:
        return ""
    return "\n".join(["On CoSQA dev-500 real web queries against the whole codebase (paired bootstrap, 95%):",
                      "", *(f"- {s}" for s in sentences)])


def _interval_rows(comparison: dict, set_name: str) -> list[dict]:
    """The paired intervals of one evaluation set, as :class:`EvalSummary` ``intervals`` rows."""
    def triple(difference):
        return None if difference is None else (difference.value, difference.low, difference.high)

    return [{"name": row, "mrr": entry["metrics"]["mrr@1000"], "delta_vs_base": triple(entry.get("vs_base")),
             "delta_vs_infonce": triple(entry.get("vs_infonce"))}
            for row, entry in comparison.get(set_name, {}).items()]


def run_summary(config: TrainConfig, loss, data: TaskData, results: dict, seeds: list[int], method: str,
                repo_id: str | None, comparison: dict | None = None) -> RunSummary:
    """The main job's card: every row on the held-out set and on the whole CoSQA dev set (seeds as lists, the
    saved model being the first seed's), the base model beside them, InfoNCE as the baseline when it was trained
    and is not the method itself, and the paired intervals of ``comparison``."""
    rows = {row: {k: (v if isinstance(v, list) else [v]) for k, v in metrics.items()} for row, metrics in results.items()}
    for set_name, table in (comparison or {}).items():
        for row, entry in table.items():  # rows without their own evaluation (the cascade)
            rows.setdefault(row, {}).update({f"{set_name}_{k}": [v] for k, v in entry["metrics"].items()
                                             if f"{set_name}_{k}" not in rows.get(row, {})})
    summaries = evaluations(data, rows, comparison=comparison)
    return _summary(
        config, loss, data, method, summaries,
        baseline="InfoNCE" if "InfoNCE" in results and method != "InfoNCE" else None,
        base_row=BASE_ROW if BASE_ROW in results else None,
        seeds=seeds,
        repo_id=repo_id,
        description="\n\n".join(filter(None, [protocol_statement(data),
                                                _comparison_paragraph(comparison or {}, method)])),
        limitations=_size_limitations(config, seeds),
    )


def _size_limitations(config: TrainConfig, seeds: list[int]) -> list[str]:
    """A run trained by a step budget (``--quick``) says so on its card: its figures are a demonstration's."""
    if not config.max_steps or config.max_steps < 0:
        return []
    seen = config.max_steps * config.batch_size
    return [f"Trained for {config.max_steps} steps of {config.batch_size} pairs ({seen:,} pairs), {len(seeds)} "
            "seed(s): a demonstration size, where differences between rows are small against the intervals; "
            "`hf-softnce main --full` trains one epoch of every training pair."]


def save_default_model_folder(output_dir: Path, config: TrainConfig, data: TaskData, results: dict, seeds: list[int],
                              method: str, repo_id: str | None, *, loss, model_dir: Path,
                              comparison: dict | None = None) -> Path:
    """The main job's deliverable: the default method's first-seed model (the saved, WiSE-FT-averaged weights)
    with the whole comparison on its card. ``config``/``loss``: what trained that model (the card shows the loss's
    config and citation; nothing is rebuilt)."""
    model = load_model(str(model_dir))
    summary = run_summary(config, loss, data, results, seeds, method, repo_id, comparison)
    folder = output_dir / "hub"
    shutil.rmtree(folder, ignore_errors=True)
    save_run_folder(model, summary, folder)
    if repo_id:
        push_run(folder, repo_id)
    return folder
