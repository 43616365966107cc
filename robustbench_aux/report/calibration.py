"""The report's "Calibration" section: does a method know when it is wrong under corruption?

Tables (CSV beside the page; ECE and RMS calibration error as fractions, NLL in nats, Brier in
[0, 2]; differences of ECE in points = 100 × fraction, as accuracy differences):

- ``calibration_runs.csv``: per run, each metric on the clean set and averaged over the 15 and the
  19, and how many of its blocks had calibration recorded;
- ``calibration_methods.csv``: per (method, architecture), each metric on the clean set and
  averaged over the 15 benchmark corruptions, mean and std over seeds, and how many blocks had
  calibration recorded;
- ``calibration_severity.csv``: each metric at every severity (0 = clean), mean and std over seeds;
- ``calibration_per_corruption.csv``: ECE per corruption (mean over severities and seeds);
- ``calibration_tests.csv``: every method vs plain of the same architecture and seed, ΔECE on the
  clean set and over the 15: per paired seed the standard error of a paired bootstrap over test
  images (the same resampled images in both runs, ECE recomputed in each resample; evaluation noise
  only), the interval estimate ± 1.96 se and its z-test (ECE is biased under resampling, so a
  percentile interval can miss the estimate), and over seeds a t interval and one-sample t-test of the per-seed differences (the
  method effect). The per-seed tests and the seed-level tests are two Holm families, each named
  with its size; a verdict is stronger than "inconclusive" only when the interval excludes 0 and
  the Holm-adjusted p ≤ 0.05 (docs/metrics.md#calibration-in-reports).

Runs evaluated before calibration was recorded show "not recorded", never 0.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CLEAN
from robustbench_aux.infra import atomic
from robustbench_aux.infra.paths import inside
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.calibration import (
    CALIBRATION_COLUMNS,
    N_BINS,
    NOT_RECORDED,
    bootstrap_ece_blocks,
    calibration_frame,
    has_calibration,
)
from robustbench_aux.metrics.uncertainty import BOOTSTRAP_SAMPLES, holm, seed_test
from robustbench_aux.report import figures
from robustbench_aux.report.csvcells import to_csv
from robustbench_aux.report.formatting import spec_rows
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.report.tables import ALPHA, OVER_SEEDS

PLAIN = compare.PLAIN
LEVEL = 0.95
TESTED = (("clean", "ECE, clean"), ("15", "ECE, mean over the 15"))
_CHUNK = 250  # bootstrap resamples per matrix product


def _order(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    order = {lab: i for i, lab in enumerate(compare.label_order(frame["label"]))}
    frame = frame.assign(_o=frame["label"].map(order)).sort_values(["arch", "_o"], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


def calibration_runs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: label, arch, seed and :func:`calibration_frame`'s columns."""
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch", "seed"]]
    return ident.join(calibration_frame(df).set_index("run_id")).reset_index()


def calibration_method_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (label, arch): n_seeds, blocks recorded, and ``clean_<m>`` / ``mean_<m>_15`` mean and std
    over seeds for every calibration metric m."""
    runs = calibration_runs(df)
    values = [
        f"{w}_{m}" if w == "clean" else f"mean_{m}_15" for m in CALIBRATION_COLUMNS for w in ("clean", "15")
    ]
    g = runs.groupby(["label", "arch"], sort=False)
    out = g.size().rename("n_seeds").to_frame()
    out["blocks"] = g["calibration_blocks"].max()
    out["blocks_recorded_min"] = g["calibration_blocks_recorded"].min()
    for v in values:
        out[f"{v}_mean"] = g[v].mean()
        out[f"{v}_std"] = g[v].std(ddof=1)
    return _order(out.reset_index())


def calibration_severity_table(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Long table: label, arch, metric, severity (0 = clean), mean and std over seeds, n_seeds; at
    each severity the run's value is the mean over the given corruptions present."""
    sub = df[df["corruption"].isin(list(corruptions)) | (df["corruption"] == CLEAN)]
    per_run = sub.groupby(["run_id", "label", "arch", "severity"])[list(CALIBRATION_COLUMNS)].mean()
    long = per_run.reset_index().melt(
        id_vars=["run_id", "label", "arch", "severity"], var_name="metric", value_name="value"
    )
    g = long.groupby(["label", "arch", "metric", "severity"], sort=False)["value"]
    out = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n_seeds": g.count()}).reset_index()
    return _order(out)


