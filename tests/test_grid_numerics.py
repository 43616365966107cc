"""The default grid's numerics: bf16 runs carry "bf16" in their label (a deviation from the reference's
fp32) and the grid holds the fp32 control pair (ResNet-18 plain and auxiliary, seed 0)."""

from __future__ import annotations

from pathlib import Path

from robustbench_aux.metrics import method_label
from robustbench_aux.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]


def test_bf16_runs_are_labelled_and_fp32_ones_are_not():
    assert method_label({"method": "plain", "train": {"amp": "bf16"}}) == "plain[bf16]"
    assert method_label({"method": "auxiliary", "options": {"variant": "no_sbn"}, "train": {"amp": "auto"},
                         "device": "cuda"}) == "auxiliary[no_sbn,bf16]"
    assert method_label({"method": "plain", "train": {"amp": "auto"}, "device": "cpu"}) == "plain"
    assert method_label({"method": "plain", "train": {"amp": "off"}, "device": "cuda"}) == "plain"


def test_default_grid_holds_the_fp32_control_pair():
    jobs = load_sweep(REPO / "baselines/grids/cifar100.toml").jobs
    amp = {j.name: [a for a in j.steps[0].argv if a.startswith("amp=")] for j in jobs}
    controls = sorted(name for name, sets in amp.items() if sets == ["amp=off"])
    assert controls == ["auxiliary-off-resnet18-s0", "plain-off-resnet18-s0"]
    assert all(sets == ["amp=bf16"] for name, sets in amp.items() if name not in controls)
    assert len(jobs) == 27
