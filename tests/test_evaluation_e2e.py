"""End to end on real images: two tiny CNNs trained briefly on the CIFAR-10 copy, a generated
CIFAR-10-C subset (imagecorruptions, ImageNet preset), ``evaluate`` and ``report`` through the CLI.

The models are deliberately tiny (a few seconds of training); the test checks that real
numbers flow through every stage, not that the models are good.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_runs import CIFAR10_NORM, TinyEvalCNN, save_tiny_run

from robustbench_aux.catalog import SEVERITIES
from robustbench_aux.cli import main
from robustbench_aux.infra import atomic

N = 100
CORRUPTIONS = ("gaussian_noise", "defocus_blur", "contrast", "pixelate")


def _train(x: np.ndarray, y: np.ndarray, noise_sigma: float, seed: int, base=None) -> TinyEvalCNN:
    """Two epochs of Adam on uint8 images (from ``base``'s weights if given); optional Gaussian-noise
    augmentation of half of each batch."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread avoids OpenMP spin-waits on a busy machine
    try:
        return _train_steps(x, y, noise_sigma, seed, base)
    finally:
        torch.set_num_threads(threads)


def _train_steps(x: np.ndarray, y: np.ndarray, noise_sigma: float, seed: int, base) -> TinyEvalCNN:
    torch.manual_seed(seed)
    model = TinyEvalCNN(10, CIFAR10_NORM["mean"], CIFAR10_NORM["std"], width=16)
    if base is not None:
        model.load_state_dict(base.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255
    yt = torch.from_numpy(np.array(y))
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(2 if base is None else 1):
        for idx in torch.randperm(len(yt), generator=g).split(96):
            xb = xt[idx]
            if noise_sigma:
                half = len(idx) // 2
                xb = xb.clone()
                xb[:half] = (xb[:half] + noise_sigma * torch.randn(xb[:half].shape, generator=g)).clamp(0, 1)
            loss = torch.nn.functional.cross_entropy(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def cifar10c_generated(cifar10, tmp_path_factory):
    """CIFAR-10-C subset in the published layout, generated with imagecorruptions (ImageNet preset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imagecorruptions imports the deprecated pkg_resources
        from imagecorruptions import corrupt
    d = tmp_path_factory.mktemp("cifar10c_gen")
    images, labels = cifar10.test_x[:N], cifar10.test_y[:N]
    np.random.seed(0)  # imagecorruptions draws from numpy's global generator: the same images every run
    for c in CORRUPTIONS:
        blocks = [
            np.stack([corrupt(np.array(im), corruption_name=c, severity=s) for im in images])
            for s in SEVERITIES
        ]
        atomic.save_npy(d / f"{c}.npy", np.concatenate(blocks).astype(np.uint8))
    atomic.save_npy(d / "labels.npy", np.tile(labels, 5))
    atomic.write_json(
        d / "manifest.json", {"generated": True, "preset": "imagenet", "generator": "imagecorruptions 1.1.2"}
    )
    return d


def test_real_runs_end_to_end(cifar10, cifar10_root, cifar10c_generated, tmp_path, capsys):
    x, y = cifar10.train_x[:2000], cifar10.train_y[:2000]
    base = _train(x, y, 0.0, 0)
    runs = {
        "plain": save_tiny_run(tmp_path / "plain", seed=0, model=base, width=16),
        "noise": save_tiny_run(
            tmp_path / "noise",
            seed=0,
            method="per_corruption",
            corruption="noise",
            model=_train(x, y, 0.12, 0),
            width=16,
        ),
    }
    for run in runs.values():
        assert (
            main(
                [
                    "evaluate",
                    str(run),
                    "--corruptions",
                    str(cifar10c_generated),
                    "--data",
                    str(cifar10_root),
                    "--n",
                    str(N),
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
    capsys.readouterr()
    plain = pd.read_csv(runs["plain"] / "eval" / "results.csv")
    summary = json.loads((runs["plain"] / "eval" / "summary.json").read_text())
    with torch.no_grad():  # the clean number is exactly an independent forward pass on the same images
        xe = torch.from_numpy(np.array(cifar10.test_x[:N])).permute(0, 3, 1, 2).float() / 255
        direct = float((base(xe).argmax(1).numpy() == cifar10.test_y[:N]).mean())
    assert summary["clean_acc"] == pytest.approx(direct)
    assert summary["clean_acc"] > 0.15  # above chance (0.1): real learning on real images
    gn = plain[plain.corruption == "gaussian_noise"].set_index("severity")["acc"]
    assert gn[5] < summary["clean_acc"]  # ImageNet-strength noise at severity 5 hurts
    assert summary["provenance"]["corruptions"]["preset"] == "imagenet"
    assert summary["provenance"]["corruptions"]["labels_match_test_set"] is True
    assert summary["provenance"]["data"]["copy"] == "CIFAR-10 (JPEG-q75 copy)"

    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(runs["plain"]),
                str(runs["noise"]),
                "-o",
                str(out),
                "--note",
                "two tiny CNNs, CIFAR-10 JPEG copy, imagecorruptions subset",
            ]
        )
        == 0
    )
    html = (out / "index.html").read_text()
    assert "Only 4 of the 15 benchmark corruptions were evaluated" in html
    mat = pd.read_csv(out / "interference_test_eval_cnn.csv", index_col="label")
    assert set(mat.index) == {"plain", "per_corruption[noise]"}
    assert np.isfinite(mat.loc["per_corruption[noise]", "gaussian_noise"])
    sig = pd.read_csv(out / "significance.csv")
    assert len(sig) == 1 and 0 <= sig.loc[0, "clean_p_mcnemar"] <= 1
