"""Train-time corruptions: batched, device-side transforms with per-sample random parameters.

The reference training corruptions of Auxiliary Training (docs/training.md), re-implemented for whole
batches of uint8 images (B, 3, H, W) on any device:

- ``blur``      Gaussian blur, radius (= sigma) 1.0 px, edge pixels replicated (PIL's GaussianBlur);
- ``noise``     additive Gaussian noise, sigma 20 on the 0-255 scale; ``noise_impl="clipped"``
                clamps to [0, 255], ``"wraparound"`` reproduces the reference code, which adds
                uint8-cast noise to uint8 pixels so negative noise wraps modulo 256;
- ``contrast``  colour jitter: brightness, contrast and saturation factors each uniform in
                [0.5, 1.5], applied in a random order per image (torchvision ColorJitter, hue 0);
- ``rotation``  rotation by an angle uniform in [-30, 30] degrees about the centre, nearest
                neighbour, black fill (torchvision RandomRotation(30)).

Any of the 19 CIFAR-C corruptions at a fixed severity is available as ``cifar_c:<name>@<severity>``
(e.g. ``cifar_c:fog@3``); it calls ``robustbench_aux.corruptions.corrupt_batch`` with the ``cifar``
preset, imported only when such a transform runs.

Every transform maps uint8 (B, 3, H, W) -> uint8 (B, 3, H, W) on the input's device and draws all
its randomness from the ``torch.Generator`` it is given (same generator state -> same output).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import torch
import torch.nn.functional as F

from robustbench_aux.catalog import ALL_19, SEVERITIES
from robustbench_aux.corruptions.ops import gaussian_filter, rgb_to_gray, uniform
from robustbench_aux.errors import UserError, did_you_mean
from robustbench_aux.registry import Registry

# The four training corruptions of the reference code, in its order (views 1..4).
REFERENCE_TRAIN_CORRUPTIONS: tuple[str, ...] = ("blur", "noise", "contrast", "rotation")
NOISE_IMPLS = ("clipped", "wraparound")
# how a method builds its rotation view: the reference crops (pad 4) then rotates, without a flip;
# the alternative treats rotation like the other corruptions (rotate, then crop and flip)
ROTATION_VIEWS = ("crop_then_rotate", "corrupt_then_crop_flip")

TRAIN_CORRUPTIONS = Registry("training corruption")

Transform = Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]

_CIFAR_C_SPEC = re.compile(r"^cifar_c:([a-z_]+)@(\d+)$")


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Round float pixels on the 0-255 scale back to uint8 (PIL rounds too)."""
    return x.round_().clamp_(0, 255).to(torch.uint8)


# --------------------------------------------------------------------------- blur


# PIL's GaussianBlur(radius=sigma) takes taps out to 3 sigma (scipy's default is 4) and replicates edges
BLUR_TRUNCATE = 3.0


