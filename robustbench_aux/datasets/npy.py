"""Checked ``.npy`` loading: every failure becomes a one-line UserError naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustbench_aux.errors import UserError


def load_npy(path: Path, *, fix: str, mmap: bool = True) -> np.ndarray:
    """Load ``path`` (memory-mapped by default); a truncated or unreadable file is a UserError."""
    if not path.is_file():
        raise UserError(f"missing file {path}; {fix}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path} is truncated or not a valid .npy file ({exc}); {fix}") from None


def check_images(x: np.ndarray, path: Path, *, fix: str, rows: int | None = None) -> None:
    """Images must be uint8 (N, 32, 32, 3) HWC RGB, with ``rows`` rows if given."""
    if x.dtype != np.uint8:
        raise UserError(f"{path} has dtype {x.dtype}, expected uint8 images; {fix}")
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
        raise UserError(f"{path} has shape {x.shape}, expected (N, 32, 32, 3) uint8 HWC; {fix}")
    if rows is not None and x.shape[0] != rows:
        raise UserError(f"{path} has {x.shape[0]} rows, expected {rows}; {fix}")


def check_labels(y: np.ndarray, path: Path, *, fix: str, rows: int, num_classes: int | None) -> None:
    """Labels must be a 1-D integer array of ``rows`` entries in [0, num_classes)."""
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{path} has shape {y.shape} dtype {y.dtype}, expected 1-D integer labels; {fix}")
    if y.shape[0] != rows:
        raise UserError(f"{path} has {y.shape[0]} labels but the images have {rows} rows; {fix}")
    if rows and (int(y.min()) < 0 or (num_classes is not None and int(y.max()) >= num_classes)):
        raise UserError(
            f"{path} has labels in [{int(y.min())}, {int(y.max())}], outside [0, {num_classes}); {fix}"
        )
