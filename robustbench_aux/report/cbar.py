"""The report's CIFAR-C-bar column set: the ten unseen-family corruptions beside CIFAR-C.

Three tables (fractions / points / percent as in :mod:`.tables`), all empty when no run was
evaluated on CIFAR-C-bar:

- :func:`cbar_method_table`: per (method, architecture), mean accuracy and mCE over the ten
  (mean ± std over seeds) and how many of the ten entered;
- :func:`cbar_claim_table`: the paper's robustness claim re-measured on CIFAR-C-bar (auxiliary vs
  plain, absolute points and relative %);
- :func:`cbar_gap_table`: each method's gain over plain on CIFAR-C (the 15) against its gain on
  CIFAR-C-bar, the gap between the two, and a t-test over seeds of the per-seed gaps.

Display rows (``html_cbar``) are built here too, so the section is self-contained.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from robustbench_aux.catalog import BENCHMARK_15, CBAR_10
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.uncertainty import aggregate_seeds, seed_test
from robustbench_aux.report.formatting import pct, pm

PLAIN = compare.PLAIN


def has_cbar(df: pd.DataFrame) -> bool:
    return bool(df["corruption"].isin(CBAR_10).any())


def cbar_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: identity, clean_acc, mean_acc_15, and mean_acc_cbar / mce_cbar /
    n_corruptions_cbar over the CIFAR-C-bar corruptions present."""
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch", "seed"]]
    m = acc.mean_accuracy(df, CBAR_10)
    return ident.assign(
        clean_acc=acc.clean_accuracy(df),
        mean_acc_15=acc.mean_accuracy(df, BENCHMARK_15),
        mean_acc_cbar=m,
        mce_cbar=1.0 - m,
        n_corruptions_cbar=acc.coverage(df, CBAR_10),
    ).reset_index()


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    order = {lab: i for i, lab in enumerate(compare.label_order(frame["label"]))}
    frame = frame.assign(_o=frame["label"].map(order)).sort_values(["arch", "_o"], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


def cbar_method_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (label, arch): mean_acc_cbar and mce_cbar (mean and std over seeds), the fewest
    CIFAR-C-bar corruptions that entered a seed's mean, and the per-corruption accuracies."""
    if not has_cbar(df):
        return pd.DataFrame()
    runs = cbar_runs(df)
    table = aggregate_seeds(runs, ["mean_acc_cbar", "mce_cbar"])
    fewest = runs.groupby(["label", "arch"])["n_corruptions_cbar"].min().rename("n_corruptions_cbar")
    wide = acc.corruption_accuracy(df, CBAR_10)
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    per = wide.join(ident).groupby(["label", "arch"]).mean()
    table = table.merge(fewest.reset_index(), on=["label", "arch"]).merge(
        per.reset_index(), on=["label", "arch"]
    )
    return _order(table)


def _per_seed(runs: pd.DataFrame, label: str, arch: str) -> pd.DataFrame:
    """Per seed shared by ``label`` and plain on ``arch``: method minus plain, in points."""
    cols = ["clean_acc", "mean_acc_15", "mean_acc_cbar", "mce_cbar"]
    m = runs[(runs["label"] == label) & (runs["arch"] == arch)].groupby("seed")[cols].mean()
    p = runs[(runs["label"] == PLAIN) & (runs["arch"] == arch)].groupby("seed")[cols].mean()
    seeds = m.index.intersection(p.index)
    m, p = m.loc[seeds], p.loc[seeds]
    gain_c = 100.0 * (m["mean_acc_15"] - p["mean_acc_15"])
    gain_bar = 100.0 * (m["mean_acc_cbar"] - p["mean_acc_cbar"])
    return pd.DataFrame(
        {
            "delta_clean_pts": 100.0 * (m["clean_acc"] - p["clean_acc"]),
            "robust_abs_pts_cbar": 100.0 * (p["mce_cbar"] - m["mce_cbar"]),
            "robust_rel_pct_cbar": 100.0 * (p["mce_cbar"] - m["mce_cbar"]) / p["mce_cbar"],
            "gain_c_pts": gain_c,
            "gain_cbar_pts": gain_bar,
            "gap_pts": gain_c - gain_bar,
        }
    )


def cbar_claim_table(df: pd.DataFrame, label: str = "auxiliary") -> pd.DataFrame:
    """The paper's claim on CIFAR-C-bar: Δclean and the robustness gain of ``label`` over plain
    (mCE over the ten, absolute points and relative %), per architecture (seeds paired) and, with
    several architectures, their mean. Empty without C-bar or without both methods."""
    if not has_cbar(df):
        return pd.DataFrame()
    runs = cbar_runs(df)
    rows = []
    for arch in sorted(runs["arch"].unique()):
        d = _per_seed(runs, label, arch)
        if d.empty:
            continue
        row = {"arch": arch, "method": label, "n_seeds": len(d)}
        for k in ("delta_clean_pts", "robust_abs_pts_cbar", "robust_rel_pct_cbar"):
            row[k] = float(d[k].mean())
            row[f"{k}_std"] = float(d[k].std(ddof=1)) if len(d) > 1 else float("nan")
        row["n_corruptions_cbar"] = int(runs[runs["arch"] == arch]["n_corruptions_cbar"].min())
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table) > 1:
        avg = {"arch": "mean over architectures", "method": label, "n_seeds": int(table["n_seeds"].sum())}
        for k in ("delta_clean_pts", "robust_abs_pts_cbar", "robust_rel_pct_cbar"):
            avg[k] = float(table[k].mean())
            avg[f"{k}_std"] = float(table[k].std(ddof=1))
        avg["n_corruptions_cbar"] = int(table["n_corruptions_cbar"].min())
        table = pd.concat([table, pd.DataFrame([avg])], ignore_index=True)
    return table


