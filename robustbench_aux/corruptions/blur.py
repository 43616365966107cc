"""Blur corruptions: gaussian, defocus, glass, motion, zoom (and the motion kernel snow reuses).

Calling convention as in :mod:`~robustbench_aux.corruptions.noise`. Random corruptions accept
``draws`` (the random numbers they would otherwise draw from ``generator``), which lets the
fidelity tests feed both implementations the same draws and compare pixel by pixel.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_aux.corruptions.ops import (
    clipped_zoom_matrix,
    correlation_matrix,
    dense_operator,
    fold_index,
    gaussian_filter,
    separable,
)

# Largest image (pixels) for which linear maps of the image plane are applied as one dense
# (H·W)² matrix: 4 MiB at 32x32; the matrix grows with the fourth power of the side.
DENSE_MAX_PIXELS = 32 * 32


def gaussian_blur(x, p, variants, generator):
    """skimage.filters.gaussian with ``sigma_px`` (replicated borders, truncated at 4 sigma)."""
    return gaussian_filter(x, p[0]).mul_(255)


# ---------------------------------------------------------------- defocus


@lru_cache(maxsize=32)
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The references' anti-aliased disk: a binary disk on a 17x17 (or (2r+1)^2) grid, normalised,
    then cv2.GaussianBlur (3x3, or 5x5 for r > 8; BORDER_REFLECT_101), trimmed to its support."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 9), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    disk /= disk.sum()
    t = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-(t**2) / (2 * alias_blur**2))
    m = correlation_matrix(len(grid), g / g.sum(), "mirror")
    kernel = (m @ disk.astype(np.float64) @ m.T).astype(np.float32)
    nz = np.argwhere(kernel != 0)
    c = len(grid) // 2
    r = int(np.abs(nz - c).max()) if len(nz) else 0
    return kernel[c - r : c + r + 1, c - r : c + r + 1]


@lru_cache(maxsize=32)
def defocus_operator(h: int, w: int, radius: float, alias_blur: float) -> np.ndarray:
    """cv2.filter2D(x, -1, disk) with BORDER_REFLECT_101 as a dense (H·W, H·W) matrix, transposed."""
    kernel = disk_kernel(radius, alias_blur).astype(np.float64)
    r = kernel.shape[0] // 2
    rows, cols = np.arange(h), np.arange(w)
    out_idx = np.arange(h * w)
    m = np.zeros((h * w, h * w))
    for a, b in np.argwhere(kernel != 0):
        src = (
            fold_index(rows + a - r, h, "mirror")[:, None] * w
            + fold_index(cols + b - r, w, "mirror")[None, :]
        )
        np.add.at(m, (out_idx, src.ravel()), kernel[a, b])
    return np.ascontiguousarray(m.T)


def defocus_blur(x, p, variants, generator):
    """cv2.filter2D with the disk kernel, per channel, BORDER_REFLECT_101. Up to 32x32 one (H·W)²
    matrix product (several times faster than a 17x17 convolution there); larger images convolve."""
    b, c, h, w = x.shape
    if h * w <= DENSE_MAX_PIXELS:
        return dense_operator(x, defocus_operator(h, w, float(p[0]), float(p[1]))).mul_(255)
    kernel = disk_kernel(float(p[0]), float(p[1]))
    r = kernel.shape[0] // 2
    padded = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="reflect")  # reflect = reflect-101
    out = F.conv2d(padded, torch.as_tensor(kernel, dtype=x.dtype, device=x.device)[None, None])
    return out.reshape(b, c, h, w).mul_(255)


# ---------------------------------------------------------------- glass


def glass_positions(h: int, w: int, max_delta: int) -> list[tuple[int, int]]:
    """The (row, col) visiting order of the references' pixel-shuffle loop (both axes descending)."""
    return [(r, c) for r in range(h - max_delta, max_delta, -1) for c in range(w - max_delta, max_delta, -1)]


def draw_glass_shifts(b, h, w, p, generator, device) -> torch.Tensor:
    """(iterations, steps, B, 2) integer (dx, dy) in [-max_delta, max_delta), like np.random.randint."""
    d, iters = int(p[1]), int(p[2])
    steps = len(glass_positions(h, w, d))
    return torch.randint(-d, d, (iters, steps, b, 2), generator=generator, device=device)


