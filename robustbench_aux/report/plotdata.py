"""The data behind the report's seed-resolved plots, as frames (written beside the page as CSV).

- :func:`corruption_change_data`: per corruption, each method's change vs the reference method of the
  same seed (points), per seed, and the mean over seeds with a 95 % t interval (two or more seeds);
- :func:`severity_per_seed`: the severity curve of every run (clean, then severities 1-5), so the
  plot can draw each seed;
- :func:`training_curve_data`: each run's ``metrics.csv`` (per epoch: clean training accuracy, every
  loss term, the learning rate), and the runs whose file is not available.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import ALL_19, BENCHMARK_15
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.rundir import METRICS_CSV

LEVEL = 0.95
# metrics.csv columns that are not loss terms (docs/design.md: the run directory)
NOT_LOSS = {
    "epoch",
    "lr",
    "lr_last",
    "train_acc",
    "steps",
    "images",
    "images_per_s",
    "seconds",
    "gamma",
}


def _ident(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates("run_id").set_index("run_id")[["label", "arch", "seed"]]


def corruption_change_data(
    df: pd.DataFrame, reference: str = compare.PLAIN, corruptions=ALL_19
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-seed and summarised change of acc[c] vs ``reference`` of the same architecture and seed.

    Returns ``(per_seed, summary)``: ``per_seed`` has one row per (label, arch, seed, corruption)
    with ``delta_pts`` (method − reference, points); ``summary`` one row per (label, arch,
    corruption) with ``mean_pts``, ``n_seeds`` and ``low_pts`` / ``high_pts`` (95 % t interval over
    the per-seed differences; NaN with one seed). Only seeds both methods have enter.
    """
    wide = acc.corruption_accuracy(df)
    wide = wide[[c for c in corruptions if c in wide.columns]]
    ident = _ident(df)
    rows = []
    for (label, arch), runs in ident.groupby(["label", "arch"]):
        if label == reference:
            continue
        ref = ident[(ident["label"] == reference) & (ident["arch"] == arch)]
        ref_by_seed = {int(s): rid for rid, s in ref["seed"].items()}
        for rid, seed in runs["seed"].items():
            if int(seed) not in ref_by_seed:
                continue
            delta = 100.0 * (wide.loc[rid] - wide.loc[ref_by_seed[int(seed)]])
            for c, d in delta.items():
                rows.append(
                    {"label": label, "arch": arch, "seed": int(seed), "corruption": c, "delta_pts": d}
                )
    per_seed = pd.DataFrame(rows, columns=["label", "arch", "seed", "corruption", "delta_pts"])
    summary = []
    for (label, arch, c), g in per_seed.groupby(["label", "arch", "corruption"], sort=False):
        d = g["delta_pts"].to_numpy(float)
        n = len(d)
        mean = float(d.mean())
        if n >= 2:
            half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
        else:
            half = math.nan
        summary.append(
            {
                "label": label,
                "arch": arch,
                "corruption": c,
                "n_seeds": n,
                "mean_pts": mean,
                "low_pts": mean - half,
                "high_pts": mean + half,
            }
        )
    cols = ["label", "arch", "corruption", "n_seeds", "mean_pts", "low_pts", "high_pts"]
    return per_seed, pd.DataFrame(summary, columns=cols)


def severity_per_seed(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Every run's severity curve: label, arch, seed, run_id, clean, s1 ... s5 (fractions)."""
    curve = acc.severity_curve(df, corruptions)
    curve.insert(0, 0, acc.clean_accuracy(df))
    curve.columns = [f"s{c}" if c else "clean" for c in curve.columns]
    return _ident(df).join(curve).reset_index()


def _read_metrics(path: Path) -> pd.DataFrame | None:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not rows or "epoch" not in rows[0]:
        return None
    frame = pd.DataFrame(rows).apply(pd.to_numeric, errors="coerce")
    return frame.dropna(subset=["epoch"])


def training_curve_data(records: list[RunRecord]) -> tuple[pd.DataFrame, list[str]]:
    """Each run's training curves from its ``metrics.csv``: a long frame (run_id, label, arch, seed,
    epoch, quantity, value) over ``train_acc`` (clean training accuracy, fraction), ``lr`` and every
    loss term (the columns that are none of :data:`NOT_LOSS`: ``loss`` is the total), and the run ids
    whose metrics.csv is missing or unreadable (shown as such on the page, never guessed)."""
    rows, missing = [], []
    for r in records:
        frame = _read_metrics(Path(r.path) / METRICS_CSV)
        quantities = (
            []
            if frame is None
            else [c for c in frame.columns if c in ("train_acc", "lr") or c not in NOT_LOSS]
        )
        quantities = [q for q in quantities if frame[q].notna().any()] if frame is not None else []
        if not quantities:
            missing.append(r.run_id)
            continue
        for q in quantities:
            for epoch, value in zip(frame["epoch"], frame[q], strict=True):
                if np.isfinite(value):
                    rows.append(
                        {
                            "run_id": r.run_id,
                            "label": r.label,
                            "arch": r.arch,
                            "seed": r.seed,
                            "epoch": int(epoch),
                            "quantity": q,
                            "value": float(value),
                        }
                    )
    cols = ["run_id", "label", "arch", "seed", "epoch", "quantity", "value"]
    return pd.DataFrame(rows, columns=cols), sorted(missing)
