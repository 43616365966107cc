"""CIFAR-C generation: the published layout, written file by file, atomically and resumably.

``<out>/<corruption>.npy``: (len(severities)·n, 32, 32, 3) uint8, severity blocks stacked in the
order given (1..5 by default, as published); ``<out>/labels.npy``: the n labels tiled once per
severity; ``<out>/manifest.json``: settings, package versions, per-file sha256 and the note
"generated, not the published files". A rerun with the same settings skips finished files; a
rerun with other settings into the same directory is refused.

Each (corruption, severity) block has its own torch generator, seeded from (seed, corruption,
severity), so the bytes of a file do not depend on which other corruptions were asked for or on
resuming; they do depend on the device and on the batch size (both recorded).

The ``cifar10-c-bar`` preset writes CIFAR-10-C-bar (the ten corruptions of Mintun et al., 2021) in
the same layout; its manifest says ``"benchmark": "cifar-c-bar"`` and, in ``parameters``, whose
parameters were used (the published CIFAR-10-C-bar levels; for CIFAR-100 the same levels, this
suite's choice).
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from robustbench_aux.catalog import SEVERITIES
from robustbench_aux.cifar_c_layout import LABELS_NPY, MANIFEST, corruption_npy
from robustbench_aux.corruptions.engine import check_corrupt_args, corrupt_batch, select_corruptions
from robustbench_aux.corruptions.presets import CBAR_PRESET, PRESET_VARIANTS, check_preset
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.jsonio import read_json_object
from robustbench_aux.infra.versioning import code_version

log = logging.getLogger(__name__)

NOTE = "generated, not the published files"
# settings that must match for a rerun to resume into the same directory
_RESUME_KEYS = (
    "preset",
    "seed",
    "severities",
    "n_per_severity",
    "labels_sha256",
    "images_sha256",
    "batch_size",
)


def parameters_note(preset: str, dataset: str | None) -> str:
    """Whose parameters a generation used, for its manifest (and every result that reads it)."""
    if preset != CBAR_PRESET:
        return f"{preset} preset (robustbench_aux/corruptions/presets.py)"
    note = "the published CIFAR-10-C-bar levels (Mintun et al., NeurIPS 2021, cifar10_c_bar.csv)"
    if dataset and dataset != "cifar10":
        note += f", applied to {dataset}: this suite's choice, not a published {dataset} C-bar set"
    return note


def block_seed(seed: int, corruption: str, severity: int) -> int:
    """A stable 63-bit seed for one (corruption, severity) block."""
    return (int(seed) * 1_000_003 + zlib.crc32(corruption.encode()) * 7 + severity) % (2**63 - 1)


def package_versions() -> dict:
    """Versions of everything that shapes the bytes of a generated file."""
    import importlib.metadata as md

    import PIL
    import scipy

    # the package version plus the git commit where there is one: corruption arithmetic can change
    # between commits of one release
    versions = {"robustbench_aux": code_version(), "torch": torch.__version__, "numpy": np.__version__}
    versions.update({"pillow": PIL.__version__, "scipy": scipy.__version__})
    for dist in ("opencv-python", "opencv-python-headless", "imagecorruptions", "scikit-image"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions


def _check_severities(severities: Iterable[int]) -> list[int]:
    out = []
    for s in severities:
        if isinstance(s, bool) or int(s) != s or int(s) not in SEVERITIES:
            raise UserError(f"severity {s!r} is outside 1..5; pass e.g. --severities 1,3,5")
        if int(s) in out:
            raise UserError(f"severity {s} is listed twice")
        out.append(int(s))
    if not out:
        raise UserError("no severities chosen; pass e.g. --severities 1,2,3,4,5")
    return out


def _load_manifest(path: Path) -> dict:
    return read_json_object(path, "delete it and the .npy files beside it", missing_ok=True)


def generate_cifar_c(
    test_x: np.ndarray,
    test_y: np.ndarray,
    out_dir: str | Path,
    *,
    preset: str = "cifar",
    corruptions: Iterable[str] | None = None,
    severities: Iterable[int] = SEVERITIES,
    n: int | None = None,
    device: str | torch.device = "cpu",
    workers: int = 1,
    seed: int = 0,
    batch_size: int = 1000,
    source: dict | None = None,
) -> dict:
    """Write a CIFAR-C directory from uint8 (N, 32, 32, 3) ``test_x`` and labels ``test_y``.

    Uses the first ``n`` images (all by default). Returns the manifest (also in ``manifest.json``).
    ``source`` describes the dataset (copied into the manifest). Files already finished with the
    same settings are kept; a different setting in an existing directory is a UserError.
    """
    check_preset(preset)
    names = select_corruptions(corruptions, preset=preset)
    if not names:
        raise UserError("no corruptions chosen")
    sev = _check_severities(severities)
    test_x = np.asarray(test_x)
    test_y = np.asarray(test_y)
    if n is not None:
        if int(n) < 1:
            raise UserError(f"--n must be at least 1, got {n}")
        test_x, test_y = test_x[: int(n)], test_y[: int(n)]
    if test_x.ndim != 4 or test_x.shape[-1] != 3 or test_x.dtype != np.uint8:
        raise UserError(f"test images must be uint8 (N, H, W, 3), got {test_x.dtype} {test_x.shape}")
    if len(test_y) != len(test_x):
        raise UserError(f"{len(test_x)} test images but {len(test_y)} labels")
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as exc:
        raise UserError(
            f"device {device!r} is not usable here ({str(exc).splitlines()[0]}); try --device cpu"
        ) from None
    count = len(test_x)
    check_corrupt_args(torch.zeros((1, 3) + test_x.shape[1:3], dtype=torch.uint8), names[0], sev[0], preset)

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out} ({exc.strerror}); choose a writable --out") from None
    labels = np.tile(test_y.astype(np.uint8 if int(test_y.max(initial=0)) < 256 else np.int64), len(sev))
    settings = {
        "preset": preset,
        "seed": int(seed),
        "severities": sev,
        "n_per_severity": count,
        "labels_sha256": hashlib.sha256(np.ascontiguousarray(test_y).tobytes()).hexdigest(),
        "images_sha256": hashlib.sha256(np.ascontiguousarray(test_x).tobytes()).hexdigest(),
        "batch_size": int(batch_size),
    }
    manifest = _load_manifest(out / MANIFEST)
    if manifest:
        clash = [k for k in _RESUME_KEYS if manifest.get(k) != settings[k]]
        if clash:
            k = clash[0]
            raise UserError(
                f"{out} holds a generation with other settings ({k}: {manifest.get(k)!r} there, "
                f"{settings[k]!r} now); choose another --out or delete that directory"
            )
    else:
        manifest = {"generated": True, "note": NOTE, **settings, "files": {}, "seconds": {}}
    manifest.update(
        {
            "benchmark": PRESET_VARIANTS[preset]["benchmark"],
            "parameters": parameters_note(preset, (source or {}).get("dataset")),
            "source": source or {},
            "versions": package_versions(),
            "device": str(dev),
            "workers": int(workers),
            "layout": "<corruption>.npy (len(severities)*n, H, W, 3) uint8 in severity blocks; labels tiled",
        }
    )
    files = manifest.setdefault("files", {})
    if LABELS_NPY not in files or not (out / LABELS_NPY).is_file():
        atomic.save_npy(out / LABELS_NPY, labels)
        files[LABELS_NPY] = sha256_file(out / LABELS_NPY)
    atomic.write_json(out / MANIFEST, manifest)

    todo = [c for c in names if not _finished(out, c, files, len(sev) * count)]
    if len(todo) < len(names):
        log.info("resuming: %d of %d files already finished in %s", len(names) - len(todo), len(names), out)
    batches = -(-count // batch_size)
    bar = tqdm(total=len(todo) * len(sev) * batches, desc="corrupt", unit="batch", disable=None)
    for name in todo:
        start = time.perf_counter()
        images = np.empty((len(sev) * count,) + test_x.shape[1:], np.uint8)
        for k, s in enumerate(sev):
            gen = torch.Generator(device=dev).manual_seed(block_seed(seed, name, s))
            for lo in range(0, count, batch_size):
                x = torch.from_numpy(np.array(test_x[lo : lo + batch_size])).to(dev)  # a writable copy
                y = corrupt_batch(
                    x.permute(0, 3, 1, 2), name, s, preset=preset, generator=gen, workers=workers
                )
                images[k * count + lo : k * count + lo + len(x)] = y.permute(0, 2, 3, 1).cpu().numpy()
                bar.update(1)
        atomic.save_npy(out / corruption_npy(name), images)
        files[corruption_npy(name)] = sha256_file(out / corruption_npy(name))
        manifest["seconds"][name] = round(time.perf_counter() - start, 3)
        atomic.write_json(out / MANIFEST, manifest)  # after every file: a crash loses at most one
        log.info("%s: %d images in %.1f s", name, len(images), manifest["seconds"][name])
    bar.close()
    return manifest


def _finished(out: Path, name: str, files: dict, rows: int) -> bool:
    """A file counts as finished if the manifest lists it and it has the expected header shape."""
    path = out / corruption_npy(name)
    if corruption_npy(name) not in files or not path.is_file():
        return False
    try:
        arr = np.load(path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    return arr.shape[0] == rows and arr.dtype == np.uint8
