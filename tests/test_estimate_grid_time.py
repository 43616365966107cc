"""The reproduction's GPU-time estimate: every run of the default grid priced from measured rates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _estimator():
    spec = importlib.util.spec_from_file_location(
        "estimate_grid_time", REPO / "benchmarks" / "estimate_grid_time.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_grid_is_priced_run_by_run(capsys):
    # the measured rates are bf16; the grid's own numerics (the reference's fp32) are priced below
    assert _estimator().main(["--precision", "bf16"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "-s" in line.split("|")[1]]
    assert len(rows) == 26
    plain = next(r for r in rows if r.startswith("| plain-resnet18-s0 "))
    assert "bf16, measured" in plain
    # 210 epochs x 50,000 images / 11,865 img/s + one evaluation of 20.4 s
    assert float(plain.split("|")[5]) == pytest.approx((210 * 50_000 / 11_865 + 20.4) / 3600, abs=0.01)
    assert "scaled from resnet18" in next(r for r in rows if r.startswith("| augmix-resnet50-s0 "))
    assert "total:" in out and "26 runs" in out


def test_unmeasured_precision_is_said_not_guessed(tmp_path, capsys):
    assert _estimator().main(["--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "total: 0.0 GPU-hours for 0 runs" in out and "without 26 unmeasured run(s)" in out
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[defaults]\nrecipe = "reference"\nset = { amp = "bf16" }\n[[runs]]\nmethods = ["plain"]\n'
        'archs = ["resnet18"]\nseeds = [0]\n[[runs]]\nmethods = ["plain"]\narchs = ["resnet18"]\n'
        'seeds = [0]\nvary = { amp = ["off"] }\n'
    )
    assert _estimator().main(["--grid", str(grid)]) == 0  # each run's own precision
    out = capsys.readouterr().out
    assert "| plain-resnet18-s0 | 210 | 11,865 | bf16, measured |" in out
    assert "| plain-off-resnet18-s0 | 210 | unmeasured | no fp32 rate" in out
    assert "for 1 runs" in out and "without 1 unmeasured run(s): plain-off-resnet18-s0" in out


def test_unpriceable_method_is_an_error(tmp_path):
    rates = tmp_path / "rates.json"
    rates.write_text(
        json.dumps({"device": "x", "date": "d", "train_images_per_s": {"resnet18": {"plain": 1.0}}})
    )
    with pytest.raises(SystemExit, match="no measured or scalable throughput for auxiliary"):
        _estimator().main(["--throughput", str(rates), "--precision", "bf16"])


def test_packing_factor_is_read_from_measurements_or_says_unmeasured(tmp_path, capsys):
    est = _estimator()
    assert est.main(["--precision", "bf16", "--per-gpu", "4", "--packing", str(tmp_path / "none.json")]) == 0
    out = capsys.readouterr().out
    assert "packed, 4 runs per GPU: unmeasured (no packing measurement" in out
    total = float(out.split("total: ")[1].split(" GPU-hours")[0])
    packing = tmp_path / "packing.json"
    packing.write_text(
        json.dumps(
            {
                "method": "auxiliary",
                "via": "CUDA MPS",
                "gpu": "G",
                "factor": {"1": 1.0, "2": 1.5, "4": 2.5, "8": "not measured (budget)"},
            }
        )
    )
    assert est.main(["--precision", "bf16", "--per-gpu", "4", "--packing", str(packing)]) == 0
    out = capsys.readouterr().out
    packed = float(out.split("packed, 4 runs per GPU: ")[1].split(" GPU-hours")[0])
    assert packed == pytest.approx(total / 2.5, abs=0.06) and "(aggregate throughput x2.50, auxiliary" in out
    assert est.main(["--per-gpu", "8", "--packing", str(packing)]) == 0
    assert "no measured factor for K=8 (measured: 1, 2, 4)" in capsys.readouterr().out
