"""Bad input to evaluation: clear one-line errors, raised before work starts, nothing written is lost."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_runs import save_tiny_run, write_cifar_c

from robustbench_aux.checkpoint import save_checkpoint
from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation import evaluate_run

N = 20


@pytest.fixture()
def evaluated(tmp_path, cifar10, cifar10_root):
    """A run already evaluated on a good CIFAR-C directory, and that directory."""
    cdir = write_cifar_c(
        tmp_path / "c", cifar10.test_x[:N], cifar10.test_y[:N], ("gaussian_noise", "contrast")
    )
    run = save_tiny_run(tmp_path / "run")
    evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu")
    return run, cdir


def _snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted((run / "eval").rglob("*")) if p.is_file()}


def test_corrupted_cifar_c_file(evaluated, cifar10_root, capsys):
    run, cdir = evaluated
    before = _snapshot(run)
    path = cdir / "contrast.npy"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte inside the images: the header still parses
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"contrast\.npy does not match its manifest checksum"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu")
    rc = main(["evaluate", str(run), "--corruptions", str(cdir), "--data", str(cifar10_root), "--n", str(N)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert _snapshot(run) == before


def test_truncated_cifar_c_file(evaluated, cifar10_root):
    run, cdir = evaluated
    before = _snapshot(run)
    path = cdir / "gaussian_noise.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match=r"gaussian_noise\.npy"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu", verify=False)
    assert _snapshot(run) == before


def test_checkpoint_with_other_number_of_classes(evaluated, tmp_path, cifar10_root):
    run, cdir = evaluated
    before = _snapshot(run)
    save_tiny_run(run, num_classes=100, dataset="cifar10")  # a CIFAR-100 model claiming CIFAR-10
    with pytest.raises(UserError, match="num_classes=100.*cifar10 has 10"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu")
    # the config says 10 classes but the weights have a 100-way head: caught by the output check
    ckpt = torch.load(run / "final.pt", weights_only=True)
    ckpt["config"]["num_classes"] = 10
    other = tmp_path / "other.pt"
    save_checkpoint(
        other,
        arch=ckpt["model"]["arch"],
        model_kwargs=ckpt["model"]["kwargs"],
        state_dict=ckpt["state_dict"],
        config=ckpt["config"],
    )
    with pytest.raises(UserError, match="100 classes but the test set has 10"):
        evaluate_run(other, cdir, data_root=cifar10_root, n=N, device="cpu", out=tmp_path / "o")
    assert _snapshot(run) == before


def test_mixed_presets(tmp_path, cifar10, cifar10_root):
    cdir = write_cifar_c(
        tmp_path / "c",
        cifar10.test_x[:N],
        cifar10.test_y[:N],
        ("gaussian_noise", "contrast"),
        presets={"gaussian_noise": "cifar", "contrast": "imagenet"},
    )
    run = save_tiny_run(tmp_path / "run")
    with pytest.raises(UserError, match="mixes corruption presets.*imagenet: contrast"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu")
    assert not (run / "eval" / "results.csv").exists()
    # one preset at a time works
    evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu", corruptions=["gaussian_noise"])


def test_resume_against_another_preset_is_refused(evaluated, tmp_path, cifar10, cifar10_root):
    run, _ = evaluated
    before = _snapshot(run)
    other = write_cifar_c(
        tmp_path / "c2",
        cifar10.test_x[:N],
        cifar10.test_y[:N],
        ("gaussian_noise", "contrast"),
        preset="imagenet",
        seed=1,
    )
    with pytest.raises(UserError, match="different evaluation"):
        evaluate_run(run, other, data_root=cifar10_root, n=N, device="cpu")
    assert _snapshot(run) == before


def test_other_bad_input(tmp_path, evaluated, cifar10_root):
    run, cdir = evaluated
    with pytest.raises(UserError, match="no such run directory"):
        evaluate_run(tmp_path / "nope", cdir, data_root=cifar10_root)
    with pytest.raises(UserError, match="unknown corruption"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu", corruptions=["gausian_noise"])
    with pytest.raises(UserError, match="has no file for fog"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu", corruptions=["fog"])
    with pytest.raises(UserError, match="does not exist"):
        evaluate_run(run, tmp_path / "missing-c", data_root=cifar10_root, n=N, device="cpu")
    labels = np.load(cdir / "labels.npy")
    np.save(cdir / "labels.npy", labels + 50)  # CIFAR-100-C labels next to a CIFAR-10 model
    with pytest.raises(UserError, match="labels"):
        evaluate_run(run, cdir, data_root=cifar10_root, n=N, device="cpu", verify=False)
