"""Two real processes (gloo, accelerate launch) with gather_across_devices=True == one process on the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "distributed" / "gather_equivalence.py"


def launch_two_processes(loss: str, weighter: str, out: Path, *sizes: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        str(SCRIPT), loss, weighter, str(out), *sizes,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize(
    "loss, weighter",
    [("soft", "none"), ("soft", "bm25"), ("soft", "labels"), ("cached_soft", "bm25"), ("order", "labels"), ("order", "bm25")],
)
def test_two_process_gather_equals_single_process(tmp_path, loss, weighter):
    result = launch_two_processes(loss, weighter, tmp_path / "result.json")
    assert result["world_size"] == 2 and result["same_parameters"]
    assert result["loss_distributed"] == pytest.approx(result["loss_single"], abs=1e-6)
    assert result["max_relative_grad_diff"] < 1e-5


@pytest.mark.parametrize("loss, weighter", [("soft", "bm25"), ("order", "labels")])
def test_uneven_local_batches_gather_padded_and_equal_one_process(tmp_path, loss, weighter):
    """5 rows on rank 0 and 3 on rank 1 (a last batch without dataloader_drop_last): the gather pads to 5 and masks
    the padding, and each rank's loss is weighted by its share of the rows, so DDP's average is the 8-row loss."""
    result = launch_two_processes(loss, weighter, tmp_path / "result.json", "5,3")
    assert result["world_size"] == 2 and result["same_parameters"]
    assert result["loss_distributed"] == pytest.approx(result["loss_single"], abs=1e-6)
    assert result["max_relative_grad_diff"] < 1e-5
