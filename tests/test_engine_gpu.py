"""CUDA path (runs only where a GPU is present): channels_last + bf16 autocast, views on the device."""

from __future__ import annotations

import csv
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
