"""Batched building blocks of the CIFAR-10-C-bar corruptions (see :mod:`.cbar`).

Everything here works on a whole batch at once on any device, in float64 (the images are 32x32,
so double precision costs little and keeps thresholds and sampling positions where the
authors' numpy code puts them):

- :func:`spectral_noise`: real part of the inverse FFT of a radial power spectrum with random
  phases, normalised to unit standard deviation (blue and brownish noise);
- :func:`bilinear_zero`: bilinear sampling at pixel coordinates, zero outside the image;
- :func:`star_weight`: the ray-star weight of sparkles and inverse sparkles;
- :func:`line_aa`: the anti-aliased line raster of scikit-image's ``draw.line_aa`` for a batch
  of lines, stepped in lockstep;
- :func:`spline_prefilter_matrix` / :func:`spline_sampling_matrix`: scipy's cubic-spline
  ``ndimage.rotate`` (``reshape=False``, ``mode="constant"``) of an n x n image as two (n², n²)
  matrices, prefilter and sampling (their product is the rotation).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from robustbench_aux.corruptions.ops import fold_index

TWO_PI = 2 * math.pi


def level_parameter(level: float, maxval: float) -> float:
    """The authors' ``float_parameter``: a severity level out of 10 scaled to ``maxval``."""
    return float(level) * maxval / 10.0


@lru_cache(maxsize=8)
def _radius_map(size: int, kind: str) -> np.ndarray:
    """Distance of every (row, col) from (size/2, size/2), or 1/(d² + 1) for brownish noise."""
    centre = size / 2
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    d = np.sqrt((cols - centre) ** 2 + (rows - centre) ** 2)
    return d if kind == "blue" else 1.0 / (d**2 + 1)


