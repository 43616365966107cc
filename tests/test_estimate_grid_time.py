"""The reproduction's GPU-time estimate: every run of the default grid priced from measured rates."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _estimator():
    spec = importlib.util.spec_from_file_location("estimate_grid_time", REPO / "benchmarks" / "estimate_grid_time.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_grid_is_priced_run_by_run(capsys):
    assert _estimator().main([]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "-s" in line.split("|")[1]]
    assert len(rows) == 26
    plain = next(r for r in rows if r.startswith("| plain-resnet18-s0 "))
    # 210 epochs x 50,000 images / 11,865 img/s + one evaluation of 20.4 s
    assert float(plain.split("|")[5]) == pytest.approx((210 * 50_000 / 11_865 + 20.4) / 3600, abs=0.01)
    assert "scaled from resnet18" in next(r for r in rows if r.startswith("| augmix-resnet50-s0 "))
    assert "total:" in out and "26 runs" in out


def test_unpriceable_method_is_an_error(tmp_path):
    rates = tmp_path / "rates.json"
    rates.write_text(json.dumps({"device": "x", "date": "d", "train_images_per_s": {"resnet18": {"plain": 1.0}}}))
    with pytest.raises(SystemExit, match="no measured or scalable throughput for auxiliary"):
        _estimator().main(["--throughput", str(rates)])
