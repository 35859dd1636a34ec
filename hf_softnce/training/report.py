"""The main job's outputs beside the comparison: the held-out packages' table (mean ± std over seeds) and the plot."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hf_softnce.hub.summary import describe_loss, mean_std
from hf_softnce.training.cascade_row import ranker_budget
from hf_softnce.training.comparison import compare_rows, comparison_markdown, first_seed_mrr, to_json, verdicts
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import DEV, HELDOUT, protocol_statement
from hf_softnce.training.manifest import write_atomically
from hf_softnce.training.plan import CASCADE, PEER_CHOICE, PEER_TIE, PEERS, SIZES, Plan, Row
from hf_softnce.training.ranker import ranker_learning_rate

METRICS = ("mrr@1000", "recall@1", "recall@5", "recall@10", "ndcg@10")
HELD_OUT_PACKAGES = {"test": "held-out packages"}  # the in-domain table beside the real-query ones
REAL_TITLES = {HELDOUT: "CoSQA train, held-out queries (the selection set: every choice is made on it)",
               DEV: "CoSQA dev-500, real web queries (the report set: never used for a choice)"}


def summarize(results: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, dict[str, float]]]:
    return {
        method: {
            key: {"mean": mean_std(values)[0], "std": mean_std(values)[1] or 0.0, "runs": list(values)}
            for key, values in metrics.items()
        }
        for method, metrics in results.items()
    }


def packages_table(summary: dict, eval_sets: dict[str, str], n_seeds: int) -> str:
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
    # On the figure, not the axes: long row names push the axes right and an axes title would be cut at the edge.
    fig.suptitle(f"{REAL_TITLES[set_name].split(' (')[0]}, whole codebase", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@dataclass
class Results:
    """Every row's numbers, per seed: flat metrics, per-query ranks, and what trained it."""

    metrics: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    per_query: dict[str, list[dict]] = field(default_factory=dict)
    losses: dict[str, dict] = field(default_factory=dict)  # row -> loss class and arguments (first seed)
    card_losses: dict[str, dict] = field(default_factory=dict)  # row -> describe_loss of the first seed's loss
    latency: dict[str, float] = field(default_factory=dict)
    seeds: dict[str, list[int]] = field(default_factory=dict)  # row -> the seeds it ran, in order
    cascade_choices: list[dict] = field(default_factory=list)
    # step -> its own seconds, as recorded when it completed (a resumed run reads them back); None: not recorded
    step_seconds: dict[str, float | None] = field(default_factory=dict)

    def add(self, row: str, metrics: dict[str, float], per_query: dict) -> None:
        for key, value in metrics.items():
            self.metrics.setdefault(row, {}).setdefault(key, []).append(value)
        self.per_query.setdefault(row, []).append(per_query)


def describe_row_loss(row: Row, loss, config: TrainConfig) -> dict:
    """The loss as ``results.json`` records it: the objective's name and citation (``SoftInfoNCELoss`` without a weighter
    is InfoNCE, cited as MultipleNegativesRankingLoss cites it), the class and the arguments it was built with."""
    def plain(name, value):
        if name == "guide":  # GISTEmbedLoss's frozen guide model: its folder or Hub id
            return config.guide_model
        if isinstance(value, (list, tuple)):
            return [plain(name, v) for v in value]
        return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)

    arguments = {k: plain(k, v) for k, v in loss.get_config_dict().items()}
    described = describe_loss(loss)
    return {"family": row.family, "objective": described["loss_name"], "loss": type(loss).__name__,
            "module": type(loss).__module__, "arguments": arguments, "citations": described["citations"],
            "negatives": "mined" if row.negatives else "in-batch", "teacher": row.teacher}


