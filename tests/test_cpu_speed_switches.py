"""CPU speed switches (docs/training.md, "CPU speed"): ``--threads`` for train / evaluate / grids,
and the numerics of each switch against the 1-thread NCHW default, through the real ``train``.

Stated tolerances (largest absolute difference of any weight or buffer after one epoch of 2
auxiliary steps of the tiny model): foreach SGD kernels bit-identical; 2 threads 1e-5;
channels_last 1e-3 (both only reorder float sums; resnet8 measured 6e-8 and 9e-5 after 2 steps).
"""

from __future__ import annotations

import json

import pytest
import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_checkpoint
from robustbench_aux.sweep import load_sweep


def _train(root, out, *extra):
    args = [
        "train",
        "--method",
        "auxiliary",
        "--recipe",
        "smoke",
        "--arch",
        "test_tiny",
        "--dataset",
        "cifar10",
        "--data",
        str(root),
        "--n-train",
        "128",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--out",
        str(out),
        *extra,
    ]
    threads = torch.get_num_threads()
    try:
        assert cli.main(args) == 0
    finally:
        torch.set_num_threads(threads)  # --threads sets this process's count; the suite runs with 1
    return load_checkpoint(out / "final.pt")["state_dict"]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].numel())


@pytest.fixture(scope="module")
def baseline(cifar10_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("speed") / "base"
    return _train(cifar10_root, out, "--threads", "1"), out


def test_threads_are_recorded_in_the_config(baseline):
    _, out = baseline
    assert json.loads((out / "config.json").read_text())["threads"] == 1


def test_foreach_sgd_is_bit_identical(baseline, cifar10_root, tmp_path):
    state = _train(cifar10_root, tmp_path / "f", "--threads", "1", "--set", "optimizer_impl=foreach")
    assert all(torch.equal(baseline[0][k], state[k]) for k in state)


@pytest.mark.parametrize(
    "extra, tolerance",
    [(["--threads", "2"], 1e-5), (["--threads", "1", "--set", "channels_last=on"], 1e-3)],
    ids=["threads2", "channels_last"],
)
def test_switches_that_reorder_float_sums_stay_within_the_tolerance(
    baseline, cifar10_root, tmp_path, extra, tolerance
):
    state = _train(cifar10_root, tmp_path / "s", *extra)
    assert _max_diff(baseline[0], state) <= tolerance


def test_bad_thread_counts_are_one_line_errors(cifar10_root, tmp_path, capsys):
    for bad in ("0", "-2"):
        rc = cli.main(
            [
                "train",
                "--method",
                "plain",
                "--arch",
                "test_tiny",
                "--dataset",
                "cifar10",
                "--data",
                str(cifar10_root),
                "--out",
                str(tmp_path / "x"),
                "--threads",
                bad,
            ]
        )
        err = capsys.readouterr().err
        assert (
            rc == 2 and err.startswith("error: --threads must be a positive integer") and err.count("\n") == 1
        )
    assert not (tmp_path / "x").exists()


def test_a_grid_passes_threads_to_train_and_evaluate(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[defaults]\nthreads = 1\ncorruptions = "C"\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\nseeds = [0]\n'
    )
    (job,) = load_sweep(grid).jobs
    for step in job.steps:
        assert step.argv[step.argv.index("--threads") + 1] == "1"
    (job,) = load_sweep(grid, overrides={"threads": 2}).jobs  # reproduce/sweep --threads 2
    assert job.steps[0].argv[job.steps[0].argv.index("--threads") + 1] == "2"
    bad = tmp_path / "bad.toml"
    bad.write_text(grid.read_text().replace("threads = 1", "threads = 0"))
    with pytest.raises(Exception, match="'threads' must be at least 1"):
        load_sweep(bad)


def test_reproduce_generates_cifar_c_with_the_grids_threads(tmp_path, capsys, monkeypatch):
    """The pipeline reads the grid before generating CIFAR-C and passes its ``threads`` to corrupt."""
    from robustbench_aux.orchestrate import pipeline

    calls = []

    def fake_run_cli(argv, echo=print):
        calls.append(argv)
        raise pipeline.UserError("stop here")

    monkeypatch.setattr(pipeline, "run_cli", fake_run_cli)
    monkeypatch.setattr(pipeline, "ensure_dataset", lambda p, echo=print: None)
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[defaults]\nthreads = 1\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\nseeds = [0]\n'
    )
    p = pipeline.Pipeline(
        grid=grid, dataset="cifar10", data=tmp_path / "d", out=tmp_path / "o", report=tmp_path / "r"
    )
    with pytest.raises(pipeline.UserError, match="stop here"):
        pipeline.run_pipeline(p)
    (argv,) = calls
    assert argv[0] == "corrupt" and argv[argv.index("--threads") + 1] == "1"


def test_corrupt_refuses_a_bad_thread_count(tmp_path, capsys):
    rc = cli.main(["corrupt", "--dataset", "cifar10", "--out", str(tmp_path / "c"), "--threads", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --threads must be a positive integer")
    assert not (tmp_path / "c").exists()