def train_blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Blur uint8 (B, C, H, W) images with a separable Gaussian of ``sigma`` px (deterministic):
    taps out to round(3 sigma) px, out-of-image taps folded onto the edge pixel, as one dense matrix
    per axis (at 32 px faster than a convolution; measurements in docs/corruptions.md)."""
    return _to_uint8(gaussian_filter(x.float(), sigma, mode="nearest", truncate=BLUR_TRUNCATE))


@TRAIN_CORRUPTIONS.register("blur", tags=("reference",))
def make_blur(sigma: float = 1.0, **_) -> Transform:
    """Factory of the ``blur`` spec (deterministic: the generator is unused)."""
    return lambda x, generator=None: train_blur(x, sigma)


# --------------------------------------------------------------------------- noise


def train_noise(x: torch.Tensor, generator, sigma: float = 20.0, impl: str = "clipped") -> torch.Tensor:
    """Add N(0, sigma^2) noise (sigma on the 0-255 scale) per pixel; see the module doc for ``impl``."""
    noise = torch.randn(x.shape, generator=generator, device=x.device) * sigma
    if impl == "clipped":
        return _to_uint8(x.float() + noise)
    if impl == "wraparound":
        # numpy's float -> uint8 cast truncates towards zero and wraps negatives; uint8 + uint8 wraps too.
        wrapped = (x.long() + noise.trunc().long()) % 256
        return wrapped.to(torch.uint8)
    raise UserError(f"unknown noise_impl {impl!r}; choose one of {', '.join(NOISE_IMPLS)}")


@TRAIN_CORRUPTIONS.register("noise", tags=("reference",))
def make_noise(sigma: float = 20.0, noise_impl: str = "clipped", **_) -> Transform:
    """Factory of the ``noise`` spec (``noise_impl``: clipped or wraparound)."""
    if noise_impl not in NOISE_IMPLS:
        raise UserError(f"unknown noise_impl {noise_impl!r}; choose one of {', '.join(NOISE_IMPLS)}")
    return lambda x, generator=None: train_noise(x, generator, sigma, noise_impl)


# --------------------------------------------------------------------------- colour jitter


def color_jitter(
    x: torch.Tensor, generator, brightness: float = 0.5, contrast: float = 0.5, saturation: float = 0.5
) -> torch.Tensor:
    """Brightness, contrast and saturation jitter with per-image factors and per-image op order.

    Every op is a blend ``other + f * (x - other)`` towards a per-image target: black
    (brightness), the mean grey level (contrast) or the grey image (saturation). So each of the
    three steps is one blend whose target is chosen per image, not three blends and a select.
    """
    n = x.shape[0]
    xf = x.float()
    factors = torch.stack(
        [
            uniform(n, 1 - brightness, 1 + brightness, generator, x.device),
            uniform(n, 1 - contrast, 1 + contrast, generator, x.device),
            uniform(n, 1 - saturation, 1 + saturation, generator, x.device),
        ],
        1,
    )  # (B, 3 ops)
    # a random permutation of the 3 ops per image: argsort of uniform keys
    order = torch.rand(n, 3, generator=generator, device=x.device).argsort(dim=1)
    for step in range(3):
        op = order[:, step]
        f = factors.gather(1, op[:, None]).view(-1, 1, 1, 1)
        gray = rgb_to_gray(xf)  # (B, 1, H, W): ITU-R 601-2 luma, as PIL's "L"
        is_con = (op == 1).view(-1, 1, 1, 1).to(xf.dtype)
        is_sat = (op == 2).view(-1, 1, 1, 1).to(xf.dtype)
        target = is_sat * gray + is_con * gray.mean(dim=(2, 3), keepdim=True)  # 0 for brightness
        xf = xf.sub_(target).mul_(f).add_(target).clamp_(0, 255)
    return _to_uint8(xf)


@TRAIN_CORRUPTIONS.register("contrast", tags=("reference",))
def make_contrast(brightness: float = 0.5, contrast: float = 0.5, saturation: float = 0.5, **_) -> Transform:
    """Factory of the ``contrast`` spec (colour jitter)."""
    return lambda x, generator=None: color_jitter(x, generator, brightness, contrast, saturation)


# --------------------------------------------------------------------------- rotation / affine


def affine_warp(x: torch.Tensor, matrices: torch.Tensor, mode: str = "nearest") -> torch.Tensor:
    """Warp float or uint8 (B, C, H, W) images by per-image 2x3 matrices in normalized coordinates
    ([-1, 1], output -> input, as ``F.affine_grid``); out-of-image pixels are black."""
    grid = F.affine_grid(matrices.float(), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return _to_uint8(out) if x.dtype == torch.uint8 else out


def rotation_matrices(angles_deg: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) rotation-about-the-centre matrices for square images."""
    a = angles_deg * (math.pi / 180.0)
    cos, sin = torch.cos(a), torch.sin(a)
    zero = torch.zeros_like(a)
    return torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)


def random_rotation(x: torch.Tensor, generator, degrees: float = 30.0) -> torch.Tensor:
    """Rotate each image by its own angle uniform in [-degrees, degrees]."""
    angles = uniform(x.shape[0], -degrees, degrees, generator, x.device)
    return affine_warp(x, rotation_matrices(angles), mode="nearest")


@TRAIN_CORRUPTIONS.register("rotation", tags=("reference",))
def make_rotation(degrees: float = 30.0, **_) -> Transform:
    """Factory of the ``rotation`` spec."""
    return lambda x, generator=None: random_rotation(x, generator, degrees)


# --------------------------------------------------------------------------- CIFAR-C at a severity


def make_cifar_c(name: str, severity: int, preset: str = "cifar") -> Transform:
    """One of the 19 CIFAR-C corruptions at a fixed severity, via ``corruptions.corrupt_batch``."""

    def apply(x: torch.Tensor, generator=None) -> torch.Tensor:
        from robustbench_aux.corruptions import corrupt_batch

        return corrupt_batch(x, name, severity, preset=preset, generator=generator)

    return apply


# --------------------------------------------------------------------------- specs


def check_spec(spec: str) -> str:
    """Validate a training-corruption spec without building it; returns it unchanged."""
    m = _CIFAR_C_SPEC.match(spec)
    if spec.startswith("cifar_c:"):
        if not m:
            raise UserError(
                f"bad training corruption {spec!r}; write cifar_c:<name>@<severity>, e.g. cifar_c:fog@3"
            )
        name, sev = m.group(1), int(m.group(2))
        if name not in ALL_19:
            raise UserError(f"unknown CIFAR-C corruption {name!r} in {spec!r}{did_you_mean(name, ALL_19)}")
        if sev not in SEVERITIES:
            raise UserError(f"severity {sev} in {spec!r} is out of range; choose 1..5")
        return spec
    TRAIN_CORRUPTIONS.entry(spec)  # raises a "did you mean" UserError
    return spec


def build_train_corruption(spec: str, *, noise_impl: str = "clipped") -> Transform:
    """A transform ``f(x_uint8_BCHW, generator) -> uint8`` for a spec: ``blur``, ``noise``,
    ``contrast``, ``rotation`` or ``cifar_c:<name>@<severity>``."""
    check_spec(spec)
    m = _CIFAR_C_SPEC.match(spec)
    if m:
        return make_cifar_c(m.group(1), int(m.group(2)))
    return TRAIN_CORRUPTIONS.get(spec)(noise_impl=noise_impl)


def list_train_corruptions() -> list[str]:
    """The named training corruptions plus the CIFAR-C spec form."""
    return TRAIN_CORRUPTIONS.names() + [f"cifar_c:{n}@<1-5>" for n in ALL_19]
