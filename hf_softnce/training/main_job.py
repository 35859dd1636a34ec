"""The main job: base model vs InfoNCE vs hf_softnce's losses, same data, seeds and steps, on held-out code
search and on real web queries. Writes a table (Markdown), JSON, a PNG plot and the model card folder.

    hf-softnce main --quick          # <= 10 minutes on 2 CPU cores
    hf-softnce main                  # the full size (all pairs, the whole CoSQA codebase, 3 seeds)
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import load_task_data
from hf_softnce.training.methods import METHODS, run_slug as _slug
from hf_softnce.training.models import display_name, load_model
from hf_softnce.training.run import evaluate_model, train_retriever

# The training settings every method shares; only the loss differs between rows of the table.
SIZES = {
    "quick": dict(
        max_train_pairs=768, max_steps=24, batch_size=32, max_seq_length=128, learning_rate=2e-5,
        cosqa_corpus_size=2000, select_on="none", wise_ft_weight=0.5, seeds=[42],
        methods=["InfoNCE", "SoftInfoNCE (BM25)", "OrderInfoNCE (base-model teacher)"],
    ),
    "full": dict(
        max_train_pairs=None, epochs=1.0, batch_size=32, max_seq_length=256, learning_rate=2e-5,
        cosqa_corpus_size=None, select_on="cosqa", eval_steps=50, wise_ft_weight=0.5, seeds=[42, 43, 44],
        methods=[name for name, _ in METHODS],
    ),
}
DEFAULT_METHOD = "SoftInfoNCE (BM25)"
METRICS = ("mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10")
EVAL_SETS = {"test": "held-out packages", "cosqa-report": "CoSQA real queries"}


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


def plot(summary: dict, eval_sets: dict[str, str], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    shown = [s for s in eval_sets if any(f"{s}_mrr@1000" in m for m in summary.values())]
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 4), squeeze=False)
    for ax, set_name in zip(axes[0], shown):
        methods = [m for m in summary if f"{set_name}_mrr@1000" in summary[m]]
        means = [summary[m][f"{set_name}_mrr@1000"]["mean"] for m in methods]
        stds = [summary[m][f"{set_name}_mrr@1000"]["std"] for m in methods]
        bars = ax.bar(range(len(methods)), means, yerr=stds, capsize=4, color=["#999"] + ["#4c72b0"] * (len(methods) - 1))
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set_xticks(range(len(methods)), methods, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(min(means) * 0.9, max(means) * 1.05)
        ax.set_title(f"MRR@1000 — {eval_sets[set_name]}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_main_job(
    size: str = "quick",
    output_dir: str | Path = "runs/main",
    *,
    seeds: list[int] | None = None,
    methods: list[str] | None = None,
    overrides: dict | None = None,
    push_to_hub: str | None = None,
) -> dict:
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}.")
    known = [name for name, _ in METHODS]
    unknown = sorted(set(methods or []) - set(known))
    if unknown:
        raise ValueError(f"Unknown method(s) {unknown}; choose from {known}.")
    repo_id = None
    if push_to_hub:
        from hf_softnce.hub import preflight_push

        repo_id = preflight_push(push_to_hub)  # before anything is built or trained
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    settings = dict(SIZES[size])
    seeds = seeds or settings["seeds"]
    methods = methods or settings["methods"]
    settings = {k: v for k, v in settings.items() if k not in ("seeds", "methods")}
    base = TrainConfig.from_dict({**settings, **(overrides or {})})
    started = time.perf_counter()

    data = load_task_data(base)
    print(f"data: {len(data.train)} training pairs; " + ", ".join(
        f"{name}: {len(s)} queries x {len(s.corpus)} codes" for name, s in data.eval_sets().items()))
    results: dict[str, dict[str, list[float]]] = {}
    zero_shot = evaluate_model(load_model(base.model, max_seq_length=base.max_seq_length), data)
    results["base model (zero-shot)"] = {k: [v] for k, v in zero_shot.items()}
    print(f"[{time.perf_counter() - started:6.0f}s] zero-shot: {_headline(zero_shot)}")

    selected = [(n, o) for n, o in METHODS if not methods or n in methods]
    for seed in seeds:
        trained: dict[str, str] = {}
        for name, method_overrides in selected:
            run_dir = output_dir / _slug(name) / f"seed-{seed}"
            values = {k: (v.format(**trained) if isinstance(v, str) else v) for k, v in method_overrides.items()}
            if "{InfoNCE}" in str(method_overrides.values()) and "InfoNCE" not in trained:
                raise ValueError(f"{name} needs the InfoNCE run of the same seed; include InfoNCE in methods.")
            config = replace(base, seed=seed, output_dir=str(run_dir), **values)
            result = train_retriever(config, data, progress=False)
            trained[name] = str(run_dir / "final")
            for key, value in result.metrics.items():
                results.setdefault(name, {}).setdefault(key, []).append(value)
            print(f"[{time.perf_counter() - started:6.0f}s] {name} seed {seed}: {_headline(result.metrics)}")

    summary = summarize(results)
    table = markdown_table(summary, EVAL_SETS, len(seeds))
    elapsed = time.perf_counter() - started
    payload = {
        "size": size,
        "seeds": seeds,
        "settings": {k: v for k, v in base.to_dict().items() if k in settings or k in (overrides or {})},
        "data": {"train_pairs": len(data.train), **{n: {"queries": len(s), "codes": len(s.corpus)} for n, s in data.eval_sets().items()}},
        "results": results,
        "summary": summary,
        "elapsed_s": elapsed,
    }
    (output_dir / "results.json").write_text(json.dumps(payload, indent=2))
    (output_dir / "results.md").write_text(table)
    plot(summary, EVAL_SETS, output_dir / "results.png")
    print("\n" + table + f"\nfinished in {elapsed / 60:.1f} min; wrote {output_dir}/results.json, results.md, results.png")

    if DEFAULT_METHOD in results:
        from hf_softnce.training.publish import save_default_model_folder

        folder = save_default_model_folder(output_dir, base, data, results, seeds, DEFAULT_METHOD, repo_id)
        print(f"model card folder: {folder}")
    return payload


def _headline(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k.endswith("mrr@1000") and "dedup" not in k)


__all__ = ["METHODS", "SIZES", "run_main_job", "display_name"]
