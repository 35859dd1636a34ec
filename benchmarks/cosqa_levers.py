"""The levers of training on CoSQA's own queries, measured on the CoSQA selection half before they became the main
job's defaults: learning rate, code length, mined hard negatives, WiSE-FT weight.

Each run: all-MiniLM-L6-v2, sentence-transformers' MultipleNegativesRankingLoss (= InfoNCE) in
SentenceTransformerTrainer (batch 32, NO_DUPLICATES sampler, warmup 10%, seed 42) on CoSQA's retrieval training
pairs (label 1); then every query of CoSQA dev ranks the whole 6,267-function codebase at 256 tokens.

    python -m benchmarks.cosqa_levers run --name lr5e-5_s150 --lr 5e-5 --steps 150
    python -m benchmarks.cosqa_levers run --name len64_s200 --max-seq-length 64 --steps 200 --wise 1.0,0.75,0.5
    python -m benchmarks.cosqa_levers compare      # table: select / report half / dev-500, paired 95% intervals
    python -m benchmarks.cosqa_levers compare --against lr5e-5_s150   # Δ of every run against that one

Results (per-query ranks, seconds) go to benchmarks/results/cosqa_levers/<name>.json. The data is read from
../shared/data/cosqa (or $HF_SOFTNCE_DATA_DIR/cosqa) at run time, never copied here.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
import torch
from datasets import Dataset

from benchmarks.common import RESULTS

OUT = RESULTS / "cosqa_levers"


def cosqa_folder(benchmark: str = "cosqa_levers"):
    from hf_softnce.data.locate import find_shared_data_dir

    folder = find_shared_data_dir("cosqa", marker="cosqa-retrieval-train-19604.json")
    if folder is None:
        raise SystemExit(f"{benchmark}: no cosqa-retrieval-train-19604.json in ../shared/data/cosqa or $HF_SOFTNCE_DATA_DIR")
    return folder


def cosqa_files():
    folder = cosqa_folder()
    codebase = json.loads((folder / "code_idx_map.txt").read_text())
    dev = json.loads((folder / "cosqa-retrieval-dev-500.json").read_text())
    train = [r for r in json.loads((folder / "cosqa-retrieval-train-19604.json").read_text()) if str(r["label"]) == "1"]
    return codebase, dev, train


def ranks_of(model, codebase: dict, dev: list) -> dict[str, int]:
    """Rank of each dev query's gold code among the whole codebase (1 = first), at 256 tokens."""
    model.max_seq_length = 256
    codes, position = list(codebase), {str(i): n for n, i in enumerate(codebase.values())}
    corpus = model.encode(codes, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    queries = model.encode([r["doc"] for r in dev], batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
    scores = queries @ corpus.T
    gold = scores[torch.arange(len(dev)), torch.tensor([position[str(r["retrieval_idx"])] for r in dev])]
    return dict(zip([r["idx"] for r in dev], ((scores > gold[:, None]).sum(1) + 1).tolist()))


def run(args) -> None:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hf_softnce.defaults import default_model_path

    codebase, dev, train = cosqa_files()
    OUT.mkdir(parents=True, exist_ok=True)
    base = SentenceTransformer(default_model_path(), device="cpu")
    base_file = OUT / "base.json"
    if not base_file.exists():
        base_file.write_text(json.dumps({"wise1.0": {"ranks": ranks_of(base, codebase, dev)}}))
    rows = {"anchor": [r["doc"] for r in train], "positive": [r["code"] for r in train]}
    if args.negatives:
        # Hardest codes of the base model's ranking of the whole codebase, never the gold code or an identical one,
        # nor a positive of the same query text.
        codes = list(codebase)
        base.max_seq_length = 256
        corpus = base.encode(codes, batch_size=64, convert_to_tensor=True, normalize_embeddings=True)
        queries = base.encode(rows["anchor"], batch_size=128, convert_to_tensor=True, normalize_embeddings=True)
        gold_by_text: dict[str, set[str]] = {}
        for r in train:
            gold_by_text.setdefault(r["doc"], set()).add(r["code"])
        top = (queries @ corpus.T).topk(args.window_end + 10, dim=1).indices.tolist()
        rng = random.Random(0)
        for k in range(args.negatives):
            rows[f"negative_{k + 1}"] = []
        for i, r in enumerate(train):
            pool = [codes[j] for j in top[i] if codes[j] not in gold_by_text[r["doc"]]][args.window_start:args.window_end]
            for k, code in enumerate(rng.sample(pool, args.negatives)):
                rows[f"negative_{k + 1}"].append(code)
    model = SentenceTransformer(default_model_path(), device="cpu")
    model.max_seq_length = args.max_seq_length
    training_args = SentenceTransformerTrainingArguments(
        output_dir=str(OUT / "checkpoints" / args.name), max_steps=args.steps, per_device_train_batch_size=32,
        learning_rate=args.lr, warmup_steps=0.1, seed=42, data_seed=42, batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no", logging_steps=25, report_to=[], use_cpu=True, dataloader_drop_last=True)
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=Dataset.from_dict(rows),
                                         loss=MultipleNegativesRankingLoss(model))
    start = time.perf_counter()
    trainer.train()
    result = {"args": vars(args), "train_s": time.perf_counter() - start}
    tuned, original = ({k: v.detach().clone() for k, v in m.state_dict().items()} for m in (model, base))
    for weight in (float(w) for w in args.wise.split(",")):
        # WiSE-FT: weight x tuned + (1 - weight) x base, float tensors only
        model.load_state_dict({k: weight * v + (1 - weight) * original[k] if v.is_floating_point() else v
                               for k, v in tuned.items()})
        result[f"wise{weight}"] = {"ranks": ranks_of(model, codebase, dev)}
    (OUT / f"{args.name}.json").write_text(json.dumps(result))


def halves(qids: list[str]) -> dict[str, list[str]]:
    from hf_softnce.training.data import half_query_ids  # the main job's fixed halves

    select, report = half_query_ids(qids)
    return {"select": select, "report": report, "dev-500": sorted(qids)}


def compare(args) -> None:
    from hf_softnce.evaluation.bootstrap import PairedBootstrap

    # Δ against the base model, or against one run (without averaging) for paired run-to-run differences.
    base = json.loads((OUT / f"{args.against}.json").read_text())["wise1.0"]["ranks"]
    sets = halves(list(base))
    print("| run | WiSE-FT | train s | " + " | ".join(f"{name} MRR | Δ {name} [95% CI]" for name in sets) + " |")
    print("|---" * (3 + 2 * len(sets)) + "|")
    for path in sorted(OUT.glob("*.json")):
        if path.stem in ("base", args.against):
            continue
        result = json.loads(path.read_text())
        for key in (k for k in result if k.startswith("wise")):
            cells = []
            for qids in sets.values():
                boot = PairedBootstrap(qids)
                diff = boot.difference(result[key]["ranks"], base)
                mrr = float(np.mean([1.0 / r if r <= 1000 else 0.0 for r in (result[key]["ranks"][q] for q in qids)]))
                cells += [f"{mrr:.4f}", f"{diff.value:+.4f} [{diff.low:+.3f}, {diff.high:+.3f}]"]
            print(f"| {path.stem} | {key[4:]} | {result['train_s']:.0f} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="train one setting and rank the codebase")
    one.add_argument("--name", required=True)
    one.add_argument("--lr", type=float, default=5e-5)
    one.add_argument("--steps", type=int, default=150)
    one.add_argument("--max-seq-length", type=int, default=128)
    one.add_argument("--negatives", type=int, default=0, help="mined hard negatives per pair (default 0)")
    one.add_argument("--window-start", type=int, default=0, help="first eligible rank negatives come from")
    one.add_argument("--window-end", type=int, default=1, help="end of that window (exclusive)")
    one.add_argument("--wise", default="1.0", help="comma-separated WiSE-FT weights on the tuned model (1.0: none)")
    against = commands.add_parser("compare", help="print the table of every saved run")
    against.add_argument("--against", default="base", help="the run every Δ is taken against (default: base)")
    args = parser.parse_args()
    (run if args.command == "run" else compare)(args)


if __name__ == "__main__":
    main()
