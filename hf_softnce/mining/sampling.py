"""Which eligible ranks become negatives: a fixed window (R2PS), the top, or a rank-decaying random draw.

Every function works on *eligible ranks*: 0 is the best-scored corpus entry that is neither excluded (the
positive, its duplicate group, other positives of the query) nor dropped by a margin, 1 the next, and so on.
"""

from __future__ import annotations

import torch

STRATEGIES = ("window", "top", "probabilistic")


def rank_decay_weights(top_k: int, temperature: float) -> torch.Tensor:
    """Unnormalised ``exp(-rank / temperature)`` for ranks ``0 .. top_k-1`` of the sampling pool."""
    return torch.exp(-torch.arange(top_k, dtype=torch.float64) / temperature)


def window_ranks(found: torch.Tensor, start: int, num_negatives: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks ``[start, start + num_negatives)`` for every row, and which rows have all of them.

    Args:
        found: ``(rows,)`` number of eligible candidates known for each row.
    """
    ranks = torch.arange(start, start + num_negatives).expand(found.shape[0], -1)
    return ranks, found >= start + num_negatives


def sample_ranks(
    found: torch.Tensor,
    start: int,
    num_negatives: int,
    top_k: int,
    temperature: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``num_negatives`` distinct ranks per row from the pool ``[start, start + top_k)``.

    Draws are sequential without replacement (``torch.multinomial``): each next rank is picked with
    probability proportional to ``exp(-(rank - start) / temperature)`` among the ranks not yet drawn. The
    pool is cut short where a row has fewer eligible candidates; a row whose pool holds fewer than
    ``num_negatives`` ranks is reported as not sampled. Returned ranks are sorted, hardest first.
    """
    pool_size = (found - start).clamp(min=0, max=top_k)
    ok = pool_size >= num_negatives
    ranks = torch.full((found.shape[0], num_negatives), -1, dtype=torch.long)
    if ok.any():
        weights = rank_decay_weights(top_k, temperature).expand(int(ok.sum()), -1).clone()
        weights[torch.arange(top_k).expand_as(weights) >= pool_size[ok, None]] = 0.0
        drawn = torch.multinomial(weights, num_negatives, replacement=False, generator=generator)
        ranks[ok] = drawn.sort(dim=1).values + start
    return ranks, ok
