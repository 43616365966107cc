"""Weather corruptions: snow, frost, fog, spatter.

Calling convention as in :mod:`~robustbench_aux.corruptions.noise`; random corruptions accept
``draws`` so tests can inject the reference's random numbers. Spatter's water branch computes its
edge map with OpenCV (Canny, distance transform, histogram equalisation) on the CPU, image by
image: that part depends only on the random liquid layer, and costs about 30 us per image.
"""

from __future__ import annotations

import numpy as np
import torch

from robustbench_aux.corruptions.blur import motion_blur_layer, png_floor
from robustbench_aux.corruptions.ops import (
    clipped_zoom_matrix,
    gaussian_filter,
    normal,
    on_device,
    rgb_to_gray,
    separable,
)
from robustbench_aux.corruptions.textures import N_USED, frost_textures

# ---------------------------------------------------------------- snow


def snow(x, p, variants, generator, draws=None):
    """A thresholded, zoomed, motion-blurred noise layer (and its 180° rotation) over a brightened image."""
    loc, scale, zoom, threshold, radius, sigma, blend = p
    b, _, h, w = x.shape
    if draws is not None:
        layer, angle = draws["layer"], draws["angle"]
    else:
        layer = normal((b, 1, h, w), loc, scale, generator, x.device)
        angle = torch.rand(b, generator=generator, device=x.device, dtype=torch.float64) * 90 - 135
    # the CIFAR script trims the zoomed layer back to the image; imagecorruptions keeps it oversized
    # through the motion blur and crops afterwards
    crop = "center" if variants["zoom_crop"] == "center" else None
    layer = separable(
        layer, clipped_zoom_matrix(h, float(zoom), crop), clipped_zoom_matrix(w, float(zoom), crop)
    )
    layer = layer.masked_fill_(layer < threshold, 0).clamp_(0, 1)
    if variants["snow_quantize"]:  # stored as an 8-bit PNG for ImageMagick
        layer = layer.mul_(255).floor_().div_(255)
    layer = motion_blur_layer(layer, int(radius), float(sigma), angle, variants["motion_break"])
    if variants["motion_quantize"] == "png_floor":  # read back through an 8-bit PNG: truncated
        layer = png_floor(layer.mul_(255)).div_(255)[..., :h, :w]
    else:  # imagecorruptions rounds its float layer to 8 bits
        layer = layer.mul_(255).round_().div_(255)[..., :h, :w]
    # blend·x + (1 − blend)·max(x, 1.5·gray + 0.5), + layer + layer rotated by 180°; in place on
    # one full-size buffer (the chain of temporaries it replaces made snow 1.5x slower on the CPU)
    out = torch.maximum(x, rgb_to_gray(x).mul_(1.5).add_(0.5)).mul_(1 - blend)
    out = out.add_(x, alpha=blend).add_(layer).add_(torch.flip(layer, (2, 3)))
    return out.mul_(255)


# ---------------------------------------------------------------- frost


