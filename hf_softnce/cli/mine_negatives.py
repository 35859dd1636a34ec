"""``hf-softnce mine-negatives``: mine ranking-based hard negatives for a saved dataset."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import CLIError, check_output_dir


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "mine-negatives",
        help="Add ranking-based hard negatives (negative_1..k) to a (query, code) dataset.",
        description=(
            "Rank the corpus with a frozen retriever and take negatives by rank (R2PS window, top, or a "
            "rank-decaying draw), never the positive or its dup_group. Reads and writes datasets saved with "
            "save_to_disk."
        ),
    )
    parser.add_argument("--model", default=None, help="retriever: a local path or Hub id (default: all-MiniLM-L6-v2)")
    parser.add_argument("--data", required=True, help="a Dataset or DatasetDict saved with save_to_disk")
    parser.add_argument("--split", default="train", help="split to mine when --data is a DatasetDict")
    parser.add_argument("--output", required=True, help="folder to save the mined Dataset to")
    parser.add_argument("--num-negatives", type=int, default=31)
    parser.add_argument("--strategy", choices=("window", "top", "probabilistic"), default="window")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--window-start", type=int, default=0, help="first rank used (R2PS floor(lambda*N))")
    start.add_argument("--window-fraction", type=float, default=None, help="lambda: window start as corpus fraction")
    parser.add_argument("--top-k", type=int, default=100, help="sampling pool of the probabilistic strategy")
    parser.add_argument("--temperature", type=float, default=10.0, help="rank temperature (probabilistic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--absolute-margin", type=float, default=None)
    parser.add_argument("--relative-margin", type=float, default=None)
    parser.add_argument("--on-shortfall", choices=("skip", "error"), default="skip")
    parser.add_argument(
        "--output-format", choices=("n-tuple", "cross-encoder", "triplet", "labeled-pair", "labeled-list"), default="n-tuple"
    )
    parser.add_argument("--output-scores", action="store_true", help="add label = [positive, negatives] scores")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--faiss", choices=("auto", "yes", "no"), default="auto", help="use FAISS for the search")
    parser.add_argument("--device", action="append", default=None, help="encoding device; repeat for several")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default: hf_softnce's cache)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.output, "--output")
    from datasets import DatasetDict, load_from_disk
    from sentence_transformers import SentenceTransformer

    from hf_softnce.defaults import default_model_path
    from hf_softnce.mining.miner import RankingHardNegativeMiner

    data = load_from_disk(args.data)
    if isinstance(data, DatasetDict):
        if args.split not in data:
            raise CLIError(f"--split {args.split!r} is not in {args.data} (splits: {list(data)}).")
        data = data[args.split]
    device = args.device[0] if args.device and len(args.device) == 1 else args.device
    model = SentenceTransformer(args.model or default_model_path(), device=device if isinstance(device, str) else None)
    miner = RankingHardNegativeMiner(
        model,
        num_negatives=args.num_negatives,
        strategy=args.strategy,
        window_start=args.window_start,
        window_fraction=args.window_fraction,
        top_k=args.top_k,
        temperature=args.temperature,
        seed=args.seed,
        absolute_margin=args.absolute_margin,
        relative_margin=args.relative_margin,
        on_shortfall=args.on_shortfall,
        batch_size=args.batch_size,
        use_faiss={"auto": None, "yes": True, "no": False}[args.faiss],
        cache=False if args.no_cache else (args.cache_dir or True),
        device=device,
    )
    # Saved n-tuples keep their identity columns (dup_group feeds duplicate masking later); to_training_dataset drops them.
    mined = miner.mine(
        data,
        output_format=args.output_format,
        output_scores=args.output_scores,
        keep_identity_columns=args.output_format in ("n-tuple", "cross-encoder"),
    )
    mined.save_to_disk(args.output)
    print(miner.last_report.summary())
    print(f"Saved {len(mined):,} rows with columns {mined.column_names} to {args.output}")
    return 0
