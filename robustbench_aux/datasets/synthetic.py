"""Deterministic synthetic image classification data with any number of classes.

Each class has a prototype: a smooth random colour field (a 4×4 grid of colours upsampled to
32×32) plus an oriented stripe pattern with a class-specific frequency and angle. Each image is
its class prototype shifted by a random offset, with per-image brightness jitter and pixel
noise. A small CNN separates the classes in a few steps, which is what tests of 100-class code
paths need. It is *not* natural-image data: every output built on it says "synthetic".
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_aux.datasets.arrays import DatasetArrays


def _prototypes(num_classes: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """(K, size, size, 3) float prototypes in [0, 255]."""
    grid = torch.from_numpy(rng.uniform(0, 1, (num_classes, 3, 4, 4)).astype(np.float32))
    field = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    angle = rng.uniform(0, np.pi, num_classes)[:, None, None]
    freq = rng.uniform(0.15, 0.6, num_classes)[:, None, None]
    stripes = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))  # (K, H, W) in [-1, 1]
    proto = 0.65 * field.numpy().transpose(0, 2, 3, 1) + 0.35 * (stripes[..., None] * 0.5 + 0.5)
    return np.clip(proto * 255.0, 0, 255)


def _draw(protos: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k, size = protos.shape[0], protos.shape[1]
    labels = (np.arange(n) % k).astype(np.int64)
    rng.shuffle(labels)
    shifts = rng.integers(-3, 4, (n, 2))
    out = np.empty((n, size, size, 3), np.uint8)
    chunk = 4096  # bounded memory for large n
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        imgs = protos[labels[lo:hi]]
        # a per-image random roll (vectorised by rolling index grids)
        idx = np.arange(size)
        rows = (idx[None, :] - shifts[lo:hi, 0:1]) % size
        cols = (idx[None, :] - shifts[lo:hi, 1:2]) % size
        imgs = imgs[np.arange(hi - lo)[:, None, None], rows[:, :, None], cols[:, None, :]]
        gain = rng.uniform(0.8, 1.2, (hi - lo, 1, 1, 1))
        noise = rng.normal(0, 12.0, imgs.shape)
        out[lo:hi] = np.clip(imgs * gain + noise, 0, 255).astype(np.uint8)
    return out, labels


def make_synthetic(
    num_classes: int = 10, n_train: int = 5000, n_test: int = 1000, seed: int = 0, size: int = 32
) -> DatasetArrays:
    """A deterministic synthetic dataset (same arguments -> identical arrays)."""
    if num_classes < 2:
        raise ValueError("num_classes must be at least 2")
    rng = np.random.default_rng(seed)
    protos = _prototypes(num_classes, rng, size)
    train_x, train_y = _draw(protos, n_train, rng)
    # the test set has a stream of its own, so it does not depend on n_train: a run trained on any
    # number of images is evaluated on the same test set as `evaluate` rebuilds with the default
    test_x, test_y = _draw(protos, n_test, np.random.default_rng([seed, 1]))
    return DatasetArrays(
        name=f"synthetic{num_classes}",
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=[f"class_{i}" for i in range(num_classes)],
        source=f"synthetic (seed={seed}; not real images)",
        synthetic=True,
        meta={"synthetic_seed": seed},
    )
