"""A run's evidence: every file a report needs to recompute its numbers, without the checkpoint.

One folder per run, committed beside its report as ``<report>/evidence/<run id>/`` (every name is
spelled in :mod:`robustbench_aux.rundir`)::

    config.json          the resolved run config (copied from the run directory)
    metrics.csv          one row per epoch: lr, each loss term, clean training accuracy, seconds (copied)
    eval/results.csv     the tidy results table (copied)
    eval/summary.json    the evaluation summary and its provenance (copied)
    eval/per_image.npz   per-image correctness of every block, bit-packed (format below)
    evidence.json        the manifest: format, run id, sha256 of each file above; written last

The folder has a run directory's layout without ``*.pt`` files, so ``report`` reads it as a finished
run. An export removes the manifest, writes the packed file, copies the rest and writes the manifest
last: a folder with ``eval/per_image.npz`` and no ``evidence.json`` is incomplete (an interrupted
export) and refused by ``report``; one whose files do not match the manifest's checksums is refused
with a one-line error, never read.

``eval/per_image.npz`` (a plain zip of ``.npy`` arrays, readable with ``numpy.load``, written with
fixed timestamps so the same results give the same bytes):

- ``format``: the text :data:`PACKED_FORMAT`;
- ``blocks``: the block names (``clean``, ``<corruption>_s<severity>``), sorted;
- ``n``: the images of each block (int64);
- ``correct``: ``numpy.packbits`` of each block's bools (big bit order), the blocks' bytes
  concatenated in ``blocks`` order (block i takes ``ceil(n[i] / 8)`` bytes);
- optional ``extra_<quantity>``: another per-image array of the evaluation store
  (``per_image/<block>.<quantity>.npy``, e.g. a confidence), as float16, the blocks' values
  concatenated in ``blocks`` order (``sum(n)`` values); only when asked for (``export(extras=...)``,
  ``export-evidence --extras``), since each adds about 2.5 MB per run where correctness takes 0.2 MB.

Adding quantities never changes ``blocks``, ``n`` or ``correct``, so readers of correctness are
unaffected.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_aux.catalog import CLEAN
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation.results import read_results
from robustbench_aux.evaluation.store import block_name, load_per_image
from robustbench_aux.infra import atomic
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.jsonio import read_json_object
from robustbench_aux.rundir import (
    CONFIG_JSON,
    EVAL_DIR,
    METRICS_CSV,
    PER_IMAGE_DIR,
    PER_IMAGE_NPZ,
    RESULTS_CSV,
    SUMMARY_JSON,
    RunDir,
    read_config,
)

log = logging.getLogger(__name__)

EVIDENCE_FORMAT = "robustbench-aux-evidence/1"
PACKED_FORMAT = "robustbench-aux-per-image/1"
EXTRA_PREFIX = "extra_"
# the files copied from the run directory, relative to it (never a checkpoint)
COPIED = (CONFIG_JSON, METRICS_CSV, f"{EVAL_DIR}/{RESULTS_CSV}", f"{EVAL_DIR}/{SUMMARY_JSON}")
PACKED = f"{EVAL_DIR}/{PER_IMAGE_NPZ}"
# config keys that say which run it is: evidence is reused only for the same values
IDENTITY_KEYS = ("method", "arch", "dataset", "seed", "recipe", "epochs", "train", "model", "options")
_QUANTITY = re.compile(r"^[a-z][a-z0-9_]*$")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same arrays give the same file


@dataclass
class PerImage:
    """Per-image results of one evaluation: correctness per block and optional float quantities."""

    correct: dict[tuple[str, int], np.ndarray]
    extras: dict[str, dict[tuple[str, int], np.ndarray]] = field(default_factory=dict)


def parse_block(name: str) -> tuple[str, int] | None:
    """``clean`` -> ("clean", 0), ``<corruption>_s<k>`` -> (corruption, k); None if neither."""
    if name == CLEAN:
        return (CLEAN, 0)
    corruption, _, sev = name.rpartition("_s")
    return (corruption, int(sev)) if corruption and sev.isdigit() else None


# ----------------------------------------------------------------------------- the packed file


def pack(per_image: PerImage) -> dict[str, np.ndarray]:
    """The arrays of ``eval/per_image.npz`` (module docstring) for ``per_image``."""
    keys = sorted(per_image.correct, key=lambda k: block_name(*k))
    n = np.array([len(per_image.correct[k]) for k in keys], dtype=np.int64)
    packed = [np.packbits(np.asarray(per_image.correct[k], dtype=bool)) for k in keys]
    arrays = {
        "format": np.array(PACKED_FORMAT),
        "blocks": np.array([block_name(*k) for k in keys], dtype=str),
        "n": n,
        "correct": np.concatenate(packed) if packed else np.zeros(0, np.uint8),
    }
    for quantity in sorted(per_image.extras):
        values = per_image.extras[quantity]
        if not _QUANTITY.match(quantity):
            raise ValueError(f"per-image quantity name {quantity!r} must match {_QUANTITY.pattern}")
        if set(values) != set(keys) or any(len(values[k]) != len(per_image.correct[k]) for k in keys):
            raise ValueError(
                f"per-image quantity {quantity!r} must cover every block with one value per image"
            )
        arrays[EXTRA_PREFIX + quantity] = np.concatenate(
            [np.asarray(values[k], dtype=np.float16) for k in keys] or [np.zeros(0, np.float16)]
        )
    return arrays


def write_packed(path: str | Path, per_image: PerImage) -> Path:
    """Write ``per_image`` as a packed ``.npz`` atomically (same content, same bytes)."""
    arrays = pack(per_image)

    def writer(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w") as z:
            for name, array in arrays.items():
                buf = io.BytesIO()
                np.save(buf, array, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, buf.getvalue(), compresslevel=9)

    return atomic.write_with(path, writer, suffix=".npz")


def read_packed(path: str | Path) -> PerImage:
    """Read a packed ``per_image.npz``; a one-line UserError naming the file if it is damaged."""
    path = Path(path)
    fix = "re-export the evidence from its run directory or restore the file from git"
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise UserError(f"{path} is unreadable ({first}); {fix}") from None
    missing = [k for k in ("format", "blocks", "n", "correct") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; {fix}")
    if str(arrays["format"]) != PACKED_FORMAT:
        raise UserError(f"{path} has format {str(arrays['format'])!r}, expected {PACKED_FORMAT!r}; {fix}")
    names, n, bits = arrays["blocks"], arrays["n"].astype(np.int64), arrays["correct"]
    nbytes = (n + 7) // 8
    if names.ndim != 1 or n.shape != names.shape or bits.dtype != np.uint8 or len(bits) != int(nbytes.sum()):
        raise UserError(f"{path}: blocks, n and correct do not agree in length; {fix}")
    keys = []
    for name in names.tolist():
        key = parse_block(str(name))
        if key is None:
            raise UserError(f"{path}: {name!r} is not a block name; {fix}")
        keys.append(key)
    starts = np.concatenate([[0], np.cumsum(nbytes)])
    correct = {
        k: np.unpackbits(bits[starts[i] : starts[i + 1]], count=int(n[i])).astype(bool)
        for i, k in enumerate(keys)
    }
    extras = {}
    offsets = np.concatenate([[0], np.cumsum(n)])
    for name, values in arrays.items():
        if not name.startswith(EXTRA_PREFIX):
            continue
        if values.ndim != 1 or len(values) != int(offsets[-1]):
            raise UserError(f"{path}: {name} holds {len(values)} values, expected {int(offsets[-1])}; {fix}")
        extras[name[len(EXTRA_PREFIX) :]] = {
            k: values[offsets[i] : offsets[i + 1]].astype(np.float32) for i, k in enumerate(keys)
        }
    return PerImage(correct, extras)


def store_extras(eval_dir: str | Path) -> dict[str, dict[tuple[str, int], np.ndarray]]:
    """Float per-image quantities of an evaluation store: ``per_image/<block>.<quantity>.npy``."""
    d = Path(eval_dir) / PER_IMAGE_DIR
    out: dict[str, dict[tuple[str, int], np.ndarray]] = {}
    if not d.is_dir():
        return out
    for f in sorted(d.glob("*.*.npy")):
        block, _, quantity = f.name[: -len(".npy")].partition(".")
        key = parse_block(block)
        if key is None or not _QUANTITY.match(quantity):
            continue
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            log.warning("leaving out unreadable per-image file %s", f)
            continue
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.floating):
            out.setdefault(quantity, {})[key] = arr
    return out


# ----------------------------------------------------------------------------- the folder


def is_complete(folder: str | Path) -> bool:
    """True when ``folder`` holds a manifest (written last: every file was written)."""
    return RunDir(folder).evidence_manifest.is_file()


def verify(folder: str | Path) -> dict:
    """The manifest of a complete evidence folder after checking every file against it; a one-line
    UserError naming the first missing or changed file."""
    folder = Path(folder)
    manifest_path = RunDir(folder).evidence_manifest
    manifest = read_json_object(manifest_path, f"remove {folder} and export the evidence again")
    if manifest.get("format") != EVIDENCE_FORMAT:
        raise UserError(
            f"{manifest_path} has format {manifest.get('format')!r}, expected {EVIDENCE_FORMAT!r}; "
            f"remove {folder} and export the evidence again"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {*COPIED, PACKED}:
        raise UserError(
            f"{manifest_path} does not list the evidence files; remove {folder} and export it again"
        )
    for rel, digest in files.items():
        path = folder / rel
        if not path.is_file():
            raise UserError(
                f"{path} is missing from the evidence folder; restore it from git or export it again"
            )
        if sha256_file(path) != digest:
            raise UserError(
                f"{path} does not match its sha256 in {manifest_path} (changed after export); "
                "restore it from git or export the evidence again"
            )
    return manifest


def _identity_difference(recorded: Mapping, expected: Mapping, where: str = "") -> str | None:
    """The first identity value that differs (``key (recorded vs expected)``), or None. Keys present
    on one side only are not compared (a setting added to the code later has no recorded value)."""
    for key in expected:
        if key not in recorded:
            continue
        a, b = recorded[key], expected[key]
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            inner = _identity_difference(a, b, f"{where}{key}.")
            if inner:
                return inner
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            return f"{where}{key} ({a!r} vs {b!r})"
    return None


def config_difference(recorded: Mapping, expected: Mapping) -> str | None:
    """The first of :data:`IDENTITY_KEYS` whose value differs between a recorded run config and the
    expected one (a resolved config, or another run's), as ``key (recorded vs expected)``; None if
    they describe the same run."""
    return _identity_difference(
        {k: recorded[k] for k in IDENTITY_KEYS if k in recorded},
        {k: expected[k] for k in IDENTITY_KEYS if k in expected},
    )


def evaluation_difference(folder: str | Path, *, precision: str, c_bar: bool, n: int | None) -> str | None:
    """How the folder's evaluation differs from the one asked for (None: it is that evaluation):
    its precision, CIFAR-C-bar evaluated or not, images per block (when ``n`` is given), and whether
    it evaluated the finished model."""
    table, summary = read_results(Path(folder) / EVAL_DIR)
    prov = summary.get("provenance") or {}
    recorded = str(prov.get("precision") or "fp32")
    if recorded != precision:
        return f"evaluation precision ({recorded} vs {precision})"
    if ("corruptions_bar" in prov) != bool(c_bar):
        return f"CIFAR-C-bar evaluated ({'corruptions_bar' in prov} vs {bool(c_bar)})"
    if n is not None and int(table["n"].max()) != int(n):
        return f"images per block ({int(table['n'].max())} vs {int(n)})"
    if prov.get("checkpoint_finished") is False:
        return "evaluated checkpoint (last.pt of unfinished training vs final.pt)"
    return None


def _check_run(run_dir: Path, extras: Collection[str] | None) -> tuple[dict, PerImage]:
    """The config and per-image results of a finished, evaluated run; a UserError naming what is missing."""
    rd = RunDir(run_dir)
    for path in (rd.config, rd.metrics, rd.results, rd.summary):
        if not path.is_file():
            raise UserError(
                f"{run_dir} is not a trained and evaluated run ({path.name} is missing); "
                f"train it and run `robustbench-aux evaluate {run_dir}` first"
            )
    config = read_config(run_dir)
    table, _ = read_results(rd.eval_dir)
    correct = load_per_image(rd.eval_dir)
    for row in table.itertuples(index=False):
        key = (str(row.corruption), int(row.severity))
        hit = correct.get(key)
        if hit is None or len(hit) != int(row.n) or int(hit.sum()) != int(row.correct):
            raise UserError(
                f"{run_dir}: the per-image results of block {block_name(*key)} are missing or do not "
                f"match results.csv; re-run `robustbench-aux evaluate {run_dir}` to recompute them"
            )
    blocks = {(str(c), int(s)) for c, s in zip(table["corruption"], table["severity"], strict=True)}
    correct = {k: v for k, v in correct.items() if k in blocks}
    found, kept_extras = store_extras(rd.eval_dir), {}
    for quantity in sorted(found) if extras is None else extras:
        if quantity not in found:
            raise UserError(
                f"{run_dir} has no per-image {quantity!r} (per_image/<block>.{quantity}.npy); "
                f"it has {', '.join(sorted(found)) or 'none'}"
            )
        values = found[quantity]
        kept = {k: v for k, v in values.items() if k in blocks and len(v) == len(correct[k])}
        if set(kept) != blocks:
            raise UserError(
                f"{run_dir}: per-image {quantity!r} covers {len(kept)} of the {len(blocks)} blocks; "
                f"re-run `robustbench-aux evaluate {run_dir}` or leave it out"
            )
        kept_extras[quantity] = kept
    return config, PerImage(correct, kept_extras)


def export(run_dir: str | Path, folder: str | Path, extras: Collection[str] | None = ()) -> Path:
    """Write (or refresh) the evidence folder of one finished, evaluated run; returns the folder.

    ``extras``: the float per-image quantities of the evaluation store to pack beside correctness
    (each about 2.5 MB per run at 146 blocks x 10,000 images); none by default, None for all found.

    Refuses a folder holding the evidence of another run (another identity) and the run directory
    itself. The manifest is removed first and written last, so an interrupted export leaves an
    incomplete folder, never one that mixes two exports.
    """
    run_dir, folder = Path(run_dir), Path(folder)
    if folder.resolve() == run_dir.resolve():
        raise UserError(f"the evidence folder {folder} is the run directory itself; choose another -o")
    config, per_image = _check_run(run_dir, extras)
    target = RunDir(folder)
    if target.config.is_file():
        old = read_config(folder, fix=f"remove {folder} and export again")
        differs = "run_id" if old.get("run_id") != config.get("run_id") else config_difference(old, config)
        if differs:
            raise UserError(
                f"{folder} holds the evidence of another run (different {differs}); "
                "remove it to replace it, or export to another folder"
            )
    # the manifest goes first and the packed file is written next: from here until the manifest is
    # written again the folder is an incomplete one (a packed file without a manifest), which
    # report refuses and reproduce makes again
    target.evidence_manifest.unlink(missing_ok=True)
    write_packed(folder / PACKED, per_image)
    for rel in COPIED:
        atomic.write_with(folder / rel, lambda tmp, src=run_dir / rel: shutil.copyfile(src, tmp))
    manifest = {
        "format": EVIDENCE_FORMAT,
        "run_id": config.get("run_id") or run_dir.name,
        "blocks": len(per_image.correct),
        "images": int(sum(len(v) for v in per_image.correct.values())),
        "extras": sorted(per_image.extras),
        "files": {rel: sha256_file(folder / rel) for rel in (*COPIED, PACKED)},
    }
    atomic.write_json(target.evidence_manifest, manifest)
    return folder


def folder_bytes(folder: str | Path) -> int:
    """Bytes of an evidence folder's files (what a commit adds per run)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
