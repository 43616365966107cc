"""The tidy long results table: its columns, method labels, and building it from block counts.

One row per (run, corruption, severity); the clean test set is ``corruption="clean", severity=0``.
Accuracies are fractions in [0, 1]; ``correct`` and ``n`` are image counts, so every mean can be
recomputed exactly from the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from robustbench_aux.corruptions.catalog import ALL_19, CATEGORY
from robustbench_aux.errors import UserError

CLEAN = "clean"
# identity columns copied from the run config into every row
RUN_COLUMNS = ("run_id", "dataset", "method", "label", "arch", "seed")
COLUMNS = RUN_COLUMNS + ("corruption", "category", "severity", "n", "correct", "acc")

# methods that train on one named corruption carry it in their config under this key
CORRUPTION_KEY = "corruption"
VARIANT_KEY = "variant"


def method_label(config: Mapping) -> str:
    """The displayed method name: ``method`` plus its training corruption or variant in brackets.

    ``per_corruption`` with ``corruption="noise"`` -> ``per_corruption[noise]``; an ``auxiliary`` run
    with ``variant="no_sbn"`` -> ``auxiliary[no_sbn]``; plain stays ``plain``.
    """
    method = str(config.get("method", "unknown"))
    # training writes method options under "options"; flat configs (fixtures, foreign runs) also work
    options = {**config, **(config.get("options") or {})}
    parts = []
    if method == "per_corruption" and options.get(CORRUPTION_KEY):
        parts.append(str(options[CORRUPTION_KEY]))
    if options.get(VARIANT_KEY) not in (None, "", "full"):
        parts.append(str(options[VARIANT_KEY]))
    return f"{method}[{','.join(parts)}]" if parts else method


def run_identity(config: Mapping) -> dict:
    """The identity columns of a run, from its config (missing keys become placeholders)."""
    return {
        "run_id": str(config.get("run_id", "run")),
        "dataset": str(config.get("dataset", "unknown")),
        "method": str(config.get("method", "unknown")),
        "label": method_label(config),
        "arch": str(config.get("arch", "unknown")),
        "seed": int(config["seed"]) if config.get("seed") is not None else -1,
    }


def category_of(corruption: str) -> str:
    """``clean`` for the clean set, else the CIFAR-C category (noise / blur / weather / digital)."""
    if corruption == CLEAN:
        return CLEAN
    if corruption not in CATEGORY:
        raise UserError(f"unknown corruption {corruption!r}; expected one of the 19 CIFAR-C names or 'clean'")
    return CATEGORY[corruption]


def block_rows(identity: Mapping, counts: Iterable[tuple[str, int, int, int]]) -> pd.DataFrame:
    """Build the tidy table of one run from ``(corruption, severity, n, correct)`` tuples."""
    rows = []
    for corruption, severity, n, correct in counts:
        rows.append(
            {
                **identity,
                "corruption": corruption,
                "category": category_of(corruption),
                "severity": int(severity),
                "n": int(n),
                "correct": int(correct),
                "acc": correct / n if n else float("nan"),
            }
        )
    return sort_table(pd.DataFrame(rows, columns=list(COLUMNS)))


def sort_table(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: run, then clean first and the 19 corruptions in catalog order, then severity."""
    order = {name: i for i, name in enumerate((CLEAN,) + ALL_19)}
    key = df["corruption"].map(order).fillna(len(order))
    return (
        df.assign(_k=key)
        .sort_values(["run_id", "_k", "severity"], kind="stable")
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def check_table(df: pd.DataFrame, source: str = "results table") -> pd.DataFrame:
    """Validate a tidy table (columns present, accuracies in [0, 1], one clean row per run)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source} lacks column(s) {', '.join(missing)}; re-run `robustbench-aux evaluate`")
    if ((df["acc"] < 0) | (df["acc"] > 1)).any():
        raise UserError(f"{source} has accuracies outside [0, 1] (files store fractions, not percent)")
    clean = df[df["corruption"] == CLEAN].groupby("run_id").size()
    runs = df["run_id"].unique()
    if len(clean) != len(runs) or (clean != 1).any():
        raise UserError(f"{source} must hold exactly one clean row per run")
    return df
