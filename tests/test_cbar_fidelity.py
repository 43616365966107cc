"""CIFAR-10-C-bar: the batched torch corruptions against the per-image numpy port (tests/cbar_reference.py).

- every (corruption, severity) cell on real CIFAR-10 images with the port's own random draws
  injected: within 1 grey level on >= 99.5 % of values and no systematic bias;
- the samplers: our per-image draws have the distribution of the port's (which follows the
  authors' ``sample_parameters``), parameter by parameter;
- the building blocks against the libraries the authors call: the anti-aliased line raster vs
  scikit-image's ``line_aa``, the rotation matrices vs ``scipy.ndimage.rotate``, the zoom matrices
  vs ``scipy.ndimage.zoom`` in 2-D, the spectral noise vs ``scipy.fftpack``;
- that the comparison can fail (a wrong level is caught).
"""

from __future__ import annotations

import cbar_reference as ref
import numpy as np
import pytest
import torch

from robustbench_aux.catalog import CBAR_10, SEVERITIES
from robustbench_aux.corruptions import cbar, cbar_ops, corrupt_batch

N_IMAGES = 4


@pytest.fixture(scope="module")
def images(cifar10):
    return np.array(cifar10.test_x[:N_IMAGES])


@pytest.mark.parametrize("name", CBAR_10)
def test_every_cell_matches_the_port_with_its_draws(images, name):
    for severity in SEVERITIES:
        row = ref.measure(images, name, severity)
        assert row["agree_1"] >= 99.5, row
        assert abs(row["mean_signed"]) <= 0.3, row
        assert row["ref_change"] > 0.5, row  # the corruption does something to these images


def test_the_comparison_can_fail(images):
    """Our output at severity 5 against the port's at severity 1 (same draws) is far off."""
    out, params = ref.port_batch(images, "ripple", 1)
    ours = ref.ours_injected(images, "ripple", 5, params)
    assert (np.abs(ours.astype(int) - out.astype(int)) <= 1).mean() < 0.9


