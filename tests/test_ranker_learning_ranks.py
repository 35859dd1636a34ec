"""The ranker learning check's MRR arithmetic (benchmarks/ranker_learning.py), on scores ranked by hand."""

from __future__ import annotations

import numpy as np

from benchmarks.ranker_learning import cascade_reciprocal_ranks, reciprocal_ranks, score_top

# 2 queries x 5 codes; codes 1 and 3 are one duplicate group (7), so either answers a query whose gold is in it.
SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5],
                   [0.1, 0.2, 0.3, 0.9, 0.8]])
GROUPS = np.array([0, 7, 2, 7, 4])
GOLD = np.array([7, 4])  # query 0: codes 1/3 (retriever rank 2); query 1: code 4 (rank 2)


class FixedRanker:
    """Scores each (query, code) pair from a table: the arithmetic under test, not a model."""

    def __init__(self, table):
        self.table = table

    def predict(self, pairs, **_):
        return [self.table[pair] for pair in pairs]


def test_reciprocal_rank_counts_the_first_code_of_the_gold_group_and_the_cutoff():
    np.testing.assert_allclose(reciprocal_ranks(SCORES, GROUPS, GOLD), [1 / 2, 1 / 2])
    np.testing.assert_allclose(reciprocal_ranks(SCORES, GROUPS, GOLD, cutoff=1), [0.0, 0.0])


def test_cascade_reorders_the_top_k_by_the_ranker_or_the_sum_and_keeps_ranks_below():
    codes = ["a", "b", "c", "d", "e"]
    table = {("q0", "a"): 0.0, ("q0", "b"): 0.5, ("q1", "d"): 0.0, ("q1", "e"): 0.05}
    ranker = FixedRanker(table)
    # replace, top 2: q0 reorders (a, b) by 0.0 / 0.5 -> b first (rank 1); q1 reorders (d, e) -> e first (rank 1).
    top, ranker_scores = score_top(ranker, ["q0", "q1"], codes, SCORES, top_k=2)
    replaced = cascade_reciprocal_ranks(top, ranker_scores, SCORES, GROUPS, GOLD, "replace")
    np.testing.assert_allclose(replaced, [1.0, 1.0])
    # add: q0 0.9 + 0 vs 0.8 + 0.5 -> b first; q1 0.9 + 0 vs 0.8 + 0.05 -> d stays first, e rank 2.
    added = cascade_reciprocal_ranks(top, ranker_scores, SCORES, GROUPS, GOLD, "add")
    np.testing.assert_allclose(added, [1.0, 0.5])
    # top 1: the gold group is not in it for either query, so both keep the retriever's rank 2.
    kept = cascade_reciprocal_ranks(*score_top(ranker, ["q0", "q1"], codes, SCORES, top_k=1), SCORES, GROUPS, GOLD,
                                    "replace")
    np.testing.assert_allclose(kept, [0.5, 0.5])


def test_a_weighted_sum_is_cosine_plus_weight_times_the_ranker_and_zero_is_the_retriever():
    codes = ["a", "b", "c", "d", "e"]
    ranker = FixedRanker({("q0", "a"): 0.0, ("q0", "b"): 0.5, ("q1", "d"): 0.0, ("q1", "e"): 0.5})
    top, ranker_scores = score_top(ranker, ["q0", "q1"], codes, SCORES, top_k=2)
    # weight 0.1: q0 0.9 vs 0.8 + 0.05 -> a stays first (gold b at rank 2); q1 0.9 vs 0.8 + 0.05 -> d first (e 2).
    np.testing.assert_allclose(cascade_reciprocal_ranks(top, ranker_scores, SCORES, GROUPS, GOLD, 0.1), [0.5, 0.5])
    # weight 0.3: q0 0.9 vs 0.8 + 0.15 -> b first; q1 0.9 vs 0.8 + 0.15 -> e first.
    np.testing.assert_allclose(cascade_reciprocal_ranks(top, ranker_scores, SCORES, GROUPS, GOLD, 0.3), [1.0, 1.0])
    np.testing.assert_allclose(cascade_reciprocal_ranks(top, ranker_scores, SCORES, GROUPS, GOLD, 0.0),
                               reciprocal_ranks(SCORES, GROUPS, GOLD))
