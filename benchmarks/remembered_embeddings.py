"""Mining after the zero-shot evaluation: the codebase's embeddings read from the evaluation vs encoded again.

    python -m benchmarks.remembered_embeddings            # results/remembered_embeddings.json

The main job evaluates the base model on CoSQA's whole 6,267-code codebase at its own length (256 tokens), then
mines with the same weights at the training length (128). A code both lengths read whole has the same embedding
at both, so mining reads those rows from the evaluation (``hf_softnce.embedding_cache.remember_embeddings``) and
encodes only the codes 128 tokens cut. This times the mining encode both ways, alternating in one process
(A/B, B/A, medians), and checks that they agree: the largest difference of an embedding and the share of training
rows whose mined negative is the same code (the main job's quick-size mining: 1,280 pairs, one positive-aware
negative, relative margin 0.05).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from benchmarks.common import machine, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from hf_softnce import embedding_cache
    from hf_softnce.training.main_job import _load_data, make_plan
    from hf_softnce.training.models import load_model
    from hf_softnce.training.ranker import mine_negatives

    plan = make_plan("quick")
    data, base = _load_data(plan.base)
    codes = list(data.codebase)
    evaluated = load_model(base.model)  # the evaluation's length, as the zero-shot row reads the codebase
    started = time.perf_counter()
    embeddings = evaluated.encode_document(codes, convert_to_tensor=True, batch_size=64, show_progress_bar=True)
    evaluation_encode = time.perf_counter() - started
    prompt = embedding_cache.prompt_name_for(evaluated, "document")

    mining = replace(base, **plan.mining)
    model = load_model(base.model, max_seq_length=mining.max_seq_length)
    times: dict[str, list[float]] = {"read": [], "encoded": []}
    results: dict[str, torch.Tensor] = {}
    rounds = [("read", "encoded"), ("encoded", "read")]
    for order in tqdm(rounds, desc="A/B rounds"):
        for mode in order:
            embedding_cache.forget_embeddings()
            if mode == "read":
                embedding_cache.remember_embeddings(evaluated, codes, embeddings, prompt_name=prompt)
            started = time.perf_counter()
            results[mode] = embedding_cache.encode_cached(model, codes, cache=False, prompt_name=prompt,
                                                         show_progress_bar=False)
            times[mode].append(time.perf_counter() - started)
    read_rows = len(embedding_cache._remembered_rows(model, codes, prompt))
    difference = (results["read"] - results["encoded"]).abs().max().item()

    negatives = {}
    for mode in ("read", "encoded"):
        embedding_cache.forget_embeddings()
        if mode == "read":
            embedding_cache.remember_embeddings(evaluated, codes, embeddings, prompt_name=prompt)
        with tempfile.TemporaryDirectory() as cache:  # an empty disk cache: the mining encodes (or reads) afresh
            os.environ["HF_SOFTNCE_CACHE"] = cache
            mined, _ = mine_negatives(mining, data.train, model, corpus=data.codebase, progress=False,
                                      with_report=True)
        negatives[mode] = mined["negative_1"]
    embedding_cache.forget_embeddings()
    same = sum(a == b for a, b in zip(negatives["read"], negatives["encoded"]))

    read, encoded = statistics.median(times["read"]), statistics.median(times["encoded"])
    payload = {
        "what": __doc__.splitlines()[0],
        "codebase": len(codes), "evaluation_length": evaluated.max_seq_length, "mining_length": model.max_seq_length,
        "rows_read": read_rows, "rows_encoded": len(codes) - read_rows,
        "evaluation_encode_s": round(evaluation_encode, 1),
        "mining_encode_read_s": [round(t, 1) for t in times["read"]],
        "mining_encode_encoded_s": [round(t, 1) for t in times["encoded"]],
        "median_read_s": round(read, 1), "median_encoded_s": round(encoded, 1),
        "speedup": round(encoded / read, 2),
        "largest_embedding_difference": difference,
        "training_rows": len(negatives["read"]), "same_mined_negative": same,
        "machine": machine(),
    }
    path = write_json("remembered_embeddings", payload)
    print(f"codebase encode for mining: {encoded:.1f} s encoded vs {read:.1f} s read ({encoded / read:.2f}x); "
          f"{read_rows:,} of {len(codes):,} rows read; largest difference {difference:.1e}; the same mined negative "
          f"for {same:,} of {len(negatives['read']):,} rows -> {path}")


if __name__ == "__main__":
    main()
