"""CUDA path (runs only where a GPU is present): channels_last + bf16 autocast, views on the device;
the captured (compiled) step against the eager one."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_classifier

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["plain", "auxiliary", "augmix"])
def test_cuda_training_with_channels_last_and_bf16(method, tmp_path):
    out = tmp_path / method
    args = [
        "train",
        "--method",
        method,
        "--recipe",
        "smoke",
        "--arch",
        "resnet8",
        "--dataset",
        "synthetic100",
        "--n-train",
        "512",
        "--epochs",
        "2",
        "--device",
        "cuda",
        "--set",
        "amp=bf16",  # the speed path; the reference protocol itself is fp32
        "--set",
        "tf32=true",
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    model, config = load_classifier(out, device="cuda")
    assert config["device"] == "cuda"
    switches = {d["switch"] for d in config["deviations"]}
    assert {"train.amp", "train.tf32"} <= switches and config["protocol"]["train.channels_last"] == "on"
    assert model(torch.rand(4, 3, 32, 32, device="cuda")).shape == (4, 100)


def _cuda_train(out, *extra, rc=0):
    args = [
        "train",
        "--method",
        "auxiliary",
        "--recipe",
        "smoke",
        "--arch",
        "resnet8",
        "--dataset",
        "synthetic100",
        "--n-train",
        "4096",
        "--seed",
        "0",
        "--device",
        "cuda",
        "--out",
        str(out),
        "--set",
        "batch_size=128",
        "--set",
        "amp=bf16",
        *extra,
    ]
    assert cli.main(args) == rc


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_captured_step_follows_the_eager_trajectory_and_resumes_the_same_random_stream(tmp_path):
    """The compiled, CUDA-graph-captured step (compile_mode=reduce-overhead) with fused SGD gives the
    eager step's loss trajectory over 256 steps (8 epochs x 32) within bf16 tolerance, and a run
    interrupted after 4 epochs and resumed continues the same random stream."""
    from robustbench_aux.checkpoint import load_checkpoint

    fast = ("--set", "compile=true", "--set", "compile_mode=reduce-overhead", "--set", "optimizer_impl=fused")
    _cuda_train(tmp_path / "eager", "--epochs", "8")
    _cuda_train(tmp_path / "graph", "--epochs", "8", *fast)
    rows = {}
    for name in ("eager", "graph"):
        with open(tmp_path / name / "metrics.csv") as f:
            rows[name] = list(csv.DictReader(f))
    assert len(rows["eager"]) == len(rows["graph"]) == 8
    for e, g in zip(rows["eager"], rows["graph"]):
        assert float(g["loss"]) == pytest.approx(float(e["loss"]), rel=0.05), (
            e["epoch"],
            e["loss"],
            g["loss"],
        )
    assert float(rows["graph"][-1]["train_acc"]) == pytest.approx(
        float(rows["eager"][-1]["train_acc"]), abs=0.05
    )
    config = json.loads((tmp_path / "graph" / "config.json").read_text())
    assert (
        config["train"]["compile_mode"] == "reduce-overhead" and config["train"]["optimizer_impl"] == "fused"
    )
    # the same captured run stopped after epoch 4 and resumed: the same random stream to the end
    full_stream = load_checkpoint(tmp_path / "graph" / "last.pt")["generator"]
    half = tmp_path / "cut"
    _interrupted(half, fast)
    resumed = load_checkpoint(half / "last.pt")
    assert int(resumed["epoch"]) == 8
    assert torch.equal(resumed["generator"].cpu(), full_stream.cpu())
    with open(half / "metrics.csv") as f:
        cut_rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in cut_rows] == [str(i) for i in range(1, 9)]
    for a, b in zip(cut_rows, rows["graph"]):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=0.05)


def _interrupted(out, fast):
    """Train 8 epochs with a stop after epoch 4 (an interrupt raised right after that epoch's
    metrics are written, as a Ctrl-C there would), then --resume."""
    from robustbench_aux.engine import trainer

    real = trainer.write_metrics
    calls = {"n": 0}

    def stop_after_four(path, rows):
        real(path, rows)
        if len(rows) == 4:
            calls["n"] += 1
            raise KeyboardInterrupt

    trainer.write_metrics = stop_after_four
    try:
        _cuda_train(out, "--epochs", "8", *fast, rc=130)  # the CLI turns the interrupt into 130
    finally:
        trainer.write_metrics = real
    assert calls["n"] == 1 and not (out / "final.pt").exists()
    _cuda_train(out, "--epochs", "8", *fast, "--resume")
