"""Effective robustness (docs/metrics.md#effective-robustness): a run's corrupted accuracy against
the line that many models' (clean, corrupted) accuracies follow in logit space.

The line: logit(acc_C) = a · logit(acc_clean) + b, fitted by ordinary least squares of
logit(corrupted accuracy) on logit(clean accuracy) over reference models (Taori et al. 2020 and
Miller et al. 2021 fit such lines in probit or logit space). A run's effective robustness =
acc_C − σ(a · logit(acc_clean) + b), in percentage points. The shipped reference points are
RobustBench's CIFAR-10 / CIFAR-100 corruption leaderboards (``robustbench_aux/reference/``; acc_C =
mean accuracy over the 15 CIFAR-C corruptions × 5 severities on the published CIFAR-C).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from robustbench_aux.errors import UserError
from robustbench_aux.infra.shipped import LEADERBOARD_CSV

SOURCE = "RobustBench (github.com/RobustBench/robustbench) commit 78fcc9e48a07a861268f295a777b975f25155964, MIT licence"
STANDARD = "single-pass entries without extra training data"
ALL = "all entries"
SELECTIONS = {"standard": STANDARD, "all": ALL}
MIN_OWN_MODELS = 5  # a line fitted to a report's own runs needs at least this many distinct models


def logit(p) -> np.ndarray:
    p = np.asarray(p, np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def expit(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


@dataclass(frozen=True)
class LogitLine:
    """logit(acc_C) = a · logit(acc_clean) + b, fitted on ``n`` models whose clean accuracy spans
    [``clean_min``, ``clean_max``] (fractions); ``name`` says which line it is, ``fit`` how."""

    a: float
    b: float
    n: int
    clean_min: float
    clean_max: float
    residual_sd: float  # of the logit residuals (ddof 2), NaN for two models
    name: str
    models: str  # which models it was fitted on

    fit: str = "least squares of logit(corrupted accuracy) on logit(clean accuracy)"

    def predict(self, clean_acc) -> np.ndarray:
        """The line's corrupted accuracy (a fraction) at clean accuracy ``clean_acc``."""
        return expit(self.a * logit(clean_acc) + self.b)

    def in_range(self, clean_acc) -> np.ndarray:
        c = np.asarray(clean_acc, np.float64)
        return (c >= self.clean_min) & (c <= self.clean_max)

    def as_row(self) -> dict:
        return {
            "line": self.name,
            "a": self.a,
            "b": self.b,
            "n_models": self.n,
            "clean_min": self.clean_min,
            "clean_max": self.clean_max,
            "residual_sd_logit": self.residual_sd,
            "models": self.models,
            "fit": self.fit,
        }


def fit_logit_line(clean_acc, corrupted_acc, *, name: str, models: str) -> LogitLine:
    """The least-squares line of logit(corrupted) on logit(clean) (accuracies as fractions in (0, 1))."""
    x, y = logit(clean_acc), logit(corrupted_acc)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    c = np.asarray(clean_acc, np.float64)[ok]  # the range from the accuracies themselves, not σ(logit(·))
    if len(x) < 2 or np.ptp(x) == 0:
        raise UserError(f"a line needs at least two models of different clean accuracy, got {len(x)}")
    a, b = np.polyfit(x, y, 1)
    resid = y - (a * x + b)
    sd = float(np.sqrt((resid**2).sum() / (len(x) - 2))) if len(x) > 2 else float("nan")
    return LogitLine(float(a), float(b), int(len(x)), float(c.min()), float(c.max()), sd, name, models)


def leaderboard(dataset: str, selection: str = "standard") -> pd.DataFrame:
    """The shipped RobustBench corruption leaderboard of ``dataset`` (cifar10 or cifar100):
    model_id, architecture, clean_acc and corruptions_acc as fractions, additional_data,
    number_forward_passes; ``selection`` "standard" keeps single-pass entries without extra data."""
    if selection not in SELECTIONS:
        raise UserError(f"unknown selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    table = pd.read_csv(LEADERBOARD_CSV, dtype={"dataset": str, "model_id": str})
    table = table[table["dataset"] == dataset].copy()
    for col in ("clean_acc", "corruptions_acc"):
        table[col] = table[col].astype(float) / 100.0
    table["additional_data"] = table["additional_data"].astype(str).str.lower() == "true"
    if selection == "standard":
        table = table[~table["additional_data"] & (table["number_forward_passes"] == 1)]
    return table.reset_index(drop=True)


def reference_line(dataset: str, selection: str = "standard") -> LogitLine | None:
    """The line fitted to the shipped leaderboard of ``dataset`` (None for a dataset without one)."""
    board = leaderboard(dataset, selection)
    if len(board) < 2:
        return None
    name = f"RobustBench {dataset.upper().replace('CIFAR', 'CIFAR-')} corruptions leaderboard"
    return fit_logit_line(
        board["clean_acc"],
        board["corruptions_acc"],
        name=name,
        models=f"{len(board)} {SELECTIONS[selection]}",
    )


def effective_robustness(clean_acc, corrupted_acc, line: LogitLine) -> np.ndarray:
    """acc_C − line(acc_clean), in percentage points."""
    return 100.0 * (np.asarray(corrupted_acc, np.float64) - line.predict(clean_acc))
