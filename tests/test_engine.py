"""Engine: run directory contents, schedule, finished/unfinished runs, NaN stop, resume after a real kill."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_checkpoint, load_classifier

REPO = Path(__file__).resolve().parents[1]
TINY = ["--arch", "test_tiny", "--dataset", "synthetic10", "--seed", "0", "--device", "cpu"]


def _train_args(out, method="plain", *extra):
    return ["train", "--method", method, "--recipe", "smoke", *TINY, "--out", str(out), *extra]


def _rows(out):
    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "aux"
    args = _train_args(
        out,
        "auxiliary",
        "--n-train",
        "256",
        "--epochs",
        "3",
        "--set",
        "batch_size=32",
        "--set",
        "milestones=[1,2]",
        "--set",
        "penalty_start_epoch=2",
    )
    assert cli.main(args) == 0
    return out


def test_one_epoch_keeps_the_schedule_inside_it(tmp_path):
    """--epochs 1 of the smoke recipe (2 epochs, milestone and penalty start at epoch 1): both move
    to the middle of the one epoch (8 steps): the lr falls and the penalty switches on at step 4;
    config.json records the scaled points and how they were scaled."""
    out = tmp_path / "aux1"
    args = _train_args(out, "auxiliary", "--n-train", "256", "--epochs", "1", "--set", "batch_size=32")
    assert cli.main(args) == 0
    (row,) = _rows(out)
    assert float(row["lr"]) == 0.05 and float(row["lr_last"]) == pytest.approx(0.005)
    assert float(row["gamma"]) == 1.0 and float(row["penalty"]) > 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["milestones"] == [0.5] and config["options"]["penalty_start_epoch"] == 0.5
    assert config["schedule_scaling"]["from_epochs"] == 2 and config["schedule_scaling"]["to_epochs"] == 1


def test_run_directory_has_config_metrics_and_checkpoints(finished_run):
    out = finished_run
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.csv", "last.pt", "final.pt"}
    config = json.loads((out / "config.json").read_text())
    for key in (
        "run_id",
        "method",
        "arch",
        "dataset",
        "num_classes",
        "seed",
        "recipe",
        "epochs",
        "normalization",
        "data",
        "code_version",
        "options",
        "train",
    ):
        assert key in config, key
    assert config["run_id"] == "aux" and config["method"] == "auxiliary" and config["epochs"] == 3
    assert config["num_classes"] == 10 and config["data"]["synthetic"] is True
    assert config["data"]["n_train"] == 256
    assert set(config["normalization"]) >= {"mean", "std"}
    assert config["options"]["penalty_start_epoch"] == 2


def test_metrics_csv_has_loss_terms_lr_schedule_and_penalty(finished_run):
    rows = _rows(finished_run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.05, 0.005, 0.0005])
    assert [float(r["gamma"]) for r in rows] == [0.0, 0.0, 1.0]
    assert float(rows[0]["penalty"]) == 0 and float(rows[2]["penalty"]) > 0
    for r in rows:
        terms = sum(float(v) for k, v in r.items() if k.startswith(("ce_", "isd_")) or k == "penalty")
        assert terms == pytest.approx(float(r["loss"]), rel=1e-4)
        assert 0 <= float(r["train_acc"]) <= 1 and float(r["images_per_s"]) > 0


def test_final_checkpoint_loads_as_a_plain_classifier(finished_run):
    model, config = load_classifier(finished_run)
    assert config["method"] == "auxiliary"
    logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    ckpt = load_checkpoint(finished_run / "last.pt")
    assert ckpt["epoch"] == 3 and len(ckpt["metrics"]) == 3 and "optimizer" in ckpt


def test_finished_run_is_not_overwritten(finished_run, capsys):
    before = (finished_run / "final.pt").stat().st_mtime_ns
    same = _train_args(
        finished_run,
        "auxiliary",
        "--n-train",
        "256",
        "--epochs",
        "3",
        "--set",
        "batch_size=32",
        "--set",
        "milestones=[1,2]",
        "--set",
        "penalty_start_epoch=2",
    )
    assert cli.main(same) == 0
    assert "already finished" in capsys.readouterr().out
    # the same directory with another config is refused, not reported as finished
    assert cli.main(_train_args(finished_run, "auxiliary", "--n-train", "256", "--epochs", "3")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: already finished:") and "different 'train'" in err and err.count("\n") == 1
    assert (finished_run / "final.pt").stat().st_mtime_ns == before


def test_unfinished_run_needs_resume_and_resume_checks_the_config(tmp_path, capsys):
    out = tmp_path / "run"
    args = _train_args(out, "plain", "--n-train", "64", "--epochs", "1", "--set", "batch_size=32")
    assert cli.main(args) == 0
    (out / "final.pt").unlink()  # as if killed before the end
    assert cli.main(args) == 2
    assert "--resume" in capsys.readouterr().err
    changed = _train_args(
        out, "plain", "--n-train", "64", "--epochs", "1", "--set", "batch_size=16", "--resume"
    )
    assert cli.main(changed) == 2
    assert "different 'train'" in capsys.readouterr().err
    assert cli.main(args + ["--resume", "--set", "log_every=7"]) == 0  # speed/logging settings may change


def test_non_finite_loss_stops_naming_step_and_term_and_keeps_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    args = _train_args(
        out, "auxiliary", "--n-train", "128", "--epochs", "2", "--set", "batch_size=32", "--set", "lr=1e12"
    )
    assert cli.main(args) == 3  # a diverged run: its own exit status, not 2 (bad input)
    err = capsys.readouterr().err
    assert "non-finite loss at epoch" in err and "step" in err and "term '" in err
    assert "last.pt" in err
    assert not (out / "final.pt").exists()
    ckpt = load_checkpoint(out / "last.pt")  # still readable: the last good state
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def _resume_args(out, epochs=4):
    return _train_args(
        out, "auxiliary", "--n-train", "256", "--epochs", str(epochs), "--set", "batch_size=32"
    )


def test_resume_after_sigkill_gives_the_same_weights(tmp_path):
    """Kill a real training process after its first epoch's checkpoint, resume (in-process, one
    thread, as the killed process), compare with an uninterrupted run: on the CPU every weight and
    buffer must be bit-identical."""
    killed, full = tmp_path / "killed", tmp_path / "full"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "robustbench_aux", *_resume_args(killed)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (killed / "metrics.csv").is_file() and len(_rows(killed)) >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the training process ended before it could be killed"
    assert not (killed / "final.pt").exists()
    stopped_at = load_checkpoint(killed / "last.pt")["epoch"]
    assert 1 <= stopped_at < 4

    assert cli.main(_resume_args(killed) + ["--resume"]) == 0
    assert cli.main(_resume_args(full)) == 0

    a = load_checkpoint(killed / "final.pt")["state_dict"]
    b = load_checkpoint(full / "final.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    rows_killed, rows_full = _rows(killed), _rows(full)
    assert len(rows_killed) == 4
    for r1, r2 in zip(rows_killed, rows_full):
        assert r1["loss"] == r2["loss"] and r1["train_acc"] == r2["train_acc"]


def test_linear_warmup_raises_lr_per_step_then_follows_the_schedule(tmp_path, monkeypatch):
    used = []
    real_step = torch.optim.SGD.step

    def recording_step(self, *a, **k):
        used.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    args = _train_args(tmp_path / "w", "plain", "--n-train", "128", "--epochs", "3")
    args += [
        "--set",
        "batch_size=32",
        "--set",
        "lr=0.1",
        "--set",
        "milestones=[2]",
        "--set",
        "warmup_epochs=1.5",
    ]
    assert cli.main(args) == 0
    # 4 steps per epoch; warm-up over 6 steps, then 0.1 until the milestone at epoch 2, then 0.01
    expected = [0.1 * k / 6 for k in range(1, 7)] + [0.1, 0.1] + [0.01] * 4
    assert used == pytest.approx(expected)


def test_warmup_longer_than_the_run_is_refused(tmp_path, capsys):
    args = _train_args(tmp_path / "w", "plain", "--epochs", "2", "--set", "warmup_epochs=3")
    assert cli.main(args) == 2
    assert "warmup_epochs must be between 0 and epochs" in capsys.readouterr().err
