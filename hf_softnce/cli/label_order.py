"""``hf-softnce label-order``: add (refined) OASIS order labels to a saved dataset or a JSON/JSONL file."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import CLIError, check_output_dir
from hf_softnce.cli._inputs import describe_columns, load_rows
from hf_softnce.cli._models import resolve_model
from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "label-order",
        help="Add order labels (a teacher's scores of code and negative_1..k) for OrderInfoNCELoss.",
        description=(
            "Score every row's candidates [code, negative_1..k] with a teacher (a SentenceTransformer, a "
            "CrossEncoder, or BM25) into a 'label' column, then refine as OASIS does: flag negatives scored at or "
            "above the positive, above a Gaussian-mixture threshold, or near-duplicates of the positive, and raise, "
            "drop or judge them. Reads a folder saved with save_to_disk or a JSON/JSONL file; writes a folder."
        ),
    )
    parser.add_argument("--data", required=True,
                        help="(query, code, negative_1..k) rows: a Dataset/DatasetDict folder saved with save_to_disk, "
                        "or a .json / .jsonl file; columns by name (query, code, negative_<n>), else by position")
    parser.add_argument("--split", default=None,
                        help="split to label when --data is a saved DatasetDict (default: train); other data has none")
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
    parser.add_argument("--action", choices=("raise", "drop", "judge"), default="raise",
                        help="what happens to a flagged negative: raise its label, drop it, or ask --judge")
    parser.add_argument("--raise-by", type=float, default=0.1, help="label increase of a flagged negative")
    parser.add_argument("--judge", default=None,
                        help="module:function called as judge(query, positive, negative) (default: none; needed by "
                        "--action judge)")
    parser.add_argument("--near-duplicate-threshold", type=float, default=0.8,
                        help="token edit similarity to the positive at or above which a negative is a near-duplicate")
    parser.add_argument("--gmm-posterior", type=float, default=0.5,
                        help="high-component posterior above which the Gaussian-mixture threshold lies")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Gaussian mixture")
    parser.add_argument("--language", default="python", help="code language, unless the data has a language column")
    parser.add_argument("--batch-size", type=int, default=None, help="teacher encoding batch size (default: 64)")
    parser.add_argument("--device", default=None, help="teacher device (default: the model's)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default: hf_softnce's cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
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
    if args.action == "judge" and not args.judge:
        raise CLIError("--action judge needs --judge module:function.")
    if args.judge and args.action != "judge":
        raise CLIError("--judge is only used with --action judge.")
    check_output_dir(args.output, "--output")
    bm25 = args.teacher is not None and args.teacher.lower() == "bm25"
    if args.teacher_type == "cross-encoder" and (args.teacher is None or bm25):
        raise CLIError("--teacher-type cross-encoder needs --teacher PATH_OR_HUB_ID.")
    model_only = [flag for flag, value in (("--device", args.device), ("--batch-size", args.batch_size),
                                           ("--cache-dir", args.cache_dir), ("--no-cache", args.no_cache or None))
                  if value is not None]
    if bm25 and model_only:  # BM25 encodes nothing: these would be ignored
        raise CLIError(f"{', '.join(model_only)} set how a model teacher encodes; --teacher bm25 has none.")
    # Inputs and the teacher's name are checked before anything heavy is loaded.
    data = load_rows(args.data, split=args.split)
    teacher_path = None if bm25 else resolve_model(args.teacher, "--teacher")
    describe_columns(data, args.data)

    from hf_softnce.data.corpus import save_dataset
    from hf_softnce.data.schema import standardize_columns
    from hf_softnce.mining.order_labels import as_judge, label_order

    data = standardize_columns(data, f"--data {args.data}")  # label_order reads query, code, negative_<n> by name
    if bm25:
        teacher = "bm25"
    elif args.teacher_type == "cross-encoder":
        from sentence_transformers import CrossEncoder

        teacher = CrossEncoder(teacher_path, device=args.device)
    else:
        from sentence_transformers import SentenceTransformer

        teacher = SentenceTransformer(teacher_path, device=args.device)
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
        batch_size=64 if args.batch_size is None else args.batch_size,
        cache=False if args.no_cache else (args.cache_dir or True),
        show_progress_bar=not args.quiet,
    )
    save_dataset(labelled, args.output, progress=not args.quiet)
    print(report.summary())
    print(f"Saved {len(labelled):,} rows with columns {labelled.column_names} to {args.output}")
    return 0
