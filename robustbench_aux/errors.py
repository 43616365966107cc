"""The one exception type for bad user input.

A ``UserError`` carries a one-line message that names the problem and, where there is one, the fix.
The CLI prints it as ``error: <message>`` and exits with status 2 (3 for :class:`NonFiniteError`);
library callers can catch it.
"""

import contextlib
import difflib


class UserError(Exception):
    """Bad input from the user (missing files, wrong shapes, unknown names, bad config keys)."""


class NonFiniteError(UserError):
    """A loss or model state became NaN or infinite: the CLI exits with status 3, not 2 (bad input),
    so scripts and sweeps can tell a diverged run from a mistyped command."""

    exit_status = 3


def require_choices(obj, choices: dict) -> None:
    """A UserError naming the first attribute of ``obj`` whose value is not among its allowed values
    (``choices`` maps attribute name -> the allowed values)."""
    for name, allowed in choices.items():
        value = getattr(obj, name)
        if value not in allowed:
            raise UserError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def did_you_mean(word: str, known, *, n: int = 1, cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` (``'x' or 'y'`` for several) naming up to ``n`` entries of ``known``
    close to ``word`` (difflib ratio >= ``cutoff``), or ``""`` when none is: the one builder of the
    suggestions in unknown-name messages."""
    close = difflib.get_close_matches(word, list(known), n=n, cutoff=cutoff)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the one parser of comma-separated lists (options,
    ``--set`` values, tag and name filters); items are stripped and empty ones dropped."""
    return [t.strip() for t in text.split(",") if t.strip()]


def exception_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters); ``SystemExit(code)`` for an exit."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (sys.exit was called)"
    text = (str(exc).strip().splitlines() or [""])[0].strip()[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def user_code(label: str | None, what: str, fix: str = ""):
    """Run a block that calls code from outside this suite (a model factory, a model's forward):
    an exception raised there, ``SystemExit`` included, becomes a one-line UserError naming
    ``label`` (e.g. the ``--model`` spec), ``what`` it was doing and the exception, instead of a
    traceback (or a silent exit). UserErrors and KeyboardInterrupt pass through unchanged; with
    ``label=None`` nothing is caught (the suite's own models keep their tracebacks)."""
    if label is None:
        yield
        return
    try:
        yield
    except (UserError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - user code may raise anything
        raise UserError(f"{label}: {what} raised {exception_line(exc)}{f'; {fix}' if fix else ''}") from None