def _stack(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _check(ours: np.ndarray, port: np.ndarray, what: str) -> None:
    scale = max(port.std(), 1e-9)
    assert abs(ours.mean() - port.mean()) / scale < 0.05, (what, ours.mean(), port.mean())
    assert abs(ours.std() - port.std()) / scale < 0.05, (what, ours.std(), port.std())


@pytest.mark.parametrize("name", [n for n in CBAR_10 if n in cbar.SAMPLERS])
def test_samplers_draw_the_ports_distribution(name):
    n = 20_000  # a gap of 0.05 std is 5 standard errors at this size
    level = ref.PRESETS[ref.PRESET][name][2][0]
    rng = np.random.RandomState(0)
    port = [ref.sample(name, level, rng) for _ in range(n)]
    ours = {
        k: v.numpy()
        for k, v in cbar.SAMPLERS[name](n, level, torch.Generator().manual_seed(0), "cpu").items()
    }
    if name in ("blue_noise_sample", "brownish_noise"):
        _check(ours["phases"].ravel(), _stack([p["phases"] for p in port]).ravel(), "phases")
        assert ours["phases"].shape[1] == len(port[0]["phases"])
    elif name == "checkerboard_cutout":
        _check(ours["angle"], _stack([p["angle"] for p in port]), "angle")
        _check(ours["scale"], _stack([p["scale"] for p in port]), "scale")
        _check(
            ours["grid"][:, :16, :16].ravel(),
            np.concatenate([p["grid"][:16, :16].ravel() for p in port]),
            "grid",
        )
    elif name == "inverse_sparkles":
        _check(ours["centre"].ravel(), _stack([p["centre"] for p in port]).ravel(), "centre")
        _check(ours["rays"], _stack([p["rays"] for p in port]), "rays")
        _check(ours["normals"][:, :50].ravel(), np.concatenate([p["normals"][:50] for p in port]), "normals")
        assert ours["rays"].min() >= 50 and ours["rays"].max() <= 199
    elif name == "sparkles":
        _check(ours["centres"].ravel(), _stack([p["centres"] for p in port]).ravel(), "centres")
        _check(ours["rays"].ravel(), _stack([p["rays"] for p in port]).ravel(), "rays")
    elif name == "lines":
        _check(ours["angle"], _stack([p["angle"] for p in port]), "angle")
        _check(ours["variation"], _stack([p["variation"] for p in port]), "variation")
        assert ours["lines"].shape[1:] == port[0]["lines"].shape
        _check(ours["lines"].ravel(), _stack([p["lines"] for p in port]).ravel(), "lines")
    elif name == "pinch_and_twirl":
        _check(ours["signs"].ravel(), _stack([p["signs"] for p in port]).ravel(), "signs")
        assert set(np.unique(ours["signs"])) == {-1, 1}
    elif name == "ripple":
        _check(ours["wavelengths"].ravel(), _stack([p["wavelengths"] for p in port]).ravel(), "wavelengths")
        _check(ours["phases"].ravel(), _stack([p["phases"] for p in port]).ravel(), "phases")
    elif name == "transverse_chromatic_abberation":
        perms = ours["permutation"]
        assert (np.sort(perms, axis=1) == np.arange(3)).all()
        _, counts = np.unique(perms[:, 0] * 3 + perms[:, 1], return_counts=True)
        assert len(counts) == 6 and counts.min() > n / 6 * 0.8  # every assignment, about equally often
    else:  # pragma: no cover - a new sampler needs its check
        raise AssertionError(name)


def test_line_aa_equals_scikit_image():
    from skimage.draw import line_aa

    rng = np.random.default_rng(0)
    ends = rng.integers(-40, 72, size=(600, 4))
    ends[:5] = [
        [3, 3, 3, 3],
        [0, 0, 0, 9],
        [0, 0, 9, 0],
        [5, 5, -4, -4],
        [10, 2, -7, 30],
    ]  # point, axes, diagonal
    rows, cols, vals, valid = cbar_ops.line_aa(*(torch.from_numpy(ends[:, k]) for k in range(4)))
    for i, (r0, c0, r1, c1) in enumerate(ends):
        rr, cc, vv = line_aa(int(r0), int(c0), int(r1), int(c1))
        m = valid[i].numpy()
        np.testing.assert_array_equal(rows[i].numpy()[m], rr)
        np.testing.assert_array_equal(cols[i].numpy()[m], cc)
        np.testing.assert_allclose(vals[i].numpy()[m], vv, atol=1e-7)


@pytest.mark.parametrize("angle", [-9.0, -2.5, 0.0, 4.4, 15.0])
def test_rotation_matrix_equals_scipy_rotate(angle):
    from scipy import ndimage

    img = np.random.default_rng(1).random((32, 32))
    m = cbar_ops.spline_sampling_matrix(32, angle) @ cbar_ops.spline_prefilter_matrix(32)
    np.testing.assert_allclose(m @ img.ravel(), ndimage.rotate(img, angle, reshape=False).ravel(), atol=1e-9)


@pytest.mark.parametrize("level", [1.0, 5.0, 10.0])
def test_zoom_matrices_are_scipys_2d_zoom(level):
    from scipy import ndimage

    img = np.random.default_rng(2).random((32, 32)) * 255
    for s in cbar.tca_scales(level):
        m = cbar.zoom_matrix(32, s)
        z = ndimage.zoom(img, s, prefilter=False)
        e = (z.shape[0] - 32) // 2
        np.testing.assert_allclose(m @ img @ m.T, z[e : e + 32, e : e + 32], atol=1e-9)


def test_spectral_noise_equals_the_port():
    phases = np.random.default_rng(3).uniform(0, 2 * np.pi, size=(2, 32, 16))
    ours = cbar_ops.spectral_noise(torch.from_numpy(phases), "brown").numpy()
    for k in range(2):
        np.testing.assert_allclose(ours[k], ref._spectral(phases[k], brown=True), atol=1e-9)
    blue = cbar_ops.spectral_noise(torch.from_numpy(phases), "blue").numpy()
    np.testing.assert_allclose(blue[0], ref._spectral(phases[0], brown=False), atol=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize("name", CBAR_10)
def test_cuda_equals_cpu_with_the_same_draws(images, name):
    """On a CUDA device, the same draws give the CPU's output (within 1 grey level), and a seeded
    generator on the device repeats itself."""
    from robustbench_aux.corruptions.engine import corrupt_float

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    _, params = ref.port_batch(images, name, 3)
    draws = ref.to_draws(name, params)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    cpu = corrupt_float(x, name, 3, ref.PRESET, draws=draws).clamp(0, 255).to(torch.uint8)
    cuda = corrupt_float(x.cuda(), name, 3, ref.PRESET, draws=draws).clamp(0, 255).to(torch.uint8).cpu()
    assert ((cpu.int() - cuda.int()).abs() <= 1).float().mean() >= 0.999
    xc = (x * 255).round().to(torch.uint8).cuda()
    a = corrupt_batch(xc, name, 3, preset=ref.PRESET, generator=torch.Generator("cuda").manual_seed(5))
    b = corrupt_batch(xc, name, 3, preset=ref.PRESET, generator=torch.Generator("cuda").manual_seed(5))
    assert torch.equal(a, b)
