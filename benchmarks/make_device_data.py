"""Copy CIFAR-10 data small enough to travel to a GPU machine (into the git-ignored ``.device-data/``).

    python benchmarks/make_device_data.py OUT_DIR [--data ../shared/data] [--n-train 6000] [--n-test 10000]
    python benchmarks/make_device_data.py OUT_DIR --webp [--data ../shared/data] [--quality 95]
    python benchmarks/make_device_data.py --unpack OUT_DIR/cifar10-webp DATA_ROOT

The first form writes a subset in the array layout (``OUT_DIR/cifar10/``; 10,000 test images make the
GPU check's generation and evaluation the full CIFAR-C size, 48 MB in all). The whole copy (180 MB)
is over what travels with a working tree (64 MiB), so ``--webp`` packs all of it into
``OUT_DIR/cifar10-webp/`` (about 50 MB): the 10,000 test images losslessly (WebP lossless: the
generated CIFAR-10-C and every evaluation see exactly the shared copy's pixels) and the 50,000
training images as WebP at ``--quality`` (lossy; the PSNR against the copy is measured and written
to ``manifest.json``). ``--unpack`` decodes such a pack into ``DATA_ROOT/cifar10/`` in the array layout.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from robustbench_aux.datasets import load_dataset, write_array_dir
from robustbench_aux.datasets.arrays import DatasetArrays


def _encode(args) -> list[bytes]:
    from PIL import Image

    images, quality = args
    out = []
    for im in images:
        buf = io.BytesIO()
        if quality is None:
            Image.fromarray(im).save(buf, "WEBP", lossless=True, quality=100, method=4)
        else:
            Image.fromarray(im).save(buf, "WEBP", quality=quality, method=4)
        out.append(buf.getvalue())
    return out


def _decode(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image

    images = [
        np.asarray(Image.open(io.BytesIO(blob[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB"))
        for i in range(len(offsets) - 1)
    ]
    return np.stack(images).astype(np.uint8)


def _decode_parallel(blob: np.ndarray, offsets: np.ndarray, workers: int) -> np.ndarray:
    """:func:`_decode` in chunks of 2,000 images over ``workers`` processes."""
    bounds = list(range(0, len(offsets) - 1, 2000)) + [len(offsets) - 1]
    chunks = [
        (blob[offsets[a] : offsets[b]], offsets[a : b + 1] - offsets[a]) for a, b in zip(bounds, bounds[1:])
    ]
    with ProcessPoolExecutor(workers) as pool:
        return np.concatenate(list(pool.map(_decode_star, chunks)))


def _decode_star(args) -> np.ndarray:
    return _decode(*args)


def _pack(x: np.ndarray, quality: int | None, workers: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = [(x[i : i + 2000], quality) for i in range(0, len(x), 2000)]
    with ProcessPoolExecutor(workers) as pool:
        encoded = [b for part in pool.map(_encode, chunks) for b in part]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float(10 * np.log10(255**2 / mse))


def pack_webp(
    data_root: str, out: Path, *, quality: int, n_train: int | None, n_test: int | None, workers: int
) -> Path:
    d = load_dataset("cifar10", data_root, n_train=n_train, n_test=n_test)
    target = out / "cifar10-webp"
    target.mkdir(parents=True, exist_ok=True)
    manifest = {"source": str(data_root), "train_quality": quality, "test": "lossless"}
    for stem, quality_ in (("train", quality), ("test", None)):
        x, y = np.asarray(getattr(d, f"{stem}_x")), np.asarray(getattr(d, f"{stem}_y"), np.int64)
        blob, offsets = _pack(x, quality_, workers)
        np.save(target / f"{stem}_x.webp.npy", blob)
        np.save(target / f"{stem}_x.offsets.npy", offsets)
        np.save(target / f"{stem}_y.npy", y)
        back = _decode(blob, offsets)
        exact = bool(np.array_equal(x, back))
        manifest[stem] = {
            "n": int(len(y)),
            "bytes": int(blob.nbytes),
            "source_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
            "psnr_db": None if exact else round(_psnr(x, back), 2),
            "exact": exact,
        }
    (target / "classes.json").write_text(json.dumps(list(d.classes)))
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return target


def unpack_webp(pack: Path, data_root: Path, workers: int = 0) -> Path:
    if not (pack / "manifest.json").is_file():
        raise SystemExit(f"error: {pack} is not a WebP pack (no manifest.json); make one with --webp")
    arrays = {}
    for stem in ("train", "test"):
        arrays[f"{stem}_x"] = _decode_parallel(
            np.load(pack / f"{stem}_x.webp.npy"),
            np.load(pack / f"{stem}_x.offsets.npy"),
            workers or os.cpu_count() or 1,
        )
        arrays[f"{stem}_y"] = np.load(pack / f"{stem}_y.npy")
    classes = json.loads((pack / "classes.json").read_text())
    target = write_array_dir(
        data_root / "cifar10",
        DatasetArrays(name="cifar10", classes=classes, source=f"WebP pack {pack}", **arrays),
    )
    shutil.copy(pack / "manifest.json", target / "webp_manifest.json")
    return target


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder (with --unpack: the pack folder)")
    p.add_argument("dest", nargs="?", help="with --unpack: the data root to write cifar10/ into")
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--n-train", type=int, default=None, help="training images (default: 6000; --webp: all)")
    p.add_argument("--n-test", type=int, default=10000, help="test images (default 10,000: all)")
    p.add_argument(
        "--webp", action="store_true", help="pack the whole copy as WebP (train lossy, test lossless)"
    )
    p.add_argument("--quality", type=int, default=95, help="WebP quality of the training images (default 95)")
    p.add_argument(
        "--workers", type=int, default=0, help="processes (default: packing 2, unpacking all cores)"
    )
    p.add_argument("--unpack", action="store_true", help="decode the pack OUT into DEST/cifar10/")
    a = p.parse_args(argv)
    if a.unpack:
        if not a.dest:
            raise SystemExit("error: --unpack needs PACK and DEST")
        target = unpack_webp(Path(a.out), Path(a.dest), a.workers)
        print(f"decoded {target}")
    elif a.webp:
        target = pack_webp(
            a.data, Path(a.out), quality=a.quality, n_train=a.n_train, n_test=a.n_test, workers=a.workers or 2
        )
        manifest = json.loads((target / "manifest.json").read_text())
        mb = sum(f.stat().st_size for f in target.iterdir()) / 2**20
        print(
            f"wrote {target} ({mb:.1f} MiB): train PSNR {manifest['train']['psnr_db']} dB, "
            f"test exact {manifest['test']['exact']}"
        )
    else:
        d = load_dataset("cifar10", a.data, n_train=a.n_train or 6000, n_test=a.n_test)
        target = write_array_dir(Path(a.out) / "cifar10", d)
        print(f"wrote {len(d.train_y)} train / {len(d.test_y)} test images to {target}")


if __name__ == "__main__":
    main()
