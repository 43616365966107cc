"""The reproduction pipeline end to end on the CPU (CIFAR-10 copy), and its missing-data error."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from robustbench_aux.cli import main
from robustbench_aux.infra.hashing import sha256_file

REPO = Path(__file__).resolve().parents[1]


def test_missing_dataset_stops_at_once_with_the_fix(tmp_path, capsys):
    rc = main(
        [
            "reproduce",
            "--grid",
            str(REPO / "baselines/grids/demo.toml"),
            "--report",
            str(tmp_path / "r"),
            "--dataset",
            "cifar100",
            "--data",
            str(tmp_path / "empty"),
            "--no-download",
            "--hint",
            "offline? make demo DATASET=cifar10 DATA=<dir>",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("error: cifar100 not found") and err.rstrip().endswith(
        "make demo DATASET=cifar10 DATA=<dir>"
    )
    assert not (tmp_path / "r").exists()


MINI_GRID = """
[defaults]
recipe = "smoke"
c_bar = true

[[runs]]
methods = ["plain", "auxiliary"]
archs = ["test_tiny"]
seeds = [0]
"""


def reproduce_args(grid, tmp_path, data, *extra):
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


def test_reproduce_end_to_end_on_cifar10(cifar10_root, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(MINI_GRID)
    rc = main(reproduce_args(grid, tmp_path, cifar10_root))
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
    # c_bar = true: CIFAR-C-bar generated from the same 100 images, evaluated in the same run, reported
    assert "--preset cifar10-c-bar" in out
    assert (
        json.loads((tmp_path / "runs" / "CIFAR-10-C-bar-generated" / "manifest.json").read_text())[
            "n_per_severity"
        ]
        == 100
    )
    assert summary["c_bar"]["n_corruptions"] == 10
    html = index.read_text()
    assert 'id="c-bar"' in html and "mean acc. C-bar, 10 (%)" in html
    # the record beside the page: the command as typed, the grid, each run's cost; the page names both
    record = json.loads((tmp_path / "report" / "reproduction.json").read_text())
    args = reproduce_args(grid, tmp_path, cifar10_root)
    assert record["command"] == "robustbench-aux " + shlex.join(args)
    assert record["grid"]["text"] == MINI_GRID and record["grid"]["sha256"] == sha256_file(grid)
    assert set(record["stage_seconds"]) == {"dataset", "corruptions", "runs", "report"}
    runs = {r["run_id"]: r for r in record["runs"]}
    assert set(runs) == {"plain-test_tiny-s0", "auxiliary-test_tiny-s0"}
    for r in runs.values():
        assert r["epochs"] == 1 and r["recipe"] == "smoke" and r["train_seconds"] > 0
        assert r["eval_seconds"] > 0 and r["train_images_per_s"] > 0
    assert html.count("produced by") == 1 and f"sha256 {record['grid']['sha256'][:12]}" in html
    # nothing is redone on a second call
    assert main(args) == 0
    assert "robustbench-aux train" not in capsys.readouterr().out


@pytest.mark.slow
def test_reproduce_default_grid_sliced_to_a_tiny_model(cifar10_root, tmp_path, capsys):
    """What `make reproduce-cifar100 DATASET=cifar10 ARCHS=test_tiny SEEDS=0 EPOCHS=1 ...` runs:
    every method and ablation of the default grid, once each."""
    rc = main(
        reproduce_args(
            REPO / "baselines/grids/cifar100.toml",
            tmp_path,
            cifar10_root,
            "--archs",
            "test_tiny",
            "--seeds",
            "0",
        )
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    html = (tmp_path / "report" / "index.html").read_text()
    for label in ("naive_augmentation", "per_corruption[rotation]", "auxiliary[no_sbn]", "augmix"):
        assert label in html


def test_demo_grid_asks_for_cifar_c_bar():
    """make demo's grid generates and evaluates CIFAR-C-bar (the pipeline reads c_bar)."""
    from robustbench_aux.sweep import load_sweep

    assert load_sweep(REPO / "baselines/grids/demo.toml").defaults.get("c_bar") is True


@pytest.mark.slow
def test_demo_grid_generates_and_reports_cifar_c_bar(cifar10_root, tmp_path, capsys):
    """The shipped demo grid (c_bar = true) at tiny size: CIFAR-C-bar is generated from the same
    test images, every run is evaluated on both directories in one results.csv, and the report
    shows the C-bar column set."""
    grid = REPO / "baselines/grids/demo.toml"
    args = reproduce_args(
        grid, tmp_path, cifar10_root, "--methods", "plain,auxiliary", "--archs", "test_tiny"
    )
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "robustbench-aux corrupt --dataset cifar10" in out and "--preset cifar10-c-bar" in out
    bar = tmp_path / "runs" / "CIFAR-10-C-bar-generated"
    assert json.loads((bar / "manifest.json").read_text())["n_per_severity"] == 100
    results = (tmp_path / "runs" / "auxiliary-test_tiny-s0" / "eval" / "results.csv").read_text()
    assert ",cifar-c-bar," in results and ",cifar-c," in results
    html = (tmp_path / "report" / "index.html").read_text()
    assert 'id="c-bar"' in html and "mean acc. C-bar, 10 (%)" in html
    assert (tmp_path / "report" / "c_bar_claim.csv").is_file()


def test_reproduce_takes_dataset_data_and_out_from_the_grid_unless_given(tmp_path, monkeypatch):
    """The command line wins, then the grid's [defaults], then cifar100 / data / runs/<dataset>."""
    import robustbench_aux.commands.reproduce as reproduce_cmd

    seen = []
    monkeypatch.setattr(reproduce_cmd, "run_pipeline", lambda p: seen.append(p) or tmp_path / "index.html")
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[defaults]\ndataset = "cifar10"\ndata = "d10"\nout = "runs/mine"\n'
        '[[runs]]\nmethods = ["plain"]\narchs = ["resnet8"]\nseeds = [0]\n'
    )
    base = ["reproduce", "--grid", str(grid), "--report", str(tmp_path / "r")]
    assert main(base) == 0
    assert (seen[-1].dataset, seen[-1].data, seen[-1].out) == ("cifar10", Path("d10"), Path("runs/mine"))
    assert main([*base, "--dataset", "cifar100", "--data", "x", "--out", "o"]) == 0
    assert (seen[-1].dataset, seen[-1].data, seen[-1].out) == ("cifar100", Path("x"), Path("o"))
    grid.write_text('[[runs]]\nmethods = ["plain"]\narchs = ["resnet8"]\nseeds = [0]\n')
    assert main(base) == 0
    assert (seen[-1].dataset, seen[-1].data, seen[-1].out) == (
        "cifar100",
        Path("data"),
        Path("runs/cifar100"),
    )


def test_cpu_grid_runs_land_where_its_docs_say():
    from robustbench_aux.sweep import load_sweep

    defaults = load_sweep(REPO / "baselines/grids/cpu_cifar10.toml").defaults
    assert defaults["out"] == "runs/cifar10-bf16"
    assert "runs/cifar10-bf16/CIFAR-10-C-generated" in (REPO / "docs/reproduction.md").read_text()
