"""Fidelity of the ``imagenet`` preset against imagecorruptions 1.1.2, image for image.

Three kinds of comparison, chosen per corruption (``METHOD``):

- ``deterministic``: both run on the same images; the outputs must agree within 1 grey level on
  at least 99 % of the values. The mean signed difference (ours − reference, grey levels) is
  reported per cell too: a systematic one-level step on many values (a rounding where the
  reference truncates) passes "within 1 level" but shows there as a bias of up to ±1.
- ``injected``: the corruption is random, but every random number the reference draws from
  numpy's global RNG can be reproduced: the reference runs with a per-image seed, the same
  numbers are drawn here in the reference's order and passed to our implementation as ``draws``;
  then compared like ``deterministic``.
- ``distribution``: the reference draws from an RNG we cannot replay (scikit-image's own
  ``default_rng`` for impulse noise; numpy's Poisson sampler for shot noise). The difference images
  (corrupted − clean) of ours and of the reference must have means within 5 % of the reference's
  standard deviation and standard deviations within 5 % of each other.

Every random corruption also gets the distribution check of our own sampler (``own_draws``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from robustbench_aux.corruptions.blur import glass_positions
from robustbench_aux.corruptions.compat import load_imagecorruptions, preserved_numpy_rng, reference_corrupt
from robustbench_aux.corruptions.engine import CORRUPTIONS, corrupt_batch, corrupt_float
from robustbench_aux.corruptions.presets import PRESETS
from robustbench_aux.corruptions.textures import frost_textures

PRESET = "imagenet"
INJECTED = (
    "gaussian_noise", "speckle_noise", "glass_blur", "motion_blur", "snow", "frost", "fog", "spatter",
    "elastic_transform",
)  # fmt: skip
DISTRIBUTION = ("shot_noise", "impulse_noise")
AGREE_MIN = 99.0  # % of values within 1 grey level
GAP_MAX = 0.05  # relative gap of mean / std of the difference images


def method(name: str) -> str:
    """How ``name`` is compared with the reference: deterministic, injected or distribution."""
    if name in INJECTED:
        return "injected"
    if name in DISTRIBUTION:
        return "distribution"
    return "deterministic"


@dataclass
class FidelityResult:
    corruption: str
    severity: int
    method: str
    n: int
    agree_1: float | None  # % of values within 1 grey level (deterministic / injected)
    mean_abs: float | None  # mean |ours - reference| in grey levels
    mean_signed: float | None  # mean (ours - reference) in grey levels: a bias shows here
    max_abs: float | None
    mean_gap: float  # |mean(d_ours) - mean(d_ref)| / std(d_ref), d = corrupted - clean
    std_gap: float  # |std(d_ours) - std(d_ref)| / std(d_ref)
    passed: bool

    def row(self) -> dict:
        return asdict(self)


def _draw_like_reference(name: str, severity: int, h: int, w: int) -> dict:
    """The random numbers the reference draws for one image, in its order, from numpy's global RNG."""
    p = PRESETS[PRESET][name][severity - 1]
    if name in ("gaussian_noise", "speckle_noise"):
        return {"noise": np.random.normal(size=(h, w, 3), scale=p[0]).transpose(2, 0, 1)}
    if name == "glass_blur":
        d, iters = int(p[1]), int(p[2])
        steps = len(glass_positions(h, w, d))
        return {
            "shifts": np.array(
                [[np.random.randint(-d, d, size=(2,)) for _ in range(steps)] for _ in range(iters)]
            )
        }
    if name == "motion_blur":
        return {"angle": np.random.uniform(-45, 45)}
    if name == "snow":
        layer = np.random.normal(size=(h, w), loc=p[0], scale=p[1])
        return {"layer": layer[None], "angle": np.random.uniform(-135, -45)}
    if name == "frost":
        index = np.random.randint(5)
        th, tw = frost_textures("imagenet", h, w)[index].shape[:2]
        return {"index": index, "row": np.random.randint(0, th - h), "col": np.random.randint(0, tw - w)}
    if name == "fog":
        size = 1 << (max(h, w) - 1).bit_length()
        module = load_imagecorruptions().corruptions
        return {"plasma": module.plasma_fractal(mapsize=size, wibbledecay=p[1])}
    if name == "spatter":
        return {"liquid": np.random.normal(size=(h, w), loc=p[0], scale=p[1])}
    if name == "elastic_transform":
        amp = h * 0.005
        return {
            "dx": np.random.uniform(-amp, amp, size=(h, w)),
            "dy": np.random.uniform(-amp, amp, size=(h, w)),
        }
    raise ValueError(f"{name} draws cannot be injected")