def write_report(plan: Plan, data, results: Results, mining: dict | None, output_dir: Path, elapsed: float, *,
                 default_saved: bool = True) -> dict:
    """results.json, results.md and results.png; the comparison printed."""
    summary = summarize(results.metrics)
    comparison = compare_rows(results.per_query, seeds=results.seeds)
    table = (comparison_markdown(comparison, REAL_TITLES, results.latency) + "\n"
             + packages_table(summary, HELD_OUT_PACKAGES, len(plan.seeds)))
    sentences = verdicts(comparison)
    protocol = protocol_statement(data)
    payload = {
        "size": plan.size,
        "seeds": plan.seeds,
        "seeds_by_row": results.seeds,
        "more_seeds_within": plan.more_seeds_within,
        "selection_set": HELDOUT if data.real_select is not None else None,
        "report_set": DEV if data.real_report is not None else None,
        "settings": {k: v for k, v in plan.base.to_dict().items() if k in SIZES[plan.size].settings or k in plan.overrides},
        "row_settings": {row.name: plan.described_row_values(row) for row in plan.rows},
        "losses": results.losses,
        "mining": {k: v for k, v in mining.items() if k != "summary"} if mining else None,
        "data": {"train_pairs": len(data.train), "sources": data.sources, "left_out": data.left_out,
                 **{n: {"queries": len(s), "codes": len(s.corpus)} for n, s in data.eval_sets().items()}},
        "results": results.metrics,
        "summary": summary,
        "comparison": to_json(comparison),
        "per_query_ranks": results.per_query,
        "verdicts": sentences,
        "peer_choice": (peers := peer_choices(results.per_query, seeds=results.seeds, first=plan.seeds[0])),
        "protocol": protocol,
        "latency_ms_per_query": results.latency,
        "cascade_settings": results.cascade_choices,
        "ranker_budget": ranker_budget(plan.base) if plan.cascade else None,
        "elapsed_s": elapsed,  # this run's time; a resumed run's steps ran over several
        "steps_s": {"total": steps_total(results.step_seconds), "by_step": results.step_seconds},
    }
    write_atomically(output_dir / "results.json", json.dumps(payload, indent=2))
    # What the table holds: a report of a stopped run (--report-only) leaves out the rows and cascade not completed.
    count = sum(row.name in results.seeds for row in plan.rows)
    trained = f"{count} trained row" + "s" * (count != 1)
    cascade = CASCADE in results.seeds
    rows = f"the base model, {trained} and the R2PS cascade" if cascade else f"the base model and {trained}"
    title = f"# hf-softnce main --{plan.size}: {rows} x {len(seeds_ran(plan, results.seeds))} seed(s)"
    steps = (f"{plan.base.max_steps} steps" if plan.base.max_steps and plan.base.max_steps > 0
             else f"{plan.base.epochs:g} epoch(s) in batches")
    training = (f"Each trained row: {steps} of {plan.base.batch_size} pairs at lr {plan.base.learning_rate:g}, "
                + seeds_sentence(plan, results.seeds)
                + (f", then averaged with the base model (WiSE-FT, weight {plan.base.wise_ft_weight:g}): the averaged "
                   "weights are evaluated and saved." if plan.base.wise_ft_weight is not None else "."))
    if plan.default not in results.metrics:
        default = "The default row was not run: no `hub/` folder."
    elif default_saved:
        default = f"The default row, saved with its card in `hub/`: **{plan.default}**."
    else:
        default = f"The default row: **{plan.default}** (its model is not in this folder: no `hub/` folder)."
    if plan.cascade:
        training += " " + ranker_sentence(plan.base, results.cascade_choices)
    report = (title + "\n\n" + protocol + "\n\n" + default + " " + training + "\n\n" + table + "\n"
              + "\n".join(f"- {s}" for s in sentences))
    if peers:
        report += ("\n\nsentence-transformers' peers, the setting chosen on " + HELDOUT + f" ({PEER_CHOICE}): "
                   + "; ".join(f"{peer}: **{choice['chosen']}**" for peer, choice in peers.items()) + ".")
    if mining:
        report += f"\n\nNegatives: {mining['summary']}"
    write_atomically(output_dir / "results.md", report + "\n")
    plot(comparison, output_dir / "results.png")
    print("\n" + report)
    print(f"\nwrote {output_dir}/results.json, results.md, results.png")
    return payload


def ranker_sentence(base: TrainConfig, choices: list[dict]) -> str:
    """The cascade's ranker in words: it trains with its own steps, negatives and learning rate, not the rows'."""
    budget = ranker_budget(base)
    steps = "an epoch in batches" if budget["steps"] == -1 else f"{budget['steps']} steps"
    lr = ranker_learning_rate(base)
    chosen = "; ".join(f"top {c['top_k']}, {setting_words(c)}" if c["top_k"] else "top 0 (the retriever alone)"
                       for c in choices)
    return (f"The cascade's ranker: {steps} of {budget['batch_size']} queries, each with its code and "
            f"{budget['negatives']} negatives, at lr {lr:g}; how it re-ranks, chosen on {HELDOUT} at each seed: "
            f"{chosen or 'not run'}.")


