"""Shared by the benchmarks: the real data they run on, and result writing."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def python_pairs(limit: int, seed: int = 0):
    """(query, code) pairs from the default Python corpus (the standard library), shuffled with ``seed``."""
    from hf_softnce.data import build_python_corpus

    train = build_python_corpus(sources=["stdlib"])["train"].shuffle(seed=seed)
    return train.select(range(min(limit, len(train))))


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path
