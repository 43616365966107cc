"""Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper), speckle.

Each function takes float images (B, 3, H, W) in [0, 1], a parameter record from
:mod:`~robustbench_aux.corruptions.presets`, the preset's variants and a torch generator, and
returns float images on the 0..255 scale (clipping and truncation to uint8 happen in the caller).
Every element gets its own draw, so every image does too. ``draws`` injects the random numbers
instead (the fidelity comparison feeds both implementations the same ones).
"""

from __future__ import annotations

import torch

from robustbench_aux.corruptions.ops import normal


def gaussian_noise(x, p, variants, generator, draws=None):
    """x + N(0, sigma^2) per pixel and channel (``draws["noise"]``: the scaled noise, if injected)."""
    noise = draws["noise"] if draws is not None else normal(x.shape, 0.0, p[0], generator, x.device)
    return (x + noise).clamp(0, 1) * 255


def shot_noise(x, p, variants, generator):
    """Poisson(x * photons) / photons: photon-counting noise."""
    c = float(p[0])
    return (torch.poisson(x * c, generator=generator) / c).clamp(0, 1) * 255


def impulse_noise(x, p, variants, generator):
    """skimage ``random_noise(mode='s&p')``: a fraction ``amount`` of the values set to 0 or 1 (even odds)."""
    flipped = torch.rand(x.shape, generator=generator, device=x.device) <= p[0]
    salted = torch.rand(x.shape, generator=generator, device=x.device) <= 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    out = torch.where(flipped & ~salted, torch.zeros_like(x), out)
    return out * 255


def speckle_noise(x, p, variants, generator, draws=None):
    """x + x * N(0, sigma^2): multiplicative noise (``draws["noise"]``: the scaled noise, if injected)."""
    noise = draws["noise"] if draws is not None else normal(x.shape, 0.0, p[0], generator, x.device)
    return (x + x * noise).clamp(0, 1) * 255
