"""The canonical list of the 19 CIFAR-C / ImageNet-C corruptions: names, categories, benchmark set.

This is the single source of the names; the corruption registry, the CIFAR-C reader and the
metrics all read it. Order = the published files' conventional order by category.
"""

from __future__ import annotations

# category -> (benchmark corruptions, extra corruptions)
_TABLE = {
    "noise": (("gaussian_noise", "shot_noise", "impulse_noise"), ("speckle_noise",)),
    "blur": (("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"), ("gaussian_blur",)),
    "weather": (("snow", "frost", "fog"), ("spatter",)),
    "digital": (
        ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"),
        ("saturate",),
    ),
}

BENCHMARK_15: tuple[str, ...] = tuple(n for bench, _ in _TABLE.values() for n in bench)
EXTRA_4: tuple[str, ...] = tuple(n for _, extra in _TABLE.values() for n in extra)
ALL_19: tuple[str, ...] = BENCHMARK_15 + EXTRA_4
CATEGORY: dict[str, str] = {n: cat for cat, (bench, extra) in _TABLE.items() for n in bench + extra}
CATEGORIES: tuple[str, ...] = tuple(_TABLE)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


def is_benchmark(name: str) -> bool:
    """True for the 15 corruptions that leaderboards average (RobustBench, AugMix)."""
    return name in BENCHMARK_15
