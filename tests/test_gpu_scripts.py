"""The GPU scripts end to end on the CPU at toy size (--tiny): every stage runs, every output is
written where a device run brings it back (at most 8 files), and the README's first screen holds
the command, the device, the epochs and the wall time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env():
    return {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_gpu_experiment_tiny_end_to_end(cifar10_root, tmp_path):
    pack = tmp_path / "device-data"
    subprocess.run(
        [
            sys.executable,
            "benchmarks/make_device_data.py",
            str(pack),
            "--webp",
            "--data",
            str(cifar10_root),
            "--n-train",
            "300",
            "--n-test",
            "200",
        ],
        cwd=REPO,
        env=_env(),
        check=True,
    )
    manifest = json.loads((pack / "cifar10-webp" / "manifest.json").read_text())
    assert manifest["test"]["exact"] and manifest["train"]["psnr_db"] > 35
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_experiment.sh", str(out), "--tiny", "--data", str(pack)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=3000,
    )
    summary = (out / "summary.md").read_text()
    assert proc.returncode == 0, summary + proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["README.md", "experiment.json", "gpu.txt", "logs.tar.gz", "report.tar.gz", "summary.md"]
    for stage in ("setup", "data", "generate", "probe", "plan", "train", "evaluate", "report", "summarize"):
        assert f"| {stage} | 0 |" in summary, stage
    plan = json.loads((out / "experiment.json").read_text())
    assert 1 <= plan["epochs"] <= 2 and len(plan["probe"]) == 10
    readme = (out / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:12])
    assert "bash benchmarks/gpu_experiment.sh" in first_screen and "--tiny" in first_screen
    assert f"**epochs**: {plan['epochs']} per run" in first_screen and "**wall time**:" in first_screen
    assert "**device**: CPU" in first_screen
    methods = set(plan["methods"])
    rows = [ln for ln in readme.splitlines() if ln.startswith("| ") and "| 2 |" in ln]
    assert len(rows) == len(methods) + 1  # auxiliary[no_penalty] beside the methods
    assert "What it cannot show" in readme
    with tarfile.open(out / "report.tar.gz") as t:
        names = t.getnames()
    assert "gpu-cifar10/index.html" in names and "gpu-cifar10/README.md" in names
    with tarfile.open(out / "logs.tar.gz") as t:
        names = t.getnames()
    assert any(n.endswith("plain-test_tiny-s1/metrics.csv") for n in names)


@pytest.mark.slow
def test_gpu_check_tiny_end_to_end(cifar10_root, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", str(out), str(cifar10_root), "--tiny"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = (out / "summary.md").read_text()
    for stage in ("generate", "train", "evaluate", "steps", "packing"):
        assert f"| {stage} | 0 |" in summary, summary
    assert len(list(out.iterdir())) <= 8
    steps = json.loads((out / "steps.json").read_text())["images_per_s"]
    assert steps["auxiliary"]["optimised"] == "CUDA only"
    assert isinstance(steps["plain"]["eager"], float) and isinstance(steps["plain"]["fp32"], float)
    packing = json.loads((out / "packing.json").read_text())
    assert packing["factor"]["1"] == 1.0 and isinstance(packing["factor"]["2"], float)
    assert "| K | aggregate images/s | factor vs K=1 |" in summary and "optimised / eager" in summary
