"""The one exception type for bad user input.

A ``UserError`` carries a one-line message that names the problem and, where there is one, the fix.
The CLI prints it as ``error: <message>`` and exits with status 2 (3 for :class:`NonFiniteError`);
library callers can catch it.
"""


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
