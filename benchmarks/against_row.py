"""Every row of a main-job table against one reference row, from its committed per-query ranks.

    python -m benchmarks.against_row benchmarks/results/main_full.json --against "InfoNCE + mined negatives"

The main job's table pairs each row with the base model and InfoNCE; a reader deciding between rows on the same
negatives needs them paired with another row. Same method as the table (``training.comparison``): per-query
reciprocal ranks (averaged over a row's seeds), a paired bootstrap over queries (2,000 resamples, seed 0), 95 %
percentile intervals. Writes ``<results>_vs_<row>.{md,json}`` beside the results file (or ``--output``).

Within one run each row is paired over the seeds both rows ran (the table's own ``Δ vs InfoNCE`` needs InfoNCE
at every seed of the row, and is left blank otherwise). ``--against-from OTHER/results.json`` takes the reference
row from another run, paired over the same queries: two trainings of it differ as two seeds do (e.g. a CPU run's
cascade against the GPU table's default row); each side then averages all the seeds it has.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hf_softnce.evaluation.bootstrap import RECIPROCAL_RANKS, PairedBootstrap
from hf_softnce.training.comparison import (
    BASE_ROW, REAL_SETS, merged_ranks, rank_metrics, reciprocal_ranks, runs_at_seeds,
)
from hf_softnce.training.plan import run_slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a main job's results.json (its per_query_ranks)")
    parser.add_argument("--against", default="InfoNCE + mined negatives", help="the reference row")
    parser.add_argument("--against-from", help="another main job's results.json holding the reference row "
                                                "(default: the same file)")
    parser.add_argument("--output", help="the tables' path without suffix (default: <results>_vs_<row>)")
    args = parser.parse_args()
    pair_against(Path(args.results), args.against, args.against_from, args.output)


def pair_against(path: Path, against: str, against_from: str | None = None, output: str | None = None) -> None:
    """Every row of ``path`` (a results.json) minus ``against``; writes ``<results>_vs_<row>.{md,json}`` (or
    ``output``) and prints the table."""
    payload = json.loads(path.read_text())
    runs, seeds_by_row = payload["per_query_ranks"], payload.get("seeds_by_row", {})
    source = Path(against_from or path)
    references = json.loads(source.read_text())["per_query_ranks"] if against_from else runs
    if against not in references:
        raise SystemExit(f"{source}: no row {against!r}; rows: {', '.join(references)}")
    origin = f"`{path.name}`'s per-query ranks" + (f", the reference's from `{source}`" if against_from else "")
    table, lines = {}, [f"Each row minus **{against}** in MRR@1000, paired over the same queries (95 % bootstrap "
                        f"interval; from {origin}).", "",
                        "| row | " + " | ".join(f"{name} MRR | Δ vs {against}" for name in REAL_SETS) + " |",
                        "|---|" + "---|---|" * len(REAL_SETS)]
    for row in (r for r in runs if r != BASE_ROW and (against_from or r != against)):
        # The seeds both rows ran, within one run (by seed number where results.json names them); across runs the
        # seeds are not the same trainings anyway, so each side keeps all of its own.
        mine, theirs = runs[row], references[against]
        if not against_from and row in seeds_by_row and against in seeds_by_row:
            common = [s for s in seeds_by_row[row] if s in seeds_by_row[against]]
            mine = runs_at_seeds(mine, seeds_by_row[row], common)
            theirs = runs_at_seeds(theirs, seeds_by_row[against], common)
        elif not against_from:
            mine, theirs = mine[:len(theirs)], theirs[:len(mine)]
        if not mine:
            print(f"left out: {row} ran none of {against}'s seeds")
            continue
        cells, table[row] = [], {}
        for name, halves in REAL_SETS.items():
            ranks = [merged_ranks(run, halves) for run in mine]
            reference = [merged_ranks(run, halves) for run in theirs]
            a, b = reciprocal_ranks(ranks), reciprocal_ranks(reference)
            d = PairedBootstrap(sorted(b), n_resamples=2000, seed=0).difference(a, b, given=RECIPROCAL_RANKS)
            mrr = rank_metrics(ranks)["mrr@1000"]
            table[row][name] = {"mrr@1000": mrr, "difference": [d.value, d.low, d.high]}
            cells += [f"{mrr:.4f}", f"{'**' if d.supported else ''}{d.value:+.4f}{'**' if d.supported else ''} "
                                    f"[{d.low:+.4f}, {d.high:+.4f}]"]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    stem = Path(output) if output else path.with_name(f"{path.stem}_vs_{run_slug(against)}")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    # The reference's file as typed (a committed path, relative), or the results file's own name: never this
    # machine's absolute run folder, which a reader of the committed table cannot open.
    stem.with_suffix(".json").write_text(json.dumps({"against": against, "source": path.name,
                                                     "against_from": against_from or path.name, "rows": table},
                                                    indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
