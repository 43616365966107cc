"""``robustbench-aux train`` in-process: listings, help, errors, a per-corruption run."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from robustbench_aux import cli


def test_list_methods_models_and_corruptions(capsys):
    assert cli.main(["train", "--list-methods"]) == 0
    out = capsys.readouterr().out
    for name in ("plain", "naive_augmentation", "per_corruption", "auxiliary", "augmix"):
        assert name in out
    assert cli.main(["train", "--list-models"]) == 0
    out = capsys.readouterr().out
    assert "resnet18" in out and "wrn40_2" in out and "test_tiny" in out
    assert cli.main(["train", "--list-corruptions"]) == 0
    assert "cifar_c:fog@<1-5>" in capsys.readouterr().out


def test_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--method",
        "--recipe",
        "--arch",
        "--dataset",
        "--data",
        "--seed",
        "--out",
        "--epochs",
        "--set",
        "--resume",
        "--device",
        "--n-train",
        "--list-methods",
        "--list-models",
    ):
        assert flag in text, flag


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "plain"], "train needs --arch, --dataset, --out"),
        (
            ["--method", "auxilary", "--arch", "test_tiny", "--dataset", "synthetic10", "--out", "x"],
            "did you mean 'auxiliary'",
        ),
        (
            ["--method", "plain", "--arch", "resnet81", "--dataset", "synthetic10", "--out", "x"],
            "unknown model",
        ),
        (
            ["--method", "plain", "--arch", "test_tiny", "--dataset", "cifar1000", "--out", "x"],
            "unknown dataset",
        ),
        (
            [
                "--method",
                "plain",
                "--arch",
                "wrn40_2",
                "--dataset",
                "synthetic10",
                "--out",
                "x",
                "--set",
                "width=8",
            ],
            "width applies to ResNets only",
        ),
    ],
)
def test_bad_input_is_one_line_error_with_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--recipe", "smoke", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cuda_request_without_gpu_is_an_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    args = [
        "train",
        "--method",
        "plain",
        "--recipe",
        "smoke",
        "--arch",
        "test_tiny",
        "--dataset",
        "synthetic10",
        "--out",
        str(tmp_path / "r"),
        "--device",
        "cuda",
    ]
    assert cli.main(args) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_per_corruption_run_takes_the_corruption_option(tmp_path, capsys):
    out = tmp_path / "pc_rotation"
    args = [
        "train",
        "--method",
        "per_corruption",
        "--recipe",
        "smoke",
        "--arch",
        "test_tiny",
        "--dataset",
        "synthetic100",
        "--n-train",
        "128",
        "--epochs",
        "1",
        "--set",
        "corruption=rotation",
        "--set",
        "batch_size=32",
        "--seed",
        "3",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert cli.main(args) == 0
    assert "trained per_corruption / test_tiny on synthetic100" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["options"]["corruption"] == "rotation" and config["seed"] == 3
    assert config["num_classes"] == 100 and config["data"]["n_train"] == 128
    assert config["options"]["data_reading"] == "enlarged_dataset"
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"ce", "train_acc", "lr", "images_per_s", "steps"} <= set(rows[0])
    assert int(rows[0]["steps"]) == 2 * 128 // 32  # the enlarged dataset: clean + rotated, batch 32


def test_per_corruption_with_a_cifar_c_spec_uses_corrupt_batch(tmp_path, monkeypatch):
    """The ``cifar_c:<name>@<s>`` path end to end, with a stand-in corrupt_batch (the real one
    lives in the corruption engine)."""
    import robustbench_aux.corruptions as package

    seen = []

    def fake_corrupt_batch(x, name, severity, *, preset="cifar", generator=None):
        seen.append((name, severity, preset, x.shape[0]))
        return x.flip(2)

    monkeypatch.setattr(package, "corrupt_batch", fake_corrupt_batch, raising=False)
    out = tmp_path / "pc_fog"
    args = [
        "train",
        "--method",
        "per_corruption",
        "--recipe",
        "smoke",
        "--arch",
        "test_tiny",
        "--dataset",
        "synthetic10",
        "--n-train",
        "64",
        "--epochs",
        "1",
        "--set",
        "corruption=cifar_c:fog@3",
        "--set",
        "data_reading=joint_batch",  # every step corrupts its whole batch once
        "--set",
        "batch_size=32",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    assert cli.main(args) == 0
    assert seen == [("fog", 3, "cifar", 32)] * 2
    with open(out / "metrics.csv") as f:
        assert "ce_cifar_c_fog_3" in next(csv.reader(f))


@pytest.mark.parametrize(
    "content",
    ['{"model_type": "bert", "hidden_size": 768}', "not json at all", '["a", "list"]'],
    ids=["another-tools-config", "not-json", "a-list"],
)
def test_out_holding_a_foreign_config_json_is_refused(content, tmp_path, capsys):
    """A directory whose config.json is not a training run's is as foreign as any other: refused,
    the file untouched (it used to be overwritten)."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text(content)
    args = ["train", "--method", "plain", "--recipe", "smoke", "--arch", "test_tiny"]
    args += [
        "--dataset",
        "synthetic10",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--n-train",
        "64",
        "--out",
        str(out),
    ]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "not a training run's" in err
    assert (out / "config.json").read_text() == content and sorted(p.name for p in out.iterdir()) == [
        "config.json"
    ]


def test_train_prints_no_warning_a_user_cannot_act_on(tmp_path):
    """A fresh process training on the array layout (memory-mapped, read-only .npy files): nothing
    on stderr but the log lines; PyTorch's "NumPy array is not writable" warning (shown once per
    process, hence a subprocess) came from the read-only label array."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np

    d = tmp_path / "data" / "cifar10"
    d.mkdir(parents=True)
    for stem, n in (("train", 64), ("test", 20)):
        np.save(d / f"{stem}_x.npy", np.zeros((n, 32, 32, 3), np.uint8))
        np.save(d / f"{stem}_y.npy", np.arange(n, dtype=np.int64) % 10)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    cmd = [sys.executable, "-m", "robustbench_aux", "train", "--method", "plain", "--recipe", "smoke"]
    cmd += ["--arch", "test_tiny", "--dataset", "cifar10", "--data", str(tmp_path / "data"), "--epochs", "1"]
    cmd += ["--n-train", "64", "--device", "cpu", "--out", str(tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "warn" not in proc.stderr.lower(), proc.stderr
