"""Reading a JSON object from a file the suite wrote (config, manifest, summary) with one-line errors.

Every reader of such a file gets the same three failures, each a UserError naming the file and the
caller's ``fix``: the file cannot be read, it is not valid JSON (or not UTF-8), or it holds
something other than a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path

from robustbench_aux.errors import UserError


def read_json_object(path: str | Path, fix: str, *, missing_ok: bool = False) -> dict:
    """The JSON object in ``path`` (``{}`` if the file is absent and ``missing_ok``)."""
    path = Path(path)
    if missing_ok and not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or type(exc).__name__}); {fix}") from None
    except ValueError as exc:  # bad JSON or not UTF-8
        raise UserError(f"{path} is not valid JSON ({str(exc).splitlines()[0]}); {fix}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is not a JSON object; {fix}")
    return value
