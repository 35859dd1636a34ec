"""``hf-softnce mine-negatives``: mine ranking-based hard negatives for a saved dataset or a JSON/JSONL file."""

from __future__ import annotations

import argparse

from hf_softnce.cli._errors import check_output_dir
from hf_softnce.cli._inputs import add_data_arguments, describe_columns, load_rows
from hf_softnce.cli._models import resolve_model
from hf_softnce.cli._parser import add_command


def register(subparsers) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "mine-negatives",
        help="Add ranking-based hard negatives (negative_1..k) to a (query, code) dataset.",
        description=(
            "Rank the corpus with a frozen retriever and take negatives by rank (R2PS window, top, or a "
            "rank-decaying draw), never the positive or its dup_group. Reads a folder saved with save_to_disk or "
            "a JSON/JSONL file; writes a folder with save_to_disk."
        ),
    )
    parser.add_argument("--model", default=None,
                        help="retriever: a model folder or Hub id (default: the packaged all-MiniLM-L6-v2)")
    add_data_arguments(parser, required=True, split="train")
    parser.add_argument("--output", required=True, help="folder to save the mined Dataset to")
    parser.add_argument("--num-negatives", type=int, default=31, help="negatives per row (R2PS: 31)")
    parser.add_argument("--strategy", choices=("window", "top", "probabilistic"), default="window",
                        help="which ranks become negatives")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--window-start", type=int, default=0, help="first rank used (R2PS floor(lambda*N))")
    start.add_argument("--window-fraction", type=float, default=None,
                       help="lambda: window start as a fraction of the corpus (default: unset, --window-start)")
    parser.add_argument("--top-k", type=int, default=100, help="sampling pool of the probabilistic strategy")
    parser.add_argument("--temperature", type=float, default=10.0, help="rank temperature (probabilistic)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probabilistic draw")
    parser.add_argument("--absolute-margin", type=float, default=None,
                        help="drop candidates scoring above positive - margin (default: no margin)")
    parser.add_argument("--relative-margin", type=float, default=None,
                        help="drop candidates scoring above positive * (1 - margin) (default: no margin)")
    parser.add_argument("--on-shortfall", choices=("skip", "error"), default="skip",
                        help="rows with too few eligible negatives: leave them out and count them, or stop")
    parser.add_argument(
        "--output-format", choices=("n-tuple", "cross-encoder", "triplet", "labeled-pair", "labeled-list"),
        default="n-tuple", help="layout of the mined rows (the last three: mine_hard_negatives' layouts)",
    )
    parser.add_argument("--output-scores", action="store_true", help="add label = [positive, negatives] scores")
    parser.add_argument("--batch-size", type=int, default=64, help="encoding batch size")
    parser.add_argument("--faiss", choices=("auto", "yes", "no"), default="auto",
                        help="use FAISS for the search (auto: when installed)")
    parser.add_argument("--device", action="append", default=None,
                        help="encoding device; repeat for several (default: the model's own device)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write cached embeddings")
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder (default: hf_softnce's cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.output, "--output")
    # Inputs and the model name are checked before anything heavy is loaded.
    data = load_rows(args.data, split=args.split, columns=args.columns, default_split=args.default_split)
    model_path = resolve_model(args.model, "--model")
    describe_columns(data, args.data)
    from sentence_transformers import SentenceTransformer

    from hf_softnce.data.corpus import save_dataset
    from hf_softnce.mining.miner import RankingHardNegativeMiner

    device = args.device[0] if args.device and len(args.device) == 1 else args.device
    model = SentenceTransformer(model_path, device=device if isinstance(device, str) else None)
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
        show_progress_bar=not args.quiet,
    )
    # Saved n-tuples keep their identity columns (dup_group feeds duplicate masking later); to_training_dataset drops them.
    mined = miner.mine(
        data,
        output_format=args.output_format,
        output_scores=args.output_scores,
        keep_identity_columns=args.output_format in ("n-tuple", "cross-encoder"),
    )
    save_dataset(mined, args.output, progress=not args.quiet)
    print(miner.last_report.summary())
    print(f"Saved {len(mined):,} rows with columns {mined.column_names} to {args.output}")
    return 0
