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
# CIFAR-10-C-bar (Mintun et al., NeurIPS 2021): ten corruptions chosen to be perceptually far from
# CIFAR-C's, five severities each, the names of the authors' cifar10_c_bar.csv (their spelling of
# "abberation" kept, so files match theirs). A separate benchmark: never part of the 15 / 19 means.
CBAR_10: tuple[str, ...] = (
    "blue_noise_sample",
    "brownish_noise",
    "checkerboard_cutout",
    "circular_motion_blur",
    "inverse_sparkles",
    "lines",
    "pinch_and_twirl",
    "ripple",
    "sparkles",
    "transverse_chromatic_abberation",
)
# the category column of C-bar rows in result tables (C-bar has no noise/blur/... split of its own)
CBAR_CATEGORY = "c-bar"

# benchmark names: the "benchmark" column of result tables (clean rows carry CLEAN)
CIFAR_C = "cifar-c"
CIFAR_C_BAR = "cifar-c-bar"
BENCHMARK_NAMES: dict[str, tuple[str, ...]] = {CIFAR_C: ALL_19, CIFAR_C_BAR: CBAR_10}

# Per-channel mean/std in [0, 1] of the *training* sets. Runs store the statistics they used in
# their config; these are only the defaults a recipe starts from.
NORMALIZATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    # the reference code normalizes CIFAR-100 with these CIFAR-10 values (a quirk; docs/training.md)
    "reference": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}


def benchmark_of(name: str) -> str | None:
    """``cifar-c`` for the 19, ``cifar-c-bar`` for the ten C-bar corruptions, CLEAN for the clean
    set, None for anything else."""
    if name == CLEAN:
        return CLEAN
    for bench, names in BENCHMARK_NAMES.items():
        if name in names:
            return bench
    return None


def is_benchmark(name: str) -> bool:
    """True for the 15 corruptions that leaderboards average (RobustBench, AugMix)."""
    return name in BENCHMARK_15
