"""The data layer: array layout, the shared CIFAR-10 copy, synthetic data, and bad input."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from robustbench_aux.datasets import (
    DatasetArrays,
    load_dataset,
    make_synthetic,
    prepare_dataset,
    read_array_dir,
    resolve_data_root,
    write_array_dir,
)
from robustbench_aux.errors import UserError


def small(n_train=40, n_test=20, k=10) -> DatasetArrays:
    return make_synthetic(k, n_train, n_test, seed=3)


def test_array_layout_round_trip(tmp_path):
    d = small()
    write_array_dir(tmp_path / "cifar10", d)
    assert sorted(p.name for p in (tmp_path / "cifar10").iterdir()) == [
        "classes.json",
        "test_x.npy",
        "test_y.npy",
        "train_x.npy",
        "train_y.npy",
    ]
    back = read_array_dir(tmp_path / "cifar10", "cifar10", num_classes=10)
    np.testing.assert_array_equal(back.train_x, d.train_x)
    np.testing.assert_array_equal(back.test_y, d.test_y)
    assert back.train_y.dtype == np.int64 and back.train_x.dtype == np.uint8
    assert back.classes == d.classes
    # load_dataset reads the same layout and takes prefixes
    sub = load_dataset("cifar10", tmp_path, n_train=7, n_test=5)
    assert sub.train_x.shape == (7, 32, 32, 3) and sub.test_y.shape == (5,)
    assert sub.describe()["subset"] == {"n_train": 7, "n_test": 5}


def test_shared_cifar10_copy(cifar10_root):
    d = load_dataset("cifar10", cifar10_root)
    assert d.train_x.shape == (50000, 32, 32, 3) and d.test_x.shape == (10000, 32, 32, 3)
    assert d.classes[0] == "airplane" and d.num_classes == 10
    assert np.bincount(np.asarray(d.test_y), minlength=10).tolist() == [1000] * 10
    assert d.describe()["copy"] == "CIFAR-10 (JPEG-q75 copy)"
    digest = hashlib.sha256((cifar10_root / "cifar10" / "test_y.npy").read_bytes()).hexdigest()
    assert digest == "bd75a91cd7001fd9bb7cbbe5bd223669c3b14299ff0baab56ebbfc72f1934331"
    # per-channel mean of the test set matches the README's verification figures
    mean = np.asarray(d.test_x[:2000], np.float64).mean(axis=(0, 1, 2)) / 255
    np.testing.assert_allclose(mean, [0.4941, 0.4851, 0.4504], atol=0.01)


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("ROBUSTBENCH_AUX_DATA", raising=False)
    assert str(resolve_data_root(None)) == "data"
    monkeypatch.setenv("ROBUSTBENCH_AUX_DATA", str(tmp_path))
    assert resolve_data_root(None) == tmp_path
    assert str(resolve_data_root("/x/y")) == "/x/y"


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(UserError) as e:
        load_dataset("cifar100", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg
    assert str(tmp_path / "cifar100") in msg and "data prepare --dataset cifar100" in msg and "offline" in msg
    with pytest.raises(UserError, match="cifar100 not found"):
        prepare_dataset("cifar100", tmp_path, download=False)
    with pytest.raises(UserError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet", tmp_path)


def _written(tmp_path):
    write_array_dir(tmp_path / "cifar10", small())
    return tmp_path / "cifar10"


def test_truncated_npy_is_named(tmp_path):
    d = _written(tmp_path)
    raw = (d / "train_x.npy").read_bytes()
    (d / "train_x.npy").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match=r"train_x\.npy is truncated or not a valid \.npy file.*data prepare"):
        load_dataset("cifar10", tmp_path)


def test_misshaped_and_wrong_dtype(tmp_path):
    d = _written(tmp_path)
    np.save(d / "test_x.npy", np.zeros((20, 3, 32, 32), np.uint8))
    with pytest.raises(
        UserError, match=r"test_x\.npy has shape \(20, 3, 32, 32\), expected \(N, 32, 32, 3\)"
    ):
        load_dataset("cifar10", tmp_path)
    np.save(d / "test_x.npy", np.zeros((20, 32, 32, 3), np.float32))
    with pytest.raises(UserError, match=r"test_x\.npy has dtype float32, expected uint8"):
        load_dataset("cifar10", tmp_path)


def test_bad_labels(tmp_path):
    d = _written(tmp_path)
    y = np.load(d / "train_y.npy")
    np.save(d / "train_y.npy", np.where(np.arange(len(y)) == 0, 10, y))
    with pytest.raises(UserError, match=r"train_y\.npy has labels in \[0, 10\], outside \[0, 10\)"):
        load_dataset("cifar10", tmp_path)
    np.save(d / "train_y.npy", y[:-1])
    with pytest.raises(UserError, match=r"train_y\.npy has 39 labels but the images have 40 rows"):
        load_dataset("cifar10", tmp_path)


def test_unwritable_data_root_leaves_files_alone(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("keep me")
    with pytest.raises(UserError, match="writable --data root"):
        write_array_dir(blocker / "cifar10", small())
    with pytest.raises(UserError, match="writable --data root"):
        prepare_dataset("cifar10", blocker, download=True)
    assert blocker.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_data_root(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(UserError, match="not writable"):
        write_array_dir(tmp_path / "ro", small())


def test_failed_write_keeps_existing_files(tmp_path, monkeypatch):
    d = _written(tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    import robustbench_aux.infra.atomic as atomic

    def boom(*a, **k):
        raise RuntimeError("killed mid-write")

    monkeypatch.setattr(atomic.np, "save", boom)
    with pytest.raises(RuntimeError):
        write_array_dir(d, small(50, 30))
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # no temp files left, nothing changed


def test_synthetic_is_deterministic_and_labelled():
    a, b = make_synthetic(100, 300, 50, seed=1), make_synthetic(100, 300, 50, seed=1)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    assert not np.array_equal(a.train_x, make_synthetic(100, 300, 50, seed=2).train_x)
    assert a.synthetic and "synthetic" in a.source and a.name == "synthetic100"
    assert a.describe()["synthetic"] is True
    assert set(np.unique(a.train_y)) == set(range(100))
    assert load_dataset("synthetic7", n_train=30, n_test=10).num_classes == 7


def test_synthetic_100_classes_is_learnable():
    """A tiny CNN clearly beats chance (1 %) on 100 synthetic classes within a few CPU seconds."""
    torch.manual_seed(0)
    d = make_synthetic(100, 3000, 500, seed=0)
    x = torch.from_numpy(np.asarray(d.train_x)).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.asarray(d.train_y))
    xt = torch.from_numpy(np.asarray(d.test_x)).permute(0, 3, 1, 2).float() / 255
    yt = torch.from_numpy(np.asarray(d.test_y))
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.BatchNorm2d(32),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(4),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(256, 100),
    )
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, len(y), (128,), generator=g)
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.2, acc  # chance is 0.01


def test_synthetic_test_set_does_not_depend_on_n_train():
    # evaluate rebuilds a synthetic test set with the default n_train: it must be the one training saw
    small, default = make_synthetic(10, n_train=200, n_test=300), make_synthetic(10, n_test=300)
    assert len(small.train_x) == 200 and len(default.train_x) == 5000
    assert np.array_equal(small.test_x, default.test_x) and np.array_equal(small.test_y, default.test_y)
