"""Sweeps really run: local executor (parallel, failure isolation, re-run skips), submitit's local
executor, and the reproduction pipeline end to end on the CPU."""

from __future__ import annotations

import json
import os
import time

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
    rc = main(
        [
            "sweep",
            str(grid),
            "--executor",
            "submitit-local",
            "--methods",
            "plain",
            "--seeds",
            "3",
            "--slurm-folder",
            str(tmp_path / "slurm"),
        ]
    )
    assert rc == 0, capsys.readouterr()
    config = json.loads((tmp_path / "runs" / "plain-test_tiny-s3" / "config.json").read_text())
    assert config["seed"] == 3 and config["method"] == "plain"
    assert (tmp_path / "runs" / "plain-test_tiny-s3" / "final.pt").is_file()


PREEMPT_GRID = """
[defaults]
dataset = "synthetic10"
recipe = "smoke"
out = "{out}"
n_train = 4096
epochs = 8
device = "cpu"

[[runs]]
methods = ["plain"]
archs = ["test_tiny"]
seeds = [0]
"""


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def test_submitit_preemption_requeues_and_resumes_from_last_checkpoint(tmp_path):
    """Slurm's preemption signal, delivered mid-training to the submitit task (here under submitit's
    local executor, whose controller restarts a task that asks to be requeued), checkpoints and
    requeues the job; the requeued job resumes the run from last.pt instead of starting over."""
    pytest.importorskip("submitit")
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        pytest.skip("needs Linux /proc to find the submitit task process")
    from submitit.local.local import LocalJobEnvironment

    from robustbench_aux.sweep.slurm import make_executor, submit
    from robustbench_aux.sweep.slurm_options import SlurmOptions

    grid = tmp_path / "grid.toml"
    grid.write_text(PREEMPT_GRID.format(out=tmp_path / "runs"))
    (job,) = load_sweep(grid).jobs
    handle = submit([job], make_executor(tmp_path / "slurm", SlurmOptions(time_min=10), local=True))[0]
    last = job.run_dir / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert last.exists(), "training never wrote last.pt"
    assert not (job.run_dir / "final.pt").exists(), "the run finished before it could be preempted"
    (task,) = _children(handle._process.pid)  # the controller's one task: the ResumableJob
    os.kill(task, LocalJobEnvironment._usr_sig())
    assert handle.result() == job.name
    log = (job.run_dir / "sweep.log").read_text()
    commands = [line for line in log.splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and "--resume" not in commands[0] and commands[1].endswith("--resume")
    assert "resuming" in log
    with open(job.run_dir / "metrics.csv") as f:
        assert len(f.read().strip().splitlines()) == 1 + 8  # header + every epoch once
    assert (job.run_dir / "final.pt").exists()
