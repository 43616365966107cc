"""Small building blocks shared by the corruptions: dense resampling matrices, colour spaces, draws.

At 32x32 a separable filter or resampling is fastest as a dense matrix product ``M_h @ X @ M_w^T``
(a 32x32 matrix per axis), and it reproduces the boundary rules of scipy / OpenCV / PIL exactly
by folding the boundary into the matrix. Matrices are built once in float64 with numpy, cached,
and moved to the device on first use there.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

# ---------------------------------------------------------------- index folding at the borders


def fold_index(i: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map possibly out-of-range indices into [0, n) following a boundary ``mode``.

    ``nearest``: clamp (scipy 'nearest', OpenCV BORDER_REPLICATE); ``reflect``: half-sample
    symmetric ``d c b a | a b c d`` (scipy 'reflect'); ``mirror``: whole-sample symmetric
    ``d c b | a b c d`` (scipy 'mirror', OpenCV BORDER_REFLECT_101).
    """
    i = np.asarray(i)
    if mode == "nearest" or n == 1:
        return np.clip(i, 0, n - 1)
    if mode == "reflect":
        j = np.mod(i, 2 * n)
        return np.where(j >= n, 2 * n - 1 - j, j)
    if mode == "mirror":
        j = np.mod(i, 2 * n - 2)
        return np.where(j >= n, 2 * n - 2 - j, j)
    raise ValueError(f"unknown boundary mode {mode!r}")


def correlation_matrix(n: int, weights: np.ndarray, mode: str) -> np.ndarray:
    """(n, n) matrix applying the centred 1-D correlation ``weights`` with boundary ``mode``."""
    radius = (len(weights) - 1) // 2
    m = np.zeros((n, n))
    rows = np.arange(n)
    for k, w in enumerate(weights):
        np.add.at(m, (rows, fold_index(rows + k - radius, n, mode)), w)
    return m


@lru_cache(maxsize=256)
def gaussian_matrix(n: int, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d (as used by skimage.filters.gaussian) as an (n, n) matrix."""
    if sigma <= 1e-15:  # scipy skips the axis entirely
        return np.eye(n)
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 / (sigma * sigma) * x**2)
    return correlation_matrix(n, w / w.sum(), mode)


@lru_cache(maxsize=64)
def pil_box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """PIL ``Image.resize(..., Image.BOX)`` along one axis as an (n_out, n_in) matrix."""
    if n_in == n_out:
        return np.eye(n_in)
    scale = n_in / n_out
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        center = (o + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        for i in range(lo, hi):
            t = (i - center + 0.5) / filterscale
            m[o, i] = 1.0 if -0.5 < t <= 0.5 else 0.0
        total = m[o].sum()
        if total:
            m[o] /= total
    return m


@lru_cache(maxsize=64)
def pil_nearest_matrix(n_in: int, n_out: int) -> np.ndarray:
    """PIL ``resize(..., NEAREST)`` along one axis as an (n_out, n_in) selection matrix.

    PIL tabulates source positions by adding scale = n_in / n_out to a double that starts at
    scale / 2 and truncating; the accumulated rounding decides the ties, so it is replayed here."""
    scale = n_in / n_out
    pos, src = scale * 0.5, []
    for _ in range(n_out):
        src.append(min(int(pos), n_in - 1))
        pos += scale
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), src] = 1.0
    return m


@lru_cache(maxsize=256)
def clipped_zoom_matrix(n: int, zoom: float, crop: str | None) -> np.ndarray:
    """The reference ``clipped_zoom`` along one axis: centre crop of ceil(n/zoom) pixels, then
    ``scipy.ndimage.zoom(order=1)`` to round(ceil(n/zoom)·zoom) pixels, then a crop back to n
    (``center``: symmetric trim as in the CIFAR script; ``topleft``: the first n, as in
    imagecorruptions; None: keep the oversized result). Returns (n_out, n) matrix."""
    ch = int(math.ceil(n / zoom))
    top = (n - ch) // 2
    out_len = int(round(ch * zoom))
    m = np.zeros((out_len, n))
    if zoom == 1 or out_len == ch:  # scipy's coordinate factor (ch-1)/(out-1) is then exactly 1
        m[np.arange(ch), top + np.arange(ch)] = 1.0
    else:
        factor = (ch - 1) / (out_len - 1)
        for o in range(out_len):
            c = o * factor
            i0 = int(math.floor(c))
            f = c - i0
            m[o, top + min(i0, ch - 1)] += 1.0 - f
            if f > 0 and i0 + 1 < ch:
                m[o, top + i0 + 1] += f
    if crop == "center":
        trim = (out_len - n) // 2
        m = m[trim : trim + n]
    elif crop == "topleft":
        m = m[:n]
    return m


# (id(array), device, dtype) -> (array, tensor). Holding the array keeps its id from being reused.
_DEVICE_CACHE: dict[tuple, tuple[np.ndarray, torch.Tensor]] = {}


def on_device(array: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A cached device copy of a (small, immutable) numpy matrix."""
    key = (id(array), str(device), dtype)
    hit = _DEVICE_CACHE.get(key)
    if hit is None or hit[0] is not array:
        hit = (array, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device))
        _DEVICE_CACHE[key] = hit
    return hit[1]


def dense_operator(x: torch.Tensor, m_t: np.ndarray) -> torch.Tensor:
    """Apply a linear map of the image plane, given as its transposed (H·W, H·W) matrix, to every
    channel of ``x`` (..., H, W) in one matrix product (the fastest form at 32x32 on CPU and GPU)."""
    h, w = x.shape[-2:]
    return torch.matmul(x.reshape(-1, h * w), on_device(m_t, x.device, x.dtype)).reshape(x.shape)


def separable(x: torch.Tensor, m_rows: np.ndarray, m_cols: np.ndarray) -> torch.Tensor:
    """``M_rows @ x @ M_cols^T`` over the last two axes of ``x`` (any leading axes)."""
    a = on_device(m_rows, x.device, x.dtype)
    b = on_device(m_cols, x.device, x.dtype)
    return torch.matmul(torch.matmul(a, x), b.T)


def gaussian_filter(
    x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0
) -> torch.Tensor:
    """skimage.filters.gaussian on the last two axes (spatial only, like ``channel_axis=-1``)."""
    h, w = x.shape[-2:]
    return separable(
        x, gaussian_matrix(h, float(sigma), mode, truncate), gaussian_matrix(w, float(sigma), mode, truncate)
    )


# ---------------------------------------------------------------- colour


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """OpenCV COLOR_RGB2GRAY on float images: 0.299 R + 0.587 G + 0.114 B, shape (B, 1, H, W)."""
    r, g, b = rgb.split(1, dim=1)
    return (r * 0.299).add_(g * 0.587).add_(b * 0.114)


# ---------------------------------------------------------------- random draws


def uniform(shape, low: float, high: float, generator, device) -> torch.Tensor:
    """U[low, high) draws on ``device`` from ``generator`` (float32)."""
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def normal(shape, loc: float, scale: float, generator, device) -> torch.Tensor:
    """N(loc, scale^2) draws on ``device`` from ``generator`` (float32)."""
    return torch.randn(shape, generator=generator, device=device) * scale + loc
