"""Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper), speckle.

Each function takes float images (B, 3, H, W) in [0, 1], a parameter record from
:mod:`~robustbench_aux.corruptions.presets`, the preset's variants and a torch generator, and
returns float images on the 0..255 scale. Clipping to [0, 255] and truncation to uint8 happen
once, in the caller (clip-then-scale equals scale-then-clip, so each function skips its own clip).
Every element gets its own draw, so every image does too. ``draws`` injects the random numbers
instead (the fidelity comparison feeds both implementations the same ones).
"""

from __future__ import annotations

import torch

from robustbench_aux.corruptions.ops import normal


def gaussian_noise(x, p, variants, generator, draws=None):
    """x + N(0, sigma^2) per pixel and channel (``draws["noise"]``: the scaled noise, if injected)."""
    noise = draws["noise"] if draws is not None else normal(x.shape, 0.0, p[0], generator, x.device)
    return (x + noise).mul_(255)


def shot_noise(x, p, variants, generator):
    """Poisson(x * photons) / photons: photon-counting noise."""
    c = float(p[0])
    return torch.poisson(x * c, generator=generator).mul_(255 / c)


def impulse_noise(x, p, variants, generator):
    """skimage ``random_noise(mode='s&p')``: a fraction ``amount`` of the values set to 0 or 1 (even odds).

    One uniform u per value: salt if u < amount/2, pepper if amount/2 <= u < amount. This is the
    same distribution as scikit-image's two independent Bernoulli draws, at half the random numbers."""
    u = torch.rand(x.shape, generator=generator, device=x.device)
    out = torch.where(u < p[0] / 2, 255.0, x * 255)
    return out.masked_fill_((u >= p[0] / 2) & (u < p[0]), 0.0)


def speckle_noise(x, p, variants, generator, draws=None):
    """x + x * N(0, sigma^2): multiplicative noise (``draws["noise"]``: the scaled noise, if injected)."""
    noise = draws["noise"] if draws is not None else normal(x.shape, 0.0, p[0], generator, x.device)
    return torch.addcmul(x, x, noise).mul_(255)
