"""DDP on the CPU: torchrun with 2 gloo processes vs 1 process, same global batch and seed.

Both see the same global batches and the same augmented views (every rank draws them from the same
generator and keeps its half), so the only difference is that BN normalizes each rank's half of
the batch with that half's statistics. Stated tolerance: per-epoch loss within 2 % (relative) and
clean train accuracy within 0.05 of the single-process run.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robustbench_aux import cli

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    "train",
    "--method",
    "plain",
    "--recipe",
    "smoke",
    "--arch",
    "test_tiny",
    "--dataset",
    "synthetic10",
    "--n-train",
    "512",
    "--epochs",
    "2",
    "--set",
    "batch_size=64",
    "--seed",
    "0",
    "--device",
    "cpu",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(out: Path) -> list[dict]:
    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_two_gloo_processes_match_one_process(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    two = tmp_path / "ddp2"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={_free_port()}",
        "-m",
        "robustbench_aux",
        *ARGS,
        "--out",
        str(two),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained plain") == 1  # only rank 0 reports (and writes)

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = tmp_path / "ddp1"
        assert cli.main([*ARGS, "--out", str(one)]) == 0
    finally:
        torch.set_num_threads(previous)

    assert json.loads((two / "config.json").read_text())["world_size"] == 2
    files = sorted(p.name for p in two.iterdir() if p.name != ".lock")  # .lock: the writer lock (rank 0)
    assert files == ["config.json", "final.pt", "last.pt", "metrics.csv"]
    rows1, rows2 = _rows(one), _rows(two)
    assert len(rows1) == len(rows2) == 2
    for r1, r2 in zip(rows1, rows2):
        assert r1["lr"] == r2["lr"]
        assert float(r2["loss"]) == pytest.approx(float(r1["loss"]), rel=0.02)
        assert abs(float(r2["train_acc"]) - float(r1["train_acc"])) <= 0.05
