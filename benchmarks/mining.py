"""Benchmark: RankingHardNegativeMiner vs sentence-transformers' mine_hard_negatives, and the search stage at 1M.

Part 1 mines the same (docstring, function) pairs with the same model (all-MiniLM-L6-v2), the same number of
negatives, the same search backend and batch size, alternating the two miners in one process (A/B, B/A, ...)
and reporting medians. Our miner runs with its embedding cache disabled; a cached re-run is reported apart.
Peak memory is the peak RSS *increase* during a run over the RSS at its start, sampled every 2 ms by a psutil
thread (tracemalloc would miss torch's allocations).

Part 2 runs ``top_k_search`` alone on 1,000,000 x 384 random float32 vectors and 10,000 queries in a
subprocess and reads its peak RSS with ``resource.getrusage``: it must stay within 1.5x the embedding matrix.

    python benchmarks/mining.py            # full figures (< 10 min on 2 cores)
    python benchmarks/mining.py --quick    # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"


# -- data ----------------------------------------------------------------------------------------------------


def stdlib_pairs(limit: int) -> tuple[list[str], list[str], str]:
    """(first docstring paragraph, function source without its docstring) from the Python standard library."""
    root = Path(sysconfig.get_paths()["stdlib"])
    queries, codes, seen = [], [], set()
    for path in sorted(root.glob("*.py")) + sorted(root.glob("*/*.py")):
        if "test" in path.relative_to(root).as_posix():
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            docstring = ast.get_docstring(node)
            if not docstring or len(docstring.split()) < 4:
                continue
            node.body = node.body[1:] or [ast.Pass()]
            code = ast.unparse(node)
            query = " ".join(docstring.split("\n\n")[0].split())
            if code in seen or query in seen:
                continue
            seen.update((code, query))
            queries.append(query)
            codes.append(code)
            if len(queries) == limit:
                return queries, codes, f"Python {sys.version.split()[0]} stdlib functions with docstrings (ast)"
    return queries, codes, "Python stdlib functions with docstrings (ast)"


def benchmark_pairs(limit: int):
    from datasets import Dataset

    try:
        from hf_softnce.data import build_python_corpus
    except ImportError:
        queries, codes, source = stdlib_pairs(limit)
        return Dataset.from_dict({"query": queries, "code": codes}), source
    train = build_python_corpus(progress=False, show_report=False)["train"]
    # A seeded sample across packages; its unique codes are the corpus both miners rank.
    train = train.shuffle(seed=0).select(range(min(limit, len(train)))).select_columns(["query", "code"])
    return train, "hf_softnce.data.build_python_corpus() (stdlib), train split, seeded sample"


# -- measurement ---------------------------------------------------------------------------------------------


class PeakRSS:
    """Peak RSS increase over the RSS at entry, sampled by a background thread."""

    def __init__(self, interval: float = 0.002):
        import psutil

        self.process, self.interval = psutil.Process(), interval

    def __enter__(self):
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.delta_mb = (self.peak - self.start) / 2**20


def timed(fn):
    with PeakRSS() as memory:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return result, seconds, memory.delta_mb


def compare_miners(args) -> dict:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    from hf_softnce.defaults import default_model_path
    from hf_softnce.mining import RankingHardNegativeMiner

    data, source = benchmark_pairs(args.pairs)
    model = SentenceTransformer(default_model_path(), device="cpu")
    model.max_seq_length = args.max_seq_length  # the same truncation for both miners keeps the run short
    k = args.num_negatives

    def ours(cache=False):
        miner = RankingHardNegativeMiner(
            model, num_negatives=k, strategy="top", batch_size=args.batch_size, use_faiss=False, cache=cache,
            show_progress_bar=False,
        )
        return miner.mine(data)

    def theirs():
        return mine_hard_negatives(
            data, model, num_negatives=k, sampling_strategy="top", output_format="n-tuple",
            batch_size=args.batch_size, use_faiss=False, verbose=False,
        )

    # Warm both code paths (tokenizer, thread pools) on a slice before timing.
    small = data.select(range(min(len(data), 24)))
    RankingHardNegativeMiner(model, num_negatives=5, strategy="top", cache=False, show_progress_bar=False,
                             use_faiss=False).mine(small)
    mine_hard_negatives(small, model, num_negatives=5, verbose=False)

    runs = {"ours": [], "sentence_transformers": []}
    outputs = {}
    for repeat in range(args.repeats):
        order = [("ours", ours), ("sentence_transformers", theirs)]
        for name, fn in order if repeat % 2 == 0 else order[::-1]:
            result, seconds, memory = timed(fn)
            runs[name].append({"seconds": seconds, "rows": len(result), "peak_rss_increase_mb": memory})
            outputs[name] = result
            print(f"  repeat {repeat} {name:<22} {seconds:7.2f} s  {len(result)} rows  +{memory:.0f} MiB RSS")

    with tempfile.TemporaryDirectory() as cache_dir:
        _, cold_seconds, _ = timed(lambda: ours(cache=cache_dir))
        cached, warm_seconds, warm_memory = timed(lambda: ours(cache=cache_dir))

    def negatives(dataset):
        return {(row["query"], row["code"]): {row[f"negative_{j}"] for j in range(1, k + 1)} for row in dataset}

    ours_negatives, st_negatives = negatives(outputs["ours"]), negatives(outputs["sentence_transformers"])
    same = sum(ours_negatives[key] == value for key, value in st_negatives.items() if key in ours_negatives)

    summary = {}
    for name, records in runs.items():
        seconds = statistics.median(r["seconds"] for r in records)
        summary[name] = {
            "median_seconds": seconds,
            "rows_per_second": len(data) / seconds,
            "median_peak_rss_increase_mb": statistics.median(r["peak_rss_increase_mb"] for r in records),
            "runs": records,
        }
    return {
        "corpus": source,
        "pairs": len(data),
        "num_negatives": k,
        "max_seq_length": args.max_seq_length,
        "batch_size": args.batch_size,
        "search_backend": "torch (use_faiss=False for both)",
        "repeats": args.repeats,
        "miners": summary,
        "throughput_ratio": summary["ours"]["rows_per_second"] / summary["sentence_transformers"]["rows_per_second"],
        "cached_rerun": {
            "cold_seconds": cold_seconds,
            "warm_seconds": warm_seconds,
            "warm_rows_per_second": len(data) / warm_seconds,
            "warm_peak_rss_increase_mb": warm_memory,
            "rows": len(cached),
        },
        "rows_with_identical_negatives_to_st": same / max(1, len(st_negatives)),
    }


# -- search at scale -----------------------------------------------------------------------------------------


def search_probe(vectors: int, queries: int, dim: int, k: int, backend: str) -> dict:
    """Runs in its own process: allocate the matrix, search, report peak RSS."""
    import importlib.util

    import numpy as np

    # Load search.py by itself: importing the hf_softnce.retrieval package also imports the cascade and with it
    # sentence-transformers (~290 MB of RSS), which is not part of the search stage being measured.
    search_file = Path(__file__).resolve().parents[1] / "hf_softnce" / "retrieval" / "search.py"
    spec = importlib.util.spec_from_file_location("search", search_file)
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    top_k_search = search.top_k_search

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((vectors, dim), dtype=np.float32)
    query_matrix = rng.standard_normal((queries, dim), dtype=np.float32)
    start = time.perf_counter()
    scores, indices = top_k_search(query_matrix, corpus, k, score="cos", use_faiss=backend == "faiss")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss is in KiB on Linux
    # Cross-check: this process's own high-water mark (ru_maxrss also counts the parent image before exec,
    # which is why main() starts this probe before importing torch or loading a model).
    hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    return {
        "vectors": vectors,
        "queries": queries,
        "dim": dim,
        "k": k,
        "backend": backend,
        "seconds": seconds,
        "matrix_bytes": corpus.nbytes,
        "queries_bytes": query_matrix.nbytes,
        "peak_rss_bytes": peak,
        "peak_rss_before_allocation_bytes": rss_before,
        "peak_rss_over_matrix": peak / corpus.nbytes,
        "vm_hwm_bytes": hwm,
        "result_shape": list(indices.shape),
    }


def run_search_probe(args) -> dict:
    command = [
        sys.executable, __file__, "--search-probe", "--vectors", str(args.vectors), "--queries", str(args.queries),
        "--k", str(args.k), "--backend", args.backend,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


# -- report --------------------------------------------------------------------------------------------------


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mining, search = results["mining"], results["search"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    names = ["ours (no cache)", "sentence-transformers", "ours (cached re-run)"]
    rates = [
        mining["miners"]["ours"]["rows_per_second"],
        mining["miners"]["sentence_transformers"]["rows_per_second"],
        mining["cached_rerun"]["warm_rows_per_second"],
    ]
    axes[0].bar(names, rates, color=["tab:blue", "tab:gray", "tab:cyan"])
    axes[0].set_ylabel("rows mined per second")
    axes[0].set_yscale("log")
    axes[0].set_title(f"Throughput ({mining['pairs']} pairs, {mining['num_negatives']} negatives)")
    memory = [
        mining["miners"]["ours"]["median_peak_rss_increase_mb"],
        mining["miners"]["sentence_transformers"]["median_peak_rss_increase_mb"],
    ]
    axes[1].bar(names[:2], memory, color=["tab:blue", "tab:gray"])
    axes[1].set_ylabel("peak RSS increase (MiB)")
    axes[1].set_title("Memory during mining")
    gib = 2**30
    axes[2].bar(
        ["embedding matrix", "peak RSS", "1.5x bound"],
        [search["matrix_bytes"] / gib, search["peak_rss_bytes"] / gib, 1.5 * search["matrix_bytes"] / gib],
        color=["tab:gray", "tab:blue", "tab:red"],
    )
    axes[2].set_ylabel("GiB")
    axes[2].set_title(f"Search alone: {search['vectors']:,} x {search['dim']}, {search['queries']:,} queries")
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_table(results: dict) -> None:
    mining, search = results["mining"], results["search"]
    ours, st = mining["miners"]["ours"], mining["miners"]["sentence_transformers"]
    print(f"\nMining {mining['pairs']} pairs ({mining['corpus']}), {mining['num_negatives']} negatives, "
          f"{mining['repeats']} interleaved repeats, medians:")
    print(f"{'miner':<28}{'seconds':>10}{'rows/s':>10}{'peak RSS +MiB':>16}")
    print(f"{'ours (cache off)':<28}{ours['median_seconds']:>10.2f}{ours['rows_per_second']:>10.1f}"
          f"{ours['median_peak_rss_increase_mb']:>16.0f}")
    print(f"{'sentence-transformers':<28}{st['median_seconds']:>10.2f}{st['rows_per_second']:>10.1f}"
          f"{st['median_peak_rss_increase_mb']:>16.0f}")
    cached = mining["cached_rerun"]
    print(f"{'ours (cached re-run)':<28}{cached['warm_seconds']:>10.2f}{cached['warm_rows_per_second']:>10.1f}"
          f"{cached['warm_peak_rss_increase_mb']:>16.0f}")
    print(f"throughput ratio ours / sentence-transformers: {mining['throughput_ratio']:.2f}x; rows with the same "
          f"negative set: {mining['rows_with_identical_negatives_to_st']:.1%}")
    print(f"\nSearch alone ({search['backend']}): {search['vectors']:,} x {search['dim']} float32 "
          f"({search['matrix_bytes'] / 2**30:.2f} GiB), {search['queries']:,} queries, k={search['k']}: "
          f"{search['seconds']:.1f} s, peak RSS {search['peak_rss_bytes'] / 2**30:.2f} GiB = "
          f"{search['peak_rss_over_matrix']:.2f}x the matrix (bound 1.5x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run (figures not reported)")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--num-negatives", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--backend", choices=("torch", "faiss"), default="torch")
    parser.add_argument("--search-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(RESULTS / "mining.json"))
    args = parser.parse_args()

    if args.search_probe:
        print(json.dumps(search_probe(args.vectors, args.queries, 384, args.k, args.backend)))
        return
    if args.quick:
        args.pairs, args.repeats, args.vectors, args.queries = 64, 2, 100_000, 1_000

    # The search probe runs first, while this process is still small: a child's ru_maxrss starts from the
    # parent's RSS at fork.
    print(f"Search stage alone in a subprocess ({args.vectors:,} x 384, {args.queries:,} queries)...")
    search = run_search_probe(args)
    import torch

    print(f"Mining comparison ({torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs)...")
    mining = compare_miners(args)
    results = {"quick": args.quick, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "mining": mining, "search": search}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    plot(results, output.with_suffix(".png"))
    print_table(results)
    print(f"\nWrote {output} and {output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
