"""The committed reports' numbers, recomputed here from their own ``results_long.csv``.

Independent of the report code: the corruption sets, the means, the normalized and relative mCE
and the paired seed-level figures of the claim are written out again below from docs/metrics.md's
definitions, and compared with ``runs.csv``, ``methods.csv`` and ``claim.csv``, for every committed
report. The first full-data CPU report (``reports/cpu-cifar10-fp32/``, fp32, 2 seeds) must also have
been produced by the shipped command on the full data, and the tables quoting it in its own README
must match its CSVs (the bf16 experiment that followed it: tests/test_cpu_cifar10_report.py).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "reports" / "example"
FP32 = REPO / "reports" / "cpu-cifar10-fp32"  # the first full-data experiment (fp32, 2 seeds)
CPU = REPO / "reports" / "cpu-cifar10"  # the full-data experiment (bf16, 3 seeds, the ablation, C-bar)

FIFTEEN = (
    "gaussian_noise shot_noise impulse_noise defocus_blur glass_blur motion_blur zoom_blur snow frost "
    "fog brightness contrast elastic_transform pixelate jpeg_compression"
).split()
NINETEEN = FIFTEEN + ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
MIN_LOSS = 0.01  # a reference erring (or losing) less than this on a corruption is left out of ratios
TOL = 2e-6  # the CSVs hold 6 decimals


def long_table(report: Path) -> pd.DataFrame:
    df = pd.read_csv(report / "results_long.csv")
    return df[df["benchmark"].isin(["clean", "cifar-c"])]


def per_run(df: pd.DataFrame) -> pd.DataFrame:
    """clean, mean_15, mean_19 per run_id, from the per-block accuracies."""
    clean = df[df["corruption"] == "clean"].set_index("run_id")["acc"]
    by_corr = df[df["corruption"] != "clean"].groupby(["run_id", "corruption"])["acc"].mean().unstack()
    return pd.DataFrame(
        {
            "clean_acc": clean,
            "mean_acc_15": by_corr[FIFTEEN].mean(axis=1),
            "mean_acc_19": by_corr[NINETEEN].mean(axis=1),
        }
    )


def ratio_mce(df: pd.DataFrame, run: str, ref: str, relative: bool) -> float:
    """Mean over the 15 of sum_s E / sum_s E_ref (normalized) or of sum_s (E - E_clean) /
    sum_s (E_ref - E_ref,clean) (relative), leaving out corruptions the reference barely errs on."""

    def errors(rid):
        sub = df[df["run_id"] == rid]
        e = 1.0 - sub[sub["corruption"] != "clean"].set_index(["corruption", "severity"])["acc"]
        return e, 1.0 - float(sub[sub["corruption"] == "clean"]["acc"].iloc[0])

    (e, e_clean), (r, r_clean) = errors(run), errors(ref)
    ratios = []
    for c in FIFTEEN:
        num, den = e.loc[c], r.loc[c]
        if relative:
            num, den = num - e_clean, den - r_clean
        if den.mean() < MIN_LOSS:
            continue
        ratios.append(num.sum() / den.sum())
    return float(np.mean(ratios))


def seed_stats(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan


def close(a, b, tol=TOL) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol


def recompute(report: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, methods) recomputed: per-run figures and their mean / std over seeds per label."""
    df = long_table(report)
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch", "seed"]]
    runs = ident.join(per_run(df))
    ref = pd.read_csv(report / "runs.csv").set_index("run_id")["reference_run"]
    runs["mce_norm"] = [ratio_mce(df, rid, ref[rid], relative=False) for rid in runs.index]
    runs["mce_rel"] = [ratio_mce(df, rid, ref[rid], relative=True) for rid in runs.index]
    cols = ["clean_acc", "mean_acc_15", "mean_acc_19", "mce_norm", "mce_rel"]
    rows = []
    for (label, arch), g in runs.groupby(["label", "arch"]):
        row = {"label": label, "arch": arch, "n_seeds": len(g)}
        for c in cols:
            row[f"{c}_mean"], row[f"{c}_std"] = seed_stats(g[c])
        rows.append(row)
    return runs, pd.DataFrame(rows).set_index(["label", "arch"])


def claim_deltas(runs: pd.DataFrame, arch: str, label: str = "auxiliary") -> pd.DataFrame:
    """Per seed: Δclean (points) and the four readings of the robustness gain."""
    m = runs[(runs["label"] == label) & (runs["arch"] == arch)].set_index("seed")
    p = runs[(runs["label"] == "plain") & (runs["arch"] == arch)].set_index("seed")
    seeds = m.index.intersection(p.index)
    m, p = m.loc[seeds], p.loc[seeds]
    out = pd.DataFrame({"delta_clean_pts": 100 * (m["clean_acc"] - p["clean_acc"])})
    for s in ("15", "19"):
        mce_m, mce_p = 1 - m[f"mean_acc_{s}"], 1 - p[f"mean_acc_{s}"]
        out[f"robust_abs_pts_{s}"] = 100 * (mce_p - mce_m)
        out[f"robust_rel_pct_{s}"] = 100 * (mce_p - mce_m) / mce_p
    return out


CLAIM_KEYS = (
    "delta_clean_pts",
    "robust_abs_pts_15",
    "robust_rel_pct_15",
    "robust_abs_pts_19",
    "robust_rel_pct_19",
)


