"""benchmarks/cascade_full.py's --combine: each row's seeds side by side, the base once, and the paired
difference against the default row taken over the per-query average of the seeds; ``ranker_model=retriever``."""

from __future__ import annotations

import json

import pytest

from benchmarks.cascade_full import CASCADE, combine
from hf_softnce.training.comparison import BASE_ROW
from hf_softnce.training.plan import DEFAULT_ROW, run_slug


def ranks(heldout, dev):
    return {"cosqa-heldout": {f"h{i}": r for i, r in enumerate(heldout)},
            "cosqa-dev": {f"d{i}": r for i, r in enumerate(dev)}}


def run(seed, default, cascade):
    return {"rows": ["InfoNCE", DEFAULT_ROW], "seed": seed, "cascade_choice": {"top_k": 5, "combine": "add"},
            "latency_ms_per_query": {}, "per_query_ranks": {BASE_ROW: [ranks([4, 4, 4], [4, 4])],
                                                            "InfoNCE": [ranks([2, 2, 2], [2, 2])],
                                                            DEFAULT_ROW: [default], CASCADE: [cascade]}}


def test_combine_keeps_every_seed_and_pairs_the_seed_average(tmp_path):
    paths = []
    for seed, default, cascade in [(42, ranks([1, 2, 4], [1, 1]), ranks([1, 1, 4], [2, 1])),
                                   (43, ranks([2, 2, 1], [1, 2]), ranks([2, 1, 1], [1, 1]))]:
        paths.append(tmp_path / f"{seed}.json")
        paths[-1].write_text(json.dumps(run(seed, default, cascade)))
    output = tmp_path / "both" / "results.json"
    combine(paths, output)

    merged = json.loads(output.read_text())
    assert merged["seeds"] == [42, 43]
    assert [len(merged["per_query_ranks"][row]) for row in (BASE_ROW, "InfoNCE", DEFAULT_ROW, CASCADE)] == [1, 2, 2, 2]
    table = json.loads((tmp_path / "both" / f"results_vs_{run_slug(DEFAULT_ROW)}.json").read_text())["rows"]
    # Per query, the seeds' mean reciprocal rank: heldout default (1+1/2)/2, (1/2+1/2)/2, (1/4+1)/2;
    # cascade (1+1/2)/2, (1+1)/2, (1/4+1)/2 -> the mean difference is (0 + 1/2 + 0)/3.
    assert table[CASCADE]["cosqa-heldout"]["difference"][0] == pytest.approx(1 / 6)
    # dev: default (1+1)/2, (1+1/2)/2; cascade (1/2+1)/2, (1+1)/2 -> (-1/4 + 1/4)/2 = 0.
    assert table[CASCADE]["cosqa-dev"]["difference"][0] == pytest.approx(0.0)
    assert table[CASCADE]["cosqa-heldout"]["mrr@1000"] == pytest.approx((0.75 + 1 + 0.625) / 3)


def test_combine_refuses_a_seed_given_twice(tmp_path):
    path = tmp_path / "42.json"
    path.write_text(json.dumps(run(42, ranks([1], [1]), ranks([1], [1]))))
    with pytest.raises(SystemExit, match=r"seeds \[42, 42\] repeat"):
        combine([path, path], tmp_path / "out.json")


def test_ranker_from_the_retriever_trains_from_that_seeds_folder_and_saves_the_word():
    from pathlib import Path

    from benchmarks.cascade_full import plan_settings

    asked = {"ranker_model": "retriever", "ranker_negatives": 7}
    folder = Path("runs/cfr/rows/infonce/seed-43/final")
    assert plan_settings(asked, folder) == {"ranker_model": str(folder), "ranker_negatives": 7}
    assert asked["ranker_model"] == "retriever"  # what the run folder records and a resumed run is checked against
    assert plan_settings({"ranker_model": "some/ranker"}, folder) == {"ranker_model": "some/ranker"}


def test_combine_pairs_with_the_runs_own_retriever_and_refuses_mixed_settings(tmp_path):
    from benchmarks.cascade_full import cascade_name

    over_infonce = cascade_name("InfoNCE")
    paths = []
    for seed, negatives in ((42, 7), (43, 7), (44, 3)):
        result = run(seed, ranks([1, 1], [1]), ranks([1, 1], [1]))
        result["per_query_ranks"] = {BASE_ROW: [ranks([4, 4], [4])], "InfoNCE": [ranks([2, 1], [1])],
                                     DEFAULT_ROW: [ranks([1, 1], [1])], over_infonce: [ranks([1, 1], [2])]}
        result.update(retriever="InfoNCE", ranker_settings={"ranker_negatives": negatives})
        paths.append(tmp_path / f"{seed}.json")
        paths[-1].write_text(json.dumps(result))
    with pytest.raises(SystemExit, match="differ in retriever or ranker settings"):
        combine(paths, tmp_path / "mixed.json")
    output = tmp_path / "both" / "results.json"
    combine(paths[:2], output)
    assert json.loads(output.read_text())["ranker_settings"] == {"ranker_negatives": 7}
    table = json.loads((tmp_path / "both" / "results_vs_infonce.json").read_text())["rows"]
    # against InfoNCE, not the default row: heldout (1 - 1/2 + 0)/2, dev (1/2 - 1)
    assert table[over_infonce]["cosqa-heldout"]["difference"][0] == pytest.approx(0.25)
    assert table[over_infonce]["cosqa-dev"]["difference"][0] == pytest.approx(-0.5)
