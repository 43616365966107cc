"""The shipped CPU experiment (``baselines/grids/cpu_cifar10.toml``, ``make reproduce-cpu-cifar10``):
what it trains, and the same grid run end to end at toy size through ``reproduce``, interrupted
and continued with the same command."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robustbench_aux.cli import main
from robustbench_aux.commands.train import resolve_config
from robustbench_aux.config import protocol_deviations, resolved_switches
from robustbench_aux.infra.shipped import GRIDS, resolve_grid
from robustbench_aux.methods import METHODS
from robustbench_aux.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "baselines/grids/cpu_cifar10.toml"


def _flag(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def test_the_grid_is_shipped_and_trains_full_data_runs_of_three_methods_with_three_seeds():
    assert resolve_grid("cpu_cifar10") == GRIDS / "cpu_cifar10.toml"
    assert GRID.resolve() == GRIDS / "cpu_cifar10.toml"  # baselines/grids links into the package
    sweep = load_sweep(GRID, overrides={"corruptions": "C"})  # reproduce passes the CIFAR-C directory
    d = sweep.defaults
    assert d["dataset"] == "cifar10" and d["recipe"] == "reference" and d["device"] == "cpu"
    assert "n_train" not in d  # all 50,000 images
    assert d["set"] == {"amp": "bf16", "channels_last": "on"}  # the precision decision (grid comment)
    assert d["c_bar"] is True and d["eval_precision"] == "bf16"
    assert d["epochs"] == 8 and d["threads"] == 1  # the first experiment's schedule; the budget
    runs: dict[str, set[int]] = {}
    for job in sweep.jobs:
        train = job.steps[0].argv
        assert "--n-train" not in train
        assert _flag(train, "--threads") == "1" and _flag(job.steps[1].argv, "--threads") == "1"
        variant = "[no_penalty]" if "variant=no_penalty" in train else ""
        runs.setdefault(_flag(train, "--method") + variant, set()).add(int(_flag(train, "--seed")))
        assert _flag(train, "--arch") == "resnet8"
        evaluate = job.steps[1].argv
        assert evaluate[0] == "evaluate" and "--n" not in evaluate  # every test image
        assert _flag(evaluate, "--precision") == "bf16"
    assert set(runs) == {"plain", "auxiliary", "auxiliary[no_penalty]"}
    assert all(seeds >= {0, 1, 2} for seeds in runs.values())
    # the longest jobs first: two workers start the auxiliary runs together
    assert [_flag(j.steps[0].argv, "--method") for j in sweep.jobs[:2]] == ["auxiliary", "auxiliary"]


def test_only_the_epochs_and_the_precision_differ_from_the_reference_recipe():
    defaults = load_sweep(GRID).defaults
    epochs = defaults["epochs"]
    sets = [f"{k}={v}" for k, v in defaults["set"].items()]
    for method in ("plain", "auxiliary"):
        ref = resolve_config(
            methods=METHODS, method=method, arch="resnet8", dataset="cifar10", seed=0, recipe="reference"
        )
        cfg = resolve_config(
            methods=METHODS,
            method=method,
            arch="resnet8",
            dataset="cifar10",
            seed=0,
            recipe="reference",
            epochs=epochs,
            overrides=sets,
        )
        assert cfg.train.epochs == epochs
        assert protocol_deviations(cfg.reference, resolved_switches(cfg, "cpu")) == [
            {"switch": "train.amp", "value": "bf16", "reference": "off"}
        ]
        a, b = cfg.to_dict(), ref.to_dict()
        for key in ("epochs", "milestones", "amp", "channels_last"):
            a["train"].pop(key), b["train"].pop(key)
        a["options"].pop("penalty_start_epoch", None), b["options"].pop("penalty_start_epoch", None)
        assert a.pop("schedule_scaling")["to_epochs"] == epochs and b.pop("schedule_scaling") is None
        assert a == b
        # the schedule is scaled: three lr decays inside the run, the last before its final epoch
        assert len(cfg.train.milestones) == 3 and 0 < min(cfg.train.milestones)
        assert max(cfg.train.milestones) < epochs


def _rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _toy_argv(tmp_path: Path, data: Path) -> list[str]:
    """The command ``make reproduce-cpu-cifar10`` runs, at toy size."""
    return [
        "reproduce",
        "--grid",
        "cpu_cifar10",
        "--report",
        str(tmp_path / "report"),
        "--dataset",
        "cifar10",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        "--workers",
        "1",
        "--n-train",
        "384",
        "--epochs",
        "2",
        "--eval-n",
        "40",
        "--generate-n",
        "40",
        "--no-download",
    ]


@pytest.mark.slow
def test_the_grid_at_toy_size_is_interrupted_and_finished_by_the_same_command(cifar10_root, tmp_path, capsys):
    """Kill ``reproduce`` in the middle of the first run's training, run the same command again:
    the interrupted run resumes from last.pt (every epoch once), the others train, every run is
    evaluated on the 19 corruptions, the report is written; a third call trains nothing."""
    argv = _toy_argv(tmp_path, cifar10_root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = tmp_path / "runs" / "auxiliary-resnet8-s0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustbench_aux", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches the training subprocess
    )
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if (first / "metrics.csv").is_file() and len(_rows(first)) >= 1:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "reproduce ended before it could be interrupted"
    assert (first / "last.pt").is_file() and not (first / "final.pt").exists()

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"--out {first} " in out and "--resume" in out.split(f"--out {first} ")[1].splitlines()[0]
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if (p / "config.json").is_file())
    assert [p.name for p in runs] == sorted(
        f"{m}-resnet8-s{s}" for m in ("auxiliary", "plain") for s in (0, 1)
    )
    for run in runs:
        assert [r["epoch"] for r in _rows(run)] == ["1", "2"]
        config = json.loads((run / "config.json").read_text())
        assert config["threads"] == 1 and config["deviations"] == [] and config["recipe"] == "reference"
        summary = json.loads((run / "eval" / "summary.json").read_text())
        assert summary["n_corruptions_19"] == 19 and summary["n_clean"] == 40
    assert (tmp_path / "report" / "index.html").is_file()

    assert main(argv) == 0
    assert "robustbench-aux train" not in capsys.readouterr().out
