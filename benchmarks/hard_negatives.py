"""Rows of the main job on mined hard negatives beside sentence-transformers' peers, at the quick size, resumable.

    python -m benchmarks.hard_negatives --output-dir runs/hard_negatives                 # every row below, in order
    python -m benchmarks.hard_negatives --output-dir runs/hard_negatives --rows "InfoNCE" "InfoNCE + mined negatives"
    python -m benchmarks.hard_negatives --output-dir runs/hn-43 --seed 43 --rows "InfoNCE" "InfoNCE + mined negatives"
    python -m benchmarks.hard_negatives --output-dir runs/hard_negatives --table-only --seed-dirs runs/hn-43

Each row is the main job's own (:mod:`hf_softnce.training.plan`): same data (CoSQA train less ``cosqa-heldout``),
steps, seed and mined negatives (the frozen base model, positive-aware, once for every row). A row's per-query ranks
are written to ``<output-dir>/rows/<row>.json`` as soon as it finishes, and a re-run skips the rows already there,
so a long run can be stopped and resumed row by row. The table (``results.md``/``results.json``) compares every
row with InfoNCE on ``cosqa-heldout`` (the selection set) and CoSQA dev-500 (the report set) with paired intervals.

The choice rule, fixed before the first run: the main job's default row becomes the row with the highest MRR@1000
on ``cosqa-heldout`` (hf_softnce's rows and sentence-transformers' peers alike) when its paired 95 % interval
against today's default, SoftInfoNCE (BM25) on in-batch negatives, lies above 0 on ``cosqa-heldout``; otherwise the
default stays. A peer that wins is said to win, and hf_softnce's rows stay in the table. Rows within 0.01 of the
best on ``cosqa-heldout`` get a second seed before the choice is final. Dev-500 is reported, never used to choose.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

from hf_softnce.training.config import parse_override
from hf_softnce.training.main_job import _load_data, _negatives, _train_row, _zero_shot, make_plan
from hf_softnce.training.report import Results
from hf_softnce.training.plan import BASE_TEACHER, ROW, run_slug
from hf_softnce.training.report import REAL_TITLES

ROWS = [
    "InfoNCE",
    "InfoNCE + mined negatives",
    "SoftInfoNCE (trained model) + mined negatives",
    "GISTEmbedLoss (guide: base) + mined negatives",
    "MNRL hardness (hard negatives, 5) + mined negatives",
    "SoftInfoNCE (BM25)",
    "SoftInfoNCE (BM25) + mined negatives",
    "GISTEmbedLoss (guide: InfoNCE) + mined negatives",
    "OrderInfoNCE (InfoNCE teacher) + mined negatives",
]
# Our miner against sentence-transformers' on downstream MRR: the InfoNCE + mined row trained on the negatives of
# util.mine_hard_negatives with the same model, length, margin, count and strategy (its window: range_max=50).
ST_MINED = "InfoNCE + mined negatives (mine_hard_negatives)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/hard_negatives")
    parser.add_argument("--rows", nargs="+", default=ROWS + [ST_MINED])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--table-only", action="store_true", help="write the table of the rows finished so far")
    parser.add_argument("--seed-dirs", nargs="*", default=[], metavar="DIR",
                        help="with --table-only: output dirs of other seeds; writes seeds.md/seeds.json")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="overrides of the quick size's settings (a smoke test: max_steps=2 max_train_pairs=200)")
    args = parser.parse_args()
    out = Path(args.output_dir)
    if args.table_only:
        write_table(out)
        if args.seed_dirs:
            seed_table([out] + [Path(d) for d in args.seed_dirs], out)
        return
    (out / "rows").mkdir(parents=True, exist_ok=True)
    with_st = ST_MINED in args.rows
    rows = [name for name in args.rows if name != ST_MINED] + (["InfoNCE + mined negatives"] * with_st)
    plan = make_plan("quick", [args.seed], list(dict.fromkeys(rows)), dict(parse_override(o) for o in args.overrides))
    data, plan.base = _load_data(plan.base)
    results = Results()
    base_file = out / "rows" / "base.json"
    if base_file.exists():
        saved = json.loads(base_file.read_text())
        results.add(saved["row"], saved["metrics"], saved["per_query"])
    else:
        _zero_shot(plan, data, results, out)
        _save(base_file, results, next(iter(results.metrics)), None)
    pending = [row for row in plan.rows if not _row_file(out, row.name).exists()]
    mined, mining = _negatives(plan, data, pending)
    if mining:
        (out / "mining.json").write_text(json.dumps({k: v for k, v in mining.items()}, indent=2))
    trained = {row.name: str(out / run_slug(row.name) / f"seed-{args.seed}" / "final") for row in plan.rows}
    order = {name: i for i, name in enumerate(args.rows)}  # the order asked for (teachers come first in ROWS)
    for row in sorted(plan.rows, key=lambda row: order.get(row.name, -1)):
        path = _row_file(out, row.name)
        if path.exists():
            saved = json.loads(path.read_text())
            results.add(row.name, saved["metrics"], saved["per_query"])
            results.losses[row.name] = saved["loss"]
            print(f"{row.name}: done before, read from {path}")
            continue
        if row.teacher not in (None, BASE_TEACHER) and not Path(trained[row.teacher]).exists():
            raise SystemExit(f"{row.name} needs {row.teacher}'s model at {trained[row.teacher]}: run that row first.")
        started = time.perf_counter()
        _train_row(plan, row, args.seed, mined if row.negatives else data, trained, out, results)
        _save(path, results, row.name, time.perf_counter() - started)
        print(f"{row.name}: {results.metrics[row.name]['cosqa-heldout_mrr@1000'][-1]:.4f} on cosqa-heldout, "
              f"{results.metrics[row.name]['cosqa-dev_mrr@1000'][-1]:.4f} on cosqa-dev "
              f"({(time.perf_counter() - started) / 60:.1f} min)")
    if with_st and not _row_file(out, ST_MINED).exists():
        st_data, dropped = st_mined(plan, data)
        started = time.perf_counter()
        _train_row(plan, replace(ROW["InfoNCE + mined negatives"], name=ST_MINED), args.seed, st_data, trained, out,
                   results)
        results.losses[ST_MINED]["mining"] = dropped
        _save(_row_file(out, ST_MINED), results, ST_MINED, time.perf_counter() - started)
    elif with_st:
        saved = json.loads(_row_file(out, ST_MINED).read_text())
        results.add(ST_MINED, saved["metrics"], saved["per_query"])
        results.losses[ST_MINED] = saved["loss"]
    write_table(out)


# The rows each row is compared with: the in-batch baseline, today's default (the choice rule's bar) and, for a row
# on mined negatives, InfoNCE on the same negatives (what the loss adds beyond the negatives).
REFERENCES = {"InfoNCE": "Δ vs InfoNCE", "SoftInfoNCE (BM25)": "Δ vs default", "InfoNCE + mined negatives": "Δ vs InfoNCE + mined"}


def write_table(out: Path) -> None:
    """``results.md`` and ``results.json`` from the rows finished so far: per real-query set, each row's MRR@1000 with
    paired 95 % intervals against the base model and :data:`REFERENCES` (one bootstrap per set, shared by every row)."""
    from hf_softnce.evaluation.bootstrap import PairedBootstrap
    from hf_softnce.training.comparison import reciprocal_ranks

    rows = {saved["row"]: saved for saved in _saved_rows(out)}
    if "base model (zero-shot)" not in rows:
        raise SystemExit(f"{out / 'rows' / 'base.json'}: no zero-shot row yet; run without --table-only first.")
    order = ["base model (zero-shot)"] + [r for r in ROWS + [ST_MINED] if r in rows]
    lines, table = [], {}
    for set_name in ("cosqa-heldout", "cosqa-dev"):
        rr = {row: reciprocal_ranks([rows[row]["per_query"][set_name]]) for row in order}
        boot = PairedBootstrap(sorted(rr[order[0]]), n_resamples=2000, seed=0)
        columns = ["Δ vs base"] + list(REFERENCES.values())
        lines += [f"**{REAL_TITLES[set_name]}** ({len(rr[order[0]])} queries, the whole 6,267-function codebase)", "",
                  "| row | MRR@1000 | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
        table[set_name] = {}
        for row in order:
            entry = {"mrr@1000": sum(rr[row].values()) / len(rr[row])}
            references = [(order[0], "Δ vs base")] + list(REFERENCES.items()) if row != order[0] else []
            cells = _compare(boot, rr, row, references, entry) + ["–"] * (len(columns) - len(references))
            table[set_name][row] = entry
            lines.append(f"| {row} | {entry['mrr@1000']:.4f} | " + " | ".join(cells) + " |")
        lines.append("")
    mining = json.loads((out / "mining.json").read_text()) if (out / "mining.json").exists() else None
    st = rows.get(ST_MINED, {}).get("loss") or {}
    (out / "results.md").write_text("\n".join(lines))
    (out / "results.json").write_text(json.dumps({"table": table, "mining": mining, "st_mining": st.get("mining"),
                                                  "losses": {r: rows[r].get("loss") for r in order[1:]},
                                                  "seconds": {r: rows[r].get("seconds") for r in order[1:]}}, indent=2))
    print("\n".join(lines))


def seed_table(dirs: list[Path], out: Path) -> None:
    """``seeds.md``/``seeds.json``: each row's MRR@1000 per seed (one output dir per seed), its seed spread, and the
    paired 95 % interval of its seed-averaged per-query reciprocal ranks against :data:`REFERENCES` (each reference
    averaged over the seeds it has)."""
    from hf_softnce.evaluation.bootstrap import PairedBootstrap
    from hf_softnce.training.comparison import reciprocal_ranks

    runs = {}  # row -> [saved row of each seed that has it]
    for folder in dirs:
        for saved in _saved_rows(folder):
            if saved["row"] != "base model (zero-shot)":
                runs.setdefault(saved["row"], []).append(saved)
    order = [r for r in ROWS + [ST_MINED] if r in runs]
    lines, table = [], {}
    for set_name in ("cosqa-heldout", "cosqa-dev"):
        rr = {row: reciprocal_ranks([saved["per_query"][set_name] for saved in runs[row]]) for row in order}
        boot = PairedBootstrap(sorted(rr[order[0]]), n_resamples=2000, seed=0)
        lines += [f"**{REAL_TITLES[set_name]}**: MRR@1000 per seed; Δ of the seed-averaged per-query reciprocal ranks",
                  "", "| row | seeds | MRR@1000 per seed | spread | mean | " + " | ".join(REFERENCES.values()) + " |",
                  "|---" * (len(REFERENCES) + 5) + "|"]
        table[set_name] = {}
        for row in order:
            per_seed = [saved["metrics"][f"{set_name}_mrr@1000"] for saved in runs[row]]
            entry = {"per_seed": per_seed, "spread": max(per_seed) - min(per_seed),
                     "mean": sum(rr[row].values()) / len(rr[row]), "seeds": len(per_seed)}
            cells = _compare(boot, rr, row, list(REFERENCES.items()), entry)
            table[set_name][row] = entry
            spread = f"{entry['spread']:.4f}" if len(per_seed) > 1 else "–"
            lines.append(f"| {row} | {len(per_seed)} | {', '.join(f'{m:.4f}' for m in per_seed)} | {spread} | "
                         f"{entry['mean']:.4f} | " + " | ".join(cells) + " |")
        lines.append("")
    (out / "seeds.md").write_text("\n".join(lines))
    (out / "seeds.json").write_text(json.dumps({"dirs": [str(d) for d in dirs], "table": table}, indent=2))
    print("\n".join(lines))


def _compare(boot, rr: dict, row: str, references: list, entry: dict) -> list[str]:
    """The table cells of ``row`` against each ``(reference, column)``: the paired difference of reciprocal ranks with
    its interval (bold when it excludes 0), also stored in ``entry[column]``; "–" where the reference is missing, is the
    row itself, or is InfoNCE + mined for a row on in-batch negatives."""
    from hf_softnce.evaluation.bootstrap import RECIPROCAL_RANKS

    cells = []
    for reference, column in references:
        if row != reference and reference in rr and (column != "Δ vs InfoNCE + mined" or "mined" in row):
            diff = boot.difference(rr[row], rr[reference], given=RECIPROCAL_RANKS)
            entry[column] = diff.to_dict()
            mark = "**" if diff.supported else ""
            cells.append(f"{mark}{diff.value:+.4f}{mark} [{diff.low:+.3f}, {diff.high:+.3f}]")
        else:
            cells.append("–")
    return cells


def st_mined(plan, data):
    """The training pairs with one negative from sentence-transformers' ``mine_hard_negatives`` (same base model at the
    training length, relative_margin, count and "top" strategy; whole codebase), each row's ``dup_group`` kept for
    InfoNCE's duplicate masking; and how many rows it left without a negative."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from hf_softnce.data import all_columns, identity_out_of_rows
    from hf_softnce.training.models import load_model

    config = replace(plan.base, **plan.mining)
    model = load_model(config.model, max_seq_length=config.max_seq_length)
    pairs = Dataset.from_dict({"query": data.train["query"], "code": data.train["code"]})
    mined = mine_hard_negatives(pairs, model, corpus=list(data.codebase), relative_margin=config.mining_relative_margin,
                                num_negatives=config.num_negatives, sampling_strategy="top", range_max=50,
                                output_format="n-tuple", batch_size=16, verbose=False)
    mined = mined.rename_columns(dict(zip(mined.column_names, ["query", "code", "negative_1"])))
    group = dict(zip(data.train["code"], all_columns(data.train)["dup_group"]))
    mined = identity_out_of_rows(mined.add_column("dup_group", [group[code] for code in mined["code"]]))
    codebase = data.codebase  # {code: duplicate group}: the groups training masks, over the whole codebase
    st_data = copy.copy(data)
    st_data.train = all_columns(mined)
    same_group = sum(codebase[neg] == codebase[code] for code, neg in zip(mined["code"], mined["negative_1"]))
    return st_data, {"pairs": len(data.train), "mined": len(mined), "rows_without_a_negative": len(data.train) - len(mined),
                     "negative_in_the_positives_duplicate_group": same_group, "range_max": 50}


def _saved_rows(out: Path) -> list[dict]:
    """Every finished row of ``out`` (``rows/*.json``, as :func:`_save` writes them)."""
    return [json.loads(path.read_text()) for path in sorted((out / "rows").glob("*.json"))]


def _row_file(out: Path, name: str) -> Path:
    return out / "rows" / f"{run_slug(name)}.json"


def _save(path: Path, results: Results, row: str, seconds: float | None) -> None:
    payload = {"row": row, "metrics": {k: v[-1] for k, v in results.metrics[row].items()},
               "per_query": results.per_query[row][-1], "loss": results.losses.get(row), "seconds": seconds}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(payload))
    partial.replace(path)


if __name__ == "__main__":
    main()
