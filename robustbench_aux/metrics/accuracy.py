"""Per-run accuracy aggregates (docs/metrics.md), computed from the tidy table.

Every function takes a tidy table (any number of runs) and returns one value per ``run_id``.
acc[c] is the unweighted mean over the severities present of acc[c, s]; the 15- and 19-means
average acc[c] over the corruptions of that set *that are present*, and :func:`coverage` says how
many were, so a partial CIFAR-C subset gives an honest, labelled number rather than NaN.
"""

from __future__ import annotations

import pandas as pd

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CATEGORIES, CATEGORY, CBAR_10, CLEAN, EXTRA_4

EXTRA = "extra"
# category means: each CIFAR-C category over its benchmark corruptions, plus the 4 extra ones
CATEGORY_SETS: dict[str, tuple[str, ...]] = {
    **{cat: tuple(c for c in BENCHMARK_15 if CATEGORY[c] == cat) for cat in CATEGORIES},
    EXTRA: EXTRA_4,
}
SETS = {"15": BENCHMARK_15, "19": ALL_19}


def clean_accuracy(df: pd.DataFrame) -> pd.Series:
    """clean_acc per run (top-1 on the clean test set)."""
    clean = df[df["corruption"] == CLEAN]
    return clean.set_index("run_id")["acc"].rename("clean_acc")


def block_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """acc[c, s] as a wide table: rows run_id, columns (corruption, severity)."""
    corrupted = df[df["corruption"] != CLEAN]
    return corrupted.pivot_table(
        index="run_id", columns=["corruption", "severity"], values="acc", aggfunc="mean"
    )


def corruption_accuracy(df: pd.DataFrame, names=ALL_19) -> pd.DataFrame:
    """acc[c] (mean over severities) as a wide table: rows run_id, columns the corruptions of ``names``
    present (default the 19 CIFAR-C ones; ``CBAR_10`` for CIFAR-10-C-bar), in that order."""
    corrupted = df[df["corruption"] != CLEAN]
    wide = corrupted.pivot_table(index="run_id", columns="corruption", values="acc", aggfunc="mean")
    return wide[[c for c in names if c in wide.columns]]


def mean_accuracy(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.Series:
    """Mean of acc[c] over the given corruptions that are present (NaN where none is)."""
    corruptions = tuple(corruptions)
    wide = corruption_accuracy(df, ALL_19 + tuple(c for c in corruptions if c not in ALL_19))
    cols = [c for c in corruptions if c in wide.columns]
    if not cols:
        return pd.Series(float("nan"), index=wide.index if len(wide) else clean_accuracy(df).index)
    return wide[cols].mean(axis=1, skipna=True)


def coverage(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.Series:
    """How many of the given corruptions each run was evaluated on."""
    present = df[df["corruption"].isin(list(corruptions))].groupby("run_id")["corruption"].nunique()
    return present.reindex(clean_accuracy(df).index, fill_value=0)


def severity_curve(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Mean accuracy over the given corruptions at each severity: rows run_id, columns 1..5."""
    sub = df[df["corruption"].isin(list(corruptions))]
    return sub.pivot_table(index="run_id", columns="severity", values="acc", aggfunc="mean")


def category_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Mean acc[c] per category (noise / blur / weather / digital over the 15; extra = the 4 extra)."""
    wide = corruption_accuracy(df)
    out = {}
    for cat, members in CATEGORY_SETS.items():
        cols = [c for c in members if c in wide.columns]
        if cols:
            out[cat] = wide[cols].mean(axis=1)
    return pd.DataFrame(out, index=wide.index)


def corruption_error(df: pd.DataFrame) -> pd.DataFrame:
    """Unnormalized CE[c] = 1 - acc[c] (the CIFAR convention of RobustBench and AugMix)."""
    return 1.0 - corruption_accuracy(df)


def mce(df: pd.DataFrame) -> pd.Series:
    """Unnormalized mCE = mean of CE[c] over the 15 = 1 - mean_acc_15."""
    return (1.0 - mean_accuracy(df, BENCHMARK_15)).rename("mce")


def run_summary(df: pd.DataFrame) -> dict:
    """The accuracy part of one run's summary JSON (fractions; NaN becomes None).

    ``mean_acc_15`` / ``mean_acc_19`` average the corruptions of the set that were evaluated:
    ``n_corruptions_15`` / ``n_corruptions_19`` say how many, and ``partial_15`` / ``partial_19``
    are true when that is fewer than the full set.
    """
    runs = df["run_id"].unique()
    if len(runs) != 1:
        raise ValueError(f"run_summary needs the rows of one run, got {len(runs)}")
    rid = runs[0]

    def _f(value) -> float | None:
        return None if pd.isna(value) else float(value)

    def _row(wide: pd.DataFrame) -> dict:
        return {str(k): _f(v) for k, v in wide.loc[rid].items()} if rid in wide.index else {}

    n_c = df.loc[df["corruption"] != CLEAN, "n"]
    n15, n19 = int(coverage(df, BENCHMARK_15).get(rid, 0)), int(coverage(df, ALL_19).get(rid, 0))
    return {
        "clean_acc": _f(clean_accuracy(df).get(rid)),
        "mean_acc_15": _f(mean_accuracy(df, BENCHMARK_15).get(rid)),
        "mean_acc_19": _f(mean_accuracy(df, ALL_19).get(rid)),
        "n_corruptions_15": n15,
        "n_corruptions_19": n19,
        # a mean over a subset carries its count and is flagged partial (never a bare full-set name)
        "partial_15": n15 < len(BENCHMARK_15),
        "partial_19": n19 < len(ALL_19),
        "n_clean": int(df.loc[df["corruption"] == CLEAN, "n"].sum()),
        "n_per_block": int(n_c.max()) if len(n_c) else 0,
        "mce": _f(mce(df).get(rid)),
        "by_category": _row(category_accuracy(df)),
        "by_severity_15": _row(severity_curve(df, BENCHMARK_15)),
        "by_severity_19": _row(severity_curve(df, ALL_19)),
        "by_corruption": _row(corruption_accuracy(df)),
        "ce_by_corruption": _row(corruption_error(df)),
    }


def cbar_summary(df: pd.DataFrame) -> dict | None:
    """The CIFAR-10-C-bar part of one run's summary (None when no C-bar block was evaluated):
    ``mean_acc`` over the ten (those present; ``n_corruptions`` says how many, ``partial`` when
    fewer than ten), ``mce`` = 1 − mean_acc (unnormalized, as the CIFAR-C mCE), per corruption and
    per severity."""
    runs = df["run_id"].unique()
    if len(runs) != 1:
        raise ValueError(f"cbar_summary needs the rows of one run, got {len(runs)}")
    rid = runs[0]
    n = int(coverage(df, CBAR_10).get(rid, 0))
    if n == 0:
        return None
    mean = float(mean_accuracy(df, CBAR_10).loc[rid])
    wide = corruption_accuracy(df, CBAR_10)
    curve = severity_curve(df, CBAR_10)
    return {
        "mean_acc": mean,
        "mce": 1.0 - mean,
        "n_corruptions": n,
        "partial": n < len(CBAR_10),
        "by_corruption": {str(k): float(v) for k, v in wide.loc[rid].items() if pd.notna(v)},
        "by_severity": {str(k): float(v) for k, v in curve.loc[rid].items() if pd.notna(v)},
    }
