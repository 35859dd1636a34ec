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

CARD_SET = "test"  # the model-index reports the held-out split; real-query results go in the description


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
        counts["CoSQA dev queries reported"] = len(data.real_report)
        counts["CoSQA codebase searched"] = len(data.real_report.corpus)
    return DataSummary(
        sources=data.sources,
        splits=splits,
        counts=counts,
        description=(
            "(docstring, function) pairs mined with `ast` from the Python sources, CodeSearchNet-style "
            "(query = first docstring paragraph, code = function without its docstring), split by package."
            if data.name == "python" else f"{data.name} as published."
        ),
    )


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


def run_summary(config: TrainConfig, loss, data: TaskData, results: dict, seeds: list[int], method: str,
                repo_id: str | None) -> RunSummary:
    per_seed = all(len(v) == len(seeds) for m in results.values() for v in m.values())
    card_results = _set_results(results, CARD_SET)
    if not per_seed:
        card_results = {m: {k: (sum(v) / len(v) if isinstance(v, list) else v) for k, v in row.items()}
                        for m, row in card_results.items()}
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
        description=_real_query_paragraph(results),
        wise_ft_weight=getattr(config, "wise_ft_weight", None),
        real_query_results={k: (sum(v) / len(v) if isinstance(v, list) else v)
                            for k, v in _set_results(results, "cosqa-report").get(method, {}).items()},
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
                              method: str, repo_id: str | None) -> Path:
    """The main job's deliverable: the default method's first-seed model with the whole comparison on its card."""
    from hf_softnce.training.main_job import METHODS, _slug

    overrides = dict(METHODS)[method]
    config = replace(base, seed=seeds[0], **overrides)
    model = load_model(str(output_dir / _slug(method) / f"seed-{seeds[0]}" / "final"))
    loss = build_loss(config, model, data.train)  # for its config and citation on the card
    summary = run_summary(config, loss, data, results, seeds, method, repo_id)
    folder = output_dir / "hub"
    shutil.rmtree(folder, ignore_errors=True)
    save_run_folder(model, summary, folder)
    if repo_id:
        push_run(folder, repo_id)
    return folder
