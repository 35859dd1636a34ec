"""The main job's comparison table: per-query ranks -> metrics, paired bootstrap intervals, words a user reads.

Every row's per-query ranks (averaged over seeds as reciprocal ranks) are compared with the base model's and
InfoNCE's on the same queries and the same bootstrap resamples, so each row's interval is exactly comparable.
"""

from __future__ import annotations

import numpy as np

from hf_softnce.evaluation.bootstrap import RECIPROCAL_RANKS, Difference, PairedBootstrap, per_query_values
from hf_softnce.training.data import DEV, HELDOUT

BASE_ROW = "base model (zero-shot)"
INFONCE_ROW = "InfoNCE"
# The real-query sets of the table: the selection set every choice is made on, then the report set.
REAL_SETS = {HELDOUT: (HELDOUT,), DEV: (DEV,)}


def merged_ranks(per_query: dict[str, dict[str, int]], halves: tuple[str, ...]) -> dict[str, int] | None:
    """One ``{query: rank}`` over several query sets of the same codebase (query ids prefixed by their set)."""
    if not all(half in per_query for half in halves):
        return None
    return {f"{half}/{qid}": rank for half in halves for qid, rank in per_query[half].items()}


def reciprocal_ranks(runs: list[dict[str, int]]) -> dict[str, float]:
    """Per-query reciprocal rank (0 beyond the cut-off), averaged over the runs (seeds) of one row."""
    values = [per_query_values(run, "mrr@1000") for run in runs]
    return {q: float(np.mean([run[q] for run in values])) for q in runs[0]}


def rank_metrics(runs: list[dict[str, int]]) -> dict[str, float]:
    """MRR@1000 and recall@1/5/10 from per-query ranks, averaged over runs."""
    ranks = np.array([[run[q] for q in runs[0]] for run in runs], dtype=np.float64)
    found = ranks > 0
    metrics = {"mrr@1000": float(np.where(found, 1.0 / np.where(found, ranks, 1.0), 0.0).mean())}
    for k in (1, 5, 10):
        metrics[f"recall@{k}"] = float((found & (ranks <= k)).mean())
    return metrics


def runs_at_seeds(runs: list, seeds: list[int], wanted: list[int]) -> list | None:
    """The runs of a row (``seeds``: its seeds, in the order of ``runs``) at the ``wanted`` seeds, in that order;
    None when the row lacks one of them."""
    if not set(wanted) <= set(seeds):
        return None
    return [runs[seeds.index(seed)] for seed in wanted]


def first_seed_mrr(per_query: dict[str, list[dict]], set_name: str, names=None, *,
                   seeds: dict[str, list[int]] | None = None, first: int | None = None) -> dict[str, float]:
    """MRR@1000 of each row's run at the run's first seed on ``set_name``, for the rows (``names``, default all) that
    have it. ``seeds`` (``{row: its seeds, in the order of its runs}``) and ``first`` find that run by seed number (a
    row read back without the first seed is left out); without them, each row's first run is taken."""
    names = per_query if names is None else names
    found = {}
    for name in names:
        runs = per_query.get(name) or []
        if seeds is not None and first is not None:
            runs = runs_at_seeds(runs, seeds.get(name, []), [first]) or []
        if runs and set_name in runs[0]:
            found[name] = rank_metrics([runs[0][set_name]])["mrr@1000"]
    return found


