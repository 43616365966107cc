"""The GPU experiment's planner: epochs from probe rates and fixed costs, the same for every run,
packed onto K slots; AugMix kept only when it costs at most a fifth of the epochs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _planner():
    spec = importlib.util.spec_from_file_location("gpu_experiment", REPO / "benchmarks" / "gpu_experiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe(tmp_path, rates: dict[str, tuple[str, float]], wall: float = 12.0):
    probe = tmp_path / "probe"
    lines = []
    for name, (method, ips) in rates.items():
        run = probe / name
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"method": method}))
        (run / "metrics.csv").write_text(f"epoch,loss,images_per_s,seconds\n1,2.0,{ips},{1000 / ips}\n")
        lines.append(f"done   {name} ({wall:.0f} s)  [queued 0 | running 1 | done 1 | failed 0]")
    (tmp_path / "probe.txt").write_text("\n".join(lines) + "\n")
    return probe


def _plan(tmp_path, probe, seconds, per_gpu, optional="augmix"):
    out = tmp_path / "plan.json"
    _planner().main(
        [
            "plan",
            "--probe",
            str(probe),
            "--probe-log",
            str(tmp_path / "probe.txt"),
            "--probe-images",
            "1000",
            "--train-images",
            "50000",
            "--seconds",
            str(seconds),
            "--per-gpu",
            str(per_gpu),
            "--optional",
            optional,
            "--out",
            str(out),
        ]
    )
    return json.loads(out.read_text())


def test_schedule_and_epochs(tmp_path, capsys):
    m = _planner()
    runs = [{"fixed_s": 10.0, "images_per_s": 5000.0}, {"fixed_s": 10.0, "images_per_s": 2500.0}]
    assert m.makespan(runs, 2, 50_000, 2) == pytest.approx(10 + 2 * 20)  # side by side: the slower one
    assert m.makespan(runs, 2, 50_000, 1) == pytest.approx(10 + 20 + 10 + 40)  # one after the other
    assert m.best_epochs(runs, 50_000, 2, 100.0, 210) == 4  # 10 + 4 x 20 = 90 <= 100 < 110
    probe = _probe(
        tmp_path,
        {
            "plain-s0": ("plain", 5000.0),
            "auxiliary-s0": ("auxiliary", 2500.0),
            "augmix-s0": ("augmix", 2000.0),
        },
    )
    plan = _plan(tmp_path, probe, 300, 3)
    # fixed cost = 12 s wall - 1000 images / rate; augmix (25 s/epoch) vs auxiliary (20 s/epoch): 11 vs 14
    assert plan["optional"]["augmix"] == {"kept": False, "epochs_with": 11, "epochs_without": 14}
    assert plan["epochs"] == 14 and plan["methods"] == ["auxiliary", "plain"]
    assert "EPOCHS=14" in capsys.readouterr().out
    kept = _plan(tmp_path, probe, 300, 3, optional="")
    assert kept["epochs"] == 11 and "augmix" in kept["methods"]


def test_nothing_fits_is_an_error(tmp_path):
    probe = _probe(tmp_path, {"plain-s0": ("plain", 100.0)})
    with pytest.raises(SystemExit, match="not even one epoch fits"):
        _plan(tmp_path, probe, 60, 1)
