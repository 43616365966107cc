"""Packing: K runs at once (``--per-gpu K``; K processes on the CPU) write exactly what the same runs
write one after another; the MPS daemon is used when it works and otherwise reported and skipped."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess

import pytest
import torch

from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.local import run_local
from robustbench_aux.sweep.mps import start_mps

GRID = """
[defaults]
dataset = "cifar10"
data = "{data}"
recipe = "smoke"
out = "{out}"
corruptions = "{corruptions}"
n_train = 128
eval_n = 32
epochs = 2
device = "cpu"

[[runs]]
methods = ["auxiliary", "augmix"]
archs = ["test_tiny"]
seeds = [0]
"""
TIMING = ("images_per_s", "seconds")


@pytest.fixture(scope="module")
def corruptions(cifar10_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "CIFAR-10-C"
    assert (
        main(
            [
                "corrupt",
                "--dataset",
                "cifar10",
                "--data",
                str(cifar10_root),
                "--out",
                str(out),
                "--n",
                "32",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    return out


def _metrics(run):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _tensors(obj, prefix=""):
    """Every tensor in a checkpoint, flattened to {path: tensor}."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}/{i}"))
        return out
    return {}


def _eval(run):
    summary = json.loads((run / "eval" / "summary.json").read_text())
    numbers = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and "second" not in k}
    with open(run / "eval" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    return numbers, rows


@pytest.mark.slow
def test_packed_runs_write_exactly_what_sequential_runs_write(cifar10_root, corruptions, tmp_path, capsys):
    results = {}
    for label, flags in (("sequential", ["--workers", "1"]), ("packed", ["--per-gpu", "2"])):
        grid = tmp_path / f"{label}.toml"
        grid.write_text(GRID.format(data=cifar10_root, out=tmp_path / label, corruptions=corruptions))
        assert main(["sweep", str(grid), *flags]) == 0
        results[label] = tmp_path / label
    out = capsys.readouterr().out
    assert "packing: 2 concurrent runs on the CPU" in out
    for name in ("auxiliary-test_tiny-s0", "augmix-test_tiny-s0"):
        a, b = results["sequential"] / name, results["packed"] / name
        assert "# packed: concurrent CPU processes" in (b / "sweep.log").read_text()
        assert _metrics(a) == _metrics(b) and len(_metrics(a)) == 2
        for ckpt in ("final.pt", "last.pt"):
            ta = _tensors(torch.load(a / ckpt, map_location="cpu", weights_only=False))
            tb = _tensors(torch.load(b / ckpt, map_location="cpu", weights_only=False))
            assert ta.keys() == tb.keys() and len(ta) > 10
            assert all(torch.equal(ta[k], tb[k]) for k in ta), f"{name}/{ckpt} differs"
        num_a, rows_a = _eval(a)
        num_b, rows_b = _eval(b)
        assert num_a == num_b and "clean_acc" in num_a
        drop = ("seconds", "images_per_s", "run_dir", "run")
        assert [{k: v for k, v in r.items() if k not in drop} for r in rows_a] == [
            {k: v for k, v in r.items() if k not in drop} for r in rows_b
        ] and len(rows_a) >= 96


def _fake_control(tmp_path, *, daemon_rc=0):
    """A stand-in ``nvidia-cuda-mps-control`` that logs how it was called (and what it read)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    log = tmp_path / "control.log"
    script = bindir / "nvidia-cuda-mps-control"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-d" ]; then echo "daemon $CUDA_MPS_PIPE_DIRECTORY" >> {log}; exit {daemon_rc}; fi\n'
        f'read cmd; echo "cmd $cmd" >> {log}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bindir, log


def test_mps_is_used_when_a_client_gets_through(tmp_path, monkeypatch):
    bindir, log = _fake_control(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    mps, why = start_mps(probe="import os; assert os.environ['CUDA_MPS_PIPE_DIRECTORY']")
    assert mps is not None and why == ""
    pipe = mps.env["CUDA_MPS_PIPE_DIRECTORY"]
    assert f"daemon {pipe}" in log.read_text()
    mps.stop()
    assert "cmd quit" in log.read_text() and not mps.folder.exists()


def test_mps_falls_back_to_plain_processes_and_stops_the_daemon(tmp_path, monkeypatch):
    bindir, log = _fake_control(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    mps, why = start_mps(probe="raise SystemExit('no GPU here')")
    assert mps is None and "a CUDA client failed through it: no GPU here" in why
    assert "cmd quit" in log.read_text()  # nothing left running
    (tmp_path / "other").mkdir()
    bindir2, _ = _fake_control(tmp_path / "other", daemon_rc=3)
    monkeypatch.setenv("PATH", f"{bindir2}{os.pathsep}{os.environ['PATH']}")
    mps, why = start_mps()
    assert mps is None and "exited 3" in why
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert start_mps() == (None, "nvidia-cuda-mps-control not found")


def test_packed_gpu_slots_report_how_they_share_the_gpu(tmp_path, monkeypatch):
    """On a GPU-less machine the GPU path still runs (device cpu): 2 slots on 'GPU 0', MPS tried and
    reported unavailable, every job told its slot."""
    bindir, log = _fake_control(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[defaults]\ndataset = "synthetic10"\nrecipe = "smoke"\nout = "%s"\nn_train = 64\n'
        'epochs = 1\ndevice = "cpu"\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\n'
        "seeds = [0, 1]\n" % (tmp_path / "runs")
    )
    lines = []
    outcomes = run_local(load_sweep(grid).jobs, gpus=[0], per_gpu=2, echo=lines.append)
    assert [o.state for o in outcomes] == ["done", "done"]
    text = "\n".join(lines)
    assert "packing: 2 runs per GPU on GPU(s) 0 via plain concurrent processes (no MPS:" in text
    assert text.count("on GPU 0") == 2
    assert "cmd quit" in log.read_text()
    assert (
        "# packed: plain concurrent processes" in (tmp_path / "runs/plain-test_tiny-s1/sweep.log").read_text()
    )
    with pytest.raises(UserError, match="--per-gpu"):
        run_local(load_sweep(grid).jobs, per_gpu=0)


def test_make_passes_packing_to_reproduce(tmp_path):
    out = subprocess.run(
        ["make", "-n", "reproduce-cifar100", "PER_GPU=4", "GPUS=0,1", "STAMP=/dev/null"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert "--per-gpu 4 --gpus 0,1" in out.stdout, out.stderr
