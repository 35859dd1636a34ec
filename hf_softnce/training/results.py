"""What a training run prints at the end: a table of the headline metrics per evaluation set (the base model
beside the trained one when it was evaluated) and where the model, its card and the metrics were saved."""

from __future__ import annotations

from pathlib import Path

from hf_softnce.evaluation.report import markdown_table, split_by_set


def results_tables(metrics: dict[str, float], base_metrics: dict[str, float] | None = None) -> str:
    """One Markdown table per evaluation set; with ``base_metrics``, a base row and the MRR difference."""
    runs, base = split_by_set(metrics), split_by_set(base_metrics or {})
    tables = []
    for name, values in runs.items():
        rows = ({"base model": base[name]} if name in base else {}) | {"trained": values}
        extra = {}
        if name in base and "mrr@1000" in values and "mrr@1000" in base[name]:
            extra = {"trained": {"Δ MRR vs base": f"{values['mrr@1000'] - base[name]['mrr@1000']:+.4f}"}}
        tables.append(f"**{name}**\n\n{markdown_table(rows, extra=extra)}")
    return "\n\n".join(tables)


def where_it_went(output_dir: str | Path, repo_id: str | None = None) -> str:
    """The lines saying where the model, its card and the metrics were saved (and pushed)."""
    final = Path(output_dir) / "final"
    lines = [f"Saved the model to {final}"]
    card = final / "README.md"
    if card.is_file():
        lines.append(f"Saved the model card to {card}")
    lines.append(f"Saved every metric to {Path(output_dir) / 'metrics.json'}")
    if repo_id:
        lines.append(f"Pushed to https://huggingface.co/{repo_id}")
    return "\n".join(lines)


def print_run(result) -> None:
    """Print a :class:`~hf_softnce.training.run.RunResult`'s tables and where its files went."""
    print(results_tables(result.metrics, result.base_metrics))
    print()
    print(where_it_went(result.output_dir, result.config.push_to_hub))
