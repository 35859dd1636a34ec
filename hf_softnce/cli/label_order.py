"""``hf-softnce label-order``: add (refined) OASIS order labels to a saved dataset."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import CLIError, check_output_dir


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "label-order",
        help="Add order labels (a teacher's scores of code and negative_1..k) for OrderInfoNCELoss.",
        description=(
            "Score every row's candidates [code, negative_1..k] with a teacher (a SentenceTransformer, a "
            "CrossEncoder, or BM25) into a 'label' column, then refine as OASIS does: flag negatives scored at or "
            "above the positive, above a Gaussian-mixture threshold, or near-duplicates of the positive, and raise, "
            "drop or judge them. Reads and writes datasets saved with save_to_disk."
        ),
    )
    parser.add_argument("--data", required=True, help="a Dataset or DatasetDict saved with save_to_disk")
    parser.add_argument("--split", default="train", help="split to label when --data is a DatasetDict")
    parser.add_argument("--output", required=True, help="folder to save the labelled Dataset to")
    parser.add_argument(
        "--teacher", default=None, help="'bm25', or a model path / Hub id (default: the packaged all-MiniLM-L6-v2)"
    )
    parser.add_argument(
        "--teacher-type", choices=("bi-encoder", "cross-encoder"), default="bi-encoder",
        help="how to load a model teacher: SentenceTransformer (cosine) or CrossEncoder (predict)",
    )
    parser.add_argument(
        "--refine", default="all",
        help="comma-separated flags among above_positive,gmm,near_duplicate; 'all' or 'none' (default: all)",
    )
    parser.add_argument("--action", choices=("raise", "drop", "judge"), default="raise")
    parser.add_argument("--raise-by", type=float, default=0.1, help="label increase of a flagged negative")
    parser.add_argument("--judge", default=None, help="module:function called as judge(query, positive, negative)")
    parser.add_argument("--near-duplicate-threshold", type=float, default=0.8)
    parser.add_argument("--gmm-posterior", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--language", default="python", help="code language, unless the data has a language column")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="teacher device (default: the model's)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default: hf_softnce's cache)")
    parser.set_defaults(func=run)
    return parser


def _refine(value: str):
    value = value.strip().lower()
    if value == "all":
        return True
    if value == "none":
        return False
    return [part.strip() for part in value.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    from datasets import DatasetDict, load_from_disk

    from hf_softnce.defaults import default_model_path
    from hf_softnce.mining.order_labels import as_judge, label_order

    if args.action == "judge" and not args.judge:
        raise CLIError("--action judge needs --judge module:function.")
    if args.judge and args.action != "judge":
        raise CLIError("--judge is only used with --action judge.")
    check_output_dir(args.output, "--output")
    data = load_from_disk(args.data)
    if isinstance(data, DatasetDict):
        if args.split not in data:
            raise CLIError(f"--split {args.split!r} is not in {args.data} (splits: {list(data)}).")
        data = data[args.split]
    teacher = args.teacher
    if teacher is None or teacher.lower() != "bm25":
        if args.teacher_type == "cross-encoder":
            from sentence_transformers import CrossEncoder

            if teacher is None:
                raise CLIError("--teacher-type cross-encoder needs --teacher PATH_OR_HUB_ID.")
            teacher = CrossEncoder(teacher, device=args.device)
        else:
            from sentence_transformers import SentenceTransformer

            teacher = SentenceTransformer(teacher or default_model_path(), device=args.device)
    labelled, report = label_order(
        data,
        teacher,
        refine=_refine(args.refine),
        action=args.action,
        raise_by=args.raise_by,
        judge=as_judge(args.judge) if args.judge else None,
        near_duplicate_threshold=args.near_duplicate_threshold,
        gmm_posterior=args.gmm_posterior,
        seed=args.seed,
        language=args.language,
        batch_size=args.batch_size,
        cache=False if args.no_cache else (args.cache_dir or True),
    )
    labelled.save_to_disk(args.output)
    print(report.summary())
    print(f"Saved {len(labelled):,} rows with columns {labelled.column_names} to {args.output}")
    return 0
