"""The ten CIFAR-10-C-bar corruptions (Mintun et al., NeurIPS 2021), batched on any device.

Algorithms as described by the authors' ``corrupt.py`` (facebookresearch/augmentation-corruption,
``imagenet_c_bar/``) at 32x32; the parameter of each severity is the authors' level out of 10
(``cifar10_c_bar.csv``, in :mod:`.presets`). Each corruption is two functions:

- ``sample_<name>(b, level, generator, device) -> dict``: every random number one image needs,
  drawn per image from ``generator`` (the authors draw the same quantities, from numpy);
- ``<name>(x01, p, variants, generator, draws=None)``: the registered entry point (same calling
  convention as the CIFAR-C corruptions: float (B, 3, H, W) in [0, 1] in, float on the 0..255
  scale out, clipped and truncated to uint8 by :func:`~.engine.corrupt_batch`). ``draws`` replaces
  the sampled dict (the fidelity tests pass the reference port's own draws).

The images are first recovered as exact grey levels (``round(x · 255)``); the arithmetic is float64.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from robustbench_aux.corruptions.cbar_ops import (
    TWO_PI,
    bilinear_zero,
    level_parameter,
    line_aa,
    pixel_grid,
    spectral_noise,
    spline_prefilter_matrix,
    spline_sampling_matrix,
    star_weight,
)
from robustbench_aux.corruptions.ops import dense_operator

GREY = 128.0  # the grey of checkerboard cutout and lines
MAX_RAYS = 199  # rays are drawn in 50..199
SPARKLES = 5
PINCH_CELLS = 3  # pinch and twirl: a 3x3 grid of 10-px cells at 32x32
CIRCULAR_TAPS = 21


def _grey_levels(x01: torch.Tensor) -> torch.Tensor:
    return torch.round(x01.double() * 255)


def _uniform(shape, low, high, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64) * (high - low) + low


def _randint(shape, low, high, generator, device) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator, device=device)


def _draws(draws, sampler, x01, level, generator) -> dict:
    if draws is not None:
        return {k: torch.as_tensor(v, device=x01.device) for k, v in draws.items()}
    return sampler(x01.shape[0], level, generator, x01.device)


# ---------------------------------------------------------------- noise


def sample_blue_noise_sample(b, level, generator, device) -> dict:
    return {"phases": _uniform((b, 1, 32, 16), 0, TWO_PI, generator, device)}


def blue_noise_sample(x01, p, variants, generator, draws=None):
    """Keep the pixels where a unit-std blue-noise field exceeds 0.3·level − 2.5; black elsewhere."""
    d = _draws(draws, sample_blue_noise_sample, x01, p[0], generator)
    threshold = level_parameter(p[0], 3.0) - 2.5
    mask = spectral_noise(d["phases"], "blue") > threshold  # (B, 1, H, W)
    return _grey_levels(x01) * mask


def sample_brownish_noise(b, level, generator, device) -> dict:
    return {"phases": _uniform((b, 3, 32, 16), 0, TWO_PI, generator, device)}


def brownish_noise(x01, p, variants, generator, draws=None):
    """Add 6.4·level times a unit-std brownish (1/(f² + 1) power) noise field, one per channel."""
    d = _draws(draws, sample_brownish_noise, x01, p[0], generator)
    return _grey_levels(x01) + level_parameter(p[0], 64) * spectral_noise(d["phases"], "brown")


# ---------------------------------------------------------------- overlays


def _star_lengths(b, n, mean, generator, device) -> torch.Tensor:
    return torch.randn((b, n, MAX_RAYS), generator=generator, device=device, dtype=torch.float64)


def sample_sparkles(b, level, generator, device) -> dict:
    return {
        "centres": _uniform((b, SPARKLES, 2), 0, 32, generator, device),
        "rays": _randint((b, SPARKLES), 50, 200, generator, device),
        "normals": _star_lengths(b, SPARKLES, 0, generator, device),
    }


def sparkles(x01, p, variants, generator, draws=None):
    """Five white ray-stars of radius 0.32·level px, one after another (each over the last)."""
    d = _draws(draws, sample_sparkles, x01, p[0], generator)
    b, _, h, w = x01.shape
    radius = level_parameter(p[0], 0.1) * 32
    lengths = (radius + 0.25 * radius * d["normals"]).clamp(min=1.0)
    v = _grey_levels(x01)
    for k in range(SPARKLES):
        f = star_weight(d["centres"][:, k], lengths[:, k], d["rays"][:, k].long(), 1.0, h, w)
        v = v.float().double()  # each pass starts from single-precision values, as the reference's
        v = v + f.unsqueeze(1) * (255.0 - v)
    return v


def sample_inverse_sparkles(b, level, generator, device) -> dict:
    return {
        "centre": _uniform((b, 2), 0.25, 0.75, generator, device) * 32,
        "rays": _randint((b,), 50, 200, generator, device),
        "normals": torch.randn((b, MAX_RAYS), generator=generator, device=device, dtype=torch.float64),
    }


def inverse_sparkles(x01, p, variants, generator, draws=None):
    """White everywhere except a dark ray-star of radius 8 px that shows the image."""
    d = _draws(draws, sample_inverse_sparkles, x01, p[0], generator)
    _, _, h, w = x01.shape
    radius = 0.25 * 32
    amount = 100 - level_parameter(p[0], 65)
    lengths = radius + 0.25 * radius * d["normals"]
    f = star_weight(d["centre"], lengths, d["rays"].long(), (100 - amount) / 50.0, h, w)
    return 255.0 + f.unsqueeze(1) * (_grey_levels(x01) - 255.0)


def sample_checkerboard_cutout(b, level, generator, device) -> dict:
    scale = (_uniform((b,), 0.1, 0.25, generator, device) * 32).clamp(min=1.0)
    return {
        "angle": _uniform((b,), 0, TWO_PI, generator, device),
        "scale": scale,
        "grid": torch.rand((b, 40, 40), generator=generator, device=device, dtype=torch.float64),
    }


def checkerboard_cutout(x01, p, variants, generator, draws=None):
    """A rotated checkerboard of side 3.2-8 px; a fraction 0.1·level of its dark squares turn grey."""
    d = _draws(draws, sample_checkerboard_cutout, x01, p[0], generator)
    b, _, h, w = x01.shape
    angle, scale = d["angle"].view(b, 1, 1), d["scale"].view(b, 1, 1)
    size = torch.floor(4 * 32 / d["scale"]).long().view(b, 1, 1)  # the grid's side per image
    rows, cols = pixel_grid(b, h, w, x01.device)
    nx = (torch.cos(angle) * rows + torch.sin(angle) * cols) / scale
    ny = (-torch.sin(angle) * rows + torch.cos(angle) * cols) / scale
    dark = torch.remainder(nx, 2).trunc() == torch.remainder(ny, 2).trunc()
    grid = d["grid"]
    side = grid.shape[-1]
    # a negative index counts from the grid's end (numpy indexing): the remainder does the same
    gi = torch.remainder(nx.trunc().long(), size)
    gj = torch.remainder(ny.trunc().long(), size)
    cut = grid.reshape(b, -1).gather(1, (gi * side + gj).reshape(b, -1)).reshape(b, h, w)
    cut = cut < level_parameter(p[0], 1.0)
    return torch.where((dark & cut).unsqueeze(1), GREY, _grey_levels(x01))


def lines_count(level: float) -> int:
    return int(level_parameter(level, 1.0) * 32)


def sample_lines(b, level, generator, device) -> dict:
    return {
        "angle": _uniform((b,), 0, TWO_PI, generator, device),
        "variation": _uniform((b,), 0.1, 1.0, generator, device),
        "lines": torch.rand(
            (b, lines_count(level), 3), generator=generator, device=device, dtype=torch.float64
        ),
    }


def lines(x01, p, variants, generator, draws=None):
    """int(3.2·level) anti-aliased grey lines of half-length 32 px around one random direction."""
    d = _draws(draws, sample_lines, x01, p[0], generator)
    b, _, h, w = x01.shape
    v = _grey_levels(x01)
    length = 32.0
    u = d["lines"]
    for k in range(u.shape[1]):
        x = 32 * u[:, k, 0]
        y = 32 * u[:, k, 1]
        a = d["angle"] + TWO_PI * d["variation"] * (u[:, k, 2] - 0.5)
        s, c = torch.sin(a) * length, torch.cos(a) * length
        # int() truncates toward zero; x is the row coordinate, y the column
        rows, cols, cover, valid = line_aa(
            (x - c).trunc().long(), (y - s).trunc().long(), (x + c).trunc().long(), (y + s).trunc().long()
        )
        valid = valid & (rows >= 0) & (cols >= 0) & (rows < h) & (cols < w)
        v = _blend_line(v, rows, cols, cover, valid)
    return v


def _blend_line(v, rows, cols, cover, valid):
    """out[r, c] = trunc((1 − cover)·out[r, c] + cover·128) for one line per image, all pixels read
    before any is written; where a line emits a pixel twice the later emission wins."""
    b, ch, h, w = v.shape
    k = rows.shape[1]
    image = torch.arange(b, device=v.device).view(b, 1).expand(b, k)
    key = image * (h * w) + rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)
    order = torch.arange(k, device=v.device).view(1, k).expand(b, k)
    last = torch.full((b * h * w,), -1, dtype=torch.long, device=v.device)
    last.scatter_reduce_(0, key[valid], order[valid], reduce="amax")
    keep = valid & (last[key] == order)
    key, cover = key[keep], cover[keep]
    flat = v.permute(1, 0, 2, 3).reshape(ch, -1)
    old = flat[:, key]
    flat[:, key] = torch.trunc((1.0 - cover) * old + cover * GREY)
    return flat.reshape(ch, b, h, w).permute(1, 0, 2, 3).contiguous()


# ---------------------------------------------------------------- warps


def sample_pinch_and_twirl(b, level, generator, device) -> dict:
    signs = _randint((b, PINCH_CELLS, PINCH_CELLS), 0, 2, generator, device) * 2 - 1
    return {"signs": signs}


@lru_cache(maxsize=16)
def _pinch_geometry(n: int, level: float) -> dict:
    """The image-independent part of pinch and twirl at one level, per pixel (numpy float64): the
    cell, the pinched offsets, cos and sin of the twirl angle's magnitude, which pixels move."""
    amount = level_parameter(level, 0.4) + 0.1
    magnitude = level_parameter(level, math.pi / 2)
    cell = 32 // PINCH_CELLS
    radius = cell / 2
    rows, cols = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    ci = np.minimum(cols // cell, PINCH_CELLS - 1).astype(np.int64)  # column cell (the authors' i)
    cj = np.minimum(rows // cell, PINCH_CELLS - 1).astype(np.int64)
    inside = (rows < PINCH_CELLS * cell) & (cols < PINCH_CELLS * cell)
    cy, cx = cj * cell + radius, ci * cell + radius
    dy, dx = rows - cy, cols - cx
    dist = np.sqrt(dy * dy + dx * dx)
    warp = inside & (dist <= radius) & (np.round(dist, 3) != 0)
    dd = np.where(warp, dist / radius, 0.5)
    t = np.sin(np.pi * 0.5 * dd) ** (-amount)
    a = magnitude * (1 - dd) ** 2  # the twirl angle's magnitude; its sign is the cell's draw
    return {
        "cell": ci * PINCH_CELLS + cj,
        "inside": inside,
        "warp": warp,
        "rows": rows,
        "cols": cols,
        "cy": cy,
        "cx": cx,
        "dyt": dy * t,
        "dxt": dx * t,
        "cos": np.cos(a),
        "sin": np.sin(a),
    }


def pinch_and_twirl(x01, p, variants, generator, draws=None):
    """A 3x3 grid of 10-px cells; in each, a pinch (amount 0.04·level + 0.1) and a twirl of
    ±level·π/20 radians that fades out towards the cell's inscribed circle.

    Everything but the twirl's direction is the same for every image (:func:`_pinch_geometry`);
    sin(−a) = −sin(a) and cos(−a) = cos(a) exactly, so the per-image part is one sign per cell."""
    d = _draws(draws, sample_pinch_and_twirl, x01, p[0], generator)
    b, _, h, w = x01.shape
    geo = {k: torch.as_tensor(v, device=x01.device) for k, v in _pinch_geometry(h, float(p[0])).items()}
    sign = d["signs"].reshape(b, -1).double()[:, geo["cell"].reshape(-1)].reshape(b, h, w)
    s = sign * geo["sin"]
    ny = geo["cy"] + geo["dyt"] * geo["cos"] - geo["dxt"] * s
    nx = geo["cx"] + geo["dyt"] * s + geo["dxt"] * geo["cos"]
    ny = torch.where(geo["warp"], ny, geo["rows"])
    nx = torch.where(geo["warp"], nx, geo["cols"])
    v = _grey_levels(x01)
    out = bilinear_zero(v, ny, nx)
    return torch.where(geo["inside"], out.float().double(), v)


def sample_ripple(b, level, generator, device) -> dict:
    return {
        "wavelengths": _uniform((b, 2), 0.1, 0.3, generator, device) * 32,
        "phases": _uniform((b, 2), 0, TWO_PI, generator, device),
    }


def ripple(x01, p, variants, generator, draws=None):
    """Sine displacement of amplitude 0.08·level px along each axis (wavelength 3.2-9.6 px)."""
    d = _draws(draws, sample_ripple, x01, p[0], generator)
    b, _, h, w = x01.shape
    amp = level_parameter(p[0], 0.025) * 32
    rows, cols = pixel_grid(b, h, w, x01.device)
    wl, ph = d["wavelengths"].view(b, 2, 1, 1), d["phases"].view(b, 2, 1, 1)
    nr = rows + amp * torch.sin(TWO_PI * rows / wl[:, 0] + ph[:, 0])
    nc = cols + amp * torch.sin(TWO_PI * cols / wl[:, 1] + ph[:, 1])
    return bilinear_zero(_grey_levels(x01), nr, nc)


@lru_cache(maxsize=32)
def zoom_matrix(n: int, scale: float) -> np.ndarray:
    """scipy ``ndimage.zoom(order=3, prefilter=False)`` of a length-n signal by ``scale``, centre
    cropped back to n, as an (n, n) matrix (built by zooming the unit vectors)."""
    from scipy import ndimage

    columns = [ndimage.zoom(np.eye(n)[k], scale, order=3, prefilter=False) for k in range(n)]
    m = np.stack(columns, axis=1)  # (n_out, n)
    edge = (m.shape[0] - n) // 2
    return np.ascontiguousarray(m[edge : edge + n])


def tca_scales(level: float) -> tuple[float, float, float]:
    scale = level_parameter(level, 0.5)
    return (1.0, 1.0 + scale / 2, 1.0 + scale)


def sample_transverse_chromatic_abberation(b, level, generator, device) -> dict:
    order = torch.rand((b, 3), generator=generator, device=device).argsort(dim=1)
    return {"permutation": order}


def transverse_chromatic_abberation(x01, p, variants, generator, draws=None):
    """Each channel zoomed about the centre by one of 1, 1 + 0.025·level, 1 + 0.05·level (a random
    assignment per image; cubic B-spline without prefilter), rounded to 8 bits per channel."""
    d = _draws(draws, sample_transverse_chromatic_abberation, x01, p[0], generator)
    b, ch, h, w = x01.shape
    v = _grey_levels(x01)
    scales = torch.as_tensor(tca_scales(p[0]), device=x01.device, dtype=torch.float64)
    chosen = scales[d["permutation"].long()]  # (B, 3): the scale of each channel
    out = torch.empty_like(v)
    for s in tca_scales(p[0]):
        m = torch.as_tensor(zoom_matrix(h, s), device=x01.device)
        zoomed = torch.matmul(torch.matmul(m, v), m.T)
        out = torch.where((chosen == s).view(b, ch, 1, 1), zoomed, out)
    # scipy writes an 8-bit result: negative -> 0, else rounded half up (and capped at 255)
    return torch.floor(out.clamp(min=0) + 0.5).clamp(max=255)


@lru_cache(maxsize=16)
def circular_matrix_t(n: int, amount: float) -> np.ndarray:
    """The transposed (n², n²) matrix of the circular motion blur: the Gaussian-weighted mean of 21
    rotations by −amount..+amount degrees as scipy's ``ndimage.rotate`` does them (cubic spline,
    constant 0 outside, same size; :func:`~.cbar_ops.spline_rotation_matrix`)."""
    taps = [2 * i / (CIRCULAR_TAPS - 1) - 1 for i in range(CIRCULAR_TAPS)]
    weights = [math.exp(-2 * t * t) for t in taps]
    total = sum(w * spline_sampling_matrix(n, t * amount) for w, t in zip(weights, taps))
    m = (total / sum(weights)) @ spline_prefilter_matrix(n)
    return np.ascontiguousarray(m.T)


def circular_motion_blur(x01, p, variants, generator, draws=None):
    """Blur along circles about the centre: rotations by up to ±1.5·level degrees, Gaussian weighted."""
    h = x01.shape[-1]
    m_t = circular_matrix_t(h, level_parameter(p[0], 15))
    return dense_operator(x01.float(), m_t).double().mul_(255)


SAMPLERS = {
    "blue_noise_sample": sample_blue_noise_sample,
    "brownish_noise": sample_brownish_noise,
    "checkerboard_cutout": sample_checkerboard_cutout,
    "inverse_sparkles": sample_inverse_sparkles,
    "lines": sample_lines,
    "pinch_and_twirl": sample_pinch_and_twirl,
    "ripple": sample_ripple,
    "sparkles": sample_sparkles,
    "transverse_chromatic_abberation": sample_transverse_chromatic_abberation,
}
IMPLEMENTATIONS = {
    "blue_noise_sample": blue_noise_sample,
    "brownish_noise": brownish_noise,
    "checkerboard_cutout": checkerboard_cutout,
    "circular_motion_blur": circular_motion_blur,
    "inverse_sparkles": inverse_sparkles,
    "lines": lines,
    "pinch_and_twirl": pinch_and_twirl,
    "ripple": ripple,
    "sparkles": sparkles,
    "transverse_chromatic_abberation": transverse_chromatic_abberation,
}