def glass_blur(x, p, variants, generator, draws=None):
    """Blur, quantise to uint8, locally shuffle pixels, blur again.

    The references write ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views, which copies
    x[h', w'] into x[h, w] and leaves x[h', w'] unchanged; that copy (not a swap) is what made the
    published images, and what is reproduced here. The copies run in the references' order, each
    step one batched op over all images (the source index of every pixel is tracked, then the
    image is gathered once). With max_delta = 1 (every CIFAR severity) each step reads a pixel the
    loop has not reached yet, so the whole pass is a single gather.
    """
    sigma, d, iters = float(p[0]), int(p[1]), int(p[2])
    b, c, h, w = x.shape
    shifts = draws["shifts"] if draws is not None else draw_glass_shifts(b, h, w, p, generator, x.device)
    y = torch.floor(gaussian_filter(x, sigma).clamp(0, 1) * 255)  # np.uint8(gaussian(x) * 255): truncation
    positions = glass_positions(h, w, d)
    pos = torch.tensor(positions, device=x.device)  # (steps, 2)
    flat_pos = pos[:, 0] * w + pos[:, 1]
    flat_list = [r * w + c for r, c in positions]  # python ints: plain views, no index kernels
    src = torch.arange(h * w, device=x.device).repeat(b, 1)  # (B, HW) source pixel of each pixel
    batch = torch.arange(b, device=x.device)
    for it in range(iters):
        # reads at (row + dy, col + dx)
        q = (pos[:, None, 0] + shifts[it, :, :, 1]) * w + (
            pos[:, None, 1] + shifts[it, :, :, 0]
        )  # (steps, B)
        if d == 1:
            src[:, flat_pos] = torch.gather(src, 1, q.T)
        else:
            for s, target in enumerate(flat_list):
                src[:, target] = src[batch, q[s]]
    y = torch.gather(y.reshape(b, c, h * w), 2, src[:, None, :].expand(b, c, h * w)).reshape(b, c, h, w)
    return gaussian_filter(y / 255, sigma).mul_(255)


# ---------------------------------------------------------------- motion