def spectral_noise(phases: torch.Tensor, kind: str) -> torch.Tensor:
    """Noise fields from half-plane phases (..., S, S/2) in [0, 2π): (..., S, S), unit std each.

    The phases are mirrored (flipped in both axes) into the second half, multiplied with the
    radial power (``blue``: distance from the centre, ``brown``: 1/(distance² + 1)), rolled by
    S/2 in both axes, inverse-FFT'd; the real part is divided by its (population) std."""
    size = phases.shape[-2]
    full = torch.cat((phases, phases.flip(-2, -1)), dim=-1).double()
    # roll the phases and the power instead of the complex spectrum (the same values, cheaper)
    full = torch.roll(full, shifts=(size // 2, size // 2), dims=(-2, -1))
    power = torch.roll(
        torch.as_tensor(_radius_map(size, kind), device=phases.device), (size // 2, size // 2), (0, 1)
    )
    spectrum = torch.complex(power * torch.cos(full), power * torch.sin(full))
    noise = torch.fft.ifft2(spectrum).real
    return noise / noise.std(dim=(-2, -1), correction=0, keepdim=True)


def bilinear_zero(v: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Sample images ``v`` (B, C, H, W) at pixel coordinates ``rows``/``cols`` (B, H, W): bilinear,
    every tap outside the image reads 0 (the authors' ``bilinear_interpolation``)."""
    b, c, h, w = v.shape
    r0, c0 = torch.floor(rows), torch.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.long(), c0.long()
    flat = v.reshape(b, c, h * w)
    out = torch.zeros_like(v)
    for dr, dc, weight in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        index = (rr.clamp(0, h - 1) * w + cc.clamp(0, w - 1)).reshape(b, 1, h * w).expand(b, c, h * w)
        taps = flat.gather(2, index).reshape(b, c, h, w)
        out += taps * (weight * inside).unsqueeze(1)
    return out


def pixel_grid(b: int, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index maps (B, H, W), float64."""
    rows = torch.arange(h, device=device, dtype=torch.float64).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, device=device, dtype=torch.float64).view(1, 1, w).expand(b, h, w)
    return rows, cols


def star_weight(
    centre: torch.Tensor, lengths: torch.Tensor, rays: torch.Tensor, exponent: float, h: int, w: int
) -> torch.Tensor:
    """The sparkle weight f in [0, 1] of every pixel (B, H, W) for one star per image.

    ``centre`` (B, 2) as (row, col); ``lengths`` (B, R_max) the ray lengths (the first ``rays[b]``
    used); ``rays`` (B,) the number of rays. Per pixel: the angle atan2(dcol, drow) picks two
    neighbouring rays, their length is interpolated linearly, g = (length² / (d² + 1e-4)) ** exponent,
    and f = (1 − (frac − 0.5)²) · g, clipped to [0, 1]."""
    b = centre.shape[0]
    rows, cols = pixel_grid(b, h, w, centre.device)
    dr = rows - centre[:, 0].view(b, 1, 1)
    dc = cols - centre[:, 1].view(b, 1, 1)
    dist2 = dr * dr + dc * dc
    n = rays.view(b, 1, 1).double()
    d = (torch.atan2(dc, dr) + math.pi) / TWO_PI * n
    i = torch.floor(d)
    frac = d - i
    i = i.long()
    k = rays.view(b, 1, 1)
    first = lengths.gather(1, (i % k).reshape(b, -1)).reshape(b, h, w)
    second = lengths.gather(1, ((i + 1) % k).reshape(b, -1)).reshape(b, h, w)
    length = first + frac * (second - first)
    g = length * length / (dist2 + 1e-4)
    if exponent != 1.0:
        g = g**exponent
    return ((1 - (frac - 0.5) ** 2) * g).clamp_(0, 1)


def line_aa(r0: torch.Tensor, c0: torch.Tensor, r1: torch.Tensor, c1: torch.Tensor):
    """Anti-aliased line rasters of N lines at once (integer endpoints, long tensors of shape (N,)).

    Returns ``(rows, cols, values, valid)``, each (N, K): the K emitted pixels per line in the
    order scikit-image's ``draw.line_aa`` emits them, their coverage in [0, 1], and which of the K
    slots a line really emitted (lines differ in length). Every step emits the pixel on the line
    and up to two neighbours with the error-based coverage; the error is kept in single precision
    (float32) as in scikit-image's implementation."""
    dc = (c0 - c1).abs()
    dr = (r0 - r1).abs()
    sign_c = torch.where(c0 < c1, 1, -1)
    sign_r = torch.where(r0 < r1, 1, -1)
    ed = torch.where(dc + dr == 0, 1.0, torch.sqrt((dc * dc + dr * dr).double())).float().double()
    err = (dc - dr).clone()  # integer-valued throughout (exact in float32 at these sizes)
    c, r = c0.clone(), r0.clone()
    active = torch.ones_like(c0, dtype=torch.bool)
    rows, cols, vals, valid = [], [], [], []

    def emit(rr, cc, value, mask):
        rows.append(rr.clone())
        cols.append(cc.clone())
        vals.append(value)
        valid.append(mask.clone())

    for _ in range(int((dc + dr).max().item() if len(dc) else 0) + 2):
        if not bool(active.any()):
            break
        emit(r, c, (err - dc + dr).abs() / ed, active)
        e0, c_prev = err.clone(), c.clone()
        step_c = active & (2 * e0 >= -dc)
        stop = step_c & (c == c1)
        step_c = step_c & ~stop
        emit(r + sign_r, c, (e0 + dr).abs() / ed, step_c & ((e0 + dr) < ed))
        err = torch.where(step_c, err - dr, err)
        c = torch.where(step_c, c + sign_c, c)
        active = active & ~stop
        step_r = active & (2 * e0 <= dr)
        stop = step_r & (r == r1)
        step_r = step_r & ~stop
        emit(r, c_prev + sign_c, (dc - e0).abs() / ed, step_r & ((dc - e0) < ed))
        err = torch.where(step_r, err + dc, err)
        r = torch.where(step_r, r + sign_r, r)
        active = active & ~stop
    if not rows:
        empty = torch.zeros((len(r0), 0), dtype=torch.long, device=r0.device)
        return empty, empty, empty.double(), empty.bool()
    values = 1.0 - torch.stack(vals, 1)
    return torch.stack(rows, 1), torch.stack(cols, 1), values, torch.stack(valid, 1)


def _cubic_bspline(t: np.ndarray) -> np.ndarray:
    t = np.abs(t)
    return np.where(t < 1, 2 / 3 - t**2 + t**3 / 2, np.where(t < 2, (2 - t) ** 3 / 6, 0.0))


@lru_cache(maxsize=4)
def spline_prefilter_matrix(n: int) -> np.ndarray:
    """The cubic B-spline prefilter of an n x n image (mirror boundary, both axes) as (n², n²)."""
    from scipy import ndimage

    p1 = ndimage.spline_filter1d(np.eye(n), 3, axis=0, mode="mirror")  # column k: filtered e_k
    return np.kron(p1, p1)


def spline_sampling_matrix(n: int, angle_deg: float) -> np.ndarray:
    """Cubic B-spline evaluation of prefiltered coefficients at the source positions of a rotation
    by ``angle_deg`` about the image centre, as ``ndimage.rotate(reshape=False)`` maps them: an
    output pixel whose source lies outside [0, n − 1] in either axis is 0 (mode "constant"); taps
    beyond the border read mirrored coefficients. Returns (n², n²): output pixel x input pixel."""
    from scipy import special

    c, s = special.cosdg(angle_deg), special.sindg(angle_deg)
    rot = np.array([[c, s], [-s, c]])
    centre = (np.array([n, n]) - 1) / 2
    offset = centre - rot @ centre
    rows, cols = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    src = rot @ np.stack([rows.ravel(), cols.ravel()]) + offset[:, None]
    inside = (src >= 0).all(0) & (src <= n - 1).all(0)
    m = np.zeros((n * n, n * n))
    out = np.arange(n * n)
    base = np.floor(src).astype(int)
    for dr in range(-1, 3):
        for dc in range(-1, 3):
            r, cc = base[0] + dr, base[1] + dc
            w = _cubic_bspline(src[0] - r) * _cubic_bspline(src[1] - cc) * inside
            np.add.at(m, (out, fold_index(r, n, "mirror") * n + fold_index(cc, n, "mirror")), w)
    return m
