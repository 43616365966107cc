"""CSV exports that a spreadsheet opens as data, never as formulas.

A report's CSV files copy text from the runs' files (run ids, labels, method and architecture
names, values from a shared results table). A spreadsheet treats a cell starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula, so such a text cell gets a leading ``'``
(the spreadsheet shows the text as it is; :func:`safe_cell`). Numbers are not touched: a numeric
column stays numeric (``-0.25`` is written as ``-0.25``), and a text cell that is a plain number
(``-0.25``, ``+3``, ``-inf``) is left as it is, because a spreadsheet reads it as that number.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf|infinity|nan)",
    re.IGNORECASE,
)


def safe_cell(value):
    """``value`` with a leading ``'`` when it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _is_text(column: pd.Series) -> bool:
    types = pd.api.types
    return not (
        types.is_numeric_dtype(column) or types.is_bool_dtype(column) or types.is_datetime64_any_dtype(column)
    )


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells, column names and index labels are :func:`safe_cell`."""
    out = frame.rename(index=safe_cell, columns=safe_cell)
    out.index = out.index.set_names([safe_cell(n) for n in out.index.names])
    out.columns = out.columns.set_names([safe_cell(n) for n in out.columns.names])
    for i in range(out.shape[1]):
        if _is_text(out.iloc[:, i]):
            out.isetitem(i, out.iloc[:, i].astype(object).map(safe_cell))
    return out


def to_csv(frame: pd.DataFrame, **kwargs) -> str:
    """``frame.to_csv(**kwargs)`` with every text cell made :func:`safe_cell`."""
    return safe_frame(frame).to_csv(**kwargs)
