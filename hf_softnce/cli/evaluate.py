"""``hf-softnce evaluate MODEL --data PATH``: MRR, Recall and NDCG of a model on a dataset and/or CoSQA."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hf_softnce.cli._errors import CLIError, check_output_file
from hf_softnce.cli._inputs import add_data_arguments, load_rows
from hf_softnce.cli._models import resolve_model
from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``evaluate`` to the console script's subparsers; the parsed args carry ``func`` (returns an exit code)."""
    parser = add_command(
        subparsers,
        "evaluate",
        help="Rank the whole codebase for every query and report MRR@1000, Recall@1/5/10 and NDCG@10.",
        description="Evaluate a SentenceTransformer (model folder, 'default' or a Hub id) on (query, code) pairs "
        "(a split of a corpus built by `hf-softnce build-corpus`, a saved Dataset, or a JSON/JSONL file) and/or on "
        "the CoSQA dev split. Prints a table of the headline metrics; --output writes every metric as JSON.",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="model folder, Hugging Face Hub id, or 'default' (the packaged all-MiniLM-L6-v2)")
    add_data_arguments(parser, required=False, split="test", what="; each query searches all the codes")
    parser.add_argument(
        "--cosqa", default=None, metavar="DIR",
        help="a CoSQA folder (code_idx_map.txt + retrieval dev/test files) (default: none)",
    )
    parser.add_argument("--base", default=None, metavar="MODEL",
                        help="also evaluate this model and show it beside MODEL, with the difference (default: none)")
    parser.add_argument("--output", default=None, help="write every metric as JSON to this file (default: none)")
    parser.add_argument("--max-queries", type=int, default=None, metavar="N",
                        help="a quick check: only the first N queries of each set (default: all)")
    parser.add_argument("--max-codes", type=int, default=None, metavar="N",
                        help="a quick check: a codebase of the kept queries' gold codes and other codes, N in all; "
                        "a smaller codebase inflates every metric (default: the whole codebase)")
    parser.add_argument("--batch-size", type=int, default=32, help="encoding batch size")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=evaluate_command)
    return parser


def data_set(path: str, split: str | None, columns: str | None = None, default_split: str = "test"):
    """The RetrievalSet of ``path``'s (query, code) rows: each query searches all their distinct codes."""
    from hf_softnce.data import retrieval_set_from_pairs
    from hf_softnce.data.schema import standardize_columns

    rows = standardize_columns(load_rows(path, split=split, columns=columns, default_split=default_split),
                               f"--data {path}")
    split = default_split if split is None else split
    folder = Path(path)
    if folder.is_file():
        name = folder.stem
    else:  # a saved DatasetDict names its split; a saved Dataset is its folder
        name = f"{folder.name}-{split}" if (folder / "dataset_dict.json").exists() else folder.name
    return retrieval_set_from_pairs(rows, name=name)


def cosqa_sets(folder: str | Path) -> list:
    """CoSQA's retrieval splits found in ``folder`` (dev -> ``cosqa-dev``, test -> ``cosqa-test``)."""
    from hf_softnce.data import load_cosqa
    from hf_softnce.data.loaders import COSQA_FILES

    if not Path(folder).is_dir():
        raise CLIError(f"--cosqa {str(folder)!r}: no such folder.")
    splits = [split for split in ("valid", "test") if (Path(folder) / COSQA_FILES[split]).is_file()]
    if not splits:
        names = [COSQA_FILES[split] for split in ("valid", "test")]
        raise FileNotFoundError(f"{folder} holds no CoSQA retrieval split ({' or '.join(names)}).")
    data = load_cosqa(data_dir=folder, splits=splits, verbose=False)
    return [getattr(data, split) for split in splits]


def quick_check_note(retrieval_sets, max_queries: int | None, max_codes: int | None) -> str | None:
    """What a quick check leaves out, in one sentence; None when every set is evaluated whole."""
    for value, flag in ((max_queries, "--max-queries"), (max_codes, "--max-codes")):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be at least 1, got {value}.")
    cut_queries = max_queries and any(len(s) > max_queries for s in retrieval_sets)
    cut_codes = max_codes and any(len(s.corpus) > max_codes for s in retrieval_sets)
    if not (cut_queries or cut_codes):
        return None
    parts = [f"at most {max_queries:,} queries per set" if cut_queries else "every query"]
    if cut_codes:
        parts.append(f"a codebase of at most {max_codes:,} codes (their gold codes included), which inflates every "
                     "metric")
    return (f"Quick check, not the full evaluation: {' and '.join(parts)}; drop --max-queries/--max-codes for "
            "numbers comparable with published ones.")


