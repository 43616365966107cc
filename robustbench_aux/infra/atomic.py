"""Atomic file writes: write to a temporary file in the same directory, then ``os.replace``.

A killed process therefore leaves either the old file or the new one, never a truncated one.
Its temporary file (``.NAME.<pid>.<random>.tmp``) is removed by the next write of ``NAME`` once
the process that made it is gone, so killed writes do not accumulate.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


ORPHAN_AGE_S = 3600.0  # a temporary file without a readable pid counts as orphaned after this


def pid_alive(pid: int) -> bool:
    """True if a process with this id exists (also one owned by another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``path`` left by killed writes; returns those removed.

    A temporary file ``.NAME.<pid>.<random>[.suffix].tmp`` is an orphan when its process no longer
    exists; one without a pid (older versions) when it is older than :data:`ORPHAN_AGE_S`.
    """
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        middle = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        try:
            orphan = (
                not pid_alive(int(middle))
                if middle.isdigit()
                else (time.time() - tmp.stat().st_mtime > ORPHAN_AGE_S)
            )
            if orphan:
                tmp.unlink()
                removed.append(tmp)
        except (OSError, ValueError):
            continue
    return removed


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path beside ``path``; move it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], suffix: str = "") -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path, suffix) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_with(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` without pickle, atomically (the temporary file keeps the .npy suffix)."""

    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)

    return write_with(path, writer, suffix=".npy")


def save_torch(path: str | os.PathLike, obj) -> Path:
    """``torch.save`` atomically (checkpoints hold tensors and primitives only)."""
    import torch

    return write_with(path, lambda p: torch.save(obj, p))
