"""The one exception type for bad user input.

A ``UserError`` carries a one-line message that names the problem and, where there is one, the fix.
The CLI prints it as ``error: <message>`` and exits with status 2; library callers can catch it.
"""


class UserError(Exception):
    """Bad input from the user (missing files, wrong shapes, unknown names, bad config keys)."""
