"""AugMix's augmentation operations, batched on the device with a per-image operation and level.

The operation set is AugMix's default for CIFAR (Hendrycks et al., ICLR 2020): autocontrast,
equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x, translate_y. The ops that
overlap the test corruptions (colour, contrast, brightness, sharpness) are excluded, as in AugMix.
A level is uniform in [0.1, severity] per image and scales each op's strength out of 10.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF

from robustbench_aux.corruptions.training import affine_warp, rotation_matrices

OPS = (
    "autocontrast",
    "equalize",
    "posterize",
    "rotate",
    "solarize",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)


def _signed(values: torch.Tensor, generator) -> torch.Tensor:
    """Random sign per image (AugMix flips the direction of geometric ops with p = 0.5)."""
    sign = torch.rand(values.shape, generator=generator, device=values.device) < 0.5
    return torch.where(sign, -values, values)


def _posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top ``bits`` bits of every pixel, one bit count per image (uint8)."""
    mask = ((0xFF << (8 - bits)) & 0xFF).to(torch.uint8).view(-1, 1, 1, 1)
    return x & mask


def _solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert pixels at or above the image's ``threshold`` (uint8)."""
    return torch.where(x >= threshold.view(-1, 1, 1, 1), 255 - x, x)


def apply_op(name: str, x: torch.Tensor, level: torch.Tensor, generator) -> torch.Tensor:
    """Op ``name`` on uint8 (B, 3, H, W) with per-image ``level`` in [0.1, 10] -> uint8."""
    size = x.shape[-1]
    if name == "autocontrast":
        return TF.autocontrast(x)
    if name == "equalize":
        return TF.equalize(x)
    if name == "posterize":
        bits = 4 - (level * 4 / 10).long()  # keep 4..1 bits
        return _posterize(x, bits.clamp(1, 8))
    if name == "solarize":
        threshold = 256 - (level * 256 / 10).long()
        return _solarize(x, threshold)
    ones, zeros = torch.ones_like(level), torch.zeros_like(level)
    if name == "rotate":
        mats = rotation_matrices(_signed((level * 30 / 10).floor(), generator))
    elif name in ("shear_x", "shear_y"):
        s = _signed(level * 0.3 / 10, generator)
        # shear about the top-left corner, as PIL's affine transform (normalized coordinates)
        row0, row1 = (torch.stack([ones, s, s], 1), torch.stack([zeros, ones, zeros], 1))
        if name == "shear_y":
            row0, row1 = torch.stack([ones, zeros, zeros], 1), torch.stack([s, ones, s], 1)
        mats = torch.stack([row0, row1], 1)
    elif name in ("translate_x", "translate_y"):
        shift = _signed((level * (size / 3) / 10).floor(), generator) * (2.0 / size)  # px -> normalized
        tx, ty = (shift, zeros) if name == "translate_x" else (zeros, shift)
        mats = torch.stack([torch.stack([ones, zeros, tx], 1), torch.stack([zeros, ones, ty], 1)], 1)
    else:
        raise ValueError(f"unknown AugMix op {name!r}")
    return affine_warp(x, mats, mode="bilinear")


def random_chain_step(x: torch.Tensor, severity: float, generator) -> torch.Tensor:
    """One augmentation step: every image gets a random op at a random level in [0.1, severity]."""
    n = x.shape[0]
    op_index = torch.randint(0, len(OPS), (n,), generator=generator, device=x.device)
    level = 0.1 + (severity - 0.1) * torch.rand(n, generator=generator, device=x.device)
    out = x.clone()
    for k, name in enumerate(OPS):
        sel = op_index == k
        if sel.any():
            out[sel] = apply_op(name, x[sel], level[sel], generator)
    return out
