"""Run as two processes at once: each fits a TrainedModelWeighter ten times (ten sets of texts) on one shared
embedding cache, as every rank of an ``accelerate launch`` does. Every encode appends a line to a counter file.

Usage: cache_race.py CACHE_DIR COUNTER_FILE READY_DIR RANK
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import build_tiny_model  # noqa: E402
from loss_helpers import CODES, QUERIES  # noqa: E402

from hf_softnce.embedding_cache import texts_fingerprint  # noqa: E402
from hf_softnce.weighting import TrainedModelWeighter  # noqa: E402

FITS = 10


def main() -> None:
    cache, counter, ready, rank = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    model = build_tiny_model(seed=0)
    original_encode = model.encode

    def counted_encode(texts, *args, **kwargs):
        with counter.open("a") as file:  # one short append per encode: lines from both processes stay whole
            file.write(f"{rank}\t{texts_fingerprint(texts)}\n")
        time.sleep(0.05)  # widen the window in which the other process looks for the entry
        return original_encode(texts, *args, **kwargs)

    model.encode = counted_encode
    # Start together: both processes ask for the first entry at the same moment.
    (ready / rank).touch()
    while len(list(ready.iterdir())) < 2:
        time.sleep(0.01)
    for fit in range(FITS):
        queries = [f"{query} (variant {fit})" for query in QUERIES]
        codes = [f"{code}  # variant {fit}" for code in CODES]
        TrainedModelWeighter(model, cache=cache, show_progress_bar=False).fit(queries, codes)


if __name__ == "__main__":
    main()