def setting_line(choice: dict) -> str:
    """The cascade's chosen setting as config keys, for the log: ``top_k=20, combine=add, ranker_weight=0.5 (chosen on
    cosqa-heldout)``; :func:`setting_words` says it in results.md."""
    weight = choice.get("ranker_weight")
    weight = f", ranker_weight={weight:g}" if weight and choice["combine"] == "add" else ""
    setting = (f"top_k={choice['top_k']}, combine={choice['combine']}{weight}" if choice["top_k"] else
               "top_k=0, the retriever alone: no ranker setting beat it")
    return f"{setting} (chosen on {HELDOUT})"


def setting_words(choice: dict) -> str:
    """``add`` with its weight (``add x0.5``: cosine + 0.5 tanh(logit)), or ``replace``."""
    weight = choice.get("ranker_weight")
    if choice["combine"] == "add" and weight is not None:
        return f"add x{weight:g}"
    return choice["combine"]


def peer_choices(per_query: dict[str, list[dict]], *, seeds: dict[str, list[int]] | None = None,
                 first: int | None = None) -> dict[str, dict]:
    """Each sentence-transformers peer's chosen setting by :data:`~hf_softnce.training.plan.PEER_CHOICE`: of its rows
    run here, the highest MRR@1000 on the selection set at the first seed (``first``, found in ``seeds`` as
    :func:`~hf_softnce.training.comparison.first_seed_mrr` does), the documented one within ``PEER_TIE``."""
    choices = {}
    for peer, names in PEERS.items():
        mrr = first_seed_mrr(per_query, HELDOUT, names, seeds=seeds, first=first)
        if len(mrr) < 2:
            continue
        best = max(mrr, key=mrr.get)
        documented = names[0]
        if documented in mrr and mrr[best] - mrr[documented] <= PEER_TIE:
            best = documented
        choices[peer] = {"chosen": best, "rule": PEER_CHOICE, f"{HELDOUT} mrr@1000": mrr}
    return choices


def seeds_ran(plan: Plan, seeds_by_row: dict[str, list[int]]) -> list[int]:
    """The seeds any row ran, in the plan's order (the plan's seeds when no row ran)."""
    return sorted({seed for seeds in seeds_by_row.values() for seed in seeds}, key=plan.seeds.index) or plan.seeds


def seeds_sentence(plan: Plan, seeds_by_row: dict[str, list[int]]) -> str:
    """Which seeds each row ran: every seed for every row, or the first for every row and the rest for the rows
    close to the best."""
    ran = seeds_ran(plan, seeds_by_row)
    names = ", ".join(map(str, ran))
    later = [row for row, seeds in seeds_by_row.items() if len(seeds) > 1]
    if len(ran) < 2 or len(later) == len(seeds_by_row):
        return f"seed(s) {names}"
    return (f"seed {ran[0]} for every row; seed{'s' * (len(ran) > 2)} {', '.join(map(str, ran[1:]))} for the rows within "
            f"{plan.more_seeds_within:g} MRR of the best on {HELDOUT} at seed {ran[0]}, with their teachers and InfoNCE "
            f"({', '.join(later)})")


def steps_total(step_seconds: dict[str, float | None]) -> float | None:
    """The job's time as its steps' own seconds summed (over every run of a resumed folder); None when a step did
    not record its time (completed under a version before the record)."""
    values = list(step_seconds.values())
    return sum(values) if values and None not in values else None


def last_time(size: str) -> str:
    """The size's last measured time, read from its committed results (the one place times are kept)."""
    committed = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / f"main_{size}.json"
    try:
        measured = json.loads(committed.read_text())
        where = f" on {measured['device']}" if "device" in measured else ""
        rows = len(measured["results"]) - 1  # the base model is evaluated, not trained
        seconds = (measured.get("steps_s") or {}).get("total") or measured["elapsed_s"]  # a resumed run: its steps
        line = f"; last measured {seconds / 60:.1f} min for the whole job ({rows} trained rows){where}"
    except (OSError, ValueError, KeyError):
        return ""
    import torch

    device = measured.get("device", "").upper()
    on_gpu = "NVIDIA" in device or ("GPU" in device and "NO GPU" not in device)
    if on_gpu and not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        # A GPU's minutes read as a promise on a machine without one (measured on 2 CPU cores: InfoNCE's epoch and
        # evaluation 8-13 min, a row on mined negatives about twice that).
        line += ("; this machine has no GPU: expect hours, roughly 10 minutes a row on 2 CPU cores, twice that on "
                 "mined negatives")
    return line


def headline(metrics: dict[str, list[float]]) -> str:
    """The latest run's MRR on each set."""
    return ", ".join(f"{k} {v[-1]:.4f}" for k, v in metrics.items() if k.endswith("mrr@1000") and "dedup" not in k)
