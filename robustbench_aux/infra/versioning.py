"""The code version recorded in every run and evaluation: package version plus the git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from robustbench_aux._version import __version__

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # robustbench_aux/ (this file is in infra/)


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=5)


def code_version() -> str:
    """``<package version>+g<commit>[.dirty]`` inside a git checkout, else the package version.

    ``.dirty`` means the package itself (``robustbench_aux/``: code, recipes, shipped grids) differs
    from the commit; outputs elsewhere in the checkout (a report being rewritten, its
    reproduction.json) do not make the code that writes them dirty."""
    try:
        commit = _git("rev-parse", "--short=10", "HEAD")
        if commit.returncode != 0:
            return __version__
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
        suffix = ".dirty" if dirty.stdout.strip() else ""
        return f"{__version__}+g{commit.stdout.strip()}{suffix}"
    except (OSError, subprocess.SubprocessError):
        return __version__
