"""One writer per output directory: an exclusive ``flock`` on ``<dir>/.lock``.

``train`` (the run directory), ``evaluate`` (its evaluation directory) and ``corrupt`` (its output
directory) hold the lock while they write. A second process aiming at the same directory gets a
one-line error at once instead of mixing its files with the first one's. The kernel releases the
lock when the process ends, however it ends (exit, crash, SIGKILL), so a stale lock never blocks
a resume. The lock file itself stays (an empty marker; its content is the holder's pid).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from robustbench_aux.errors import UserError
from robustbench_aux.rundir import LOCK_FILE

LOCK_NAME = LOCK_FILE


@contextmanager
def exclusive(directory: str | os.PathLike, what: str = "directory"):
    """Hold the writer lock of ``directory`` (created if needed) for the ``with`` block."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a directory; choose another output {what}")
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(
                f"another process (pid {holder}) is writing {directory}; wait for it to finish "
                f"or choose another output {what}"
            ) from None
        locked = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        if locked and created:
            _remove_if_unused(directory, path)
        os.close(fd)  # closing the descriptor releases the lock


def _remove_if_unused(directory: Path, path: Path) -> None:
    """A directory this writer created and left holding only the lock (it failed before writing
    anything) is removed again, so a refused command leaves no trace."""
    try:
        if [p.name for p in directory.iterdir()] == [LOCK_NAME]:
            path.unlink()  # while still holding the lock
            directory.rmdir()
    except OSError:
        pass
