"""``hf-softnce evaluate MODEL --data PATH``: MRR, Recall and NDCG of a model on a corpus split and/or CoSQA."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hf_softnce.cli._errors import CLIError, check_output_file


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the console script's subparsers; the parsed args carry ``func`` (returns an exit code)."""
    parser = subparsers.add_parser(
        "evaluate",
        help="Rank the whole codebase for every query and report MRR@1000, Recall@1/5/10 and NDCG@10.",
        description="Evaluate a SentenceTransformer (local folder or Hub id) on the held-out split of a corpus "
        "built by `hf-softnce build-corpus` and/or on the CoSQA dev split.",
    )
    parser.add_argument("model", metavar="MODEL", help="model folder or Hugging Face Hub id")
    parser.add_argument("--data", default=None, help="a DatasetDict saved by the corpus builder (save_to_disk folder)")
    parser.add_argument("--split", default="test", help="split of --data to evaluate on (default: test)")
    parser.add_argument(
        "--cosqa", default=None, metavar="DIR", help="a CoSQA folder (code_idx_map.txt + retrieval dev/test files)"
    )
    parser.add_argument("--output", default=None, help="write the results as JSON to this file")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size (default: 32)")
    parser.set_defaults(func=evaluate_command)
    return parser


def corpus_split_set(data_path: str | Path, split: str):
    """The RetrievalSet of one split of a saved corpus DatasetDict (each query searches all the split's codes)."""
    from datasets import load_from_disk

    from hf_softnce.data import retrieval_set_from_pairs

    dataset_dict = load_from_disk(str(data_path))
    if split not in dataset_dict:
        raise ValueError(f"{data_path} has no split {split!r}; it has {sorted(dataset_dict)}.")
    return retrieval_set_from_pairs(dataset_dict[split], name=f"{Path(data_path).name}-{split}")


def cosqa_sets(folder: str | Path) -> list:
    """CoSQA's retrieval splits found in ``folder`` (dev -> ``cosqa-valid``, test -> ``cosqa-test``)."""
    from hf_softnce.data import load_cosqa
    from hf_softnce.data.loaders import COSQA_FILES

    splits = [split for split in ("valid", "test") if (Path(folder) / COSQA_FILES[split]).is_file()]
    if not splits:
        names = [COSQA_FILES[split] for split in ("valid", "test")]
        raise FileNotFoundError(f"{folder} holds no CoSQA retrieval split ({' or '.join(names)}).")
    data = load_cosqa(data_dir=folder, splits=splits, verbose=False)
    return [getattr(data, split) for split in splits]


def evaluate_model(model, retrieval_sets, batch_size: int = 32) -> dict[str, dict[str, float]]:
    """``{set name: metrics}`` (unprefixed metric keys) for a loaded SentenceTransformer."""
    from hf_softnce.evaluation.evaluator import CodeSearchEvaluator

    results = {}
    for retrieval_set in retrieval_sets:
        evaluator = CodeSearchEvaluator(retrieval_set, name="", batch_size=batch_size, write_csv=False)
        results[retrieval_set.name] = evaluator(model)
    return results


def evaluate_command(args: argparse.Namespace) -> int:
    if args.data is None and args.cosqa is None:
        raise CLIError("evaluate: give --data PATH and/or --cosqa DIR.")
    check_output_file(args.output, "--output")
    # The data first: a bad path or split is reported before the model is loaded.
    retrieval_sets = []
    if args.data is not None:
        retrieval_sets.append(corpus_split_set(args.data, args.split))
    if args.cosqa is not None:
        retrieval_sets.extend(cosqa_sets(args.cosqa))

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model)
    results = evaluate_model(model, retrieval_sets, batch_size=args.batch_size)
    for name, metrics in results.items():
        size = next(len(s) for s in retrieval_sets if s.name == name)
        print(f"{name} ({size} queries): " + ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({"model": args.model, "results": results}, indent=2) + "\n")
    return 0