def motion_offsets(radius: int, sigma: float, angle_deg: torch.Tensor):
    """Kernel weights (width,) and per-image integer offsets (B, width) of the references' motion blur.

    Tap i samples the image at (row + ceil(i·sin(a) − 0.5), col + ceil(i·cos(a) − 0.5)) with edge
    replication, weighted by a one-sided Gaussian exp(−i²/2σ²), normalised over 2·radius + 1 taps.
    """
    width = 2 * int(radius) + 1
    i = torch.arange(width, dtype=torch.float64, device=angle_deg.device)
    k = torch.exp(-(i**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    k = k / k.sum()
    rad = angle_deg.double()[:, None] * (math.pi / 180)
    py, px = width * torch.sin(rad), width * torch.cos(rad)
    hyp = torch.hypot(py, px)
    dy = torch.ceil(i * py / hyp - 0.5).long()  # row offset of the sample
    dx = torch.ceil(i * px / hyp - 0.5).long()
    return k, dy, dx


def motion_blur_layer(x, radius, sigma, angle_deg, stop_at_border: bool):
    """Apply the motion kernel to (B, C, H, W) with per-image angles (degrees).

    Tap i adds weight k_i times the image shifted by (dy_i, dx_i), edges replicated. On the CPU the
    taps are added as shifted slices of an edge-padded copy, in cache-sized blocks of images; on
    other devices as one gather per tap. Both add the same terms in the same order (equal results).
    """
    b, c, h, w = x.shape
    k, dy, dx = motion_offsets(radius, sigma, angle_deg)
    if stop_at_border:  # imagecorruptions stops once a shift leaves the image (no renormalisation)
        live = (dy.abs() < h) & (dx.abs() < w)
    else:
        live = torch.ones_like(dy, dtype=torch.bool)
    # a shift of the image size or more reads the edge row (column) for every pixel, as does ±size
    dy, dx = dy.clamp(-h, h), dx.clamp(-w, w)
    if x.device.type == "cpu":
        return _motion_taps_sliced(x, k.tolist(), dy, dx, live, angle_deg)
    return _motion_taps_gathered(x, k, dy, dx, live)


def _motion_taps_gathered(x, k, dy, dx, live):
    """One gather per tap. The offsets take few distinct values across the batch: the clamped
    source index of every pixel is tabulated once per distinct (dy, dx), each tap looks it up."""
    b, c, h, w = x.shape
    weights = (k[None, :] * live).to(x.dtype)
    span = 2 * max(h, w) + 1  # offsets lie in [-max(h, w), max(h, w)] after the clamp
    keys, inverse = torch.unique((dy + max(h, w)) * span + (dx + max(h, w)), return_inverse=True)
    u_dy, u_dx = keys // span - max(h, w), keys % span - max(h, w)
    rows = (torch.arange(h, device=x.device)[None, :] + u_dy[:, None]).clamp_(0, h - 1)  # (U, H)
    cols = (torch.arange(w, device=x.device)[None, :] + u_dx[:, None]).clamp_(0, w - 1)  # (U, W)
    table = (rows[:, :, None] * w + cols[:, None, :]).reshape(len(keys), h * w)
    flat = x.reshape(b, c, h * w)
    out = torch.zeros_like(flat)
    for t in range(k.shape[0]):
        idx = table.index_select(0, inverse[:, t]).unsqueeze(1).expand(b, c, h * w)
        out.addcmul_(torch.gather(flat, 2, idx), weights[:, t, None, None])
    return out.reshape(b, c, h, w)


# Images per block of the sliced motion blur, as image planes: a block and its padded copy stay
# in a core's L2 cache while all taps are added (measured best at 32 RGB images here).
MOTION_BLOCK_PLANES = 96


def _motion_taps_sliced(x, k: list[float], dy, dx, live, angle_deg):
    """Slice-adds, no index tensors. Sorted by angle, the images that share a tap's shift form
    runs; each run adds one strided view of the padded block, scaled by the tap's weight."""
    b, c, h, w = x.shape
    order = torch.argsort(angle_deg, stable=True)
    dy, dx, live = dy[order], dx[order], live[order]
    ph, pw = int(dy.abs().max()), int(dx.abs().max())
    block = max(1, MOTION_BLOCK_PLANES // c)
    key = ((dy + h) * (2 * w + 1) + dx + w) * 2 + live  # one integer per distinct (dy, dx, live)
    starts = torch.zeros((len(k), b + 1), dtype=torch.bool)
    starts[:, 1:b] = (key[1:] != key[:-1]).T
    starts[:, ::block] = True
    starts[:, b] = True
    bounds = [row.nonzero().flatten().tolist() for row in starts]  # run edges per tap
    dy_l, dx_l, live_l = dy.T.tolist(), dx.T.tolist(), live.T.tolist()
    src = x.index_select(0, order)
    result = torch.empty_like(x)
    padded = x.new_empty((min(block, b), c, h + 2 * ph, w + 2 * pw))
    acc = x.new_empty((min(block, b), c, h, w))
    for b0 in range(0, b, block):
        n = min(block, b - b0)
        _edge_pad_into(padded[:n], src[b0 : b0 + n], ph, pw)
        out = acc[:n].zero_()
        for t, edges in enumerate(bounds):
            first = bisect.bisect_left(edges, b0)  # block starts are run edges
            for s, e in zip(edges[first:-1], edges[first + 1 :]):
                if s >= b0 + n:
                    break
                if not live_l[t][s]:
                    continue
                r, q = ph + dy_l[t][s], pw + dx_l[t][s]
                out[s - b0 : e - b0].add_(padded[s - b0 : e - b0, :, r : r + h, q : q + w], alpha=k[t])
        result[order[b0 : b0 + n]] = out
    return result


def _edge_pad_into(out: torch.Tensor, x: torch.Tensor, ph: int, pw: int) -> None:
    """``x`` (..., H, W) into ``out`` (..., H + 2ph, W + 2pw) with its edge rows and columns repeated
    (torch's replicate padding, without allocating)."""
    h, w = x.shape[-2:]
    out[..., ph : ph + h, pw : pw + w] = x
    out[..., ph : ph + h, :pw] = x[..., :, :1]
    out[..., ph : ph + h, pw + w :] = x[..., :, -1:]
    out[..., :ph, :] = out[..., ph : ph + 1, :]
    out[..., ph + h :, :] = out[..., ph + h - 1 : ph + h, :]


def motion_blur(x, p, variants, generator, draws=None):
    """Motion blur along a random direction U(−45°, 45°) per image."""
    b = x.shape[0]
    angle = (
        draws["angle"]
        if draws is not None
        else (torch.rand(b, generator=generator, device=x.device, dtype=torch.float64) * 90 - 45)
    )
    y = motion_blur_layer(x * 255, int(p[0]), float(p[1]), angle, variants["motion_break"])
    if variants["motion_quantize"] == "png_floor":
        y = png_floor(y)
    return y.clamp(0, 255)


def png_floor(y: torch.Tensor) -> torch.Tensor:
    """ImageMagick's result read back as 8 bits through a PNG, on the 0-255 scale: the float value
    becomes a 16-bit quantum q = round(257·y), which the 8-bit PNG truncates to floor(q / 257)
    (rounding instead made generated motion blur 0.49 grey levels brighter on average). The
    quantum step also keeps a flat region at its value when float error puts it a hair below."""
    return torch.floor(torch.round(y * 257) / 257)


# ---------------------------------------------------------------- zoom


@lru_cache(maxsize=32)
def zoom_operator(h: int, w: int, end: float, step: float, crop: str) -> np.ndarray:
    """(x + sum over factors of clipped_zoom(x, z)) / (count + 1) as a dense (H·W, H·W) matrix, transposed.

    Zooming rows by A and columns by B is A X B^T, i.e. kron(A, B) on the row-major flattened image."""
    factors = np.arange(1, end, step)  # exactly the references' factor list
    m = np.eye(h * w)
    for z in factors:
        m += np.kron(clipped_zoom_matrix(h, float(z), crop), clipped_zoom_matrix(w, float(z), crop))
    return np.ascontiguousarray((m / (len(factors) + 1)).T)


def zoom_blur(x, p, variants, generator):
    """Average of the image and its centre zooms by 1, 1+step, ... < end: one matrix product up to
    32x32, a pair of small products per zoom factor for larger images."""
    h, w = x.shape[-2:]
    crop = variants["zoom_crop"]
    if h * w <= DENSE_MAX_PIXELS:
        return dense_operator(x, zoom_operator(h, w, float(p[0]), float(p[1]), crop)).mul_(255)
    factors = np.arange(1, float(p[0]), float(p[1]))
    total = x.clone()
    for z in factors:
        total += separable(x, clipped_zoom_matrix(h, float(z), crop), clipped_zoom_matrix(w, float(z), crop))
    return total.mul_(255 / (len(factors) + 1))