def _stack_draws(per_image: list[dict]) -> dict:
    out = {}
    for key in per_image[0]:
        arr = np.stack([np.asarray(d[key]) for d in per_image])
        if key == "shifts":  # (B, iters, steps, 2) -> (iters, steps, B, 2)
            out[key] = torch.from_numpy(arr.transpose(1, 2, 0, 3)).long()
        elif arr.dtype.kind in "iu":
            out[key] = torch.from_numpy(arr).long()
        elif key == "angle":
            out[key] = torch.from_numpy(arr).double()
        else:
            out[key] = torch.from_numpy(arr).float()
    return out


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 3, 1).cpu().numpy()


def _gaps(ours: np.ndarray, ref: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    d_o = ours.astype(np.float64) - clean
    d_r = ref.astype(np.float64) - clean
    scale = max(float(d_r.std()), 1e-9)
    return abs(float(d_o.mean() - d_r.mean())) / scale, abs(float(d_o.std() - d_r.std())) / scale


def own_draws(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Our implementation with our own sampler (a seeded CPU generator), as uint8 NHWC."""
    g = torch.Generator().manual_seed(seed)
    return _to_numpy(corrupt_batch(_to_tensor(images), name, severity, preset=PRESET, generator=g))


def measure_fidelity(images: np.ndarray, name: str, severity: int, seed: int = 0) -> FidelityResult:
    """Compare our ``imagenet`` preset with imagecorruptions on uint8 (N, H, W, 3) ``images``."""
    CORRUPTIONS.entry(name)
    how = method(name)
    n, h, w, _ = images.shape
    seeds = np.arange(n) + seed * 100_003
    clean = images.astype(np.float64)
    ref = reference_corrupt(images, name, severity, seeds=seeds)
    if how == "injected":
        per_image = []
        with preserved_numpy_rng():
            for s in seeds:
                np.random.seed(int(s))
                per_image.append(_draw_like_reference(name, severity, h, w))
        draws = _stack_draws(per_image)
        out = corrupt_float(_to_tensor(images).float() / 255, name, severity, PRESET, draws=draws)
        ours = _to_numpy(torch.nan_to_num(out, nan=0.0).clamp(0, 255).to(torch.uint8))
    else:
        ours = own_draws(images, name, severity, seed)
    if how == "distribution":
        mean_gap, std_gap = _gaps(ours, ref, clean)
        passed = mean_gap <= GAP_MAX and std_gap <= GAP_MAX
        return FidelityResult(name, severity, how, n, None, None, None, None, mean_gap, std_gap, passed)
    signed = ours.astype(np.int16) - ref.astype(np.int16)
    diff = np.abs(signed)
    agree = float((diff <= 1).mean() * 100)
    own = own_draws(images, name, severity, seed) if how == "injected" else ours
    mean_gap, std_gap = _gaps(own, ref, clean)
    passed = agree >= AGREE_MIN
    return FidelityResult(
        name,
        severity,
        how,
        n,
        agree,
        float(diff.mean()),
        float(signed.mean()),
        float(diff.max()),
        mean_gap,
        std_gap,
        passed,
    )
