"""Names that become path components, and writes that must stay inside their output directory.

Run ids, labels, architecture, method and corruption names and grid values end up in file and
directory names (``<out>/<run id>/``, ``<run_id>.json``, ``interference_<arch>.csv``). They come
from files that may be shared (a checkpoint's config, a results table, a grid), so every one is
checked where it is read (:func:`component`) and every write built from one is checked to resolve
inside its output directory (:func:`inside`).
"""

from __future__ import annotations

import os
from pathlib import Path

from robustbench_aux.errors import UserError
from robustbench_aux.infra.plaintext import first_control

MAX_COMPONENT = 200  # bytes; file systems allow 255, leaving room for prefixes and suffixes


def component(name, what: str = "name") -> str:
    """``name`` as a string if it can be one path component; else a UserError naming ``what``.

    Refused: empty, ``.``/``..``, path separators, NUL and other control or invisible formatting
    characters (:mod:`robustbench_aux.infra.plaintext`), more than :data:`MAX_COMPONENT` bytes.
    """
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise UserError(f"{what} must be a string, got {name!r}")
    text = str(name)
    bad = (
        not text
        or text in (".", "..")
        or "/" in text
        or "\\" in text
        or first_control(text) is not None
        or len(text.encode("utf-8", "surrogatepass")) > MAX_COMPONENT
    )
    if bad:
        raise UserError(
            f"{what} {text[:80]!r} cannot be used in a file name (it must be a non-empty name without "
            f"'/', '\\' or control characters, not '.' or '..', at most {MAX_COMPONENT} bytes)"
        )
    return text


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root / parts...``, refused with a UserError unless it resolves inside ``root``.

    Symbolic links are followed (a link inside ``root`` pointing elsewhere is refused), so a name
    read from a file can never make a write land outside its output directory.
    """
    root = Path(root)
    target = root.joinpath(*parts)
    base = root.resolve()
    resolved = target.resolve()
    if resolved == base or base not in resolved.parents:
        raise UserError(
            f"refusing to write {target}: it resolves to {resolved}, outside the output directory {root}"
        )
    return target
