"""Values that must stay one line of visible text.

Grid values, ``--set`` values, Slurm options and run ids end up in printed commands, in the
``#SBATCH`` lines of a job script and in file names. A line break there ends a directive early or
puts the rest of the value on a line of its own (a ``#SBATCH`` line is a bash comment that ends at
the newline), so every such value is checked where it enters (:func:`plain`).

Refused: the Unicode categories Cc (C0 controls such as NUL, TAB, LF, CR, ESC; DEL; C1 controls
such as NEL), Cf (invisible formatting characters: bidirectional overrides, zero-width spaces, the
byte-order mark), Cs (lone surrogates, which the command line produces from bytes that are not
UTF-8) and Zl / Zp (the line and paragraph separators U+2028 and U+2029).
"""

from __future__ import annotations

import unicodedata

from robustbench_aux.errors import UserError

REFUSED_CATEGORIES = ("Cc", "Cf", "Cs", "Zl", "Zp")
# names of the control characters met most (Unicode gives C0 and C1 controls no name)
_CONTROL_NAMES = {
    "\0": "NUL",
    "\t": "TAB",
    "\n": "LINE FEED",
    "\v": "LINE TABULATION",
    "\f": "FORM FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
    "\x85": "NEXT LINE",
}


def first_control(text: str) -> int | None:
    """The index of the first refused character in ``text``, or None."""
    for i, char in enumerate(text):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            return i
    return None


def describe(char: str) -> str:
    """``U+000A`` with the character's Unicode name where it has one (``U+2028 LINE SEPARATOR``)."""
    name = _CONTROL_NAMES.get(char) or unicodedata.name(char, "")
    return f"U+{ord(char):04X}{f' {name}' if name else ''}"


def plain(value, what: str) -> str:
    """``value`` (a string) when it holds no control or invisible formatting character; else a
    one-line UserError naming ``what``, the character and where it is."""
    if not isinstance(value, str):
        raise UserError(f"{what} must be a string, got {value!r}")
    at = first_control(value)
    if at is not None:
        raise UserError(
            f"{what} holds a control character ({describe(value[at])}) at position {at + 1} of "
            f"{value[:80]!r}: values may hold no line breaks, control or invisible formatting characters"
        )
    return value
