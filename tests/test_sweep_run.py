"""Sweeps really run: local executor (parallel, failure isolation, re-run skips), submitit's local
executor, and the reproduction pipeline end to end on the CPU."""

from __future__ import annotations

import json

import pytest

from robustbench_aux.cli import main
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.job import job_state
from robustbench_aux.sweep.local import run_local

GRID = """
[defaults]
dataset = "synthetic10"
recipe = "smoke"
out = "{out}"
n_train = 128
epochs = 1
device = "cpu"

[[runs]]
methods = ["plain", "no_such_method"]
archs = ["test_tiny"]
seeds = [0, 1]
"""


def test_local_sweep_isolates_failures_and_skips_finished(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(out=tmp_path / "runs"))
    assert main(["sweep", str(grid), "--workers", "2", "--device", "cpu"]) == 1
    out = capsys.readouterr()
    assert "summary: 2 done, 2 failed" in out.out
    assert "no_such_method-test_tiny-s0" in out.err and "unknown method" in out.err
    for seed in (0, 1):
        assert (tmp_path / "runs" / f"plain-test_tiny-s{seed}" / "final.pt").is_file()
    # the printed commands can be pasted
    assert "robustbench-aux train --method plain --arch test_tiny --seed 0" in out.out
    # a second run redoes only what is not done: the plain runs are skipped
    sweep = load_sweep(grid, methods=["plain"])
    assert [job_state(j) for j in sweep.jobs] == ["done", "done"]
    mtime = (tmp_path / "runs" / "plain-test_tiny-s0" / "final.pt").stat().st_mtime
    outcomes = run_local(sweep.jobs, echo=lambda s: None)
    assert [o.state for o in outcomes] == ["skipped", "skipped"]
    assert (tmp_path / "runs" / "plain-test_tiny-s0" / "final.pt").stat().st_mtime == mtime


def test_submitit_local_executor(tmp_path, capsys):
    pytest.importorskip("submitit")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(out=tmp_path / "runs"))
    rc = main(["sweep", str(grid), "--executor", "submitit-local", "--methods", "plain", "--seeds", "3",
               "--slurm-folder", str(tmp_path / "slurm")])
    assert rc == 0, capsys.readouterr()
    config = json.loads((tmp_path / "runs" / "plain-test_tiny-s3" / "config.json").read_text())
    assert config["seed"] == 3 and config["method"] == "plain"
    assert (tmp_path / "runs" / "plain-test_tiny-s3" / "final.pt").is_file()
