"""Per-block results on disk, so a killed evaluation resumes where it stopped.

``<out>/per_image/<block>.npy`` holds one bool per test image (correct or not) for each finished
(corruption, severity) block, written atomically, and beside it one float32 file per calibration
quantity, ``<out>/per_image/<block>.<quantity>.npy`` for quantity in confidence, nll, brier (12 bytes
per image in all, so about 11.5 MB for the clean set and 19 x 5 blocks of 10,000 images), written
before the correctness file so a stored block always has them unless it was evaluated before they
were recorded (then its calibration is "not recorded"); ``<out>/progress.json`` holds a fingerprint of
what is being evaluated (model weights, corruption files, n, precision). A rerun with the same
fingerprint skips finished blocks; a different fingerprint is refused unless ``restart`` is set,
so results of another model are never silently mixed in or thrown away.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from robustbench_aux.catalog import CLEAN
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.infra.paths import component, inside
from robustbench_aux.metrics.calibration import SCORE_DTYPE, SCORE_FIELDS
from robustbench_aux.rundir import PER_IMAGE_DIR, PROGRESS_JSON

log = logging.getLogger(__name__)

PER_IMAGE = PER_IMAGE_DIR
PROGRESS = PROGRESS_JSON


def block_name(corruption: str, severity: int) -> str:
    """File stem of a block: ``clean`` or ``<corruption>_s<severity>``."""
    return CLEAN if corruption == CLEAN else f"{corruption}_s{int(severity)}"


def fingerprint_digest(fingerprint: dict) -> str:
    """A short stable hash of a JSON-able fingerprint."""
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]


class BlockStore:
    """Finished blocks of one evaluation in ``out_dir``; see the module docstring."""

    def __init__(self, out_dir: str | Path, fingerprint: dict, *, restart: bool = False):
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / PER_IMAGE
        self.fingerprint = fingerprint
        self.digest = fingerprint_digest(fingerprint)
        progress = self.out_dir / PROGRESS
        if progress.is_file():
            try:
                previous = json.loads(progress.read_text(encoding="utf-8"))
            except ValueError:  # bad JSON or not UTF-8: treated as another evaluation's
                previous = {}
            if not isinstance(previous, dict) or not isinstance(previous.get("fingerprint", {}), dict):
                previous = {}
            if previous.get("digest") != self.digest:
                if not restart:
                    changed = sorted(
                        k
                        for k in set(fingerprint) | set(previous.get("fingerprint", {}))
                        if fingerprint.get(k) != previous.get("fingerprint", {}).get(k)
                    )
                    raise UserError(
                        f"{self.out_dir} holds results of a different evaluation (changed: "
                        f"{', '.join(changed) or 'unknown'}); "
                        "pass --restart to replace them or --out elsewhere"
                    )
                self._clear()
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(progress, {"digest": self.digest, "fingerprint": fingerprint})

    def _clear(self) -> None:
        log.info("restart: discarding previous per-block results in %s", self.dir)
        if self.dir.is_dir():
            for f in self.dir.glob("*.npy"):  # correctness and the per-image quantities beside it
                f.unlink()

    def path(self, corruption: str, severity: int) -> Path:
        return inside(self.dir, f"{component(block_name(corruption, severity), 'corruption name')}.npy")

    def scores_path(self, corruption: str, severity: int, quantity: str) -> Path:
        name = component(block_name(corruption, severity), "corruption name")
        return inside(self.dir, f"{name}.{quantity}.npy")

    def load(self, corruption: str, severity: int, n: int) -> np.ndarray | None:
        """The stored per-image result of a block, or None if absent or of the wrong length."""
        p = self.path(corruption, severity)
        if not p.is_file():
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            log.warning("ignoring unreadable block file %s; it will be recomputed", p)
            return None
        if arr.dtype != np.bool_ or arr.shape != (n,):
            log.warning("ignoring %s (shape %s, expected (%d,) bool); it will be recomputed", p, arr.shape, n)
            return None
        return arr

    def load_scores(self, corruption: str, severity: int, n: int) -> np.ndarray | None:
        """The stored calibration scores of a block ((n, 3) float32: confidence, NLL, Brier), or
        None when one is absent (a block evaluated before they were recorded), unreadable or of the
        wrong shape."""
        columns = []
        for quantity in SCORE_FIELDS:
            p = self.scores_path(corruption, severity, quantity)
            arr = _read_quantity(p, n) if p.is_file() else None
            if arr is None:
                return None
            columns.append(arr)
        return np.stack(columns, axis=1)

    def save(
        self, corruption: str, severity: int, correct: np.ndarray, scores: np.ndarray | None = None
    ) -> None:
        """Store a finished block: its scores first (one file per quantity), then its correctness
        (the file resume looks for)."""
        if scores is not None:
            scores = np.asarray(scores, dtype=SCORE_DTYPE)
            for j, quantity in enumerate(SCORE_FIELDS):
                atomic.save_npy(
                    self.scores_path(corruption, severity, quantity), np.ascontiguousarray(scores[:, j])
                )
        atomic.save_npy(self.path(corruption, severity), np.asarray(correct, dtype=np.bool_))


def _read_quantity(p: Path, n: int | None) -> np.ndarray | None:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        log.warning("ignoring unreadable file %s: that block's calibration is not recorded", p)
        return None
    if arr.dtype != SCORE_DTYPE or arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        log.warning(
            "ignoring %s (%s %s, expected (n,) float32): calibration not recorded", p, arr.dtype, arr.shape
        )
        return None
    return arr


def _block_key(stem: str) -> tuple[str, int] | None:
    if stem == CLEAN:
        return (CLEAN, 0)
    name, sep, sev = stem.rpartition("_s")
    return (name, int(sev)) if sep and sev.isdigit() else None


def load_per_image_scores(eval_dir: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """The stored calibration scores ((n, 3) float32: confidence, NLL, Brier) of every block that
    has all three (empty for an evaluation made before they were recorded); unreadable files are
    left out with a warning."""
    d = Path(eval_dir) / PER_IMAGE
    out: dict[tuple[str, int], np.ndarray] = {}
    if not d.is_dir():
        return out
    for f in sorted(d.glob(f"*.{SCORE_FIELDS[0]}.npy")):
        stem = f.name[: -len(f".{SCORE_FIELDS[0]}.npy")]
        key = _block_key(stem)
        if key is None:
            continue
        columns = [
            _read_quantity(d / f"{stem}.{q}.npy", None) if (d / f"{stem}.{q}.npy").is_file() else None
            for q in SCORE_FIELDS
        ]
        if any(c is None for c in columns) or len({len(c) for c in columns}) != 1:
            continue
        out[key] = np.stack(columns, axis=1)
    return out


def load_per_image(eval_dir: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """All per-image block results of an evaluation directory (empty if it has none)."""
    d = Path(eval_dir) / PER_IMAGE
    out: dict[tuple[str, int], np.ndarray] = {}
    if not d.is_dir():
        return out
    for f in sorted(d.glob("*.npy")):
        stem = f.stem
        if stem == CLEAN:
            key = (CLEAN, 0)
        elif "_s" in stem:
            name, _, sev = stem.rpartition("_s")
            if not sev.isdigit():
                continue
            key = (name, int(sev))
        else:
            continue
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:120]
            raise UserError(
                f"{f} is unreadable ({first}); rerun `robustbench-aux evaluate` on its run to recompute it"
            ) from None
        if arr.ndim != 1 or arr.dtype != np.bool_:
            raise UserError(
                f"{f} holds {arr.dtype} {arr.shape}, expected one bool per image; "
                "rerun `robustbench-aux evaluate` on its run to recompute it"
            )
        out[key] = arr
    return out