def calibration_corruption_table(df: pd.DataFrame) -> pd.DataFrame:
    """ECE per corruption (mean over severities), per (label, arch) averaged over seeds."""
    corrupted = df[df["corruption"].isin(ALL_19)]
    per_run = corrupted.pivot_table(index="run_id", columns="corruption", values="ece", aggfunc="mean")
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    clean = df[df["corruption"] == CLEAN].set_index("run_id")["ece"].rename("clean")
    wide = pd.concat([ident, clean, per_run[[c for c in ALL_19 if c in per_run.columns]]], axis=1)
    out = wide.groupby(["label", "arch"], sort=False).mean(numeric_only=True).reset_index()
    return _order(out)


# ----------------------------------------------------------------------------- tests vs plain
def _scores(r: RunRecord, cache: dict) -> dict:
    if r.run_id not in cache:
        cache[r.run_id] = r.scores()
    return cache[r.run_id]


def _bootstrap_delta(m: RunRecord, p: RunRecord, keys: list, cache: dict, samples: int, seed: int):
    """The bootstrap distribution of ECE(m) − ECE(p) (fractions, averaged over ``keys``) over the
    same resampled test images; None when a block's per-image results or scores are missing."""
    cm, cp = m.per_image(), p.per_image()
    sm, sp = _scores(m, cache), _scores(p, cache)
    if not keys or any(k not in d for k in keys for d in (cm, cp, sm, sp)):
        return None
    n = len(cm[keys[0]])
    if any(len(d[k]) != n for k in keys for d in (cm, cp, sm, sp)):
        return None
    rng = np.random.default_rng(seed)
    out = np.empty(samples)
    for lo in range(0, samples, _CHUNK):
        hi = min(lo + _CHUNK, samples)
        idx = rng.integers(0, n, size=(hi - lo, n))
        a = bootstrap_ece_blocks({k: cm[k] for k in keys}, {k: sm[k] for k in keys}, idx)
        b = bootstrap_ece_blocks({k: cp[k] for k in keys}, {k: sp[k] for k in keys}, idx)
        out[lo:hi] = a - b
    return out


def _verdict(delta: float, low: float, high: float, p_holm: float, n_text: str, what: str) -> tuple[str, str]:
    if not all(np.isfinite(v) for v in (delta, low, high, p_holm)):
        shown = f"{delta:+.2f} points, " if np.isfinite(delta) else ""
        return "inconclusive", f"inconclusive ({what}: {shown}no interval or test; {n_text})"
    evidence = (
        f"{what}: {delta:+.2f} points, 95 % interval {low:+.2f} to {high:+.2f}, {n_text}, "
        f"Holm-adjusted p = {'< 0.001' if p_holm < 0.001 else f'{p_holm:.2g}'}"
    )
    if low <= 0 <= high or p_holm > ALPHA:
        return "inconclusive", f"inconclusive ({evidence})"
    word = "lower ECE (better calibrated)" if delta < 0 else "higher ECE (worse calibrated)"
    return ("lower" if delta < 0 else "higher"), f"{word} ({evidence})"


