"""CIFAR-C generation: published layout, manifest, resume, severities subset, CLI and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robustbench_aux.cli import main
from robustbench_aux.corruptions import ALL_19, corrupt_batch, generate_cifar_c
from robustbench_aux.corruptions.generate import NOTE, block_seed
from robustbench_aux.datasets import CifarCReader
from robustbench_aux.errors import UserError
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.versioning import code_version

N = 6


@pytest.fixture(scope="module")
def generated(tmp_path_factory, cifar10_root):
    out = tmp_path_factory.mktemp("gen") / "CIFAR-10-C"
    argv = [
        "corrupt",
        "--dataset",
        "cifar10",
        "--data",
        str(cifar10_root),
        "--n",
        str(N),
        "--preset",
        "cifar",
    ]
    assert main(argv + ["--out", str(out), "--batch-size", "4"]) == 0
    return out


def test_published_layout_and_reader(generated, cifar10):
    reader = CifarCReader(generated, require=ALL_19, num_classes=10)
    assert reader.n == N and reader.severities == (1, 2, 3, 4, 5) and reader.provenance == "generated"
    assert reader.preset == "cifar"
    for name in ALL_19:
        arr = np.load(generated / f"{name}.npy")
        assert arr.shape == (5 * N, 32, 32, 3) and arr.dtype == np.uint8
    labels = np.load(generated / "labels.npy")
    assert labels.dtype == np.uint8 and np.array_equal(labels, np.tile(np.asarray(cifar10.test_y[:N]), 5))
    block = reader.block("fog", 3)
    assert block.images.shape == (N, 32, 32, 3)


def test_manifest(generated):
    m = json.loads((generated / "manifest.json").read_text())
    assert m["generated"] is True and m["note"] == NOTE == "generated, not the published files"
    assert m["preset"] == "cifar" and m["seed"] == 0 and m["severities"] == [1, 2, 3, 4, 5]
    assert m["n_per_severity"] == N and m["source"]["dataset"] == "cifar10"
    assert {"torch", "numpy", "pillow", "robustbench_aux"} <= set(m["versions"])
    assert m["versions"]["robustbench_aux"] == code_version()  # package version + git commit
    assert set(m["files"]) == {f"{n}.npy" for n in ALL_19} | {"labels.npy"}
    for fname, sha in m["files"].items():
        assert sha256_file(generated / fname) == sha, fname


def test_blocks_are_reproducible_from_the_seed(generated, cifar10):
    x = torch.from_numpy(np.array(cifar10.test_x[:N])).permute(0, 3, 1, 2)
    stored = np.load(generated / "snow.npy")
    for s in (2, 5):
        g = torch.Generator().manual_seed(block_seed(0, "snow", s))
        first = corrupt_batch(x[:4], "snow", s, generator=g)  # batch size 4, as generated
        second = corrupt_batch(x[4:], "snow", s, generator=g)
        want = torch.cat((first, second)).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(stored[(s - 1) * N : s * N], want)


def test_resume_skips_finished_files_and_redoes_missing_ones(tmp_path, cifar10):
    out = tmp_path / "c"
    kw = dict(corruptions=["fog", "jpeg_compression"], n=N, seed=3)
    m1 = generate_cifar_c(cifar10.test_x, cifar10.test_y, out, **kw)
    fog_mtime = (out / "fog.npy").stat().st_mtime_ns
    (out / "jpeg_compression.npy").unlink()
    m2 = generate_cifar_c(cifar10.test_x, cifar10.test_y, out, **kw)
    assert (out / "fog.npy").stat().st_mtime_ns == fog_mtime  # kept
    assert m2["files"]["jpeg_compression.npy"] == m1["files"]["jpeg_compression.npy"]  # same bytes again
    m3 = generate_cifar_c(cifar10.test_x, cifar10.test_y, out, corruptions=["snow"], n=N, seed=3)  # add one
    assert set(m3["files"]) == {"fog.npy", "jpeg_compression.npy", "snow.npy", "labels.npy"}
    with pytest.raises(UserError, match="other settings \\(seed: 3 there, 4 now\\)"):
        generate_cifar_c(cifar10.test_x, cifar10.test_y, out, corruptions=["fog"], n=N, seed=4)
    assert not list(out.glob(".*tmp")), "no temporary files left behind"


def test_severity_subset(tmp_path, cifar10):
    out = tmp_path / "c"
    generate_cifar_c(cifar10.test_x, cifar10.test_y, out, corruptions=["contrast"], severities=[2, 5], n=N)
    reader = CifarCReader(out)
    assert reader.severities == (2, 5) and reader.n == N
    assert [(b.corruption, b.severity) for b in reader.blocks()] == [("contrast", 2), ("contrast", 5)]
    x = torch.from_numpy(np.array(cifar10.test_x[:N])).permute(0, 3, 1, 2)
    want = corrupt_batch(x, "contrast", 5).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(reader.block("contrast", 5).images, want)
    with pytest.raises(UserError, match="holds severities 2, 5 only"):
        reader.block("contrast", 1)


def test_synthetic_100_classes_and_workers(tmp_path):
    out = tmp_path / "s"
    argv = [
        "corrupt",
        "--dataset",
        "synthetic100",
        "--n",
        "8",
        "--out",
        str(out),
        "--corruptions",
        "jpeg_compression",
    ]
    assert main(argv + ["--workers", "2", "--severities", "1,3"]) == 0
    reader = CifarCReader(out, num_classes=100)
    assert reader.corruptions == ["jpeg_compression"] and reader.severities == (1, 3)


def test_list(capsys):
    assert main(["corrupt", "--list", "--tags", "noise"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "speckle_noise",
    ]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--severities", "0,1"], "severity 0 is outside 1..5"),
        (["--severities", "a"], "comma-separated integers"),
        (["--corruptions", "fogg"], "did you mean 'fog'"),
        (["--preset", "cifar100"], "unknown corruption preset"),
        (["--device", "nonsense"], "device 'nonsense' is not usable"),
        (["--n", "0"], "at least 1"),
        (["--workers", "0"], "workers must be at least 1"),
    ],
)
def test_bad_cli_input(tmp_path, capsys, extra, match):
    argv = ["corrupt", "--dataset", "synthetic10", "--n", "4", "--out", str(tmp_path / "o")]
    assert main(argv + extra) == 2
    assert match in capsys.readouterr().err


def test_missing_required_options(capsys):
    assert main(["corrupt", "--dataset", "cifar10"]) == 2
    assert "needs --dataset and --out" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generation_on_cuda_is_seeded_and_readable(tmp_path, cifar10):
    kw = dict(
        corruptions=["glass_blur", "frost", "jpeg_compression", "spatter"], n=64, device="cuda", batch_size=32
    )
    m1 = generate_cifar_c(cifar10.test_x, cifar10.test_y, tmp_path / "a", **kw)
    m2 = generate_cifar_c(cifar10.test_x, cifar10.test_y, tmp_path / "b", **kw)
    assert m1["files"] == m2["files"] and m1["device"].startswith("cuda")
    assert CifarCReader(tmp_path / "a").corruptions == ["glass_blur", "frost", "jpeg_compression", "spatter"]
