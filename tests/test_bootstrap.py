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
    got = boot.difference(dict(zip(ids, a)), dict(zip(ids, b)))
    # Direct re-computation: the same generator draws a 300 x 50 index matrix; percentiles of the mean deltas.
    indices = np.random.default_rng(11).integers(0, 50, size=(300, 50))
    means = (a - b)[indices].mean(axis=1)
    assert got.value == pytest.approx(float((a - b).mean()), abs=1e-15)
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-15)


def test_values_are_paired_by_query_id_not_by_position():
    ids = ["a", "b", "c"]
    boot = PairedBootstrap(ids, n_resamples=50)
    same = boot.difference({"a": 1.0, "b": 0.5, "c": 0.0}, {"c": 0.0, "b": 0.5, "a": 1.0})
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    with pytest.raises(KeyError, match="1 of 3 queries have no value"):
        boot.difference({"a": 1.0, "b": 0.5}, {"a": 1.0, "b": 0.5, "c": 0.0})


@pytest.mark.parametrize(
    ("difference", "words"),
    [
        (Difference(0.021, 0.012, 0.030), "better by 0.021 ± 0.009 MRR"),
        (Difference(-0.02, -0.03, -0.01), "worse by 0.020 ± 0.010 MRR"),
        (Difference(0.004, -0.003, 0.011), "no measurable difference (+0.004"),
    ],
)
def test_describe_claims_only_what_the_interval_supports(difference, words):
    assert difference.describe().startswith(words)
    assert difference.supported == (not words.startswith("no measurable"))


def test_compare_rows_uses_both_halves_and_averages_seeds_per_query():
    base = {"cosqa-select": {"1": 1, "2": 2}, "cosqa-report": {"3": 0, "4": 4}}
    seed1 = {"cosqa-select": {"1": 1, "2": 1}, "cosqa-report": {"3": 2, "4": 4}}
    seed2 = {"cosqa-select": {"1": 2, "2": 1}, "cosqa-report": {"3": 0, "4": 1}}
    table = compare_rows({BASE_ROW: [base], "InfoNCE": [seed1, seed2]}, n_resamples=100)
    dev = table["cosqa-dev"]
    # Reciprocal ranks averaged over the two seeds, query by query, then the mean difference with the base.
    tuned = [(1 + 0.5) / 2, (1 + 1) / 2, (0.5 + 0) / 2, (0.25 + 1) / 2]
    base_rr = [1, 0.5, 0, 0.25]
    assert dev["InfoNCE"]["vs_base"].value == pytest.approx(np.mean(np.subtract(tuned, base_rr)))
    assert dev[BASE_ROW]["metrics"] == rank_metrics([{"a": 1, "b": 2, "c": 0, "d": 4}])
    assert dev[BASE_ROW]["metrics"]["recall@1"] == 0.25 and dev[BASE_ROW]["metrics"]["mrr@1000"] == pytest.approx(1.75 / 4)
    assert table["cosqa-report"]["InfoNCE"]["queries"] == 2
