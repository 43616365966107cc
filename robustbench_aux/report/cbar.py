"""The report's CIFAR-C-bar column set: the ten unseen-family corruptions beside CIFAR-C.

Three tables (fractions / points / percent as in :mod:`.tables`), all empty when no run was
evaluated on CIFAR-C-bar:

- :func:`cbar_method_table`: per (method, architecture), mean accuracy and mCE over the ten
  (mean ± std over seeds) and how many of the ten entered;
- :func:`cbar_claim_table`: the paper's robustness claim re-measured on CIFAR-C-bar (auxiliary vs
  plain, absolute points and relative %), with a verdict by the claim table's rule;
- :func:`cbar_gap_table`: each method's gain over plain on CIFAR-C (the 15) against its gain on
  CIFAR-C-bar, the gap between the two, and a t-test over seeds of the per-seed gaps.

Every number of the last two carries its 95 % interval, computed by :mod:`.claim`'s functions.

Display rows (``html_cbar``) are built here too, so the section is self-contained.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import BENCHMARK_15, CBAR_10
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.uncertainty import aggregate_seeds, holm, seed_test
from robustbench_aux.report import claim as paper_claim
from robustbench_aux.report.formatting import spec_rows
from robustbench_aux.report.numbers import interval, interval_source, pct, pm
from robustbench_aux.report.runs import RunRecord

PLAIN = compare.PLAIN


def has_cbar(df: pd.DataFrame) -> bool:
    """The results table (one run's or the page's) holds CIFAR-C-bar blocks (export leaves them out)."""
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


CLAIM_METRICS = ("delta_clean_pts", "robust_abs_pts_cbar", "robust_rel_pct_cbar")
GAP_METRICS = ("gain_c_pts", "gain_cbar_pts", "gap_pts")
# the corruption sets bootstrapped together for one seed: the 15 (CIFAR-C gain) and the ten
BOOT_SETS = {"15": BENCHMARK_15, "cbar": CBAR_10}


def _one_seed_bootstrap(by_key: dict, label: str, arch: str, seed: int) -> dict[str, np.ndarray] | None:
    """Bootstrap distributions over test images of every C-bar number for one paired seed (None
    without both runs' per-image results, or when CIFAR-C and C-bar blocks hold different numbers
    of images: the gap's resamples would then not be the same images)."""
    m, p = by_key.get((label, arch, seed)), by_key.get((PLAIN, arch, seed))
    if m is None or p is None:
        return None
    sizes = {len(v) for run in (m, p) for k, v in run.per_image().items() if k[0] in BENCHMARK_15 + CBAR_10}
    if len(sizes) != 1:
        return None
    boot = paper_claim.bootstrap_deltas(m, p, BOOT_SETS)
    if boot is None:
        return None
    boot["gain_c_pts"] = boot["robust_abs_pts_15"]
    boot["gain_cbar_pts"] = boot["robust_abs_pts_cbar"]
    boot["gap_pts"] = boot["gain_c_pts"] - boot["gain_cbar_pts"]
    return boot


def _intervals(d: pd.DataFrame, row: dict, metrics, by_key: dict, label: str, arch: str) -> dict:
    """The 95 % interval of every number of ``row`` as the claim table computes it: a t interval
    over the per-seed differences ``d`` with two or more seeds, else a paired bootstrap over test
    images; ``interval`` says which."""
    if len(d) >= 2:
        return {**paper_claim.t_intervals(d, row, metrics), "interval": f"t over {len(d)} seeds"}
    boot = _one_seed_bootstrap(by_key, label, arch, int(d.index[0]))
    return {
        **paper_claim.bootstrap_intervals(boot, metrics),
        "interval": paper_claim.interval_text(True, boot is not None),
    }


def _robust_test(d: pd.DataFrame, row: dict) -> tuple[float, str]:
    """The test of the C-bar gain: a t-test over seeds (two or more), else the paired bootstrap
    z-test over test images that the significance table uses for one seed (p = 2 (1 − Φ(|Δ| / se)),
    se the bootstrap standard error); NaN without per-image results."""
    if len(d) >= 2:
        t = seed_test(d["robust_abs_pts_cbar"].to_numpy())
        return t["p_value"], f"t over {t['n']} seeds"
    se, delta = row["robust_abs_pts_cbar_se"], row["robust_abs_pts_cbar"]
    if not np.isfinite(se):
        return math.nan, "none (1 seed, no per-image results)"
    p = float(2 * stats.norm.sf(abs(delta) / se)) if se > 0 else (1.0 if delta == 0 else 0.0)
    return p, "paired bootstrap z (1 seed)"


def _n_images(df: pd.DataFrame) -> int:
    n = df.loc[df["corruption"].isin(CBAR_10), "n"]
    return int(n.min()) if len(n) else 0


def cbar_claim_table(
    df: pd.DataFrame, records: list[RunRecord] | None = None, label: str = "auxiliary"
) -> pd.DataFrame:
    """The paper's claim on CIFAR-C-bar: Δclean and the robustness gain of ``label`` over plain
    (mCE over the ten, absolute points and relative %), per architecture (seeds paired) and, with
    several architectures, their mean. Empty without C-bar or without both methods.

    Every number carries ``<col>_std`` (over seeds) and its 95 % interval ``<col>_low`` /
    ``<col>_high`` / ``<col>_se``, computed as in :mod:`.claim` (``interval`` says from what; a
    one-seed bootstrap needs ``records``). ``robust_p`` tests the gain over the ten
    (``robust_test`` says how), ``robust_p_holm`` is Holm-adjusted over the architectures' tests
    (the mean row: the largest); ``verdict`` / ``verdict_text`` are
    :func:`compare.claim_verdict` on the gain over the ten."""
    if not has_cbar(df):
        return pd.DataFrame()
    runs = cbar_runs(df)
    by_key = {(r.label, r.arch, r.seed): r for r in records or []}
    n_images = _n_images(df)
    rows = []
    for arch in sorted(runs["arch"].unique()):
        d = _per_seed(runs, label, arch)
        if d.empty:
            continue
        row = {"arch": arch, "method": label, "n_seeds": len(d)}
        for k in CLAIM_METRICS:
            row[k] = float(d[k].mean())
            row[f"{k}_std"] = float(d[k].std(ddof=1)) if len(d) > 1 else float("nan")
        row["n_corruptions_cbar"] = int(runs[runs["arch"] == arch]["n_corruptions_cbar"].min())
        row.update(_intervals(d, row, CLAIM_METRICS, by_key, label, arch))
        row["robust_p"], row["robust_test"] = _robust_test(d, row)
        row["n_text"] = paper_claim.n_text(len(d), True, n_images, row["interval"])
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    # the claim's own family: this method's C-bar tests, one per architecture (docs/metrics.md)
    adjusted = holm([r["robust_p"] for r in rows])
    for r, p in zip(rows, adjusted, strict=True):
        r["robust_p_holm"] = float(p)
        r["family"] = (
            f"Holm over {len(rows)} test{'s' if len(rows) != 1 else ''}: {label}'s C-bar gain per architecture"
        )
    if len(rows) > 1:
        avg = {"arch": paper_claim.MEAN_ROW, "method": label, "n_seeds": int(sum(r["n_seeds"] for r in rows))}
        for k in CLAIM_METRICS:
            vals = [r[k] for r in rows]
            avg[k] = float(np.mean(vals))
            avg[f"{k}_std"] = float(np.std(vals, ddof=1))
        avg["n_corruptions_cbar"] = int(min(r["n_corruptions_cbar"] for r in rows))
        avg.update(paper_claim.combined_intervals(avg, rows, CLAIM_METRICS))
        avg["interval"] = f"combined from the {len(rows)} architectures' intervals"
        ps = [r["robust_p_holm"] for r in rows]
        # a claim about every architecture at once: the largest p (NaN when one is untested)
        avg["robust_p"] = avg["robust_p_holm"] = max(ps) if all(np.isfinite(ps)) else math.nan
        avg["robust_test"] = "largest of the architectures' p"
        avg["family"] = "the largest of the architectures' adjusted p"
        avg["n_text"] = f"{len(rows)} architectures, {avg['n_seeds']} paired seeds in all"
        rows.append(avg)
    for r in rows:
        over = f"{r['n_corruptions_cbar']} C-bar corruptions"
        r["verdict"], r["verdict_text"] = compare.claim_verdict(
            r,
            r["robust_abs_pts_cbar_low"],
            r["robust_abs_pts_cbar_high"],
            r["robust_p_holm"],
            r["n_text"],
            key="robust_abs_pts_cbar",
            over=over,
        )
    return pd.DataFrame(rows).drop(columns="n_text")


def cbar_gap_table(df: pd.DataFrame, records: list[RunRecord] | None = None) -> pd.DataFrame:
    """Per method (not plain) and architecture with a plain run of the same seed: the gain over
    plain on CIFAR-C (mean accuracy over the 15, points) and on CIFAR-C-bar (over the ten), the gap
    (CIFAR-C gain − CIFAR-C-bar gain; positive: the method gains more where its training corruptions
    overlap CIFAR-C), their std over seeds, their 95 % intervals (``<col>_low`` / ``<col>_high`` /
    ``<col>_se``, as in :mod:`.claim`; ``interval`` says from what), and a one-sample t-test over
    seeds of the per-seed gaps (``gap_p``; NaN with one seed: the seed is the unit of replication)."""
    if not has_cbar(df):
        return pd.DataFrame()
    runs = cbar_runs(df)
    by_key = {(r.label, r.arch, r.seed): r for r in records or []}
    rows = []
    for label, arch in sorted({(r.label, r.arch) for r in runs.itertuples()}):
        if label == PLAIN:
            continue
        d = _per_seed(runs, label, arch)
        if d.empty:
            continue
        t = seed_test(d["gap_pts"].to_numpy())
        row = {"label": label, "arch": arch, "n_seeds": len(d), "seeds": ",".join(map(str, sorted(d.index)))}
        for k in GAP_METRICS:
            row[k] = float(d[k].mean())
            row[f"{k}_std"] = float(d[k].std(ddof=1)) if len(d) > 1 else float("nan")
        row.update(_intervals(d, row, GAP_METRICS, by_key, label, arch))
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
    return spec_rows(frame, spec, "c_bar")


def _pct_column(column: str):
    return lambda r: pct(r[column], 1)


def _with_interval(r, k: str, coloured: bool = True):
    """``mean [low, high] (± std)``: the number, its 95 % interval, and the std over seeds; coloured
    only when the interval excludes 0 (a change inside its own noise gets no colour)."""
    low, high = r.get(f"{k}_low"), r.get(f"{k}_high")
    known = not (low is None or high is None or np.isnan(low) or np.isnan(high))
    cls = "pos" if known and low > 0 else "neg" if known and high < 0 else ""
    text = interval(r[k], low, high)
    std = r[f"{k}_std"]
    if not (std is None or np.isnan(std)):
        text += f" (± {std:.2f})"
    return (text, cls) if coloured else text


def _source(r) -> tuple[str, str, str]:
    """What an interval rests on: the short name, the full text in the tooltip."""
    return interval_source(r["interval"]), "brk", str(r["interval"])


def _cbar_family_header(claim: pd.DataFrame) -> str:
    """The C-bar claim's Holm family, named with its size: the architectures' tests of the gain over
    the ten for this method (never other methods' tests)."""
    k = int((claim["arch"] != paper_claim.MEAN_ROW).sum()) if not claim.empty else 0
    return f"Holm-adjusted p (Holm over {k} test{'s' if k != 1 else ''}: the C-bar gain of this method, one per architecture)"


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
        ("architecture", lambda r: (r["arch"], "brk")),
        ("seeds (paired)", lambda r: int(r["n_seeds"])),
        ("95 % interval from", _source),
        ("Δ clean accuracy (points) [95 % interval]", lambda r: _with_interval(r, "delta_clean_pts")),
        (
            f"absolute, C-bar {of} (points) [95 % interval]",
            lambda r: _with_interval(r, "robust_abs_pts_cbar"),
        ),
        (f"relative, C-bar {of} (%) [95 % interval]", lambda r: _with_interval(r, "robust_rel_pct_cbar")),
        ("test of the C-bar gain", lambda r: r["robust_test"]),
        (_cbar_family_header(claim), lambda r: (_num(r["robust_p_holm"]), "", str(r.get("family") or ""))),
        ("verdict", lambda r: (r["verdict"], "", r["verdict_text"])),
    ]
    gap_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds (paired)", lambda r: (str(int(r["n_seeds"])), "", f"seeds {r['seeds']}")),
        ("95 % interval from", _source),
        ("gain on CIFAR-C, 15 (points) [95 % interval]", lambda r: _with_interval(r, "gain_c_pts")),
        (f"gain on C-bar, {of} (points) [95 % interval]", lambda r: _with_interval(r, "gain_cbar_pts")),
        # not coloured: a positive gap is no gain, it says the gain is larger where training overlaps
        ("gap: CIFAR-C − C-bar (points) [95 % interval]", lambda r: _with_interval(r, "gap_pts", False)),
        ("test", lambda r: r["gap_test"]),
        ("p", lambda r: _num(r["gap_p"])),
    ]
    return {
        "methods": _rows(methods, method_spec),
        "claim": _rows(claim, claim_spec) if not claim.empty else None,
        "gap": _rows(gap, gap_spec) if not gap.empty else None,
        "n": n,
        "verdict": claim["verdict"].iloc[-1] if not claim.empty else None,
        "verdict_text": claim["verdict_text"].iloc[-1] if not claim.empty else None,
        "verdict_row": claim["arch"].iloc[-1] if not claim.empty else None,
    }
