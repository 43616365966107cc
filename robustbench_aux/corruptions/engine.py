"""The corruption registry and the one entry point, :func:`corrupt_batch`.

Every corruption is registered in ``CORRUPTIONS`` (a :class:`robustbench_aux.registry.Registry`)
with tags: its category (noise / blur / weather / digital), ``benchmark`` (the 15 leaderboards
average) or ``extra`` (the other 4), ``random`` or ``deterministic``, ``cpu`` where part of the
work runs on the CPU whatever the device (JPEG; spatter's edge map), and ``slow`` where it is
markedly slower than the rest. Entry ``info`` says ``device``: ``any`` or ``cpu`` / ``mixed``;
``takes_workers`` where the implementation runs its CPU path in ``workers`` processes (JPEG) and
``may_produce_nan`` where its arithmetic can produce NaN (spatter: handled there, and
:func:`corrupt_batch` maps NaN to 0 as well).
"""

from __future__ import annotations

import logging

import torch

from robustbench_aux.catalog import ALL_19, CATEGORY, CBAR_10, CBAR_CATEGORY, SEVERITIES, is_benchmark
from robustbench_aux.corruptions import blur, cbar, digital, noise, weather
from robustbench_aux.corruptions.presets import CBAR_PRESET, PRESET_VARIANTS, PRESETS, check_preset
from robustbench_aux.errors import UserError, comma_list, did_you_mean
from robustbench_aux.registry import Registry

log = logging.getLogger(__name__)

CORRUPTIONS = Registry("corruption")

_RANDOM = {
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
    "snow", "frost", "fog", "spatter", "elastic_transform",
}  # fmt: skip
_DEVICE = {"jpeg_compression": "cpu", "spatter": "mixed"}
_SLOW = {"glass_blur"}  # at the imagenet preset: max_delta > 1 makes the shuffle a sequence of ~900 steps
_TAKES_WORKERS = {"jpeg_compression"}  # its CPU-only path runs in ``workers`` processes
_MAY_PRODUCE_NAN = {"spatter"}  # the only corruption whose arithmetic can produce NaN
_IMPLEMENTATIONS = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "spatter": weather.spatter,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "saturate": digital.saturate,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
}

for _name in ALL_19:
    _tags = {CATEGORY[_name], "benchmark" if is_benchmark(_name) else "extra"}
    _tags.add("random" if _name in _RANDOM else "deterministic")
    if _name in _DEVICE:
        _tags.add("cpu")
    if _name in _SLOW:
        _tags.add("slow")
    CORRUPTIONS.add(
        _name,
        _IMPLEMENTATIONS[_name],
        tags=_tags,
        device=_DEVICE.get(_name, "any"),
        takes_workers=_name in _TAKES_WORKERS,
        may_produce_nan=_name in _MAY_PRODUCE_NAN,
    )

# the ten CIFAR-10-C-bar corruptions: tagged c-bar (never benchmark/extra), random unless sampled
# nothing (circular motion blur)
for _name in CBAR_10:
    _tags = {CBAR_CATEGORY, "random" if _name in cbar.SAMPLERS else "deterministic"}
    CORRUPTIONS.add(_name, cbar.IMPLEMENTATIONS[_name], tags=_tags, device="any")

ALL_TAGS = frozenset(t for n in CORRUPTIONS for t in CORRUPTIONS.tags(n))


def select_corruptions(names=None, tags=None, preset: str | None = None) -> list[str]:
    """Corruption names in canonical order, chosen by ``names`` and/or ``tags`` (all must match).

    ``names`` and ``tags`` take a list or a comma-separated string; ``None`` means no filter.
    ``preset`` (optional) is validated and limits the result to the corruptions it defines.
    Without names, tags or preset the answer is the 19 CIFAR-C corruptions; the ten CIFAR-10-C-bar
    ones come with ``preset="cifar10-c-bar"``, the ``c-bar`` tag or by name.
    An unknown name or tag is a UserError with "did you mean"; a name of the other benchmark than
    the preset's is a UserError naming the preset to use.
    """
    names = _as_list(names)
    tags = _as_list(tags)
    for n in names or ():
        CORRUPTIONS.entry(n)  # raises UserError with suggestions
    for t in tags or ():
        if t not in ALL_TAGS:
            hint = did_you_mean(t, sorted(ALL_TAGS), cutoff=0.5)
            raise UserError(f"unknown corruption tag {t!r}{hint} (known: {', '.join(sorted(ALL_TAGS))})")
    if preset is not None:
        check_preset(preset)
        other = [n for n in names or () if n not in PRESETS[preset]]
        if other:
            fix = f"--preset {CBAR_PRESET}" if other[0] in CBAR_10 else "--preset cifar (or imagenet)"
            raise UserError(
                f"{other[0]} is not a corruption of the {preset} preset "
                f"({'CIFAR-10-C-bar' if preset == CBAR_PRESET else 'CIFAR-C'}); use {fix}"
            )
    universe = ALL_19
    if preset == CBAR_PRESET:
        universe = CBAR_10
    elif names is not None or CBAR_CATEGORY in (tags or ()):
        universe = ALL_19 + CBAR_10
    chosen = [n for n in universe if names is None or n in names]
    if tags:
        chosen = [n for n in chosen if set(tags) <= CORRUPTIONS.tags(n)]
    if preset is not None:
        chosen = [n for n in chosen if n in PRESETS[preset]]
    return chosen


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return comma_list(value)
    return [str(v) for v in value]


