"""Batched standard augmentation on the device: random crop (zero padding) and horizontal flip.

Works on uint8 or float (B, C, H, W) batches, with every random draw from a ``torch.Generator``
on the batch's device, so a run is reproducible from its seed (airbench-style: no DataLoader, no
per-image Python).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch


@dataclass
class CropFlipParams:
    """Per-image crop offsets (0 .. 2*padding, in px of the padded image) and flip flags (None:
    no image flipped)."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor | None


def draw_crop_flip(n: int, generator, device, padding: int = 4, flip: bool = True) -> CropFlipParams:
    """Random crop offsets and flip flags for ``n`` images."""
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
    flips = torch.rand(n, generator=generator, device=device) < 0.5
    return CropFlipParams(dy, dx, flips if flip else None)  # drawn either way: the same random stream


@functools.lru_cache(maxsize=32)
def _positions(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``arange(size)`` and its reverse on ``device``, made once (never written to)."""
    ar = torch.arange(size, device=device)
    return ar, ar.flip(0)


def apply_crop_flip(x: torch.Tensor, params: CropFlipParams, padding: int = 4) -> torch.Tensor:
    """Crop each image of ``x`` at its offset in the zero-padded image, then flip where asked.

    One gather per batch: each output pixel reads source pixel (dy - padding + i, dx - padding + j)
    (column mirrored for flipped images), or 0 where that falls in the padding. ``params.flip`` may
    be None (no image flipped). The index arithmetic is integer and done mostly in place on fresh
    tensors, with the position ranges cached per device: few allocations (kernel launches on a GPU).
    """
    n, c, h, w = x.shape
    rows = params.dy[:, None] + _positions(h, x.device)[0]  # (B, H): dy - padding + i
    rows.sub_(padding)
    cols_ar, cols_rev = _positions(w, x.device)
    cols = (
        cols_ar.expand(n, w) if params.flip is None else torch.where(params.flip[:, None], cols_rev, cols_ar)
    )
    cols = cols + params.dx[:, None]  # (B, W): dx - padding + j, or + (w - 1 - j) when flipped
    cols.sub_(padding)
    rows_in, cols_in = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    valid = (rows_in == rows)[:, :, None] & (cols_in == cols)[:, None, :]  # (B, H, W): not padding
    index = rows_in.mul_(w)[:, :, None] + cols_in[:, None, :]
    out = x.reshape(n, c, h * w).gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    return out.mul_(valid[:, None])


def random_crop_flip(x: torch.Tensor, generator, padding: int = 4, flip: bool = True) -> torch.Tensor:
    """Standard CIFAR augmentation (random crop 32 padded by ``padding``, horizontal flip) of a batch."""
    return apply_crop_flip(x, draw_crop_flip(x.shape[0], generator, x.device, padding, flip), padding)


def to_float(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] (float input is passed through), optionally channels_last."""
    out = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out.contiguous()
