"""The precision-parity check: the same methods, architectures and seeds run in another precision.

An experiment that trains and evaluates in bf16 keeps earlier fp32 runs of the same seeds beside its
page, never inside its comparison (one comparison never mixes precisions). :func:`parity_table`
sets each run of this page against its twin in the other results table (``results_long.csv`` of
another report) and, per seed, the method-vs-plain differences the page tests in both precisions:
how far the precision alone moves a run, and whether it moves the answer. :func:`seed_spread` gives
the yardstick: how far the seed alone moves a run on this page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from robustbench_aux.catalog import BENCHMARK_15
from robustbench_aux.errors import UserError
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.tidy import check_table
from robustbench_aux.report.formatting import spec_rows
from robustbench_aux.report.numbers import pm

RESULTS_LONG_CSV = "results_long.csv"  # a report's tidy table of all its runs
KEYS = ["label", "arch", "seed"]
RUN = "run"
VS_PLAIN = "vs plain"


def read_parity(path: str | Path) -> pd.DataFrame:
    """The other precision's results table: a ``results_long.csv`` or a report directory holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_LONG_CSV
    if not path.is_file():
        raise UserError(
            f"parity results {path} do not exist (give a results_long.csv or its report directory)"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"parity results {path} are not a readable CSV table ({exc})") from None
    return check_table(frame, str(path))


def _per_run(df: pd.DataFrame) -> pd.DataFrame:
    """clean and mean-15 accuracy (fractions) per run, keyed by (label, arch, seed)."""
    ids = df.drop_duplicates("run_id").set_index("run_id")[KEYS]
    out = ids.assign(clean=acc.clean_accuracy(df), mean15=acc.mean_accuracy(df, BENCHMARK_15))
    out["seed"] = out["seed"].astype(int)
    return out.reset_index(drop=True).set_index(KEYS)


def parity_table(df: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """This page's runs (``df``) against the same (method, architecture, seed) in ``other``.

    Rows of ``kind = "run"``: each shared run's clean and mean-15 accuracy in both tables (percent)
    and the difference this page minus the other (points). Rows of ``kind = "vs plain"``: per seed,
    the method-minus-plain difference in each table (points) and how much it changed. A one-line
    error when the two tables share no run.
    """
    mine, theirs = _per_run(df), _per_run(other)
    shared = mine.index.intersection(theirs.index)
    if shared.empty:
        raise UserError(
            "the parity results share no (method, architecture, seed) with this page's runs: "
            f"page {sorted(mine.index)[:3]}..., parity {sorted(theirs.index)[:3]}..."
        )
    rows = []
    for key in sorted(shared):
        row = dict(zip(KEYS, key, strict=True), kind=RUN)
        for col in ("clean", "mean15"):
            this, that = 100 * mine.loc[key, col], 100 * theirs.loc[key, col]
            row.update({f"{col}_this": this, f"{col}_other": that, f"{col}_diff_pts": this - that})
        rows.append(row)
    for label, arch, seed in sorted(shared):
        plain = (compare.PLAIN, arch, seed)
        if label == compare.PLAIN or plain not in shared:
            continue
        row = {"label": label, "arch": arch, "seed": seed, "kind": VS_PLAIN}
        for col in ("clean", "mean15"):
            this = 100 * (mine.loc[(label, arch, seed), col] - mine.loc[plain, col])
            that = 100 * (theirs.loc[(label, arch, seed), col] - theirs.loc[plain, col])
            row.update({f"{col}_this": this, f"{col}_other": that, f"{col}_diff_pts": this - that})
        rows.append(row)
    return pd.DataFrame(rows)


def seed_spread(df: pd.DataFrame) -> pd.DataFrame:
    """Per method and architecture on this page: the std over seeds of clean and mean-15 accuracy
    (points): the seed's own effect, against which a precision difference is read."""
    runs = _per_run(df).reset_index()
    grouped = runs.groupby(["label", "arch"])
    out = grouped[["clean", "mean15"]].std(ddof=1).mul(100).add_suffix("_seed_std_pts")
    return out.assign(n_seeds=grouped.size()).reset_index()


def parity_summary(table: pd.DataFrame, spread: pd.DataFrame) -> dict:
    """The section's one-line reading: the largest precision difference of a run and of a
    method-vs-plain difference, next to the largest seed-to-seed std on this page (points)."""
    runs, deltas = table[table["kind"] == RUN], table[table["kind"] == VS_PLAIN]

    def largest(frame: pd.DataFrame, col: str) -> float:
        return float(frame[col].abs().max()) if not frame.empty else float("nan")

    return {
        "n_runs": len(runs),
        "run_clean": largest(runs, "clean_diff_pts"),
        "run_mean15": largest(runs, "mean15_diff_pts"),
        "delta_clean": largest(deltas, "clean_diff_pts"),
        "delta_mean15": largest(deltas, "mean15_diff_pts"),
        "seed_clean": float(np.nanmax(spread["clean_seed_std_pts"])) if len(spread) else float("nan"),
        "seed_mean15": float(np.nanmax(spread["mean15_seed_std_pts"])) if len(spread) else float("nan"),
        "same_sign": bool(
            (np.sign(deltas["clean_this"]) == np.sign(deltas["clean_other"])).all()
            and (np.sign(deltas["mean15_this"]) == np.sign(deltas["mean15_other"])).all()
        ),
        "n_deltas": len(deltas),
    }


def html_parity(table: pd.DataFrame, this: str, other: str) -> dict:
    """Display rows; ``this`` and ``other`` name the two precisions in the headers."""

    def value(col: str):
        return lambda r: pm(r[col], None, scale=1, signed=r["kind"] == VS_PLAIN)

    def diff(col: str):
        return lambda r: (pm(r[col], None, scale=1, signed=True), "", f"{this} minus {other}")

    spec = [
        ("row", lambda r: ("run" if r["kind"] == RUN else "method − plain", "label")),
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seed", lambda r: str(int(r["seed"]))),
        (f"clean, {this} (% or points)", value("clean_this")),
        (f"clean, {other}", value("clean_other")),
        ("difference (points)", diff("clean_diff_pts")),
        (f"mean acc. 15, {this} (% or points)", value("mean15_this")),
        (f"mean acc. 15, {other}", value("mean15_other")),
        ("difference (points)", diff("mean15_diff_pts")),
    ]
    return spec_rows(table, spec, "parity")
