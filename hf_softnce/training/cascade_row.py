"""The R2PS cascade row of the main job: train the ranker on negatives mined by its retriever, choose how it
re-ranks on the selection set, evaluate it on the report set and save it with its card."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hf_softnce.output_paths import readable_as_umask_allows
from hf_softnce.training.config import TrainConfig
from hf_softnce.training.data import DEV, HELDOUT
from hf_softnce.training.models import load_model
from hf_softnce.training.ranker import judged_pairs, ranker_negatives, train_ranker

# R2PS's ranker trains on negatives from its own retriever's ranking of the codebase (R2PS: 31 per query), the
# window starting at rank 0 as R2PS does on CoSQA. A cross-encoder step scores every (query, candidate) pair:
# measured on 2 CPU cores at batch 32 and 128 tokens, 10.5 s with 3 negatives and 20.5 s with 7 (a retriever
# step: 2.8 s). The config's defaults (ranker_negatives=3, ranker_steps=80: 2,560 queries, ~14 min) give the ranker
# about as long as one retriever row; ranker_steps=-1 trains an epoch (the full size's). The ranker's batch is at
# most the 32 queries it was measured with, however large the retrievers' batch (a step scales with queries x
# candidates).
RANKER_BATCH = 32
# R2PS's cascade settings, chosen on the selection set: how many retrieved codes the ranker re-scores, and
# whether its score replaces the retriever's (R2PS on CodeSearchNet) or is added to the cosine (R2PS on CoSQA), with
# a weight: R2PS adds it whole (1); on CoSQA's full size half of it re-ranked better on cosqa-heldout and held on
# dev-500 where the whole did not (benchmarks/README.md, "The weight of the ranker's score in the cascade").
CASCADE_WEIGHTS = (0.25, 0.5, 1.0, 2.0)
CASCADE_GRID = ([(top_k, "add", weight) for top_k in (5, 10, 20) for weight in CASCADE_WEIGHTS]
                + [(top_k, "replace", None) for top_k in (5, 10, 20)])


def run_cascade(base: TrainConfig, data, seed: int, retriever_dir: str, output_dir: Path, row_name: str,
                retriever_name: str = "InfoNCE"):
    """Train the R2PS ranker on the mined negatives; re-rank its retriever's top k (the main job's: InfoNCE) on the
    real queries.

    ``top_k``, ``combine`` and ``add``'s ``ranker_weight`` are chosen on the selection set (:data:`CASCADE_GRID`), by
    MRR; when no setting ranks better than the retriever alone there, the choice is ``top_k=0``: the ranker re-scores
    nothing and the cascade row is its retriever (the choice's ``tried`` keeps every setting's MRR). The latency is
    keyed by ``retriever_name`` (the retriever alone) and ``row_name`` (the cascade).
    """
    from hf_softnce.evaluation import choose_cascade_setting, evaluate_cascade
    from hf_softnce.retrieval import RetrieverRanker

    budget = ranker_budget(base)
    config = replace(base, seed=seed, output_dir=str(output_dir / "r2ps-ranker" / f"seed-{seed}"),
                     max_steps=budget["steps"], batch_size=budget["batch_size"])
    retriever = load_model(retriever_dir)
    mined = data.train
    if "negative_1" not in mined.column_names:
        # R2PS: the ranker's negatives come from its own retriever's ranking of the whole codebase
        # (config.ranker_negatives_from and ranker_negatives_start: or random codes of it, or both).
        own_length, retriever.max_seq_length = retriever.max_seq_length, config.max_seq_length
        mined = ranker_negatives(config, data.train, retriever, num_negatives=budget["negatives"],
                                 corpus=data.codebase)
        retriever.max_seq_length = own_length  # back at its own length for searching
    judged = None
    if config.ranker_judged_pairs:
        judged = judged_pairs(config, data.real_select.queries.values() if data.real_select is not None else ())
    ranker = train_ranker(config, mined, judged)
    # One cascade for every setting: the codebase is encoded once and kept in memory.
    cascade = RetrieverRanker(retriever, ranker, top_k=config.ranker_top_k, combine=config.ranker_combine,
                              ranker_weight=config.ranker_weight, cache=False)
    choice = {"top_k": config.ranker_top_k, "combine": config.ranker_combine, "ranker_weight": config.ranker_weight}
    if data.real_select is not None:
        # Every setting re-scores a prefix of the same top-20 lists: score each (query, code) pair once. The memo
        # lives on this ranker instance for the grid only, so the report set's latency is measured uncached.
        ranker.predict = memoized_predict(ranker.predict)
        choice = choose_cascade_setting(cascade, data.real_select, CASCADE_GRID)
    per_query, latency, metrics = {}, {}, {}
    for name in (HELDOUT, DEV):
        retrieval_set = {HELDOUT: data.real_select, DEV: data.real_report}[name]
        if name == DEV:
            vars(ranker).pop("predict", None)  # the memo holds the selection set's pairs; time the report set uncached
        if retrieval_set is None:
            continue
        ranks: dict = {}
        metrics[name] = result = evaluate_cascade(cascade, retrieval_set, per_query=ranks)
        per_query[name] = ranks["cascade"]
        latency = {retriever_name: result["latency_ms_per_query"]["retriever"],
                   row_name: result["latency_ms_per_query"]["cascade"]}
    # The ranker's folder carries hf_softnce's card (retriever alone vs the cascade), never the stock one.
    from hf_softnce.losses import R2PSRankerLoss
    from hf_softnce.training.publish import ranker_summary, write_run_card

    ranker.save(str(Path(config.output_dir) / "final"), create_model_card=False)
    readable_as_umask_allows(Path(config.output_dir) / "final")
    chosen = replace(config, ranker_top_k=cascade.top_k, ranker_combine=cascade.combine,
                     ranker_weight=cascade.ranker_weight, miner_model=retriever_dir)
    loss = R2PSRankerLoss(ranker, scale=config.ranker_scale)  # describes the training on the card
    write_run_card(config.output_dir, ranker, ranker_summary(chosen, loss, data, metrics))
    return per_query, latency, choice


def ranker_budget(base: TrainConfig) -> dict[str, int]:
    """The R2PS ranker's negatives, steps (-1: one epoch) and batch: ``ranker_negatives`` and ``ranker_steps``, never
    more steps or a larger batch than the retrievers' own settings; one place for the training and ``results.json``."""
    steps = base.ranker_steps
    if base.max_steps and base.max_steps > 0 and (steps == -1 or steps > base.max_steps):
        steps = base.max_steps
    return {"negatives": base.ranker_negatives, "steps": steps, "batch_size": min(RANKER_BATCH, base.batch_size)}


def memoized_predict(predict):
    """``CrossEncoder.predict`` that scores each distinct (query, code) pair once; same arguments, same output."""
    import numpy as np

    memo: dict = {}

    def memoized(pairs, **kwargs):
        todo = list(dict.fromkeys(pair for pair in map(tuple, pairs) if pair not in memo))
        if todo:
            memo.update(zip(todo, predict(todo, **kwargs).tolist()))
        return np.asarray([memo[tuple(pair)] for pair in pairs], dtype=np.float32)

    return memoized
