"""The motion-blur layer (motion blur and snow) against a direct per-tap formula, both of its paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_aux.corruptions.blur import (
    _motion_taps_gathered,
    motion_blur_layer,
    motion_offsets,
)


def direct_motion_blur(x: np.ndarray, radius, sigma, angles, stop_at_border) -> np.ndarray:
    """Per image and tap: weight times the pixel at (row + dy, col + dx), indices clamped to the image."""
    b, c, h, w = x.shape
    k, dy, dx = (t.numpy() for t in motion_offsets(radius, sigma, torch.tensor(angles)))
    rows, cols = np.arange(h), np.arange(w)
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(b):
        for t in range(len(k)):
            if stop_at_border and (abs(dy[i, t]) >= h or abs(dx[i, t]) >= w):
                continue
            r = np.clip(rows + dy[i, t], 0, h - 1)
            q = np.clip(cols + dx[i, t], 0, w - 1)
            out[i] += k[t] * x[i][:, r[:, None], q[None, :]]
    return out


CASES = [
    # (batch, channels, h, w, radius, sigma, lowest angle): CIFAR motion blur, ImageNet motion blur
    # whose 41-tap kernel reaches past a 32-px image, snow's layer (angles around -90°), a
    # non-square image, and batches spanning several cache blocks
    (70, 3, 32, 32, 6, 2.0, -45),
    (40, 3, 32, 32, 20, 15.0, -45),
    (130, 1, 33, 33, 12, 8.0, -135),
    (50, 3, 20, 28, 10, 4.0, -45),
]


@pytest.mark.parametrize("stop_at_border", [False, True])
@pytest.mark.parametrize("b, c, h, w, radius, sigma, low", CASES)
def test_motion_layer_is_the_direct_formula(b, c, h, w, radius, sigma, low, stop_at_border):
    rng = np.random.default_rng(radius)
    x = rng.random((b, c, h, w)).astype(np.float32)
    angles = rng.random(b) * 90 + low
    angles[:4] = [low, low + 45, low + 90, low + 45]  # the ends and a tie: equal angles keep order
    want = direct_motion_blur(x, radius, sigma, angles, stop_at_border)
    got = motion_blur_layer(torch.from_numpy(x), radius, sigma, torch.tensor(angles), stop_at_border)
    np.testing.assert_allclose(got.numpy(), want, atol=2e-6)


@pytest.mark.parametrize("b, c, h, w, radius, sigma, low", CASES)
def test_sliced_and_gathered_paths_agree_exactly(b, c, h, w, radius, sigma, low):
    """The CPU adds slices, other devices gather: the same terms in the same order, equal bits."""
    g = torch.Generator().manual_seed(radius)
    x = torch.rand((b, c, h, w), generator=g)
    angles = torch.rand(b, generator=g, dtype=torch.float64) * 90 + low
    for stop in (False, True):
        k, dy, dx = motion_offsets(radius, sigma, angles)
        live = (dy.abs() < h) & (dx.abs() < w) if stop else torch.ones_like(dy, dtype=torch.bool)
        gathered = _motion_taps_gathered(x, k, dy.clamp(-h, h), dx.clamp(-w, w), live)
        assert torch.equal(motion_blur_layer(x, radius, sigma, angles, stop), gathered)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_motion_layer_on_cuda_matches_the_cpu():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((300, 3, 32, 32), generator=g)
    angles = torch.rand(300, generator=g, dtype=torch.float64) * 90 - 45
    cpu = motion_blur_layer(x, 15, 5.0, angles, True)
    cuda = motion_blur_layer(x.cuda(), 15, 5.0, angles.cuda(), True).cpu()
    torch.testing.assert_close(cuda, cpu, atol=1e-5, rtol=0)


def test_cifar_motion_blur_and_snow_truncate_like_the_png_round_trip(cifar10):
    """The CIFAR script reads ImageMagick's result back through an 8-bit PNG: floor(q / 257) of the
    16-bit quantum q. Rounding instead made generated motion blur about half a grey level brighter."""
    from robustbench_aux.corruptions import PRESETS
    from robustbench_aux.corruptions.engine import corrupt_float

    x = torch.from_numpy(np.array(cifar10.test_x[:64])).permute(0, 3, 1, 2).float() / 255
    angle = torch.rand(64, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 90 - 45
    radius, sigma = PRESETS["cifar"]["motion_blur"][2]
    ours = corrupt_float(x, "motion_blur", 3, "cifar", draws={"angle": angle})
    layer = motion_blur_layer(x * 255, int(radius), float(sigma), angle, False)
    truncated = torch.floor(torch.round(layer * 257) / 257).clamp(0, 255)
    assert torch.equal(ours, truncated)
    bias = (torch.round(layer) - ours).mean().item()  # what rounding would have added
    assert 0.4 < bias < 0.6, bias
    # a flat image stays at its grey level (the float error of the kernel sum is below the quantum)
    flat = torch.full((4, 3, 32, 32), 100 / 255)
    assert (corrupt_float(flat, "motion_blur", 5, "cifar", draws={"angle": angle[:4]}) == 100).all()
    # snow's blurred layer takes the same step: on a black image the output is the brightened black
    # ((1 - blend) * 0.5 * 255) plus the layer and its 180-degree rotation, whole grey levels each
    g = torch.Generator().manual_seed(1)
    out = corrupt_float(torch.zeros(8, 3, 32, 32), "snow", 3, "cifar", generator=g)
    layers = out - (1 - PRESETS["cifar"]["snow"][2][6]) * 0.5 * 255
    assert torch.allclose(layers, layers.round(), atol=1e-3) and layers.max() > 10
    from robustbench_aux.corruptions.presets import PRESET_VARIANTS
    from robustbench_aux.corruptions.weather import snow

    p = PRESETS["cifar"]["snow"][2]
    x = torch.from_numpy(np.array(cifar10.test_x[:32])).permute(0, 3, 1, 2).float() / 255
    floor = snow(x, p, PRESET_VARIANTS["cifar"], torch.Generator().manual_seed(2))
    rounded = snow(
        x, p, {**PRESET_VARIANTS["cifar"], "motion_quantize": "none"}, torch.Generator().manual_seed(2)
    )
    step = rounded - floor  # 0, 1 or 2 grey levels (the layer and its rotation), never negative
    assert step.min() > -1e-3 and step.max() < 2 + 1e-3 and step.mean() > 0.1
