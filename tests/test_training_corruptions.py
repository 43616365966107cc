"""Train-time corruptions: reference behaviour, per-sample randomness, determinism, spec syntax."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from robustbench_aux.corruptions import training as tc
from robustbench_aux.corruptions.ops import gaussian_matrix, rgb_to_gray
from robustbench_aux.errors import UserError


@pytest.fixture(scope="module")
def images(cifar10):
    """64 real CIFAR-10 test images, uint8 (B, 3, H, W)."""
    return torch.from_numpy(np.array(cifar10.test_x[:64])).permute(0, 3, 1, 2).contiguous()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_reference_specs_build_and_keep_shape_dtype(images):
    for spec in tc.REFERENCE_TRAIN_CORRUPTIONS:
        out = tc.build_train_corruption(spec)(images, gen())
        assert out.shape == images.shape and out.dtype == torch.uint8, spec
        assert not torch.equal(out, images), f"{spec} changed nothing"


def test_blur_matches_pil_gaussian_blur_radius_1(images):
    ours = tc.train_blur(images, 1.0).permute(0, 2, 3, 1).numpy().astype(float)
    pil = np.stack(
        [
            np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(1.0)))
            for im in images.permute(0, 2, 3, 1).numpy()
        ]
    ).astype(float)
    # PIL approximates the Gaussian with box blurs: close, not bit-equal
    assert np.abs(ours - pil).mean() < 1.5
    assert np.abs(ours - pil).max() <= 12


def test_blur_matrix_rows_sum_to_one_and_preserve_constants():
    m = torch.from_numpy(gaussian_matrix(32, 1.0, "nearest", tc.BLUR_TRUNCATE))
    torch.testing.assert_close(m.sum(1), torch.ones(32, dtype=torch.float64))
    assert (m[16] > 0).sum() == 7  # taps out to 3 sigma: 3 on each side
    flat = torch.full((1, 3, 32, 32), 117, dtype=torch.uint8)
    assert torch.equal(tc.train_blur(flat), flat)


def test_noise_clipped_statistics():
    x = torch.full((16, 3, 32, 32), 128, dtype=torch.uint8)
    out = tc.train_noise(x, gen(), sigma=20.0, impl="clipped").float() - 128
    assert abs(out.mean().item()) < 0.5
    assert 19.0 < out.std().item() < 21.0


def test_noise_wraparound_turns_dark_pixels_bright_clipped_does_not():
    dark = torch.full((8, 3, 32, 32), 2, dtype=torch.uint8)
    wrapped = tc.train_noise(dark, gen(), impl="wraparound")
    clipped = tc.train_noise(dark, gen(), impl="clipped")
    assert (wrapped > 200).float().mean() > 0.3  # negative noise wraps modulo 256
    assert (clipped > 200).float().mean() == 0


def test_noise_impl_is_validated():
    with pytest.raises(UserError, match="noise_impl"):
        tc.build_train_corruption("noise", noise_impl="saturate")


def test_color_jitter_factors_are_per_image_and_bounded(images):
    # brightness only: each image scaled by one factor in [0.5, 1.5]
    out = tc.color_jitter(images, gen(), brightness=0.5, contrast=0.0, saturation=0.0).float()
    src = images.float()
    mask = (src > 40) & (src < 150)  # away from rounding and clipping
    ratios = torch.stack([(out[i][mask[i]] / src[i][mask[i]]).median() for i in range(len(src))])
    assert ratios.min() >= 0.49 and ratios.max() <= 1.51
    assert ratios.std() > 0.1, "factors must differ between images"


def test_saturation_zero_gives_pil_grayscale(images):
    out = tc.color_jitter(images, gen(), brightness=0.0, contrast=0.0, saturation=0.0)
    # factor 1 everywhere = identity
    assert torch.equal(out, images)
    gray = rgb_to_gray(images.float()).clamp(0, 255)
    pil = np.stack(
        [np.asarray(Image.fromarray(im).convert("L")) for im in images.permute(0, 2, 3, 1).numpy()]
    )
    assert np.abs(gray[:, 0].round().numpy() - pil).max() <= 1


def test_rotation_by_90_degrees_is_exact():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    out = tc.affine_warp(x, tc.rotation_matrices(torch.full((4,), 90.0)), mode="nearest")
    assert torch.equal(out, torch.rot90(x, 1, dims=(2, 3))) or torch.equal(
        out, torch.rot90(x, -1, dims=(2, 3))
    )


def test_rotation_angles_differ_per_image_and_leave_black_corners(images):
    out = tc.random_rotation(images, gen(), 30.0)
    corners = out[:, :, 0, 0].float().sum(1)
    assert (corners == 0).float().mean() > 0.5  # rotated corners fall outside the image
    assert not torch.equal(out[0], tc.random_rotation(images[:1], gen(5))[0])


def test_same_generator_state_gives_same_output(images):
    for spec in ("noise", "contrast", "rotation"):
        f = tc.build_train_corruption(spec)
        assert torch.equal(f(images, gen(3)), f(images, gen(3))), spec
        assert not torch.equal(f(images, gen(3)), f(images, gen(4))), spec


def test_spec_errors_name_the_problem():
    with pytest.raises(UserError, match="did you mean 'blur'"):
        tc.check_spec("blurr")
    with pytest.raises(UserError, match="cifar_c:<name>@<severity>"):
        tc.check_spec("cifar_c:fog")
    with pytest.raises(UserError, match="out of range"):
        tc.check_spec("cifar_c:fog@6")
    with pytest.raises(UserError, match="did you mean 'fog'"):
        tc.check_spec("cifar_c:fogg@2")
    assert tc.check_spec("cifar_c:gaussian_noise@5") == "cifar_c:gaussian_noise@5"


def test_cifar_c_spec_calls_corrupt_batch_lazily(monkeypatch, images):
    import robustbench_aux.corruptions as package

    calls = []

    def fake_corrupt_batch(x, name, severity, *, preset="cifar", generator=None):
        calls.append((name, severity, preset))
        return 255 - x

    monkeypatch.setattr(package, "corrupt_batch", fake_corrupt_batch, raising=False)
    out = tc.build_train_corruption("cifar_c:fog@3")(images, gen())
    assert calls == [("fog", 3, "cifar")]
    assert torch.equal(out, 255 - images)


def test_list_includes_cifar_c_form():
    names = tc.list_train_corruptions()
    assert {"blur", "noise", "contrast", "rotation"} <= set(names)
    assert "cifar_c:fog@<1-5>" in names
