"""Engine speed switches on the CPU: the non-finite check read once per epoch (no host
synchronisation inside it) changes nothing written; the SGD kernel and compile switches are
validated and recorded in config.json."""

from __future__ import annotations

import csv
import json

import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_checkpoint

TINY = ["--arch", "test_tiny", "--dataset", "synthetic10", "--seed", "0", "--device", "cpu"]


def _train(out, method, *extra):
    return cli.main(["train", "--method", method, "--recipe", "smoke", *TINY, "--out", str(out), *extra])


def _rows(out):
    with open(out / "metrics.csv") as f:
        return [
            {k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in csv.DictReader(f)
        ]


def test_epoch_finite_check_trains_exactly_as_the_per_step_check(tmp_path):
    common = ("--n-train", "64", "--epochs", "2", "--set", "batch_size=16")
    for check in ("step", "epoch"):
        assert _train(tmp_path / check, "auxiliary", *common, "--set", f"finite_check={check}") == 0
    assert _rows(tmp_path / "step") == _rows(tmp_path / "epoch")
    a = load_checkpoint(tmp_path / "step" / "final.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "epoch" / "final.pt")["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((tmp_path / "epoch" / "config.json").read_text())
    assert config["train"]["finite_check"] == "epoch"
    assert config["train"]["optimizer_impl"] == "default" and config["train"]["compile_mode"] == "default"


def test_epoch_finite_check_stops_with_the_per_step_message_and_keeps_last_good(tmp_path, capsys):
    common = ("--n-train", "128", "--epochs", "2", "--set", "batch_size=32", "--set", "lr=1e12")
    errors = {}
    for check in ("step", "epoch"):
        assert (
            _train(tmp_path / check, "auxiliary", *common, "--set", f"finite_check={check}") == 3
        )  # diverged
        errors[check] = capsys.readouterr().err.replace(str(tmp_path / check), "RUN")
        assert not (tmp_path / check / "final.pt").exists()
    assert "non-finite loss at epoch" in errors["epoch"] and "step" in errors["epoch"]
    assert errors["step"] == errors["epoch"]
    a = load_checkpoint(tmp_path / "step" / "last.pt")
    b = load_checkpoint(tmp_path / "epoch" / "last.pt")
    assert a["epoch"] == b["epoch"]
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert all(torch.isfinite(v).all() for v in b["state_dict"].values() if v.is_floating_point())


def test_sgd_kernel_switch_is_checked_and_foreach_matches_the_loop(tmp_path, capsys):
    assert (
        _train(
            tmp_path / "fused", "plain", "--n-train", "64", "--epochs", "1", "--set", "optimizer_impl=fused"
        )
        == 2
    )
    assert "optimizer_impl=fused needs a CUDA device" in capsys.readouterr().err
    assert _train(tmp_path / "bad", "plain", "--n-train", "64", "--set", "compile_mode=fast") == 2
    assert "compile_mode must be one of" in capsys.readouterr().err
    for impl in ("foreach", "for_loop"):
        args = (
            "--n-train",
            "64",
            "--epochs",
            "1",
            "--set",
            "batch_size=16",
            "--set",
            f"optimizer_impl={impl}",
        )
        assert _train(tmp_path / impl, "plain", *args) == 0
    a = load_checkpoint(tmp_path / "foreach" / "final.pt")["state_dict"]
    b = load_checkpoint(tmp_path / "for_loop" / "final.pt")["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), rtol=1e-5, atol=1e-6) for k in a)
    assert (
        json.loads((tmp_path / "foreach" / "config.json").read_text())["train"]["optimizer_impl"] == "foreach"
    )


def test_interrupt_after_an_epoch_then_resume_continues_the_same_stream(tmp_path, monkeypatch):
    """The stop-and-resume pattern of the GPU test for the captured step, on the CPU (exact there):
    an interrupt right after epoch 1's metrics, then --resume, ends where an uninterrupted run ends."""
    from robustbench_aux.engine import trainer

    common = ("--n-train", "64", "--epochs", "2", "--set", "batch_size=16")
    assert _train(tmp_path / "full", "auxiliary", *common) == 0
    real = trainer.write_metrics

    def stop_after_one(path, rows):
        real(path, rows)
        if len(rows) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "write_metrics", stop_after_one)
    assert _train(tmp_path / "cut", "auxiliary", *common) == 130
    monkeypatch.setattr(trainer, "write_metrics", real)
    assert not (tmp_path / "cut" / "final.pt").exists()
    assert _train(tmp_path / "cut", "auxiliary", *common, "--resume") == 0
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert torch.equal(a["generator"], b["generator"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert _rows(tmp_path / "full") == _rows(tmp_path / "cut")
