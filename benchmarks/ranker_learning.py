"""Does the R2PS ranker learn, and from which negatives? A cheap check before any cascade run.

    python -m benchmarks.ranker_learning --retriever runs/main/infonce/seed-42/final --output-dir runs/ranker_learning

Each variant trains the ranker for a few steps on CoSQA training queries (never ``cosqa-heldout``), then scores
held-out queries' gold code against two kinds of distractors:

- ``random``: 3 random codes of the codebase (never the gold code's duplicate group);
- ``retriever top-3``: the 3 codes the retriever ranks highest, the gold code's duplicate group left out: the codes
  a cascade must re-order to help.

A ranker that learns puts the gold code first more often than chance (1 in 4) on ``random``; a ranker that helps a
cascade does better than the retriever's own cosine on ``retriever top-3``. If the first is learned and the second is
not, the negatives are the problem, not the loss. Last, the trained ranker re-orders the retriever's top 10 over the
whole codebase (replacing the cosine, or added to it, as ``RetrieverRanker`` does): MRR@1000 of that cascade against
the retriever alone, on the same queries: the cascade's target. Each variant's accuracy has a 95 % bootstrap interval
over queries, and every variant is paired with the retriever on the same queries. Rows are written to
``<output-dir>/rows/`` as they finish; a re-run skips the finished ones.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
from transformers import set_seed

VARIANTS = {
    # name: (head, warmup_ratio, negatives[, CoSQA's judged pairs as a second task[, first rank mined]])
    "stock head, warmup 10 %, retriever top-3": ("stock", 0.1, "retriever top"),
    "released head, no warmup, retriever top-3": ("released", 0.0, "retriever top"),
    "released head, no warmup, positive-aware top-3": ("released", 0.0, "positive-aware top"),
    "released head, no warmup, random 3": ("released", 0.0, "random"),
    "released head, no warmup, positive-aware top 1 + random 2": ("released", 0.0, "mixed"),
    # R2PS's own sampling: 3 ranks drawn from the retriever's top 100, weight exp(-rank / 10), positive-aware.
    "released head, no warmup, positive-aware probabilistic 3": ("released", 0.0, "probabilistic"),
    # The same draw from ranks 10-109: harder than random codes, past the top ranks where CoSQA's unlabelled true
    # answers sit (the top-3 negatives taught the ranker nothing; random ones taught it only random-vs-gold).
    "released head, no warmup, positive-aware probabilistic 3 from rank 10": ("released", 0.0, "probabilistic",
                                                                              False, 10),
    # CoSQA's human labels: a code retrieved for the query and judged not to answer it is a negative with no false
    # negatives among them; binary cross-entropy batches alternate with the listwise ones (the same listwise steps).
    "released head, no warmup, random 3 + judged pairs": ("released", 0.0, "random", True),
    "released head, no warmup, retriever top-3 + judged pairs": ("released", 0.0, "retriever top", True),
}
NEGATIVES = 3
CASCADE_TOP_K = 10  # R2PS's
# The ranker's score (tanh, in [-1, 1]) added to the cosine at these weights: 1 is R2PS's sum; 0 the retriever.
FUSION_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retriever", required=True, help="the InfoNCE retriever's folder (the main job's row)")
    parser.add_argument("--output-dir", default="runs/ranker_learning")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--queries", type=int, default=300, help="held-out queries scored")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="the main job's settings (e.g. cosqa_dir=..., ranker_model=... on another machine)")
    args = parser.parse_args()

    from hf_softnce.training.manifest import write_atomically
    from hf_softnce.training.models import resolve_model_name
    from hf_softnce.training.plan import run_slug
    from hf_softnce.training.ranker import judged_pairs, r2ps_ranker, ranker_negatives, train_ranker

    out = Path(args.output_dir)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    data, base, retriever, codes, groups, index, code_emb = check_setup(args.seed, args.overrides, args.retriever)
    rng = random.Random(args.seed)

    held = data.real_select
    qids = sorted(held.queries)
    rng.shuffle(qids)
    qids = [q for q in qids if any(held.corpus[c] in index for c in held.relevant[q])][: args.queries]
    queries = [held.queries[q] for q in qids]
    gold = [next(held.corpus[c] for c in sorted(held.relevant[q]) if held.corpus[c] in index) for q in qids]
    q_emb = retriever.encode(queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    scores = q_emb @ code_emb.T
    tests = {"random": [], "retriever top-3": []}
    retriever_first = {"random": [], "retriever top-3": []}
    for i, code in enumerate(gold):
        g = groups[index[code]]
        order = [j for j in np.argsort(-scores[i]) if groups[j] != g]
        for kind, picked in (("random", rng.sample([j for j in range(len(codes)) if groups[j] != g], NEGATIVES)),
                             ("retriever top-3", order[:NEGATIVES])):
            tests[kind].append([code] + [codes[j] for j in picked])
            retriever_first[kind].append(float(scores[i, index[code]] > max(scores[i, j] for j in picked)))

    gold_groups = np.asarray([groups[index[code]] for code in gold])
    retriever_rr = reciprocal_ranks(scores, groups, gold_groups)
    rows = {"retriever (cosine)": {kind: summary(np.asarray(v)) for kind, v in retriever_first.items()}}
    rows["retriever (cosine)"]["mrr"] = summary(retriever_rr)
    # The report set: every dev-500 query, for the fusion chosen on the held-out queries above (never chosen here).
    dev_queries, dev_gold_groups = report_queries(data, index, groups)
    dev_scores = retriever.encode(dev_queries, batch_size=64, normalize_embeddings=True, convert_to_numpy=True) \
        @ code_emb.T
    dev_retriever_rr = reciprocal_ranks(dev_scores, groups, dev_gold_groups)
    rows["retriever (cosine)"]["dev mrr"] = summary(dev_retriever_rr)
    train = data.train.shuffle(seed=args.seed)
    train = train.select(range(min(len(train), args.steps * args.batch_size)))  # a pass at most: never a query twice
    judged_cache = None
    for name in args.variants:
        path = out / "rows" / f"{run_slug(name)}.json"
        if path.exists():
            rows[name] = json.loads(path.read_text())
            continue
        head, warmup, negatives, *rest = VARIANTS[name]
        judge, start = (rest + [False, 0])[:2]
        if judge and judged_cache is None:  # read once for every variant that trains on them
            judged_cache = judged_pairs(base, held.queries.values())
        judged = judged_cache if judge else None
        config = replace(base, seed=args.seed, max_steps=args.steps, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, ranker_head=head, ranker_warmup_ratio=warmup,
                         output_dir=str(out / run_slug(name)), save_steps=None, eval_steps=None)
        own_length, retriever.max_seq_length = retriever.max_seq_length, base.max_seq_length  # mining: training length
        mined = ranker_negatives(replace(config, ranker_negatives_from=negatives, ranker_negatives_start=start),
                                 train, retriever, num_negatives=NEGATIVES, corpus=data.codebase)
        retriever.max_seq_length = own_length
        set_seed(config.seed)  # the same fresh head train_ranker starts from
        init = r2ps_ranker(resolve_model_name(config.ranker_model), head=head, max_length=config.max_seq_length)
        trained = train_ranker(config, mined, judged)
        result = {}
        for label, ranker in (("init", init), ("trained", trained)):
            for kind, lists in tests.items():
                first = first_place(ranker, queries, lists)
                result[f"{label} {kind}"] = summary(first)
                result[f"{label} {kind} vs retriever"] = summary(first - np.asarray(retriever_first[kind]))
        top, ranker_scores = score_top(trained, queries, codes, scores)  # once for every way of combining
        dev_top, dev_ranker_scores = score_top(trained, dev_queries, codes, dev_scores)
        np.savez(out / "rows" / f"{run_slug(name)}.npz", top=top, ranker_scores=ranker_scores, dev_top=dev_top,
                 dev_ranker_scores=dev_ranker_scores)  # re-combined later without training again
        # Scores all alike (a saturated tanh) re-order by noise: the mean per-query spread says whether it happened.
        result["dev score spread"] = float(np.ptp(dev_ranker_scores, axis=1).mean())
        for combine in ("replace", "add"):
            rr = cascade_reciprocal_ranks(top, ranker_scores, scores, groups, gold_groups, combine)
            result[f"cascade {combine}"] = summary(rr)
            result[f"cascade {combine} vs retriever"] = summary(rr - retriever_rr)
        # The ranker's weight in the sum, chosen on the held-out queries (the retriever alone, weight 0, first: a
        # tie keeps it), then the report set at that weight.
        held_rr = {w: cascade_reciprocal_ranks(top, ranker_scores, scores, groups, gold_groups, w)
                   for w in FUSION_WEIGHTS}
        chosen = max(FUSION_WEIGHTS, key=lambda w: held_rr[w].mean())
        result["fusion heldout mrr"] = {str(w): float(rr.mean()) for w, rr in held_rr.items()}
        result["fusion chosen weight"] = chosen
        dev_rr = cascade_reciprocal_ranks(dev_top, dev_ranker_scores, dev_scores, groups, dev_gold_groups, chosen)
        result["fusion chosen heldout vs retriever"] = summary(held_rr[chosen] - retriever_rr)
        result["dev fusion chosen"] = summary(dev_rr)
        result["dev fusion chosen vs retriever"] = summary(dev_rr - dev_retriever_rr)
        write_atomically(path, json.dumps(result, indent=2))  # processes side by side read each other's rows
        rows[name] = result
    write_table(out, rows, args)


def check_setup(seed: int, overrides: list[str], retriever_path: str):
    """The data, the main job's config, the retriever and the codebase as the check and its re-combinations see it:
    ``codes`` (the codebase's order, which saved top-k indices point into), ``groups`` (a duplicate-group key per
    code, equal codes alike), ``index`` (code -> position) and ``code_emb`` (codes x dim, normalised)."""
    from hf_softnce.training.config import parse_override
    from hf_softnce.training.main_job import _load_data, make_plan
    from hf_softnce.training.models import load_model

    # The whole training split (the quick size would hand over its 1,280-pair sample): the check draws its own.
    settings = {"max_train_pairs": None, **dict(parse_override(o) for o in overrides)}
    data, base = _load_data(make_plan("quick", [seed], ["InfoNCE"], settings).base)
    retriever = load_model(retriever_path)  # searches at its own length, as the cascade does
    codes = list(data.codebase)
    groups = np.asarray([hash(data.codebase[c]) for c in codes])
    index = {code: i for i, code in enumerate(codes)}
    code_emb = retriever.encode(codes, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                show_progress_bar=True)
    return data, base, retriever, codes, groups, index, code_emb


def report_queries(data, index: dict, groups: np.ndarray) -> tuple[list[str], np.ndarray]:
    """dev-500's queries whose gold code is in the codebase (in id order) and each gold code's duplicate group."""
    report = data.real_report
    qids = [q for q in sorted(report.queries) if any(report.corpus[c] in index for c in report.relevant[q])]
    gold = [next(report.corpus[c] for c in sorted(report.relevant[q]) if report.corpus[c] in index) for q in qids]
    return [report.queries[q] for q in qids], np.asarray([groups[index[code]] for code in gold])


def reciprocal_ranks(scores: np.ndarray, groups: np.ndarray, gold_groups: np.ndarray, cutoff: int = 1000) -> np.ndarray:
    """Per query, 1 / the rank of the first code of the gold code's duplicate group in the whole codebase (0 beyond
    ``cutoff``; ties counted in the gold's favour): group-aware, so close to the main job's dedup MRR rather than its
    MRR@1000 (which counts the gold code id alone); ``scores``: (queries, codes)."""
    best = np.where(groups[None, :] == gold_groups[:, None], scores, -np.inf).max(axis=1)
    ranks = 1 + (scores > best[:, None]).sum(axis=1)
    return np.where(ranks <= cutoff, 1.0 / ranks, 0.0)


def score_top(ranker, queries, codes, scores, top_k: int = CASCADE_TOP_K):
    """The retriever's top ``top_k`` code indices per query (``scores``: queries x codes) and the ranker's ``predict``
    (tanh of the logit) of each, both (queries, top_k)."""
    top = np.argsort(-scores, axis=1)[:, :top_k]
    pairs = [(query, codes[j]) for query, row in zip(queries, top) for j in row]
    return top, np.asarray(ranker.predict(pairs, batch_size=64, show_progress_bar=True)).reshape(top.shape)


def cascade_reciprocal_ranks(top, ranker_scores, scores, groups, gold_groups, combine) -> np.ndarray:
    """:func:`reciprocal_ranks` after the ranker re-orders the retriever's top k (:func:`score_top`), its score
    replacing the cosine (``"replace"``) or added to it (``"add"``, as ``RetrieverRanker`` does; a float: added with
    that weight, ``cosine + weight * score``); the ranks below stay."""
    weight = {"add": 1.0}.get(combine, combine)
    fused = ranker_scores if combine == "replace" else np.take_along_axis(scores, top, axis=1) + weight * ranker_scores
    reordered = np.take_along_axis(top, np.argsort(-fused, axis=1, kind="stable"), axis=1)
    retriever = reciprocal_ranks(scores, groups, gold_groups)
    hit = groups[reordered] == gold_groups[:, None]
    found = hit.any(axis=1)
    return np.where(found, 1.0 / (1 + hit.argmax(axis=1)), retriever)  # not in the top k: the retriever's rank


def first_place(ranker, queries, lists) -> np.ndarray:
    """1 where the ranker scores the gold code (each list's first) above its 3 distractors, else 0."""
    pairs = [(query, code) for query, codes in zip(queries, lists) for code in codes]
    scores = np.asarray(ranker.predict(pairs, batch_size=64, show_progress_bar=True)).reshape(len(queries), -1)
    return (scores[:, 0] > scores[:, 1:].max(axis=1)).astype(float)


def summary(values: np.ndarray, resamples: int = 2000) -> dict:
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return {"mean": float(values.mean()), "low": float(np.quantile(means, 0.025)),
            "high": float(np.quantile(means, 0.975)), "n": int(len(values))}


def write_table(out: Path, rows: dict, args) -> None:
    cell = lambda s: f"{s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}]"  # noqa: E731
    lines = [f"Gold code ranked first among itself and 3 distractors ({args.queries} cosqa-heldout queries; chance "
             f"0.25); ranker: {args.steps} steps of {args.batch_size} queries, {NEGATIVES} negatives each.", "",
             "| ranker | random: init | random: trained | top-3: init | top-3: trained | top-3 trained vs retriever "
             f"| MRR@1000, top {CASCADE_TOP_K} re-ranked (replace) | replace vs retriever | (add) | add vs retriever |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    retriever = rows["retriever (cosine)"]
    optional = lambda r, key: cell(r[key]) if key in r else "–"  # noqa: E731 (rows written before the cascade columns)
    lines.append(f"| retriever (cosine) | – | {cell(retriever['random'])} | – | {cell(retriever['retriever top-3'])} "
                 f"| – | {optional(retriever, 'mrr')} | – | – | – |")
    for name, r in rows.items():
        if name == "retriever (cosine)":
            continue
        lines.append(f"| {name} | {cell(r['init random'])} | {cell(r['trained random'])} | "
                     f"{cell(r['init retriever top-3'])} | {cell(r['trained retriever top-3'])} | "
                     f"{cell(r['trained retriever top-3 vs retriever'])} | {optional(r, 'cascade replace')} | "
                     f"{optional(r, 'cascade replace vs retriever')} | {optional(r, 'cascade add')} | "
                     f"{optional(r, 'cascade add vs retriever')} |")
    fused = {name: r for name, r in rows.items() if "fusion chosen weight" in r}
    if fused:
        lines += ["", f"The ranker's score added to the cosine with a weight (`cosine + w * score` over the top "
                  f"{CASCADE_TOP_K}; w in {list(FUSION_WEIGHTS)}, 0 the retriever alone) chosen on the "
                  f"{args.queries} cosqa-heldout queries by MRR, then dev-500 (every query, never chosen on) at that "
                  "weight; MRR of the gold code's duplicate group over the whole codebase.", "",
                  "| ranker | w chosen | cosqa-heldout: fused vs retriever | dev-500: retriever | dev-500: fused "
                  "| dev-500: fused vs retriever | dev-500: ranker scores' spread per query |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in fused.items():
            spread = f"{r['dev score spread']:.2g}" if "dev score spread" in r else "–"
            lines.append(f"| {name} | {r['fusion chosen weight']} | {cell(r['fusion chosen heldout vs retriever'])} | "
                         f"{cell(retriever['dev mrr'])} | {cell(r['dev fusion chosen'])} | "
                         f"{cell(r['dev fusion chosen vs retriever'])} | {spread} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
