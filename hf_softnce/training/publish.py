"""From a finished run to the folder (and Hub repo) a user downloads: model, card, evaluation, config."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

from hf_softnce.hub import DataSummary, RunSummary, describe_loss, push_run, save_run_folder
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import TaskData
from hf_softnce.training.losses import build_loss
from hf_softnce.training.models import display_name, load_model

CARD_SET = "test"  # the held-out split; CoSQA real-query results go into the model-index beside it


def data_summary(data: TaskData) -> DataSummary:
    splits = {"train": len(data.train)}
    for name, retrieval_set in (("valid", data.valid), ("test", data.test)):
        if retrieval_set is not None:
            splits[name] = len(retrieval_set)
    counts = {}
    if "dup_group" in data.train.column_names:
        # Groups of two or more training rows: the duplicates the losses mask (a singleton masks nothing).
        sizes = Counter(data.train["dup_group"])
        counts["duplicate groups"] = sum(1 for group, size in sizes.items() if group is not None and size > 1)
    if data.real_report is not None:
        halves = [s for s in (data.real_select, data.real_report) if s is not None]
        counts["CoSQA dev queries evaluated"] = sum(len(s) for s in halves)
        counts["CoSQA codebase searched"] = len(data.real_report.corpus)
    parts = []
    if any(source.startswith("conala") for source in data.sources):
        parts.append("CoNaLa: real StackOverflow questions (`intent`) paired with the snippets that answer them; "
                     "answers to one question share a duplicate group.")
    if data.name == "python" and not all(source.startswith("conala") for source in data.sources):
        parts.append("(docstring, function) pairs mined with `ast` from the Python sources, CodeSearchNet-style, "
                     "split by package.")
    if not parts:
        parts.append(f"{data.name} as published.")
    if data.name == "python" and (data.valid is not None or data.test is not None):
        parts.append("Valid/test rows: held-out packages of the embedded Python corpus.")
    return DataSummary(sources=data.sources, splits=splits, counts=counts, description=" ".join(parts))


def _set_results(results: dict, set_name: str) -> dict:
    prefix = f"{set_name}_"
    table = {}
    for method, metrics in results.items():
        row = {key[len(prefix):]: values for key, values in metrics.items() if key.startswith(prefix)}
        if row:
            table[method] = row if all(len(v) > 1 for v in row.values()) else {k: v[0] for k, v in row.items()}
    return table


def _real_query_paragraph(results: dict) -> str:
    table = _set_results(results, "cosqa-report")
    if not table:
        return ""
    lines = ["Real web queries (CoSQA dev, the half never used for selection), MRR@1000:", ""]
    for method, row in table.items():
        value = row.get("mrr@1000")
        values = value if isinstance(value, list) else [value]
        lines.append(f"- {method}: {sum(values) / len(values):.4f}")
    return "\n".join(lines)


def _comparison_paragraph(comparison: dict, method: str, config: TrainConfig) -> str:
    from hf_softnce.training.comparison import verdicts

    lines = []
    if config.wise_ft_weight is not None:
        lines.append(f"The saved weights are WiSE-FT-averaged with the base model after training: "
                     f"θ = {1 - config.wise_ft_weight:g}·θ_base + {config.wise_ft_weight:g}·θ_tuned. Every result "
                     "below is of these saved weights.")
    sentences = [s for s in verdicts(comparison) if s.startswith(method + " ")]
    if sentences:
        lines += ["", "On CoSQA dev-500 real web queries against the whole codebase (paired bootstrap, 95%):",
                  "", *(f"- {s}" for s in sentences)]
    return "\n".join(lines)


def _interval_rows(comparison: dict, set_name: str = "cosqa-dev") -> list[dict]:
    def triple(difference):
        return None if difference is None else (difference.value, difference.low, difference.high)

    return [{"name": row, "mrr": entry["metrics"]["mrr@1000"], "delta_vs_base": triple(entry.get("vs_base")),
             "delta_vs_infonce": triple(entry.get("vs_infonce"))}
            for row, entry in comparison.get(set_name, {}).items()]


def run_summary(config: TrainConfig, loss, data: TaskData, results: dict, seeds: list[int], method: str,
                repo_id: str | None, comparison: dict | None = None) -> RunSummary:
    """The card's content. With ``comparison`` (the main job), real-query results are CoSQA dev-500 over the whole
    codebase with seeds averaged per query, and every row carries its paired intervals."""
    per_seed = all(len(v) == len(seeds) for m in results.values() for v in m.values())
    card_results = _set_results(results, CARD_SET)
    if not per_seed:
        card_results = {m: {k: (sum(v) / len(v) if isinstance(v, list) else v) for k, v in row.items()}
                        for m, row in card_results.items()}
    real = {k: (sum(v) / len(v) if isinstance(v, list) else v)
            for k, v in _set_results(results, "cosqa-report").get(method, {}).items()}
    description, intervals = _real_query_paragraph(results), []
    if comparison and method in comparison.get("cosqa-dev", {}):
        real = comparison["cosqa-dev"][method]["metrics"]
        description, intervals = _comparison_paragraph(comparison, method, config), _interval_rows(comparison)
    return RunSummary(
        model_name=f"{display_name(config.model).split('/')[-1]} fine-tuned for code search with {method}",
        base_model=display_name(config.model),
        method=method,
        **describe_loss(loss),
        data=data_summary(data),
        results=card_results,
        baseline="InfoNCE" if "InfoNCE" in card_results else method,
        eval_dataset=f"{data.name}-code-search",
        eval_split=CARD_SET,
        training_args=config.to_dict(),
        seeds=seeds,
        repo_id=repo_id,
        license="apache-2.0",
        description=description,
        wise_ft_weight=getattr(config, "wise_ft_weight", None),
        real_query_results=real,
        real_query_split="dev-500, whole codebase" if intervals else "dev, report half",
        interval_rows=intervals,
    )


def publish_run(model, loss, config: TrainConfig, data: TaskData, metrics: dict, repo_id: str) -> Path:
    """A single recipe run: write the run folder and upload it."""
    results = {"this run": {k: [v] for k, v in metrics.items()}}
    summary = run_summary(config, loss, data, results, [config.seed], "this run", repo_id)
    folder = Path(config.output_dir) / "hub"
    shutil.rmtree(folder, ignore_errors=True)
    save_run_folder(model, summary, folder)
    push_run(folder, repo_id, private=config.hub_private, revision=config.hub_revision, create_pr=config.hub_create_pr)
    return folder


def save_default_model_folder(output_dir: Path, base: TrainConfig, data: TaskData, results: dict, seeds: list[int],
                              method: str, repo_id: str | None, *, config_overrides: dict, model_dir: Path,
                              comparison: dict | None = None) -> Path:
    """The main job's deliverable: the default method's first-seed model (the saved, WiSE-FT-averaged weights)
    with the whole comparison on its card."""
    config = replace(base, seed=seeds[0], **config_overrides)
    model = load_model(str(model_dir))
    groups = dict(zip(data.train["code"], data.train["dup_group"])) if "dup_group" in data.train.column_names else None
    # For its config (with the duplicate groups training used) and citation on the card.
    loss = build_loss(config, model, data.train, duplicate_groups=groups)
    summary = run_summary(config, loss, data, results, seeds, method, repo_id, comparison)
    folder = output_dir / "hub"
    shutil.rmtree(folder, ignore_errors=True)
    save_run_folder(model, summary, folder)
    if repo_id:
        push_run(folder, repo_id)
    return folder
