"""Package-level train/valid/test assignment: every function of a package lands in one split.

Hashing each package name into a split (``hash % 100 < 80``) is stable but gives lopsided splits when a
few packages hold most functions (the stdlib's ``email``, ``asyncio``, ``tkinter``, ...; a ``torch`` among
the dependencies). So the sizes are balanced greedily by function count instead: packages are taken
largest first (ties in the order of a keyed hash of their name, so ``seed`` reshuffles equal sizes) and
each goes to the split furthest below its target share. The result is deterministic for a given set of
packages and counts; adding sources can move other packages between splits.
"""

from __future__ import annotations

import hashlib
import math

SPLIT_NAMES = ("train", "valid", "test")


def _stable_hash(name: str, seed: int) -> int:
    # Python's hash() is salted per process; blake2b is the same everywhere.
    return int.from_bytes(hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest(), "big")


def assign_package_splits(
    package_counts: dict[str, int], ratios: tuple[float, ...] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, str]:
    """``{package: split name}`` with split sizes (in functions) as close to ``ratios`` as packages allow."""
    if len(ratios) != len(SPLIT_NAMES) or not all(math.isfinite(r) and r >= 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"split ratios must be {len(SPLIT_NAMES)} finite non-negative numbers, got {ratios}.")
    total = sum(package_counts.values())
    targets = [r / sum(ratios) * total for r in ratios]
    filled = [0] * len(SPLIT_NAMES)
    order = sorted(package_counts, key=lambda p: (-package_counts[p], _stable_hash(p, seed)))
    assignment = {}
    for package in order:
        # Largest deficit first; on a tie the earlier split (train) wins.
        split = max(range(len(SPLIT_NAMES)), key=lambda s: (targets[s] - filled[s], -s))
        filled[split] += package_counts[package]
        assignment[package] = SPLIT_NAMES[split]
    return assignment