def compare_rows(per_query_runs: dict[str, list[dict[str, dict[str, int]]]], *,
                 seeds: dict[str, list[int]] | None = None, n_resamples: int = 2000,
                 seed: int = 0) -> dict[str, dict[str, dict]]:
    """``{set: {row: {"metrics": ..., "vs_base": Difference, "vs_infonce": Difference}}}`` for the real-query sets.

    ``vs_infonce`` pairs a row's runs with InfoNCE's runs of the same seeds, so a row run with one seed is not
    compared with InfoNCE averaged over three: by seed number with ``seeds`` (``{row: its seeds, in the order of its
    runs}``; a row with a seed InfoNCE lacks gets no ``vs_infonce``), else by position (a row's k runs against
    InfoNCE's first k, runs in seed order).

    ``per_query_runs``: ``{row: [per_query of run 1, per_query of run 2, ...]}``, each per_query being
    ``{set name: {query id: rank}}`` as :func:`hf_softnce.evaluation.evaluate_retrieval_sets` fills it.
    """
    table: dict[str, dict[str, dict]] = {}
    for set_name, halves in REAL_SETS.items():
        ranks = {row: [merged_ranks(run, halves) for run in runs] for row, runs in per_query_runs.items()}
        ranks = {row: runs for row, runs in ranks.items() if runs and all(run is not None for run in runs)}
        if BASE_ROW not in ranks:
            continue
        rr = {row: reciprocal_ranks(runs) for row, runs in ranks.items()}
        boot = PairedBootstrap(sorted(rr[BASE_ROW]), n_resamples=n_resamples, seed=seed)
        table[set_name] = {}
        for row, runs in ranks.items():
            entry: dict = {"metrics": rank_metrics(runs), "queries": len(rr[row]),
                           "seed_mrr": [rank_metrics([run])["mrr@1000"] for run in runs]}
            if row != BASE_ROW:
                entry["vs_base"] = boot.difference(rr[row], rr[BASE_ROW], given=RECIPROCAL_RANKS)
            infonce = _infonce_runs(ranks, row, seeds) if INFONCE_ROW in rr and row not in (BASE_ROW, INFONCE_ROW) \
                else None
            if infonce:
                entry["vs_infonce"] = boot.difference(rr[row], reciprocal_ranks(infonce), given=RECIPROCAL_RANKS)
            table[set_name][row] = entry
    return table


def _infonce_runs(ranks: dict[str, list], row: str, seeds: dict[str, list[int]] | None) -> list | None:
    """InfoNCE's runs of ``row``'s seeds (None when it lacks one), by seed number when ``seeds`` names both rows."""
    if seeds is None or row not in seeds or INFONCE_ROW not in seeds:
        return ranks[INFONCE_ROW][:len(ranks[row])]
    return runs_at_seeds(ranks[INFONCE_ROW], seeds[INFONCE_ROW], seeds[row])


def _cell(difference: Difference | None) -> str:
    if difference is None:
        return "–"
    mark = "**" if difference.supported else ""
    return f"{mark}{difference.value:+.4f}{mark} [{difference.low:+.3f}, {difference.high:+.3f}]"


def comparison_markdown(table: dict, titles: dict[str, str], latency: dict[str, float] | None = None) -> str:
    """Markdown tables, one per real-query set: metrics, then each row's difference with its 95% interval."""
    lines = []
    for set_name, rows in table.items():
        first = next(iter(rows.values()))
        lines += [f"**{titles.get(set_name, set_name)}** ({first['queries']} queries, the whole codebase; "
                  "Δ = paired difference in MRR with its 95% bootstrap interval, bold when the interval excludes 0)", ""]
        header = "| method | MRR@1000 | R@1 | R@5 | R@10 | Δ vs base | Δ vs InfoNCE |"
        # Rows run with several seeds: their MRR is the mean over seeds, the seeds' range beside the intervals.
        seeded = any(len(entry.get("seed_mrr", ())) > 1 for entry in rows.values())
        if seeded:
            header += " seeds: MRR range |"
        if latency:
            header += " ms/query |"
        lines += [header, "|---" * (header.count("|") - 1) + "|"]
        for row, entry in rows.items():
            m = entry["metrics"]
            cells = [f"{m['mrr@1000']:.4f}", f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}", f"{m['recall@10']:.3f}",
                     _cell(entry.get("vs_base")), _cell(entry.get("vs_infonce"))]
            if seeded:
                runs = entry.get("seed_mrr", ())
                cells.append(f"{len(runs)}: {min(runs):.4f}–{max(runs):.4f}" if len(runs) > 1 else f"{len(runs)}")
            if latency:
                cells.append(f"{latency[row]:.1f}" if row in latency else "–")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def verdicts(table: dict, set_name: str = "cosqa-dev") -> list[str]:
    """One sentence per row, claiming only what its interval supports."""
    sentences = []
    for row, entry in table.get(set_name, {}).items():
        parts = []
        if "vs_base" in entry:
            parts.append(f"vs the base model: {entry['vs_base'].describe()}")
        if "vs_infonce" in entry:
            parts.append(f"vs InfoNCE: {entry['vs_infonce'].describe()}")
        if parts:
            sentences.append(f"{row} — " + "; ".join(parts) + ".")
    return sentences


def to_json(table: dict) -> dict:
    return {set_name: {row: {key: (value.to_dict() if isinstance(value, Difference) else value)
                             for key, value in entry.items()} for row, entry in rows.items()}
            for set_name, rows in table.items()}