@pytest.mark.parametrize("report", [EXAMPLE, FP32, CPU], ids=["example", "cpu-cifar10-fp32", "cpu-cifar10"])
def test_headline_tables_recompute_from_the_per_block_accuracies(report):
    df = pd.read_csv(report / "results_long.csv")
    assert np.allclose(df["acc"], df["correct"] / df["n"], atol=TOL)
    runs, methods = recompute(report)
    written = pd.read_csv(report / "runs.csv").set_index("run_id")
    assert set(written.index) == set(runs.index)
    for rid, row in runs.iterrows():
        for c in ("clean_acc", "mean_acc_15", "mean_acc_19", "mce_norm", "mce_rel"):
            assert close(row[c], written.loc[rid, c]), (rid, c, row[c], written.loc[rid, c])
    table = pd.read_csv(report / "methods.csv").set_index(["label", "arch"])
    for key, row in methods.iterrows():
        assert table.loc[key, "n_seeds"] == row["n_seeds"]
        for c in ("clean_acc", "mean_acc_15", "mean_acc_19", "mce_norm", "mce_rel"):
            for stat in ("mean", "std"):
                assert close(row[f"{c}_{stat}"], table.loc[key, f"{c}_{stat}"]), (key, c, stat)
    claim = pd.read_csv(report / "claim.csv").set_index("arch")
    for arch in claim.index:
        deltas = claim_deltas(runs, arch)
        n = len(deltas)
        assert claim.loc[arch, "n_seeds"] == n
        for k in CLAIM_KEYS:
            mean, std = seed_stats(deltas[k])
            assert close(mean, claim.loc[arch, k], 1e-4), (arch, k)
            assert close(std, claim.loc[arch, f"{k}_std"], 1e-4), (arch, k)
            if n >= 2:  # the seed-level 95 % t interval
                half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
                assert close(mean - half, claim.loc[arch, f"{k}_low"], 1e-4), (arch, k)
                assert close(mean + half, claim.loc[arch, f"{k}_high"], 1e-4), (arch, k)


# ----------------------------------------------------------------------------- the CPU report
def test_fp32_report_was_produced_by_the_shipped_command_on_the_full_data():
    record = json.loads((FP32 / "reproduction.json").read_text())
    assert record["command"].startswith(
        "robustbench-aux reproduce --grid baselines/grids/cpu_cifar10.toml --report reports/cpu-cifar10"
    )
    shipped = tomllib.loads(record["grid"]["text"])  # the grid as it was then (no --set: fp32)
    assert "set" not in shipped["defaults"] and shipped["defaults"]["epochs"] == 8
    assert len(record["runs"]) == 4
    for run in record["runs"]:
        assert run["recipe"] == "reference" and run["epochs"] == shipped["defaults"]["epochs"]
        assert run["n_train"] == 50_000 and run["deviations"] == []
        assert not run["code_version"].endswith(".dirty") and not run["eval_code_version"].endswith(".dirty")
        assert run["train_seconds"] > 0 and run["eval_seconds"] > 0
    df = pd.read_csv(FP32 / "results_long.csv")
    blocks = df.groupby("run_id").size()
    assert (blocks == 1 + 19 * 5).all() and (df["n"] == 10_000).all()
    runs = pd.read_csv(FP32 / "runs.csv")
    assert sorted(zip(runs["method"], runs["seed"], strict=True)) == [
        ("auxiliary", 0),
        ("auxiliary", 1),
        ("plain", 0),
        ("plain", 1),
    ]
    assert (FP32 / "index.html").read_text().count("produced by") == 1
    assert not list(FP32.rglob("*.pt")) and not list(FP32.rglob("config.json"))


def pm(mean: float, std: float, scale: float, digits: int) -> str:
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def finds_rows() -> list[str]:
    """The rows of the results table in reports/cpu-cifar10-fp32/README.md, from its methods.csv."""
    table = pd.read_csv(FP32 / "methods.csv")
    rows = []
    for label in ("plain", "auxiliary"):
        r = table[table["label"] == label].iloc[0]
        rows.append(
            f"| {label} | {int(r['n_seeds'])} | {pm(r['clean_acc_mean'], r['clean_acc_std'], 100, 2)} "
            f"| {pm(r['mean_acc_15_mean'], r['mean_acc_15_std'], 100, 2)} "
            f"| {pm(r['mean_acc_19_mean'], r['mean_acc_19_std'], 100, 2)} "
            f"| {pm(r['mce_norm_mean'], r['mce_norm_std'], 1, 3)} "
            f"| {pm(r['mce_rel_mean'], r['mce_rel_std'], 1, 3)} |"
        )
    return rows


CLAIM_NAMES = {
    "delta_clean_pts": "Δ clean accuracy (points)",
    "robust_abs_pts_15": "robustness, 15 corruptions: mCE(plain) − mCE(aux) (points)",
    "robust_rel_pct_15": "robustness, 15 corruptions: that ÷ mCE(plain) (%)",
    "robust_abs_pts_19": "robustness, 19 corruptions (points)",
    "robust_rel_pct_19": "robustness, 19 corruptions (%)",
}


def claim_rows() -> list[str]:
    """The rows of the claim table in reports/cpu-cifar10-fp32/README.md, from its claim.csv."""
    c = pd.read_csv(FP32 / "claim.csv").iloc[-1]
    paper = {"delta_clean_pts": "+2.21", "robust_rel_pct_15": "21.64", "robust_rel_pct_19": "21.64"}
    return [
        f"| {name} | {c[k]:+.2f} | {c[k + '_std']:.2f} | {c[k + '_low']:+.2f} to {c[k + '_high']:+.2f} "
        f"| {paper.get(k, '—')} |"
        for k, name in CLAIM_NAMES.items()
    ]


def test_fp32_readme_tables_quote_the_committed_fp32_report():
    own = (FP32 / "README.md").read_text()
    for row in finds_rows():
        assert row in own, row
    for row in claim_rows():
        assert row in own, row
    verdict = pd.read_csv(FP32 / "claim.csv").iloc[-1]["verdict"]
    assert f"**{verdict}**" in own