def test_table(
    df: pd.DataFrame, records: list[RunRecord], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> pd.DataFrame:
    """Every method vs plain of the same architecture (see the module docstring): one row per paired
    seed and, with two or more, one row ``seed = "over seeds"``; columns ``delta_ece_<k>_pts``,
    ``_low``, ``_high``, ``_p``, ``_p_holm``, ``verdict_<k>``, ``verdict_<k>_text`` for k in clean
    and 15, ``interval``, ``test``, ``family``, ``n_images``."""
    runs = calibration_runs(df).set_index("run_id")
    by_key = {(r.label, r.arch, r.seed): r for r in records}
    cache: dict = {}
    rows: list[dict] = []
    for arch in sorted(runs["arch"].unique()):
        sub = runs[runs["arch"] == arch]
        if PLAIN not in set(sub["label"]):
            continue
        plain = sub[sub["label"] == PLAIN].groupby("seed").first()
        for label in compare.label_order(sub["label"]):
            if label == PLAIN:
                continue
            meth = sub[sub["label"] == label].groupby("seed").first()
            seeds = sorted(set(meth.index) & set(plain.index))
            per_seed = []
            for s in seeds:
                m, p = by_key.get((label, arch, s)), by_key.get((PLAIN, arch, s))
                clean_n = df.loc[(df["corruption"] == CLEAN) & (df["run_id"] == m.run_id), "n"] if m else []
                row: dict = {"label": label, "arch": arch, "seed": str(s), "n_seeds": 1}
                row["n_images"] = int(clean_n.iloc[0]) if len(clean_n) else 0
                row["interval"] = (
                    "± 1.96 paired-bootstrap se over test images (1 seed: evaluation noise only)"
                )
                row["test"] = f"paired bootstrap z-test ({samples:,} resamples)"
                bench = sorted(
                    k
                    for k in (m.per_image() if m is not None else {})
                    if k[0] in BENCHMARK_15 and k in (p.per_image() if p is not None else {})
                )
                for key, blocks in (("clean", [(CLEAN, 0)]), ("15", bench)):
                    col = f"delta_ece_{key}_pts"
                    src = "clean_ece" if key == "clean" else "mean_ece_15"
                    delta = 100.0 * float(meth.loc[s, src] - plain.loc[s, src])
                    boot = None
                    if m is not None and p is not None and np.isfinite(delta):
                        boot = _bootstrap_delta(m, p, blocks, cache, samples, seed)
                    if boot is None:
                        row.update(
                            {
                                col: delta,
                                f"{col}_low": math.nan,
                                f"{col}_high": math.nan,
                                f"{col}_p": math.nan,
                            }
                        )
                        continue
                    # ECE is biased under resampling (its percentile interval can miss the estimate):
                    # the interval is the estimate ± z · the bootstrap standard error, as its z-test
                    se = float(100.0 * boot.std(ddof=1))
                    z = float(stats.norm.ppf(0.5 + LEVEL / 2))
                    pz = float(2 * stats.norm.sf(abs(delta) / se)) if se > 0 else (1.0 if delta == 0 else 0.0)
                    row.update(
                        {
                            col: delta,
                            f"{col}_low": delta - z * se,
                            f"{col}_high": delta + z * se,
                            f"{col}_p": pz,
                        }
                    )
                per_seed.append(row)
            rows.extend(per_seed)
            if len(per_seed) >= 2:
                over: dict = {"label": label, "arch": arch, "seed": OVER_SEEDS, "n_seeds": len(per_seed)}
                over["n_images"] = per_seed[0]["n_images"]
                over["interval"] = f"t over {len(per_seed)} seeds"
                over["test"] = "one-sample t-test of the per-seed differences"
                for key, _ in TESTED:
                    col = f"delta_ece_{key}_pts"
                    d = np.array([r[col] for r in per_seed], float)
                    t = seed_test(d)
                    n = t["n"]
                    if n >= 2 and np.isfinite(t["std"]):
                        half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * t["std"] / math.sqrt(n)
                        lo, hi = t["delta"] - half, t["delta"] + half
                    else:
                        lo = hi = math.nan
                    over.update(
                        {col: t["delta"], f"{col}_low": lo, f"{col}_high": hi, f"{col}_p": t["p_value"]}
                    )
                rows.append(over)
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    # the same family rule as accuracy (docs/metrics.md, "Test families"): per method and
    # architecture, its per-seed tests (evaluation noise) and its seed-level tests (the method
    # effect) are two Holm families, so adding a method to the page moves no other method's p
    families = {
        True: "Holm over the method's {n} per-seed tests (ECE clean and mean over the 15; evaluation noise)",
        False: "Holm over the method's {n} seed-level tests (ECE clean and mean over the 15; the method effect)",
    }
    for _, group in table.groupby(["label", "arch"], sort=False):
        for per_seed_family in (True, False):
            rows_in = group.index[(group["seed"] != OVER_SEEDS) == per_seed_family]
            if not len(rows_in):
                continue
            flat = np.concatenate(
                [table.loc[rows_in, f"delta_ece_{k}_pts_p"].to_numpy(float) for k, _ in TESTED]
            )
            adj = holm(flat)
            for i, (k, _) in enumerate(TESTED):
                table.loc[rows_in, f"delta_ece_{k}_pts_p_holm"] = adj[
                    i * len(rows_in) : (i + 1) * len(rows_in)
                ]
            table.loc[rows_in, "family"] = families[per_seed_family].format(n=int(np.isfinite(flat).sum()))
    for k, what in TESTED:
        col = f"delta_ece_{k}_pts"
        verdicts = []
        for _, r in table.iterrows():
            n_text = (
                f"n = {int(r['n_seeds'])} seeds"
                if r["seed"] == OVER_SEEDS
                else f"n = 1 seed × {int(r['n_images']):,} test images"
            )
            verdicts.append(
                _verdict(r[col], r[f"{col}_low"], r[f"{col}_high"], r[f"{col}_p_holm"], n_text, what)
            )
        table[f"verdict_{k}"] = [v for v, _ in verdicts]
        table[f"verdict_{k}_text"] = [t for _, t in verdicts]
    return table


def _headline_verdicts(tests: pd.DataFrame) -> list[str]:
    """Per (method, architecture) the verdict on ΔECE over the 15: the over-seeds row where there is
    one, else each seed's row."""
    if tests.empty:
        return []
    out = []
    for (label, arch), g in tests.groupby(["label", "arch"], sort=False):
        chosen = g[g["seed"] == OVER_SEEDS] if (g["seed"] == OVER_SEEDS).any() else g
        for _, r in chosen.iterrows():
            where = OVER_SEEDS if r["seed"] == OVER_SEEDS else f"seed {r['seed']}"
            out.append(f"{label} vs plain, {arch}, {where}: {r['verdict_15_text']}")
    return out


# ----------------------------------------------------------------------------- figure
def severity_figure(sev: pd.DataFrame, labels: list[str], styles: dict, metric: str = "ece") -> str:
    """``metric`` (ECE by default, in %) against severity (0 = clean) per method, one panel per
    architecture, error bars ± 1 std over seeds."""
    import matplotlib.pyplot as plt

    sub = sev[(sev["metric"] == metric) & sev["mean"].notna()]
    archs = sorted(sub["arch"].unique())
    width = min(figures.MAX_WIDTH_IN, 5.2 * max(len(archs), 1) + 0.4)
    scale = 100.0 if metric in ("ece", "rmsce") else 1.0
    with plt.rc_context(figures.STYLE):
        fig, axes = plt.subplots(1, max(len(archs), 1), figsize=(width, 4.4), squeeze=False)
        for ax, arch in zip(axes[0], archs, strict=False):
            for lab in labels:
                d = sub[(sub["arch"] == arch) & (sub["label"] == lab)].sort_values("severity")
                if d.empty:
                    continue
                color, marker = styles.get(lab, ("#555555", "o"))
                ax.errorbar(
                    d["severity"],
                    scale * d["mean"],
                    yerr=scale * d["std"].fillna(0.0),
                    marker=marker,
                    color=color,
                    capsize=3,
                    label=lab,
                )
            ax.set_xticks(range(6), ["clean", "1", "2", "3", "4", "5"])
            ax.set_title(arch)
            ax.set_xlabel("severity (mean over the 15 benchmark corruptions)")
            ax.set_ylabel("expected calibration error (%)" if metric == "ece" else metric)
        handles: dict = {}
        for ax in axes[0]:
            for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(n, h)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        if handles:
            fig.legend(
                list(handles.values()),
                list(handles),
                loc="lower center",
                ncol=min(5, len(handles)),
                frameon=False,
            )
        return figures.to_svg(fig)


# ----------------------------------------------------------------------------- display
def _num(x, digits: int = 2, scale: float = 1.0) -> str:
    return NOT_RECORDED if x is None or not np.isfinite(x) else f"{scale * x:.{digits}f}"


def _pm(mean, std, scale: float, digits: int) -> str:
    if mean is None or not np.isfinite(mean):
        return NOT_RECORDED
    m = f"{scale * mean:.{digits}f}"
    return m if std is None or not np.isfinite(std) else f"{m} ± {scale * std:.{digits}f}"


def _interval(r, col: str) -> tuple[str, str]:
    d, lo, hi = r[col], r[f"{col}_low"], r[f"{col}_high"]
    if not np.isfinite(d):
        return NOT_RECORDED, ""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{d:+.2f} (no interval)", ""
    cls = ""
    if not (lo <= 0 <= hi) and np.isfinite(r.get(f"{col}_p_holm", np.nan)) and r[f"{col}_p_holm"] <= ALPHA:
        cls = "pos" if d < 0 else "neg"  # lower ECE is better
    return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]", cls


