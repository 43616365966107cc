"""Severity is monotone: the mean absolute change from the clean image grows with severity.

It does for every corruption and both presets, except where the published parameter tables
themselves are not ordered by this measure (listed below with the reason; the imagenet cases
are confirmed against imagecorruptions in docs/corruptions.md). For those, the test pins the
shape we measured, so a change in behaviour is still caught.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_aux.corruptions import ALL_19, corrupt_batch

N_IMAGES = 128

# (preset, corruption) -> (reason, severity pairs (a, b) whose change is expected to satisfy a > b)
NOT_MONOTONE = {
    ("cifar", "glass_blur"): (
        "sigma and iterations alternate: (.05,1,1) (.25,1,1) (.4,1,1) (.25,1,2) (.4,1,2)",
        [(4, 1)],
    ),
    ("imagenet", "glass_blur"): (
        "sigma/max_delta/iterations alternate: s2 has 1 iteration, s1 and s4 2",
        [(5, 1)],
    ),
    ("cifar", "frost"): (
        "the image coefficient falls to .85/.75 at s4/s5 while the frost one stays .4/.45",
        [(3, 1)],
    ),
    ("imagenet", "frost"): ("the image coefficient falls (1 -> .6) as the frost one rises", [(3, 1)]),
    ("cifar", "elastic_transform"): (
        "the affine jitter falls with severity (2.56 -> 0.96 px) and dominates",
        [(1, 5)],
    ),
    ("cifar", "saturate"): (
        "s1, s2 desaturate (x.3, x.1); s3..s5 saturate (x1.5, x2, x2.5)",
        [(5, 3), (2, 1)],
    ),
    ("imagenet", "saturate"): ("s1, s2 desaturate (x.3, x.1); s3..s5 saturate", [(5, 3), (2, 1)]),
    ("cifar", "spatter"): ("s1..s3 are water drops, s4, s5 mud", [(3, 1), (5, 4)]),
    ("imagenet", "snow"): (
        "s2 and s3 are equally strong by this measure (imagecorruptions: 66.0, 65.9)",
        [(5, 1)],
    ),
    ("cifar", "motion_blur"): (
        "s3 (6 px, sigma 2) and s4 (8 px, sigma 2) differ only in taps of weight < 1 %",
        [(5, 1)],
    ),
}


@pytest.fixture(scope="module")
def images(cifar10):
    return torch.from_numpy(np.array(cifar10.test_x[:N_IMAGES])).permute(0, 3, 1, 2).contiguous()


def mean_change(images, name, preset):
    out = []
    for s in range(1, 6):
        y = corrupt_batch(images, name, s, preset=preset, generator=torch.Generator().manual_seed(s))
        out.append(float((y.float() - images.float()).abs().mean()))
    return out


@pytest.mark.parametrize("preset", ["cifar", "imagenet"])
def test_severity_is_monotone(images, preset):
    failures = []
    for name in ALL_19:
        change = mean_change(images, name, preset)
        exception = NOT_MONOTONE.get((preset, name))
        if exception is None:
            if not all(b > a for a, b in zip(change, change[1:])):
                failures.append(f"{name}: {[round(c, 2) for c in change]}")
        else:
            for a, b in exception[1]:
                if not change[a - 1] > change[b - 1]:
                    failures.append(
                        f"{name} ({exception[0]}): s{a} !> s{b} in {[round(c, 2) for c in change]}"
                    )
    assert not failures, "\n".join(failures)