def cbar_gap_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per method (not plain) and architecture with a plain run of the same seed: the gain over
    plain on CIFAR-C (mean accuracy over the 15, points) and on CIFAR-C-bar (over the ten), the gap
    (CIFAR-C gain − CIFAR-C-bar gain; positive: the method gains more where its training corruptions
    overlap CIFAR-C), their std over seeds, and a one-sample t-test over seeds of the per-seed gaps
    (``gap_p``; NaN with one seed: the seed is the unit of replication)."""
    if not has_cbar(df):
        return pd.DataFrame()
    runs = cbar_runs(df)
    rows = []
    for label, arch in sorted({(r.label, r.arch) for r in runs.itertuples()}):
        if label == PLAIN:
            continue
        d = _per_seed(runs, label, arch)
        if d.empty:
            continue
        t = seed_test(d["gap_pts"].to_numpy())
        row = {"label": label, "arch": arch, "n_seeds": len(d), "seeds": ",".join(map(str, sorted(d.index)))}
        for k in ("gain_c_pts", "gain_cbar_pts", "gap_pts"):
            row[k] = float(d[k].mean())
            row[f"{k}_std"] = float(d[k].std(ddof=1)) if len(d) > 1 else float("nan")
        row["gap_t"] = t["t"]
        row["gap_p"] = t["p_value"]
        row["gap_test"] = f"t over {t['n']} seeds" if t["n"] >= 2 else "one seed: no test"
        rows.append(row)
    return _order(pd.DataFrame(rows)) if rows else pd.DataFrame()


# ---------------------------------------------------------------- display rows


def _num(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return "< 0.001" if x < 0.001 else f"{x:.{digits}f}"


def _rows(frame: pd.DataFrame, spec) -> dict:
    rows = []
    for _, r in frame.iterrows():
        row = []
        for _, fn in spec:
            v = fn(r)
            text, cls = v if isinstance(v, tuple) else (v, "")
            row.append({"text": str(text), "cls": cls, "title": ""})
        rows.append(row)
    return {"columns": [h for h, _ in spec], "rows": rows, "kind": "c_bar"}


def _pct_column(column: str):
    return lambda r: pct(r[column], 1)


def _signed(mean, std) -> tuple[str, str]:
    cls = "" if mean is None or np.isnan(mean) else ("pos" if mean > 0 else "neg" if mean < 0 else "")
    return pm(mean, std, 1, 2, True), cls


def html_cbar(methods: pd.DataFrame, claim: pd.DataFrame, gap: pd.DataFrame) -> dict:
    """Display rows of the three tables for the report template."""
    n = int(methods["n_corruptions_cbar"].min()) if not methods.empty else 0
    of = "10" if n == 10 else f"{n} of 10"
    present = [c for c in CBAR_10 if c in methods.columns]
    method_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds", lambda r: int(r["n_seeds"])),
        (f"mean acc. C-bar, {of} (%)", lambda r: pm(r["mean_acc_cbar_mean"], r["mean_acc_cbar_std"])),
        (f"mCE C-bar, {of} (%)", lambda r: pm(r["mce_cbar_mean"], r["mce_cbar_std"])),
        *[(c.replace("_", " "), _pct_column(c)) for c in present],
    ]
    claim_spec = [
        ("architecture", lambda r: r["arch"]),
        ("seeds (paired)", lambda r: int(r["n_seeds"])),
        ("Δ clean accuracy (points)", lambda r: _signed(r["delta_clean_pts"], r["delta_clean_pts_std"])),
        (
            f"absolute, C-bar {of} (points)",
            lambda r: _signed(r["robust_abs_pts_cbar"], r["robust_abs_pts_cbar_std"]),
        ),
        (
            f"relative, C-bar {of} (%)",
            lambda r: _signed(r["robust_rel_pct_cbar"], r["robust_rel_pct_cbar_std"]),
        ),
    ]
    gap_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds", lambda r: r["seeds"]),
        ("gain on CIFAR-C, 15 (points)", lambda r: _signed(r["gain_c_pts"], r["gain_c_pts_std"])),
        (f"gain on C-bar, {of} (points)", lambda r: _signed(r["gain_cbar_pts"], r["gain_cbar_pts_std"])),
        # not coloured: a positive gap is no gain, it says the gain is larger where training overlaps
        ("gap: CIFAR-C − C-bar (points)", lambda r: _signed(r["gap_pts"], r["gap_pts_std"])[0]),
        ("test", lambda r: r["gap_test"]),
        ("p", lambda r: _num(r["gap_p"])),
    ]
    return {
        "methods": _rows(methods, method_spec),
        "claim": _rows(claim, claim_spec) if not claim.empty else None,
        "gap": _rows(gap, gap_spec) if not gap.empty else None,
        "n": n,
    }
