"""Per-block results on disk, so a killed evaluation resumes where it stopped.

``<out>/per_image/<block>.npy`` holds one bool per test image (correct or not) for each finished
(corruption, severity) block, written atomically, and ``<out>/per_image_scores/<block>.npy`` the
image's calibration scores (float32, shape (n, 3): confidence, NLL, Brier; 12 bytes per image, so
about 11.5 MB for the clean set and 19 x 5 blocks of 10,000 images), written before the
correctness file so a stored block always has both unless it was evaluated before the scores were
recorded (then its calibration is "not recorded"); ``<out>/progress.json`` holds a fingerprint of
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

from robustbench_aux import atomic
from robustbench_aux.catalog import CLEAN
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.calibration import SCORE_DTYPE, SCORE_FIELDS
from robustbench_aux.paths import component, inside
from robustbench_aux.rundir import PER_IMAGE_DIR, PER_IMAGE_SCORES_DIR, PROGRESS_JSON

log = logging.getLogger(__name__)

PER_IMAGE = PER_IMAGE_DIR
PER_IMAGE_SCORES = PER_IMAGE_SCORES_DIR
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
        self.scores_dir = self.out_dir / PER_IMAGE_SCORES
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
        for d in (self.dir, self.scores_dir):
            if d.is_dir():
                for f in d.glob("*.npy"):
                    f.unlink()

    def path(self, corruption: str, severity: int) -> Path:
        return inside(self.dir, f"{component(block_name(corruption, severity), 'corruption name')}.npy")

    def scores_path(self, corruption: str, severity: int) -> Path:
        name = component(block_name(corruption, severity), "corruption name")
        return inside(self.scores_dir, f"{name}.npy")

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
        """The stored calibration scores of a block ((n, 3) float32), or None when absent (a block
        evaluated before they were recorded), unreadable or of the wrong shape."""
        p = self.scores_path(corruption, severity)
        if not p.is_file():
            return None
        return _read_scores(p, n)

    def save(
        self, corruption: str, severity: int, correct: np.ndarray, scores: np.ndarray | None = None
    ) -> None:
        """Store a finished block: its scores first, then its correctness (the file resume looks for)."""
        if scores is not None:
            atomic.save_npy(self.scores_path(corruption, severity), np.asarray(scores, dtype=SCORE_DTYPE))
        atomic.save_npy(self.path(corruption, severity), np.asarray(correct, dtype=np.bool_))


def _read_scores(p: Path, n: int | None) -> np.ndarray | None:
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        log.warning("ignoring unreadable scores file %s: that block's calibration is not recorded", p)
        return None
    shape_ok = arr.ndim == 2 and arr.shape[1] == len(SCORE_FIELDS) and (n is None or arr.shape[0] == n)
    if arr.dtype != SCORE_DTYPE or not shape_ok:
        log.warning(
            "ignoring %s (%s %s, expected (n, 3) float32): calibration not recorded", p, arr.dtype, arr.shape
        )
        return None
    return arr


def _block_key(stem: str) -> tuple[str, int] | None:
    if stem == CLEAN:
        return (CLEAN, 0)
    name, sep, sev = stem.rpartition("_s")
    return (name, int(sev)) if sep and sev.isdigit() else None


def load_per_image_scores(eval_dir: str | Path) -> dict[tuple[str, int], np.ndarray]:
    """The stored calibration scores of every block that has them (empty for an evaluation made
    before they were recorded); unreadable files are left out with a warning."""
    d = Path(eval_dir) / PER_IMAGE_SCORES
    out: dict[tuple[str, int], np.ndarray] = {}
    if not d.is_dir():
        return out
    for f in sorted(d.glob("*.npy")):
        key = _block_key(f.stem)
        if key is None:
            continue
        arr = _read_scores(f, None)
        if arr is not None:
            out[key] = arr
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
