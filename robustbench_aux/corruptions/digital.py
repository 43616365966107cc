"""Digital corruptions: brightness, contrast, saturate, pixelate, JPEG, elastic transform.

Same calling convention as :mod:`~robustbench_aux.corruptions.noise`: float (B, 3, H, W) in [0, 1]
in, float on the 0..255 scale out. JPEG is the one CPU path (PIL's libjpeg encoder, as in both
references); it runs in worker processes when asked to.
"""

from __future__ import annotations

import atexit
import io
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from robustbench_aux.corruptions.ops import (
    gaussian_matrix,
    on_device,
    pil_box_matrix,
    pil_nearest_matrix,
    separable,
    uniform,
)

# The references convert to HSV (scikit-image), change V or S, and convert back. In HSV every channel
# is c = V·(1 − S·w_c) with w_c a function of the hue alone, so with the hue kept:
#   V -> V':  c' = c · V'/V            (a black pixel, V = 0, becomes grey V')
#   S -> S':  c' = V − (S'/S)·(V − c)  (a grey pixel, S = 0 and hue 0, becomes (V, V(1−S'), V(1−S')))
# which is the same result without the round trip (equal up to float rounding).


def brightness(x, p, variants, generator):
    """Add ``value_shift`` to V in HSV, clipped to [0, 1]."""
    v = x.amax(1, keepdim=True)
    v_new = (v + p[0]).clamp_(max=1.0)
    out = torch.where(v > 0, x * (v_new / v.clamp(min=1e-12)), v_new)
    return out.mul_(255)


def saturate(x, p, variants, generator):
    """S -> clip(S · scale + shift, 0, 1) in HSV."""
    v = x.amax(1, keepdim=True)
    delta = v - x.amin(1, keepdim=True)
    s = torch.where(v > 0, delta / v.clamp(min=1e-12), torch.zeros_like(v))
    s_new = (s * p[0] + p[1]).clamp_(0, 1)
    ratio = s_new * v / delta.clamp(min=1e-12)  # finite: at most 1e12
    out = torch.sub(v, x).mul_(ratio)
    out = torch.sub(v, out, out=out)  # v − ratio·(v − x), one full-size buffer
    # grey pixels (delta = 0) have hue 0 in skimage's hsv2rgb: (v, v(1 − s), v(1 − s)); the formula
    # above already gives v in the first channel there
    torch.where(delta > 0, out[:, 1:], v * (1 - s_new), out=out[:, 1:])
    return out.mul_(255)


def contrast(x, p, variants, generator):
    """Scale each channel's deviation from its per-image mean by ``factor``."""
    means = x.mean(dim=(2, 3), keepdim=True)
    return x.mul(p[0] * 255).add_(means * ((1 - p[0]) * 255))


def _pil_resize(v255: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """PIL's two-pass resample on 8-bit images: horizontal pass, round to 8 bits, vertical pass, round
    (PIL skips a pass whose size does not change)."""
    if cols.shape[0] != cols.shape[1]:
        v255 = (
            torch.matmul(v255, on_device(cols, v255.device, v255.dtype).T).add_(0.5).floor_().clamp_(0, 255)
        )
    if rows.shape[0] != rows.shape[1]:
        v255 = torch.matmul(on_device(rows, v255.device, v255.dtype), v255).add_(0.5).floor_().clamp_(0, 255)
    return v255


def pixelate(x, p, variants, generator):
    """PIL box downscale by ``factor``, then upscale: box (CIFAR script) or nearest (imagecorruptions)."""
    h, w = x.shape[-2:]
    hs, ws = int(h * p[0]), int(w * p[0])
    v = torch.round(x * 255)  # the exact uint8 values
    v = _pil_resize(v, pil_box_matrix(h, hs), pil_box_matrix(w, ws))
    if variants["pixelate_up"] == "box":
        return _pil_resize(v, pil_box_matrix(hs, h), pil_box_matrix(ws, w))
    return separable(v, pil_nearest_matrix(hs, h), pil_nearest_matrix(ws, w))


# ---------------------------------------------------------------- JPEG (CPU, PIL)


def jpeg_roundtrip_numpy(images: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode each uint8 (N, H, W, 3) image with PIL's JPEG codec at ``quality``."""
    out = np.empty_like(images)
    for i, img in enumerate(images):  # libjpeg works on one image at a time
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf))  # decodes to RGB, as encoded
    return out


def _jpeg_chunk(args):
    return jpeg_roundtrip_numpy(*args)


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _pool(workers: int) -> ProcessPoolExecutor:
    """One persistent pool per worker count (starting processes per batch would cost more than JPEG)."""
    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(max_workers=workers)
        atexit.register(_POOLS[workers].shutdown)
    return _POOLS[workers]