def check_corrupt_args(x, name: str, severity, preset: str, generator=None) -> None:
    """Raise a one-line UserError for anything :func:`corrupt_batch` cannot take."""
    check_preset(preset)
    CORRUPTIONS.entry(name)
    if name not in PRESETS[preset]:
        other = CBAR_PRESET if name in CBAR_10 else "cifar"
        raise UserError(f"{name} is not a corruption of the {preset} preset; use preset={other!r}")
    if not isinstance(x, torch.Tensor):
        raise UserError(f"images must be a torch.Tensor, got {type(x).__name__}; use torch.from_numpy(...)")
    if x.dtype != torch.uint8:
        raise UserError(
            f"images must be uint8 in [0, 255], got {x.dtype}; convert with (x * 255).round().to(torch.uint8)"
        )
    if x.ndim != 4 or x.shape[1] != 3:
        raise UserError(
            f"images must have shape (B, 3, H, W), got {tuple(x.shape)}; "
            "permute NHWC arrays with x.permute(0, 3, 1, 2)"
        )
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise UserError(f"severity must be an integer in 1..5, got {severity!r}")
    h, w = x.shape[-2:]
    v = PRESET_VARIANTS[preset]
    if v["fixed_size"] and (h, w) != (v["fixed_size"], v["fixed_size"]):
        raise UserError(
            f"the {preset} preset is calibrated for {v['fixed_size']}x{v['fixed_size']} images, got {h}x{w}; "
            "use preset='imagenet' for other sizes"
        )
    if min(h, w) < v["min_size"]:
        raise UserError(f"images must be at least {v['min_size']}x{v['min_size']} px, got {h}x{w}")
    if generator is not None and torch.device(generator.device).type != x.device.type:
        raise UserError(
            f"the generator is on {generator.device} but the images are on {x.device}; "
            f"create it with torch.Generator(device={str(x.device)!r})"
        )


def corrupt_batch(
    x: torch.Tensor,
    name: str,
    severity: int,
    *,
    preset: str = "cifar",
    generator: torch.Generator | None = None,
    workers: int = 1,
) -> torch.Tensor:
    """Corrupt a batch of uint8 images (B, 3, H, W) on any device; uint8 (B, 3, H, W) back, same device.

    ``preset``: ``cifar`` (CIFAR-10/100-C parameters) or ``imagenet`` (imagecorruptions /
    ImageNet-C). ``generator``: a ``torch.Generator`` on ``x``'s device; ``None`` draws from
    torch's default generator of that device. Every image gets its own random draws; the same
    seed on the same device gives the same output. Results are clipped to [0, 255] and truncated
    to uint8 as the published data was. ``workers`` > 1 runs the CPU-only JPEG path in that many
    processes.
    """
    check_corrupt_args(x, name, severity, preset, generator)
    if x.shape[0] == 0:
        return x.clone()
    # uint8 -> float32 first, then divide: the same values as x / 255, which converts element by
    # element through a slow mixed-type path (7x slower on the CPU)
    out = corrupt_float(x.float().div_(255), name, severity, preset, generator, workers=workers)
    if CORRUPTIONS.entry(name).info.get("may_produce_nan"):  # handled there; belt and braces
        out = torch.nan_to_num(out, nan=0.0)
    return out.clamp_(0, 255).to(torch.uint8)  # clip, then truncate as np.uint8 does


def corrupt_float(
    x01, name: str, severity: int, preset: str, generator=None, *, draws=None, workers: int = 1
):
    """The unchecked core: float images in [0, 1] -> float on the 0..255 scale (not yet clipped).

    ``draws`` injects the random numbers of a random corruption (see each implementation); the
    fidelity comparison uses it to give this code the reference's own draws."""
    entry = CORRUPTIONS.entry(name)
    p = PRESETS[preset][name][severity - 1]
    kwargs = {}
    if entry.info.get("takes_workers"):
        kwargs["workers"] = workers
    if draws is not None:
        kwargs["draws"] = draws
    return entry.obj(x01, p, PRESET_VARIANTS[preset], generator, **kwargs)
