"""benchmarks/against_row.py: every row minus a reference row, paired over the seeds both ran."""

import json

import pytest

from benchmarks.against_row import pair_against
from hf_softnce.training.comparison import BASE_ROW


def ranks(values: list[int]) -> dict:
    return {"cosqa-heldout": {f"q{i}": r for i, r in enumerate(values)},
            "cosqa-dev": {f"d{i}": r for i, r in enumerate(reversed(values))}}


def test_rows_are_paired_over_common_seeds_and_the_file_names_no_machine_path(tmp_path):
    # "A" ran seeds 42 and 43, the reference 42 only: A is compared at seed 42 alone.
    a42, a43, ref42 = [1, 2, 4, 1], [1, 1, 1, 1], [2, 2, 1, 1001]
    payload = {"per_query_ranks": {BASE_ROW: [ranks([3, 3, 3, 3])], "InfoNCE": [ranks(ref42)],
                                   "A": [ranks(a42), ranks(a43)]},
               "seeds_by_row": {"InfoNCE": [42], "A": [42, 43]}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(payload))
    pair_against(path.resolve(), "InfoNCE")
    written = json.loads((tmp_path / "results_vs_infonce.json").read_text())
    assert written["against_from"] == "results.json"  # not tmp_path's absolute folder
    expected = (1 + 1 / 2 + 1 / 4 + 1) / 4 - (1 / 2 + 1 / 2 + 1 + 0) / 4  # rank 1001 is beyond MRR@1000
    for name in ("cosqa-heldout", "cosqa-dev"):
        assert written["rows"]["A"][name]["difference"][0] == pytest.approx(expected, abs=1e-12)
        assert written["rows"]["A"][name]["mrr@1000"] == pytest.approx((1 + 1 / 2 + 1 / 4 + 1) / 4, abs=1e-12)
    assert set(written["rows"]) == {"A"}
