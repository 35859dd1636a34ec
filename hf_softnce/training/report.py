"""The main job's outputs beside the comparison: the held-out packages' table (mean ± std over seeds) and the plot."""

from __future__ import annotations

import statistics
from pathlib import Path

from hf_softnce.training.data import DEV, HELDOUT

METRICS = ("mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10")
HELD_OUT_PACKAGES = {"test": "held-out packages"}  # the in-domain table beside the real-query ones
REAL_TITLES = {HELDOUT: "CoSQA train, held-out queries (the selection set: every choice is made on it)",
               DEV: "CoSQA dev-500, real web queries (the report set: never used for a choice)"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        method: {
            key: {**dict(zip(("mean", "std"), _mean_std(values))), "runs": list(values)}
            for key, values in metrics.items()
        }
        for method, metrics in results.items()
    }


def markdown_table(summary: dict, eval_sets: dict[str, str], n_seeds: int) -> str:
    lines = []
    for set_name, title in eval_sets.items():
        if not any(f"{set_name}_mrr@1000" in m for m in summary.values()):
            continue
        spread = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "1 seed"
        lines += [f"**{title}** (`{set_name}`), {spread}", ""]
        lines.append("| method | " + " | ".join(METRICS) + " |")
        lines.append("|---" * (len(METRICS) + 1) + "|")
        for method, metrics in summary.items():
            cells = []
            for metric in METRICS:
                value = metrics.get(f"{set_name}_{metric}")
                if value is None:
                    cells.append("–")
                else:
                    spread = f" ± {value['std']:.4f}" if len(value["runs"]) > 1 else ""
                    cells.append(f"{value['mean']:.4f}{spread}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(table: dict, path: Path, set_name: str = DEV) -> Path | None:
    """Each row's MRR difference against the base model on real queries, with its 95% interval."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = {row: entry for row, entry in table.get(set_name, {}).items() if "vs_base" in entry}
    if not rows:
        return None
    names = list(rows)
    diffs = [rows[n]["vs_base"] for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.6))
    y = range(len(names))
    ax.errorbar([d.value for d in diffs], y, xerr=[[d.value - d.low for d in diffs], [d.high - d.value for d in diffs]],
                fmt="o", capsize=4, color="#4c72b0")
    ax.axvline(0, color="#999", lw=1)
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MRR@1000 difference vs the base model\n(95% paired bootstrap interval over queries)")
    ax.set_title(f"{REAL_TITLES[set_name].split(' (')[0]}, whole codebase")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
