"""Numbers as display text: percent, mean ± std, intervals, counts, p-values, ratio cells.

The report's tables (formatting.py, cbar.py) write their cells with these; the CSV files keep the
unformatted numbers.
"""

from __future__ import annotations

import math

Cell = tuple  # (text, css class) or (text, css class, tooltip)


def is_missing(x) -> bool:
    """None or NaN: a number the table shows as missing."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x, digits: int = 2) -> str:
    """A fraction as percent text (no % sign: the column header carries the unit)."""
    return "–" if is_missing(x) else f"{100 * x:.{digits}f}"


def pm(mean, std, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    """``mean ± std`` (std omitted when NaN, i.e. a single seed)."""
    if is_missing(mean):
        return "–"
    m = f"{scale * mean:+.{digits}f}" if signed else f"{scale * mean:.{digits}f}"
    return m if is_missing(std) else f"{m} ± {scale * std:.{digits}f}"


def with_ci(mean, low, high, scale: float = 100.0) -> str:
    """``mean [low, high]`` scaled (the bare number without an interval)."""
    if is_missing(mean):
        return "–"
    if is_missing(low):
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} [{scale * low:.2f}, {scale * high:.2f}]"


def interval(mean, low, high, digits: int = 2) -> str:
    """A signed number with its interval: ``-2.27 [-5.18, +0.87]`` (the bare number without one)."""
    if is_missing(mean):
        return "–"
    if is_missing(low) or is_missing(high):
        return f"{mean:+.{digits}f} [no interval]"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def interval_source(text) -> str:
    """A short name for what a claim interval rests on (the full text goes in the tooltip)."""
    text = str(text or "")
    if text.startswith("t over"):
        return text
    if text.startswith("bootstrap"):
        return "bootstrap over test images"
    if text.startswith("combined"):
        return "the architectures' intervals"
    return "none"


def count(x) -> str:
    """An image or step count with thousands separators ("not recorded" when unknown)."""
    return "not recorded" if is_missing(x) else f"{int(round(float(x))):,}"


def spread(r, col: str) -> str:
    """``min / median / max`` of a ratio's per-corruption values, in percent."""
    vals = [r.get(f"{col}_{q}") for q in ("min", "median", "max")]
    return "–" if any(is_missing(v) for v in vals) else " / ".join(f"{100 * v:.0f}" for v in vals)


def p_cell(p) -> str:
    """A p-value as a table cell: ``< 0.001`` below that, else three decimals (facts.p_text says it in words)."""
    return "–" if is_missing(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def ratio_cell(value, std, n_used, unstable: str, n_set: int = 15, scale: float = 100.0) -> Cell:
    """A normalized / relative mCE cell: the number with how many corruptions entered it.

    ``unstable`` lists (";"-separated) corruptions left out because the reference barely degrades
    on them; with none left the cell reads "unstable" instead of a meaningless ratio.
    """
    left_out = [c for c in str(unstable or "").split(";") if c]
    note = f"{len(left_out)} unstable: {', '.join(left_out)}" if left_out else ""
    if is_missing(value):
        return ("unstable", "unstable", note) if left_out else ("–", "", "")
    n = int(n_used) if not is_missing(n_used) else n_set
    text = pm(value, std, scale)
    if n < n_set or left_out:
        text += f" ({n} of {n_set})"
    return (text, "partial" if left_out else "", note)


def set_name(n: int, full: int) -> str:
    """``15`` for a full set, ``3 of 15`` for a subset: a mean never carries a full-set name alone."""
    return str(full) if n >= full else f"{n} of {full}"