def _p(x) -> str:
    return "–" if not np.isfinite(x) else ("< 0.001" if x < 0.001 else f"{x:.3f}")


def _rows(frame: pd.DataFrame, spec) -> dict:
    return spec_rows(frame, spec)


def _write(out_dir: Path, name: str, frame: pd.DataFrame, written: list[str]) -> None:
    atomic.write_text(inside(out_dir, name), to_csv(frame, index=False, float_format="%.6f"))
    written.append(name)


def calibration_section(
    df: pd.DataFrame,
    records: list[RunRecord],
    out_dir: Path,
    labels: list[str],
    styles: dict,
    written: list[str],
) -> dict:
    """Write the section's CSVs into ``out_dir`` (names appended to ``written``) and return the
    template's context: ``recorded`` (False: the section says "not recorded"), figure, tables."""
    if not has_calibration(df):
        return {"recorded": False, "n_bins": N_BINS}
    methods = calibration_method_table(df)
    sev = calibration_severity_table(df)
    per_corr = calibration_corruption_table(df)
    tests = test_table(df, records)
    for name, frame in (
        ("calibration_runs.csv", calibration_runs(df)),
        ("calibration_methods.csv", methods),
        ("calibration_severity.csv", sev),
        ("calibration_per_corruption.csv", per_corr),
        ("calibration_tests.csv", tests),
    ):
        _write(out_dir, name, frame, written)
    partial = methods[methods["blocks_recorded_min"] < methods["blocks"]]
    method_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds", lambda r: int(r["n_seeds"])),
        ("ECE clean (%)", lambda r: _pm(r["clean_ece_mean"], r["clean_ece_std"], 100, 2)),
        ("ECE, 15 (%)", lambda r: _pm(r["mean_ece_15_mean"], r["mean_ece_15_std"], 100, 2)),
        ("RMS cal. error, 15 (%)", lambda r: _pm(r["mean_rmsce_15_mean"], r["mean_rmsce_15_std"], 100, 2)),
        ("NLL clean", lambda r: _pm(r["clean_nll_mean"], r["clean_nll_std"], 1, 3)),
        ("NLL, 15", lambda r: _pm(r["mean_nll_15_mean"], r["mean_nll_15_std"], 1, 3)),
        ("Brier clean", lambda r: _pm(r["clean_brier_mean"], r["clean_brier_std"], 1, 3)),
        ("Brier, 15", lambda r: _pm(r["mean_brier_15_mean"], r["mean_brier_15_std"], 1, 3)),
        ("blocks recorded", lambda r: f"{int(r['blocks_recorded_min'])} of {int(r['blocks'])}"),
    ]
    corr_cols = [c for c in ("clean", *ALL_19) if c in per_corr.columns]
    corr_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        *[(c.replace("_", " "), (lambda col: lambda r: _num(r[col], 1, 100))(c)) for c in corr_cols],
    ]
    test_spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seed", lambda r: r["seed"]),
        ("95 % interval from", lambda r: (r["interval"], "wrap")),
        ("Δ ECE clean (points) [95 % interval]", lambda r: _interval(r, "delta_ece_clean_pts")),
        ("p (Holm)", lambda r: _p(r["delta_ece_clean_pts_p_holm"])),
        ("Δ ECE, 15 (points) [95 % interval]", lambda r: _interval(r, "delta_ece_15_pts")),
        ("p (Holm)", lambda r: _p(r["delta_ece_15_pts_p_holm"])),
        ("test; Holm family", lambda r: (f"{r['test']}; {r['family']}", "wrap")),
        ("verdict, 15", lambda r: (r["verdict_15"], "wrap", r["verdict_15_text"])),
    ]
    families = sorted(set(tests["family"])) if not tests.empty else []
    return {
        "recorded": True,
        "n_bins": N_BINS,
        "svg": severity_figure(sev, labels, styles),
        "methods": _rows(methods, method_spec),
        "per_corruption": _rows(per_corr, corr_spec),
        "tests": _rows(tests, test_spec) if not tests.empty else None,
        "families": families,
        "verdicts": _headline_verdicts(tests),
        "partial": [f"{r['label']} ({r['arch']})" for _, r in partial.iterrows()],
    }
