"""Paired bootstrap intervals: the exact resampling, shared resamples across rows, and the words they allow."""

from __future__ import annotations

import numpy as np
import pytest

from hf_softnce.evaluation.bootstrap import Difference, PairedBootstrap
from hf_softnce.training.comparison import BASE_ROW, compare_rows, rank_metrics


def test_difference_is_the_percentile_interval_of_resampled_mean_differences():
    rng = np.random.default_rng(5)
    a, b = rng.random(50), rng.random(50)
    ids = [f"q{i}" for i in range(50)]
    boot = PairedBootstrap(ids, n_resamples=300, seed=11)
    got = boot.difference(dict(zip(ids, a)), dict(zip(ids, b)), given="reciprocal_ranks")
    # Direct re-computation: the same generator draws a 300 x 50 index matrix; percentiles of the mean deltas.
    indices = np.random.default_rng(11).integers(0, 50, size=(300, 50))
    means = (a - b)[indices].mean(axis=1)
    assert got.value == pytest.approx(float((a - b).mean()), abs=1e-15)
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-15)


def test_values_are_paired_by_query_id_not_by_position():
    ids = ["a", "b", "c"]
    boot = PairedBootstrap(ids, n_resamples=50)
    same = boot.difference({"a": 1, "b": 2, "c": 0}, {"c": 0, "b": 2, "a": 1})
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(KeyError, match="1 of 3 queries have no value"):
        boot.difference({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 0})


@pytest.mark.parametrize(
    ("difference", "words"),
    [
        (Difference(0.021, 0.012, 0.030, metric="MRR@1000"), "better by 0.021 ± 0.009 MRR@1000 (95% CI [+0.012, +0.030])"),
        (Difference(-0.02, -0.03, -0.01), "worse by 0.020 ± 0.010 MRR (95% CI [-0.030, -0.010])"),
        (Difference(0.004, -0.003, 0.011), "no measurable difference in MRR (+0.004, 95% CI [-0.003, +0.011])"),
    ],
)
def test_describe_claims_only_what_the_interval_supports(difference, words):
    assert difference.describe() == words
    assert difference.supported == (not words.startswith("no measurable"))


def test_compare_rows_keeps_selection_and_report_sets_apart_and_averages_seeds_per_query():
    base = {"cosqa-heldout": {"1": 1, "2": 2}, "cosqa-dev": {"1": 1, "2": 2, "3": 0, "4": 4}}
    seed1 = {"cosqa-heldout": {"1": 1, "2": 1}, "cosqa-dev": {"1": 1, "2": 1, "3": 2, "4": 4}}
    seed2 = {"cosqa-heldout": {"1": 2, "2": 1}, "cosqa-dev": {"1": 2, "2": 1, "3": 0, "4": 1}}
    table = compare_rows({BASE_ROW: [base], "InfoNCE": [seed1, seed2]}, n_resamples=100)
    dev = table["cosqa-dev"]
    # Reciprocal ranks averaged over the two seeds, query by query, then the mean difference with the base.
    tuned = [(1 + 0.5) / 2, (1 + 1) / 2, (0.5 + 0) / 2, (0.25 + 1) / 2]
    base_rr = [1, 0.5, 0, 0.25]
    assert dev["InfoNCE"]["vs_base"].value == pytest.approx(np.mean(np.subtract(tuned, base_rr)))
    assert dev[BASE_ROW]["metrics"] == rank_metrics([{"a": 1, "b": 2, "c": 0, "d": 4}])
    assert dev[BASE_ROW]["metrics"]["recall@1"] == 0.25 and dev[BASE_ROW]["metrics"]["mrr@1000"] == pytest.approx(1.75 / 4)
    assert table["cosqa-heldout"]["InfoNCE"]["queries"] == 2 and dev["InfoNCE"]["queries"] == 4
    assert list(table) == ["cosqa-heldout", "cosqa-dev"]


def test_rows_are_paired_with_infonce_and_chosen_at_the_first_seed_by_seed_number():
    """A folder reported after runs of seeds 43, then 42 and 43 stopped mid-way: the row read back with seed 43 alone
    is paired with InfoNCE's seed-43 run (not its first, seed 42), is left out of the first seed's choices, and a row
    with a seed InfoNCE lacks gets no InfoNCE interval."""
    from hf_softnce.training.comparison import first_seed_mrr

    base = {"cosqa-heldout": {"1": 4, "2": 4, "3": 4}}
    infonce_42 = {"cosqa-heldout": {"1": 1, "2": 2, "3": 4}}
    infonce_43 = {"cosqa-heldout": {"1": 2, "2": 1, "3": 1}}
    row_43 = {"cosqa-heldout": {"1": 1, "2": 1, "3": 1}}
    per_query = {BASE_ROW: [base], "InfoNCE": [infonce_42, infonce_43], "row": [row_43], "other": [row_43]}
    seeds = {"InfoNCE": [42, 43], "row": [43], "other": [44]}
    heldout = compare_rows(per_query, seeds=seeds, n_resamples=100)["cosqa-heldout"]
    assert heldout["row"]["vs_infonce"].value == pytest.approx(np.mean([1 - 0.5, 1 - 1, 1 - 1]))  # seed 43's
    assert "vs_infonce" not in heldout["other"]
    by_position = compare_rows(per_query, n_resamples=100)["cosqa-heldout"]
    assert by_position["row"]["vs_infonce"].value == pytest.approx(np.mean([1 - 1, 1 - 0.5, 1 - 0.25]))  # seed 42's
    assert first_seed_mrr(per_query, "cosqa-heldout", ["InfoNCE", "row"], seeds=seeds, first=42) == {
        "InfoNCE": pytest.approx((1 + 0.5 + 0.25) / 3)}
    assert first_seed_mrr(per_query, "cosqa-heldout", ["InfoNCE", "row"], seeds=seeds, first=43) == {
        "InfoNCE": pytest.approx((0.5 + 1 + 1) / 3), "row": 1.0}