def evaluate_model(model, retrieval_sets, batch_size: int = 32, show_progress_bar: bool = True
                   ) -> dict[str, dict[str, float]]:
    """``{set name: metrics}`` (unprefixed metric keys, each number once) for a loaded SentenceTransformer."""
    from hf_softnce.evaluation.evaluator import CodeSearchEvaluator
    from hf_softnce.evaluation.report import drop_duplicate_keys

    results = {}
    for retrieval_set in retrieval_sets:
        if show_progress_bar:  # a sign of life before minutes of encoding
            print(f"Evaluating on {retrieval_set.name}: {len(retrieval_set):,} queries against the whole codebase "
                  f"({len(retrieval_set.corpus):,} codes)", file=sys.stderr)
        evaluator = CodeSearchEvaluator(retrieval_set, name="", batch_size=batch_size, write_csv=False,
                                        show_progress_bar=show_progress_bar)
        results[retrieval_set.name] = drop_duplicate_keys(evaluator(model))
    return results


def results_table(retrieval_sets, results: dict, base_results: dict | None = None, model: str = "model",
                  base: str = "base") -> str:
    """One Markdown table per set: the model's headline metrics (and the base model's, with the MRR difference)."""
    from hf_softnce.evaluation.report import headline, markdown_table

    tables = []
    for retrieval_set in retrieval_sets:
        name = retrieval_set.name
        rows = {model: headline(results[name])}
        extra = {}
        if base_results is not None:
            rows = {base: headline(base_results[name]), **rows}
            difference = results[name]["mrr@1000"] - base_results[name]["mrr@1000"]
            extra = {model: {"Δ MRR vs base": f"{difference:+.4f}"}}
        title = f"**{name}** ({len(retrieval_set):,} queries, {len(retrieval_set.corpus):,} codes)"
        tables.append(f"{title}\n\n{markdown_table(rows, extra=extra)}")
    return "\n\n".join(tables)


def evaluate_command(args: argparse.Namespace) -> int:
    if args.data is None and args.cosqa is None:
        raise CLIError("evaluate: give --data PATH and/or --cosqa DIR.")
    if args.data is None and (args.columns is not None or args.split is not None):
        raise CLIError("evaluate: --columns and --split describe --data, which is not given.")
    check_output_file(args.output, "--output")
    # The data first, then the model names: every input is checked before any model is loaded.
    retrieval_sets = []
    if args.data is not None:
        retrieval_sets.append(data_set(args.data, args.split, args.columns, args.default_split))
    if args.cosqa is not None:
        retrieval_sets.extend(cosqa_sets(args.cosqa))
    quick_check = quick_check_note(retrieval_sets, args.max_queries, args.max_codes)
    if quick_check:
        retrieval_sets = [s.shrunk(args.max_queries, args.max_codes) for s in retrieval_sets]
    model_path = resolve_model(args.model, "MODEL")
    base_path = resolve_model(args.base, "--base") if args.base is not None else None

    from sentence_transformers import SentenceTransformer

    progress = not args.quiet
    results = evaluate_model(SentenceTransformer(model_path), retrieval_sets, args.batch_size, progress)
    base_results = None
    if base_path is not None:
        base_results = evaluate_model(SentenceTransformer(base_path), retrieval_sets, args.batch_size, progress)
    if quick_check:
        print(quick_check + "\n")
    print(results_table(retrieval_sets, results, base_results, model=args.model, base=args.base or "base"))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        saved = {"model": args.model, "results": results, **({"quick_check": quick_check} if quick_check else {})}
        if base_results is not None:
            saved.update(base=args.base, base_results=base_results)
        Path(args.output).write_text(json.dumps(saved, indent=2) + "\n")
        print(f"Saved every metric to {args.output}")
    return 0