def jpeg_numpy(images: np.ndarray, quality: int, workers: int = 1) -> np.ndarray:
    """:func:`jpeg_roundtrip_numpy` split across ``workers`` processes (1 = in this process)."""
    if workers <= 1 or len(images) < 2 * workers:
        return jpeg_roundtrip_numpy(images, quality)
    chunks = np.array_split(images, workers)
    parts = list(_pool(workers).map(_jpeg_chunk, [(c, quality) for c in chunks]))
    return np.concatenate(parts)


def jpeg_compression(x, p, variants, generator, workers: int = 1):
    """JPEG at ``quality`` through PIL on the CPU; the result goes back to ``x``'s device."""
    v = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = jpeg_numpy(np.ascontiguousarray(v), int(p[0]), workers)
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).float()


# ---------------------------------------------------------------- elastic transform


def _pixel_grid(b, h, w, device):
    rows = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1).expand(b, h, w)
    cols = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w).expand(b, h, w)
    return rows, cols


def _sample(x, rows, cols, align_corners: bool):
    """Bilinear sampling at pixel coordinates with mirrored borders.

    align_corners=True mirrors about the outer pixel centres (OpenCV BORDER_REFLECT_101);
    align_corners=False about the outer pixel edges (scipy map_coordinates mode='reflect')."""
    h, w = x.shape[-2:]
    if align_corners:  # normalised coordinate = scale * pixel + offset, per axis
        (sx, ox), (sy, oy) = (2.0 / max(w - 1, 1), -1.0), (2.0 / max(h - 1, 1), -1.0)
    else:
        (sx, ox), (sy, oy) = (2.0 / w, 1.0 / w - 1), (2.0 / h, 1.0 / h - 1)
    grid = x.new_empty((*rows.shape, 2))  # written in place: (x, y) interleaved, no stacking copy
    torch.mul(cols, sx, out=grid[..., 0]).add_(ox)
    torch.mul(rows, sy, out=grid[..., 1]).add_(oy)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=align_corners)


def _random_affine(x, jitter: float, generator):
    """The CIFAR script's affine step: three anchor points jittered by U(-jitter, jitter) px, then
    cv2.warpAffine (linear, BORDER_REFLECT_101) with the affine map between them."""
    b, _, h, w = x.shape
    center = np.float32([h, w]) // 2
    size = min(h, w) // 3
    anchors = np.array([center + size, [center[0] + size, center[1] - size], center - size])
    src = torch.tensor(anchors, dtype=torch.float64, device=x.device)  # (3, 2) as OpenCV (x, y) points
    dst = src + uniform((b, 3, 2), -jitter, jitter, generator, x.device).double()
    ones = torch.ones(3, 1, dtype=torch.float64, device=x.device)
    # dst_pt = M @ [src_pt, 1]; OpenCV's warpAffine samples the source at M^-1 (dst pixel)
    src_h = torch.cat((src, ones), 1).expand(b, 3, 3)
    m = torch.linalg.solve(src_h, dst).transpose(1, 2)  # (B, 2, 3)
    a_inv = torch.linalg.inv(m[:, :, :2])
    t = m[:, :, 2:]
    rows, cols = _pixel_grid(b, h, w, x.device)
    pts = torch.stack((cols, rows), 1).reshape(b, 2, -1).double()  # (x, y)
    src_pts = a_inv @ (pts - t)
    src_cols = src_pts[:, 0].reshape(b, h, w).float()
    src_rows = src_pts[:, 1].reshape(b, h, w).float()
    return _sample(x, src_rows, src_cols, align_corners=True)


def elastic_transform(x, p, variants, generator, draws=None):
    """Smoothed random displacement fields (and, for the CIFAR preset, a random affine warp first).

    ``draws`` may inject ``dx``/``dy``: the raw uniform fields (B, H, W) before smoothing."""
    b, _, h, w = x.shape
    alpha, sigma, jitter = p
    if variants["elastic"] == "affine+displace":
        if jitter > 0:
            x = _random_affine(x, jitter, generator)
        sig_r = sig_c = float(sigma)  # px
        amp = 1.0
    else:
        sig_r, sig_c = sigma * h, sigma * w  # imagecorruptions: sigma = 0.01 x image side
        amp = 0.005 * h
    if draws is not None:
        noise = torch.stack((draws["dx"], draws["dy"]))
    else:  # dx, then dy: drawn in this order in both references
        noise = uniform((2, b, h, w), -amp, amp, generator, x.device)
    smooth = separable(
        noise, gaussian_matrix(h, sig_r, "reflect", 3.0), gaussian_matrix(w, sig_c, "reflect", 3.0)
    ).mul_(alpha)
    if alpha == 0:  # no displacement: the reference's map_coordinates is then the identity
        return x * 255
    rows, cols = _pixel_grid(b, h, w, x.device)
    dx, dy = smooth.unbind(0)
    return _sample(x, dy.add_(rows), dx.add_(cols), align_corners=False).mul_(255)
