"""The names every stage shares, at the bottom of the import order (no torch, no project imports).

- The canonical list of the 19 CIFAR-C / ImageNet-C corruptions: names, categories, the benchmark
  15 and the extra 4, severities. Order = the published files' conventional order by category.
- ``CLEAN``: the corruption name of the clean test set in result tables (severity 0).
- ``NORMALIZATION``: the named per-channel input statistics runs start from.

This is the single source of these names; the corruption registry, the CIFAR-C reader, the dataset
layer, the models, the metrics and the report all read it.
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

# the clean test set's name in result tables (with severity 0)
CLEAN = "clean"

# the dataset copy label of an official release (datasets/loading.py writes it into run provenance;
# any other recorded label is a copy that is not the original, and the report's banner says so)
OFFICIAL_COPY = "official (torchvision) or user-provided copy"

# Per-channel mean/std in [0, 1] of the *training* sets. Runs store the statistics they used in
# their config; these are only the defaults a recipe starts from.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # the reference code normalizes CIFAR-100 with these CIFAR-10 values (a quirk; docs/training.md)
    "reference": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def is_benchmark(name: str) -> bool:
    """True for the 15 corruptions that leaderboards average (RobustBench, AugMix)."""
    return name in BENCHMARK_15
