"""An experiment that grows, at toy size on the CPU (CIFAR-10 copy): reproduce writes each run's
evidence beside the report and renders from it; rerun with one more seed after the run directories
are gone, it trains and evaluates only the new runs; with nothing new it needs no data at all.
And every paired test and training curve of the page recomputes from the evidence folders alone.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from evidence_bits import packed_blocks
from scipy import stats

from robustbench_aux.catalog import BENCHMARK_15, CLEAN
from robustbench_aux.cli import main
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.metrics.uncertainty import paired_bootstrap

GRID = """
[defaults]
recipe = "smoke"

[[runs]]
methods = ["plain", "auxiliary"]
archs = ["test_tiny"]
seeds = [0]
"""


def args(tmp_path, grid, data, *extra):
    return [
        "reproduce",
        "--grid",
        str(grid),
        "--report",
        str(tmp_path / "report"),
        "--dataset",
        "cifar10",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "runs"),
        "--epochs",
        "1",
        "--n-train",
        "256",
        "--eval-n",
        "100",
        "--generate-n",
        "100",
        "--device",
        "cpu",
        "--no-download",
        *extra,
    ]


def tables(report: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(report.glob("*.csv"))}


def folder_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def recompute_significance(evidence: Path, report: Path) -> int:
    """McNemar (clean) and the paired bootstrap (mean over the benchmark corruptions) of each
    method vs plain per seed, from the evidence alone, against the report's significance.csv."""
    sig = pd.read_csv(report / "significance.csv", dtype={"seed": str})
    checked = 0
    for row in sig[sig["seed"] != "over seeds"].itertuples():
        method = evidence / f"{row.label}-{row.arch}-s{row.seed}"
        plain = evidence / f"plain-{row.arch}-s{row.seed}"
        m, p = packed_blocks(method), packed_blocks(plain)
        b, c = int((m[CLEAN] & ~p[CLEAN]).sum()), int((~m[CLEAN] & p[CLEAN]).sum())
        assert (row.clean_b, row.clean_c, row.n_images) == (b, c, len(m[CLEAN]))
        p_value = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
        assert abs(row.clean_p_mcnemar - p_value) < 1e-6
        bench = sorted(k for k in m if k.rpartition("_s")[0] in BENCHMARK_15)
        assert len(bench) == 15 * 5
        # per image: the fraction of the 75 benchmark blocks it is right in
        d = paired_bootstrap(np.mean([m[k] for k in bench], axis=0), np.mean([p[k] for k in bench], axis=0))
        for column, value in (
            ("delta_mean15_pts", d["delta"]),
            ("mean15_low_pts", d["low"]),
            ("mean15_high_pts", d["high"]),
            ("mean15_se_pts", d["se"]),
        ):
            assert abs(getattr(row, column) - 100 * value) < 1e-5, column
        checked += 1
    return checked


def check_curves(evidence: Path, report: Path) -> None:
    """The training curves (per epoch: clean training accuracy, each loss term, lr, seconds) are in
    the evidence, and the training totals the report shows are their sums."""
    runs = pd.read_csv(report / "runs.csv").set_index("run_id")
    for folder in sorted(evidence.iterdir()):
        with (folder / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows and {"epoch", "lr", "loss", "train_acc", "seconds", "steps", "images"} <= set(rows[0])
        terms = [c for c in rows[0] if c.startswith("loss_") or c in ("ce", "penalty")]
        assert all(0 <= float(r["train_acc"]) <= 1 and float(r["seconds"]) > 0 for r in rows)
        if folder.name.startswith("auxiliary"):  # more than one loss term: each has its column
            assert len([c for c in rows[0] if c not in ("epoch", "lr", "lr_last", "train_acc")]) > len(terms)
        assert runs.loc[folder.name, "optimizer_steps"] == sum(int(r["steps"]) for r in rows)
        assert runs.loc[folder.name, "images_seen"] == sum(int(r["images"]) for r in rows)


@pytest.mark.slow
def test_experiment_grows_from_committed_evidence(cifar10_root, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    assert main(args(tmp_path, grid, cifar10_root)) == 0
    capsys.readouterr()
    evidence, report = tmp_path / "report" / "evidence", tmp_path / "report"
    assert sorted(p.name for p in evidence.iterdir()) == ["auxiliary-test_tiny-s0", "plain-test_tiny-s0"]
    assert not list(evidence.rglob("*.pt"))
    for name in ("auxiliary-test_tiny-s0", "plain-test_tiny-s0"):  # the run's own files, copied
        for rel in ("config.json", "metrics.csv", "eval/results.csv", "eval/summary.json"):
            assert (evidence / name / rel).read_bytes() == (tmp_path / "runs" / name / rel).read_bytes()
    # the page was rendered from the evidence: the run directories give the same tables
    assert main(["report", str(tmp_path / "runs"), "-o", str(tmp_path / "from_runs")]) == 0
    assert tables(tmp_path / "from_runs") == tables(report)
    first = {f.name: folder_digests(f) for f in evidence.iterdir()}

    # a new machine: no run directories (and no generated CIFAR-C, which lived among them)
    shutil.rmtree(tmp_path / "runs")
    assert main(args(tmp_path, grid, cifar10_root, "--seeds", "0,1")) == 0
    out = capsys.readouterr().out
    assert "reusing the evidence of 2 run(s)" in out
    trained = [line for line in out.splitlines() if "robustbench-aux train " in line]
    assert len(trained) == 2 and all("--seed 1 " in line for line in trained), trained
    assert not any(
        "evaluate" in line and "-s0" in line for line in out.splitlines() if "robustbench-aux" in line
    )
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.name.endswith("-s0")) == []
    for name, digests in first.items():  # reused as committed, byte for byte
        assert folder_digests(evidence / name) == digests
    assert len(list(evidence.iterdir())) == 4
    runs = pd.read_csv(report / "runs.csv")
    assert sorted(runs["run_id"]) == sorted(p.name for p in evidence.iterdir())
    # every paired test and training curve of the page recomputes from the evidence alone
    assert recompute_significance(evidence, report) == 2
    sig = pd.read_csv(report / "significance.csv", dtype={"seed": str})
    assert (sig["seed"] == "over seeds").sum() == 1
    check_curves(evidence, report)
    grown = tables(report)

    # nothing new to run: neither the data nor CIFAR-C is needed, and the page is the same
    shutil.rmtree(tmp_path / "runs")
    assert main(args(tmp_path, grid, tmp_path / "no-data", "--seeds", "0,1")) == 0
    out = capsys.readouterr().out
    assert "robustbench-aux train " not in out and "robustbench-aux corrupt " not in out
    assert tables(report) == grown

    # evidence made another way is a one-line error naming the difference, and stays as it was
    before = {f.name: folder_digests(f) for f in evidence.iterdir()}
    assert main(args(tmp_path, grid, cifar10_root, "--seeds", "0,1", "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "epochs" in err and "remove it" in err
    assert {f.name: folder_digests(f) for f in evidence.iterdir()} == before
