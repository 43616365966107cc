"""The corruption registry, selection, the corrupt_batch contract, determinism and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_aux.catalog import CBAR_10
from robustbench_aux.corruptions import (
    ALL_19,
    BENCHMARK_15,
    CORRUPTIONS,
    EXTRA_4,
    PRESETS,
    corrupt_batch,
    select_corruptions,
)
from robustbench_aux.errors import UserError

RANDOM = select_corruptions(tags="random")
DETERMINISTIC = select_corruptions(tags="deterministic")


@pytest.fixture(scope="module")
def images(cifar10):
    return torch.from_numpy(np.array(cifar10.test_x[:6])).permute(0, 3, 1, 2).contiguous()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registry_entries_carry_the_dispatch_quirks():
    """corrupt_batch / corrupt_float read each corruption's quirks from its registry entry."""
    assert [n for n in CORRUPTIONS if CORRUPTIONS.entry(n).info.get("takes_workers")] == ["jpeg_compression"]
    assert [n for n in CORRUPTIONS if CORRUPTIONS.entry(n).info.get("may_produce_nan")] == ["spatter"]


def test_registry_tags_and_presets():
    # the registry holds the 19 CIFAR-C corruptions and the ten CIFAR-10-C-bar ones
    assert list(CORRUPTIONS) == sorted(ALL_19 + CBAR_10) and len(CORRUPTIONS) == 29
    assert select_corruptions(tags="benchmark") == list(BENCHMARK_15)
    assert select_corruptions(tags="extra") == list(EXTRA_4)
    assert select_corruptions(tags="noise") == [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "speckle_noise",
    ]
    assert select_corruptions(tags=["noise", "benchmark"]) == [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
    ]
    assert select_corruptions(tags="cpu") == ["jpeg_compression", "spatter"]
    assert set(RANDOM) | set(DETERMINISTIC) == set(ALL_19) and not set(RANDOM) & set(DETERMINISTIC)
    assert set(DETERMINISTIC) == {
        "defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
        "gaussian_blur", "saturate",
    }  # fmt: skip
    for preset in ("cifar", "imagenet"):
        assert set(PRESETS[preset]) == set(ALL_19)
        assert all(len(PRESETS[preset][n]) == 5 for n in ALL_19)
    # a few values straight from the two published tables
    assert PRESETS["cifar"]["gaussian_noise"][2] == (0.08,)
    assert PRESETS["imagenet"]["gaussian_noise"][4] == (0.38,)
    assert PRESETS["cifar"]["jpeg_compression"][4] == (40,)
    assert PRESETS["cifar"]["elastic_transform"][0] == (0, 0, 32 * 0.08)


def test_select_by_names_keeps_canonical_order():
    assert select_corruptions() == list(ALL_19)
    assert select_corruptions("fog,snow") == ["snow", "fog"]
    assert select_corruptions(["saturate", "fog"], tags="weather") == ["fog"]
    assert select_corruptions(preset="imagenet") == list(ALL_19)
    # C-bar only when asked for: by preset, by its tag, or by name (never with a CIFAR-C preset)
    assert select_corruptions(preset="cifar10-c-bar") == list(CBAR_10)
    assert select_corruptions(tags="c-bar") == list(CBAR_10)
    assert set(select_corruptions(tags="random")) <= set(ALL_19)
    assert select_corruptions("ripple,fog") == ["fog", "ripple"]
    with pytest.raises(UserError, match="not a corruption of the cifar preset.*--preset cifar10-c-bar"):
        select_corruptions("ripple", preset="cifar")
    with pytest.raises(UserError, match="not a corruption of the cifar10-c-bar preset"):
        select_corruptions("fog", preset="cifar10-c-bar")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"names": "gausian_noise"}, "did you mean 'gaussian_noise'"),
        ({"names": ["fog", "frots"]}, "did you mean 'frost'"),
        ({"tags": "benchmrk"}, "did you mean 'benchmark'"),
        ({"preset": "cifra"}, "did you mean 'cifar'"),
    ],
)
def test_select_unknown(kwargs, match):
    with pytest.raises(UserError, match=match):
        select_corruptions(**kwargs)


