"""The published CIFAR-C layout reader, on a small fixture written in that exact layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CATEGORY, EXTRA_4
from robustbench_aux.datasets import CifarCReader
from robustbench_aux.errors import UserError

N = 8  # images per severity in the fixture (the published files have 10,000)


def write_fixture(directory, corruptions=ALL_19, n=N, manifest=None):
    directory.mkdir(parents=True, exist_ok=True)
    labels = np.arange(n) % 10
    np.save(directory / "labels.npy", np.tile(labels, 5).astype(np.uint8))
    for i, c in enumerate(corruptions):
        x = np.zeros((5 * n, 32, 32, 3), np.uint8)
        for s in range(5):
            x[s * n : (s + 1) * n] = 10 * i + s + 1  # encodes (corruption, severity) in the pixels
        np.save(directory / f"{c}.npy", x)
    if manifest is not None:
        (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_catalog():
    assert len(BENCHMARK_15) == 15 and len(EXTRA_4) == 4 and len(set(ALL_19)) == 19
    assert EXTRA_4 == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    assert CATEGORY["frost"] == "weather" and CATEGORY["jpeg_compression"] == "digital"


def test_reads_blocks_in_published_order(tmp_path):
    r = CifarCReader(write_fixture(tmp_path / "CIFAR-100-C"), require=ALL_19, num_classes=100)
    assert r.corruptions == list(ALL_19) and r.n == N and r.provenance == "published"
    b = r.block("fog", 3)
    assert b.images.shape == (N, 32, 32, 3) and b.images.dtype == np.uint8
    assert int(b.images[0, 0, 0, 0]) == 10 * ALL_19.index("fog") + 3
    np.testing.assert_array_equal(b.labels, np.arange(N) % 10)
    assert isinstance(r._array("fog"), np.memmap)  # memory-mapped, not loaded
    blocks = list(r.blocks(n=3))
    assert len(blocks) == 95 and all(len(bl.labels) == 3 for bl in blocks)
    assert [(bl.corruption, bl.severity) for bl in blocks[:6]] == [
        ("gaussian_noise", s) for s in range(1, 6)
    ] + [("shot_noise", 1)]


def test_generated_manifest_is_reported(tmp_path):
    d = write_fixture(tmp_path / "c", ("fog",), manifest={"generated": True, "preset": "cifar"})
    r = CifarCReader(d)
    assert r.provenance == "generated" and r.preset == "cifar" and r.corruptions == ["fog"]


def test_missing_corruptions_are_listed(tmp_path):
    d = write_fixture(tmp_path / "c", [c for c in ALL_19 if c not in ("snow", "saturate")])
    with pytest.raises(UserError, match=r"lacks 2 corruption file\(s\): snow, saturate; re-download"):
        CifarCReader(d, require=ALL_19)


def test_truncated_corruption_file(tmp_path):
    d = write_fixture(tmp_path / "c", ("fog", "snow"))
    raw = (d / "snow.npy").read_bytes()
    (d / "snow.npy").write_bytes(raw[:1000])
    with pytest.raises(UserError, match=r"snow\.npy is truncated"):
        CifarCReader(d)
    assert (d / "snow.npy").stat().st_size == 1000  # the reader never rewrites anything


def test_wrong_shape_and_labels(tmp_path):
    d = write_fixture(tmp_path / "c", ("fog",))
    np.save(d / "fog.npy", np.zeros((5 * N, 32, 32), np.uint8))
    with pytest.raises(UserError, match=r"fog\.npy has shape"):
        CifarCReader(d)
    d2 = write_fixture(tmp_path / "d", ("fog",))
    np.save(d2 / "labels.npy", np.arange(5 * N) % 10)
    with pytest.raises(UserError, match="not the test labels tiled 5 times"):
        CifarCReader(d2)
    d3 = write_fixture(tmp_path / "e", ("fog",))
    with pytest.raises(UserError, match=r"outside \[0, 5\)"):
        CifarCReader(d3, num_classes=5)


def test_missing_directory(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        CifarCReader(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="none of the 19"):
        CifarCReader(tmp_path / "empty")