def frost(x, p, variants, generator, draws=None):
    """Blend with a random crop of one of five frost textures: clip(a·x + b·texture)."""
    b, _, h, w = x.shape
    textures = frost_textures(variants["frost_scale"], h, w)
    sizes = torch.tensor([t.shape[:2] for t in textures], device=x.device)  # (5, 2)
    if draws is not None:
        index, row, col = draws["index"], draws["row"], draws["col"]
    else:
        index = torch.randint(N_USED, (b,), generator=generator, device=x.device)
        u = torch.rand((b, 2), generator=generator, device=x.device, dtype=torch.float64)
        span = (sizes[index] - torch.tensor([h, w], device=x.device)).double()
        row, col = (u * span).floor().long().unbind(1)
    stack = _texture_stack(textures, x.device)  # (5, Hmax, Wmax, 3) uint8
    rr = (row[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cc = (col[:, None] + torch.arange(w, device=x.device))[:, None, :]
    crops = stack[index[:, None, None], rr, cc].permute(0, 3, 1, 2).to(x.dtype)  # (B, 3, H, W)
    return (p[0] * torch.round(x * 255) + p[1] * crops).clamp(0, 255)


# (id(textures), device) -> (textures, stacked tensor); holding the tuple keeps its id from being reused
_STACKS: dict[tuple, tuple] = {}


def _texture_stack(textures, device) -> torch.Tensor:
    """The textures zero-padded to a common size, (5, Hmax, Wmax, 3) uint8, cached per device."""
    key = (id(textures), str(device))
    hit = _STACKS.get(key)
    if hit is None or hit[0] is not textures:
        hm = max(t.shape[0] for t in textures)
        wm = max(t.shape[1] for t in textures)
        stack = np.zeros((len(textures), hm, wm, 3), np.uint8)
        for i, t in enumerate(textures):
            stack[i, : t.shape[0], : t.shape[1]] = t
        hit = (textures, torch.from_numpy(stack).to(device))
        _STACKS[key] = hit
    return hit[1]


# ---------------------------------------------------------------- fog


def plasma_fractal(
    b: int, mapsize: int, decay: float, generator, device, dtype=torch.float32
) -> torch.Tensor:
    """Diamond-square height maps (B, mapsize, mapsize) in [0, 1], one per image, batched.

    The references' algorithm: start from 0, alternately fill square centres and diamond
    centres with the mean of their corners plus uniform noise of amplitude wibble² (wibble
    starts at 100 and is divided by ``decay`` per level), then normalise to [0, 1].
    """
    m = torch.zeros((b, mapsize, mapsize), device=device, dtype=dtype)
    step, wibble = mapsize, 100.0

    def wibbled_mean(total):
        noise = (
            torch.rand(total.shape, generator=generator, device=device, dtype=dtype) * (2 * wibble) - wibble
        )
        return total / 4 + wibble * noise

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        squares = corners + torch.roll(corners, -1, 1)
        squares = squares + torch.roll(squares, -1, 2)
        m[:, half::step, half::step] = wibbled_mean(squares)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = wibbled_mean(dr + torch.roll(dr, 1, 1) + ul + torch.roll(ul, -1, 2))
        m[:, half::step, 0::step] = wibbled_mean(dr + torch.roll(dr, 1, 2) + ul + torch.roll(ul, -1, 1))
        step //= 2
        wibble /= decay
    m = m - m.amin((1, 2), keepdim=True)
    return m / m.amax((1, 2), keepdim=True)


def fog(x, p, variants, generator, draws=None):
    """Add ``strength`` x a plasma fractal, then rescale by max/(max + strength) per image."""
    strength, decay = p
    b, _, h, w = x.shape
    if draws is not None:
        plasma = draws["plasma"]
    else:
        size = 1 << (max(h, w) - 1).bit_length()  # next power of two (32 for CIFAR)
        plasma = plasma_fractal(b, size, float(decay), generator, x.device)
    max_val = x.amax((1, 2, 3), keepdim=True)
    y = x + strength * plasma[:, None, :h, :w].to(x.dtype)
    return y.mul_(max_val * 255 / (max_val + strength))


# ---------------------------------------------------------------- spatter

_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, added to channels 0, 1, 2 as in the references
_MUD = (63 / 255, 42 / 255, 20 / 255)
_EMBOSS = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])


def water_edge_map(liquid_u8: np.ndarray) -> np.ndarray:
    """The references' OpenCV edge/distance map of one 8-bit liquid layer (H, W) -> float32 (H, W)."""
    import cv2

    dist = cv2.distanceTransform(255 - cv2.Canny(liquid_u8, 50, 150), cv2.DIST_L2, 5)
    dist = np.minimum(dist, 20)  # THRESH_TRUNC at 20 px
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.filter2D(dist, cv2.CV_8U, _EMBOSS)
    return cv2.blur(dist, (3, 3)).astype(np.float32)


def spatter(x, p, variants, generator, draws=None):
    """Water drops (edge-shaded turquoise) at severities with mud=0, opaque mud blobs with mud=1."""
    loc, scale, sigma, threshold, intensity, mud = p
    b, c, h, w = x.shape
    liquid = draws["liquid"] if draws is not None else normal((b, h, w), loc, scale, generator, x.device)
    liquid = gaussian_filter(liquid, sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if not mud:
        liquid_u8 = torch.floor(liquid * 255).clamp(0, 255)  # (liquid * 255).astype(np.uint8)
        host = liquid_u8.to(torch.uint8).cpu().numpy()
        dist = torch.from_numpy(np.stack([water_edge_map(a) for a in host])).to(x.device, x.dtype)
        m = liquid_u8 * dist
        peak = m.amax((1, 2), keepdim=True)
        m = m / peak.clamp_min(1e-30) * intensity
        color = on_device(np.array(_WATER).reshape(1, 3, 1, 1), x.device, x.dtype)
        out = (x + m[:, None] * color).clamp(0, 1) * 255
        # with no liquid above the threshold the references divide 0 by 0 and np.uint8(nan) gives 0:
        # an all-black image. Reproduced, as it is in the published data.
        return torch.where(peak[:, None] > 0, out, torch.zeros_like(out))
    m = (liquid > threshold).to(x.dtype)
    m = gaussian_filter(m, intensity)
    m = torch.where(m < 0.8, torch.zeros_like(m), m)[:, None]
    color = on_device(np.array(_MUD).reshape(1, 3, 1, 1), x.device, x.dtype)
    return (x * (1 - m) + color * m).mul_(255)
