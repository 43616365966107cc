"""The dense resampling matrices against the library routines they stand for, edge cases included."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import correlate1d, gaussian_filter1d
from scipy.ndimage import zoom as nd_zoom

from robustbench_aux.corruptions.ops import (
    clipped_zoom_matrix,
    correlation_matrix,
    fold_index,
    gaussian_matrix,
    pil_box_matrix,
    pil_nearest_matrix,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("mode", ["nearest", "reflect", "mirror"])
@pytest.mark.parametrize(
    "n, sigma, truncate", [(32, 0.4, 4.0), (32, 6.0, 4.0), (9, 3.0, 4.0), (40, 0.32, 3.0)]
)
def test_gaussian_matrix_is_scipy_gaussian_filter(mode, n, sigma, truncate):
    v = RNG.random(n)
    want = gaussian_filter1d(v, sigma, mode=mode, truncate=truncate)
    np.testing.assert_allclose(gaussian_matrix(n, sigma, mode, truncate) @ v, want, atol=1e-12)


def test_zero_sigma_is_identity_and_fold_modes():
    assert np.array_equal(gaussian_matrix(8, 0.0), np.eye(8))
    i = np.arange(-4, 9)
    assert fold_index(i, 4, "nearest").tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3]
    assert fold_index(i, 4, "reflect").tolist() == [3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]
    assert fold_index(i, 4, "mirror").tolist() == [2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]


def test_correlation_matrix_matches_scipy_with_long_kernels():
    v = RNG.random(6)
    w = RNG.random(9)  # longer than the signal: the border folds more than once
    for mode in ("nearest", "reflect", "mirror"):
        np.testing.assert_allclose(
            correlation_matrix(6, w, mode) @ v, correlate1d(v, w, mode=mode), atol=1e-12
        )


@pytest.mark.parametrize("n_in, n_out", [(32, 30), (32, 28), (32, 20), (32, 8), (20, 32), (30, 32), (13, 32)])
def test_pil_resize_matrices(n_in, n_out):
    """Rows of a constant-per-column image isolate the horizontal pass of PIL's resampler."""
    row = (RNG.random(n_in) * 255).round()
    img = Image.fromarray(np.tile(row, (4, 1)).astype(np.uint8))
    box = np.asarray(img.resize((n_out, 4), Image.BOX), dtype=float)[0]
    nearest = np.asarray(img.resize((n_out, 4), Image.NEAREST), dtype=float)[0]
    assert np.abs(np.floor(pil_box_matrix(n_in, n_out) @ row + 0.5) - box).max() <= 1
    assert np.array_equal(pil_nearest_matrix(n_in, n_out) @ row, nearest)


@pytest.mark.parametrize("zoom", [1.0, 1.01, 1.06, 1.25, 1.75, 2.25, 3.0, 4.5])
def test_clipped_zoom_matrix_is_scipy_zoom(zoom):
    n = 32
    v = RNG.random(n).astype(np.float64)
    ch = int(np.ceil(n / zoom))
    top = (n - ch) // 2
    zoomed = nd_zoom(v[top : top + ch], zoom, order=1)
    np.testing.assert_allclose(clipped_zoom_matrix(n, zoom, None) @ v, zoomed, atol=1e-12)
    trim = (len(zoomed) - n) // 2
    np.testing.assert_allclose(
        clipped_zoom_matrix(n, zoom, "center") @ v, zoomed[trim : trim + n], atol=1e-12
    )
    np.testing.assert_allclose(clipped_zoom_matrix(n, zoom, "topleft") @ v, zoomed[:n], atol=1e-12)
