"""The reproduction pipeline end to end on the CPU (CIFAR-10 copy), and its missing-data error."""

from __future__ import annotations

import json
from pathlib import Path

from robustbench_aux.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_missing_dataset_stops_at_once_with_the_fix(tmp_path, capsys):
    rc = main(["reproduce", "--grid", str(REPO / "baselines/grids/demo.toml"), "--report", str(tmp_path / "r"),
               "--dataset", "cifar100", "--data", str(tmp_path / "empty"), "--no-download",
               "--hint", "offline? make demo DATASET=cifar10 DATA=<dir>"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: cifar100 not found") and err.rstrip().endswith("make demo DATASET=cifar10 DATA=<dir>")
    assert not (tmp_path / "r").exists()


def test_reproduce_end_to_end_on_cifar10(cifar10_root, tmp_path, capsys):
    rc = main(["reproduce", "--grid", str(REPO / "baselines/grids/cifar100.toml"),
               "--report", str(tmp_path / "report"), "--dataset", "cifar10", "--data", str(cifar10_root),
               "--out", str(tmp_path / "runs"), "--archs", "test_tiny", "--seeds", "0",
               "--methods", "plain,auxiliary", "--epochs", "1", "--n-train", "256", "--eval-n", "100",
               "--generate-n", "100", "--device", "cpu", "--no-download"])
    out = capsys.readouterr().out
    assert rc == 0, out
    # every stage's command is printed
    assert "robustbench-aux corrupt --dataset cifar10" in out
    assert "robustbench-aux train --method auxiliary --arch test_tiny --seed 0" in out
    assert "robustbench-aux report" in out
    index = tmp_path / "report" / "index.html"
    assert index.is_file() and "auxiliary" in index.read_text()
    summary = json.loads((tmp_path / "runs" / "auxiliary-test_tiny-s0" / "eval" / "summary.json").read_text())
    assert summary["n_corruptions_19"] == 19 and 0 <= summary["clean_acc"] <= 1
    # nothing is redone on a second call
    assert main(["reproduce", "--grid", str(REPO / "baselines/grids/cifar100.toml"),
                 "--report", str(tmp_path / "report"), "--dataset", "cifar10", "--data", str(cifar10_root),
                 "--out", str(tmp_path / "runs"), "--archs", "test_tiny", "--seeds", "0",
                 "--methods", "plain,auxiliary", "--epochs", "1", "--n-train", "256", "--eval-n", "100",
                 "--generate-n", "100", "--device", "cpu", "--no-download"]) == 0
    assert "robustbench-aux train" not in capsys.readouterr().out
