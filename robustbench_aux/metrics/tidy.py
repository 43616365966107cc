"""The tidy long results table: its columns, method labels, and building it from block counts.

One row per (run, corruption, severity); the clean test set is ``corruption="clean", severity=0``.
``benchmark`` names the set a block belongs to: ``cifar-c`` (the 19), ``cifar-c-bar`` (the ten
CIFAR-10-C-bar corruptions) or ``clean``; tables written before the column existed get it from
the corruption name when read.
Accuracies are fractions in [0, 1]; ``correct`` and ``n`` are image counts, so every mean can be
recomputed exactly from the file. The calibration columns (ECE, RMS calibration error, NLL, Brier;
:mod:`~robustbench_aux.metrics.calibration`) are computed over the same n images; they are empty
(NaN, "not recorded") for blocks evaluated before they were recorded, and tables written before the
columns existed get them, empty, when read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from robustbench_aux.catalog import ALL_19, CATEGORY, CBAR_10, CBAR_CATEGORY, CLEAN, benchmark_of
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.calibration import CALIBRATION_COLUMNS
from robustbench_aux.runinfo import run_info

# identity columns copied from the run config into every row
RUN_COLUMNS = ("run_id", "dataset", "method", "label", "arch", "seed")
ACCURACY_COLUMNS = RUN_COLUMNS + ("corruption", "category", "benchmark", "severity", "n", "correct", "acc")
COLUMNS = ACCURACY_COLUMNS + CALIBRATION_COLUMNS


def method_label(config: Mapping) -> str:
    """The displayed method name of a run (:attr:`robustbench_aux.runinfo.RunInfo.label`):
    ``per_corruption[noise]``, ``auxiliary[no_sbn]``, ``naive_augmentation[joint_batch]``,
    ``augmix[published protocol]``, ``plain``."""
    return run_info(config).label


def run_identity(config: Mapping) -> dict:
    """The identity columns of a run, from its config (missing keys become placeholders)."""
    info = run_info(config)
    return {
        "run_id": info.run_id,
        "dataset": info.dataset,
        "method": info.method,
        "label": info.label,
        "arch": info.arch,
        "seed": info.seed,
    }


def category_of(corruption: str) -> str:
    """``clean`` for the clean set, else the CIFAR-C category (noise / blur / weather / digital);
    ``c-bar`` for the ten CIFAR-10-C-bar corruptions."""
    if corruption == CLEAN:
        return CLEAN
    if corruption in CBAR_10:
        return CBAR_CATEGORY
    if corruption not in CATEGORY:
        raise UserError(
            f"unknown corruption {corruption!r}; expected one of the 19 CIFAR-C names, the ten "
            "CIFAR-10-C-bar names or 'clean'"
        )
    return CATEGORY[corruption]


def benchmark_column(corruptions: pd.Series) -> pd.Series:
    """The ``benchmark`` of each row from its corruption name (``cifar-c``, ``cifar-c-bar``, ``clean``)."""
    return corruptions.map(lambda c: benchmark_of(str(c)) or "unknown")


def block_rows(
    identity: Mapping,
    counts: Iterable[tuple[str, int, int, int]],
    calibration: Mapping[tuple[str, int], Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Build the tidy table of one run from ``(corruption, severity, n, correct)`` tuples and, per
    block, its calibration metrics (``calibration[(corruption, severity)]``; NaN where absent)."""
    rows = []
    calibration = calibration or {}
    for corruption, severity, n, correct in counts:
        cal = calibration.get((corruption, int(severity))) or {}
        rows.append(
            {
                **identity,
                "corruption": corruption,
                "category": category_of(corruption),
                "benchmark": benchmark_of(corruption),
                "severity": int(severity),
                "n": int(n),
                "correct": int(correct),
                "acc": correct / n if n else float("nan"),
                **{k: float(cal.get(k, float("nan"))) for k in CALIBRATION_COLUMNS},
            }
        )
    return sort_table(pd.DataFrame(rows, columns=list(COLUMNS)))


def sort_table(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: run, then clean first, the 19 corruptions in catalog order and the ten
    C-bar ones, then severity."""
    order = {name: i for i, name in enumerate((CLEAN,) + ALL_19 + CBAR_10)}
    key = df["corruption"].map(order).fillna(len(order))
    return (
        df.assign(_k=key)
        .sort_values(["run_id", "_k", "severity"], kind="stable")
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def check_table(df: pd.DataFrame, source: str = "results table") -> pd.DataFrame:
    """Validate a tidy table (columns present, accuracies in [0, 1], one clean row per run).

    A table without the ``benchmark`` column (written before it existed) gets it from the
    corruption names, in place."""
    if "benchmark" not in df.columns and "corruption" in df.columns:
        df.insert(
            df.columns.get_loc("category") + 1 if "category" in df.columns else len(df.columns),
            "benchmark",
            benchmark_column(df["corruption"]),
        )
    for col in CALIBRATION_COLUMNS:  # written before calibration was recorded: "not recorded"
        if col not in df.columns and "acc" in df.columns:
            df[col] = float("nan")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source} lacks column(s) {', '.join(missing)}; re-run `robustbench-aux evaluate`")
    if ((df["acc"] < 0) | (df["acc"] > 1)).any():
        raise UserError(f"{source} has accuracies outside [0, 1] (files store fractions, not percent)")
    for col in ("ece", "rmsce"):
        if ((df[col] < 0) | (df[col] > 1)).any():
            raise UserError(f"{source} has {col} outside [0, 1]; re-run `robustbench-aux evaluate`")
    clean = df[df["corruption"] == CLEAN].groupby("run_id").size()
    runs = df["run_id"].unique()
    if len(clean) != len(runs) or (clean != 1).any():
        raise UserError(f"{source} must hold exactly one clean row per run")
    return df