@pytest.mark.parametrize("preset", ["cifar", "imagenet"])
def test_every_corruption_keeps_shape_dtype_device(images, preset):
    for name in ALL_19:
        y = corrupt_batch(images, name, 3, preset=preset, generator=gen())
        assert y.shape == images.shape and y.dtype == torch.uint8 and y.device == images.device, name
        assert not torch.equal(y, images), f"{name} changed nothing"


def test_same_seed_same_output_different_seed_different(images):
    for name in ALL_19:
        a = corrupt_batch(images, name, 4, generator=gen(1))
        b = corrupt_batch(images, name, 4, generator=gen(1))
        assert torch.equal(a, b), name
        c = corrupt_batch(images, name, 4, generator=gen(2))
        assert torch.equal(a, c) == (name in DETERMINISTIC), name


def test_each_image_gets_its_own_draws(images):
    same = images[:1].repeat(4, 1, 1, 1)
    for name in RANDOM:
        y = corrupt_batch(same, name, 5, generator=gen(0))
        distinct = {bytes(y[i].numpy()) for i in range(4)}
        assert len(distinct) > 1, f"{name}: identical images got identical corruptions"


def test_default_generator_follows_torch_manual_seed(images):
    torch.manual_seed(5)
    a = corrupt_batch(images, "fog", 2)
    torch.manual_seed(5)
    assert torch.equal(a, corrupt_batch(images, "fog", 2))


def test_empty_batch(images):
    y = corrupt_batch(images[:0], "snow", 1)
    assert y.shape == (0, 3, 32, 32) and y.dtype == torch.uint8


def test_imagenet_preset_takes_larger_non_square_images(images):
    big = (
        torch.nn.functional.interpolate(images[:2].float(), size=(40, 48), mode="bilinear")
        .round()
        .to(torch.uint8)
    )
    for name in ALL_19:
        y = corrupt_batch(big, name, 5, preset="imagenet", generator=gen())
        assert y.shape == big.shape, name


@pytest.mark.parametrize(
    "x, severity, preset, match",
    [
        (torch.zeros(2, 3, 32, 32), 1, "cifar", "must be uint8"),
        (np.zeros((2, 32, 32, 3), np.uint8), 1, "cifar", "must be a torch.Tensor"),
        (torch.zeros(2, 1, 32, 32, dtype=torch.uint8), 1, "cifar", r"shape \(B, 3, H, W\)"),
        (torch.zeros(3, 32, 32, dtype=torch.uint8), 1, "cifar", r"shape \(B, 3, H, W\)"),
        (torch.zeros(2, 32, 32, 3, dtype=torch.uint8), 1, "cifar", "permute NHWC"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 0, "cifar", "severity must be an integer in 1..5"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 6, "cifar", "severity must be an integer in 1..5"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 2.0, "cifar", "severity must be an integer in 1..5"),
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), True, "cifar", "severity must be an integer in 1..5"),
        (
            torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
            1,
            "imagenett",
            "unknown corruption preset.*'imagenet'",
        ),
        (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), 1, "cifar", "calibrated for 32x32"),
        (torch.zeros(2, 3, 16, 16, dtype=torch.uint8), 1, "imagenet", "at least 32x32"),
    ],
)
def test_bad_input(x, severity, preset, match):
    with pytest.raises(UserError, match=match):
        corrupt_batch(x, "fog", severity, preset=preset)


def test_unknown_corruption_name(images):
    with pytest.raises(UserError, match="did you mean 'zoom_blur'"):
        corrupt_batch(images, "zoom_blurr", 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_where_deterministic_and_is_seeded(images):
    x = images.cuda()
    for name in ALL_19:
        a = corrupt_batch(x, name, 3, generator=torch.Generator("cuda").manual_seed(0))
        b = corrupt_batch(x, name, 3, generator=torch.Generator("cuda").manual_seed(0))
        assert a.device.type == "cuda" and torch.equal(a, b), name
        if name in DETERMINISTIC:
            diff = (a.cpu().int() - corrupt_batch(images, name, 3).int()).abs()
            assert (diff <= 1).float().mean() >= 0.99, name
    with pytest.raises(UserError, match="generator is on cpu"):
        corrupt_batch(x, "fog", 1, generator=torch.Generator().manual_seed(0))