def close_models() -> tuple[dict[str, int], dict[str, int]]:
    """Per-query ranks of two models with MRR@1000 0.4659 and 0.4660, 500 queries.

    B: 200 queries at rank 1, 40 at 2, 30 at 3, 12 at 4, 218 not found -> 233 / 500 = 0.4660.
    A: the same, except two rank-4 queries fall to rank 5 (-0.1) and A finds 40 of B's misses at rank 800
    (+0.05) -> 232.95 / 500 = 0.4659. A's mean rank is 64 higher: averaging ranks calls that a difference.
    """
    b = [1] * 200 + [2] * 40 + [3] * 30 + [4] * 12 + [0] * 218
    a = [1] * 200 + [2] * 40 + [3] * 30 + [4] * 10 + [5] * 2 + [800] * 40 + [0] * 178
    ids = [f"q{i:03d}" for i in range(500)]
    return dict(zip(ids, a)), dict(zip(ids, b))


def direct_interval(values_a, values_b, seed, n_resamples, n):
    indices = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    return tuple(np.percentile((np.asarray(values_a) - np.asarray(values_b))[indices].mean(axis=1), [2.5, 97.5]))


def test_close_mrr_from_ranks_is_no_measurable_difference():
    """It said "better by 0.082 ± 0.062 MRR": the old call averaged the ranks it was given and named that MRR."""
    a, b = close_models()
    rr = {name: [1.0 / r if r else 0.0 for r in ranks.values()] for name, ranks in (("a", a), ("b", b))}
    assert (round(np.mean(rr["a"]), 4), round(np.mean(rr["b"]), 4)) == (0.4659, 0.4660)
    boot = PairedBootstrap(a, n_resamples=2000, seed=0)
    got = boot.difference(a, b, metric="mrr@1000")
    assert got.value == pytest.approx(-0.0001, abs=1e-12)
    assert (got.low, got.high) == pytest.approx(direct_interval(rr["a"], rr["b"], 0, 2000, 500), abs=1e-15)
    assert not got.supported and got.metric == "MRR@1000"
    assert got.describe() == f"no measurable difference in MRR@1000 (-0.000, 95% CI [{got.low:+.3f}, {got.high:+.3f}])"
    # What averaging the ranks would have claimed: a difference of mean ranks whose interval excludes 0.
    low, high = direct_interval(list(a.values()), list(b.values()), 0, 2000, 500)
    assert low > 0


def test_mrr_counts_ranks_beyond_the_cut_off_and_missing_ranks_as_zero():
    a, b = close_models()
    deep = {q: (1001 if r == 800 else r) for q, r in a.items()}  # beyond MRR@1000's cut-off: counts 0
    none = {q: (None if r == 800 else r) for q, r in a.items()}
    boot = PairedBootstrap(a, n_resamples=100, seed=3)
    assert boot.difference(deep, b).value == pytest.approx(-0.1 / 500, abs=1e-12)
    assert boot.difference(none, b) == boot.difference(deep, b)
    # At a cut-off of 10 rank 800 is a miss as well; success@5 counts hits in the top 5.
    assert boot.difference(a, b, metric="mrr@10") == boot.difference(deep, b, metric="mrr@10")
    assert boot.difference(a, b, metric="success@4").value == pytest.approx(-2 / 500, abs=1e-12)
    assert boot.difference(a, b, metric="success@1000").value == pytest.approx(40 / 500, abs=1e-12)


def test_reciprocal_ranks_only_by_an_explicit_argument():
    ranks = {"a": 1, "b": 2, "c": 0}
    rr = {"a": 1.0, "b": 0.5, "c": 0.0}
    boot = PairedBootstrap(ranks, n_resamples=50)
    assert boot.difference(rr, {"a": 0.0, "b": 0.0, "c": 0.0}, given="reciprocal_ranks").value == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"^PairedBootstrap: query 'b' has rank 0.5; ranks are 1-based ints \(0 or "
                                         r"None: not found\)\. For per-query reciprocal ranks pass given='reciprocal_ranks'\.$"):
        boot.difference(rr, ranks)
    with pytest.raises(ValueError, match=r"^PairedBootstrap: query 'b' has reciprocal rank 2, outside \[0, 1\]; "
                                         r"for ranks pass given='ranks'\.$"):
        boot.difference(ranks, rr, given="reciprocal_ranks")
    with pytest.raises(ValueError, match=r"^given='reciprocal_ranks' compares an MRR, not 'success@1'\.$"):
        boot.difference(rr, rr, metric="success@1", given="reciprocal_ranks")
    with pytest.raises(ValueError, match=r"^metric must be 'mrr@K' or 'success@K' \(e\.g\. 'mrr@1000'\), got 'ndcg@10'\.$"):
        boot.difference(ranks, ranks, metric="ndcg@10")
