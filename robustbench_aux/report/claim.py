"""The paper-claim table: the headline numbers, a 95 % interval for each, and a verdict that
respects them.

Per architecture the interval of each number comes from the unit of replication available: with
two or more paired seeds a t interval over the per-seed differences; with one paired seed a paired
bootstrap over test images (evaluation noise only); with no paired seed none. The row "mean over
architectures" combines the architectures' intervals: the mean of their numbers, with a half-width
of the root of the sum of their squared half-widths divided by the number of architectures (the
interval of a mean of independent estimates).
The verdict (:func:`robustbench_aux.metrics.compare.claim_verdict`) rests on the gain over the 15
benchmark corruptions, its interval and the Holm-adjusted p-value of the significance table's test
of the same difference (the row "over seeds" with two or more seeds, else the seed's row). Its Holm
family is fixed by the claim: the method's clean and mean-15 tests on that architecture (2 tests),
whatever else is on the page (``family`` names it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CLEAN
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.uncertainty import paired_bootstrap_means, per_image_score
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.report.tables import OVER_SEEDS

LEVEL = 0.95
MEAN_ROW = "mean over architectures"
PLAIN = compare.PLAIN


HEADLINE_SETS = {"15": BENCHMARK_15, "19": ALL_19}


def bootstrap_deltas(
    m: RunRecord, p: RunRecord, sets: Mapping[str, tuple[str, ...]] = HEADLINE_SETS
) -> dict[str, np.ndarray] | None:
    """Bootstrap distributions of Δclean and, per corruption set ``name``, ``robust_abs_pts_<name>``
    / ``robust_rel_pct_<name>`` from one paired seed's per-image results (None when one is
    missing). Every set is resampled with the same seed, so with equal numbers of test images the
    resamples are the same images and differences between the distributions are paired too."""
    bm, bp = m.per_image(), p.per_image()
    chosen = {"clean": [(CLEAN, 0)], **{name: [k for k in bm if k[0] in cs] for name, cs in sets.items()}}
    out: dict[str, np.ndarray] = {}
    for name, keys in chosen.items():
        keys = [k for k in keys if k in bm and k in bp]
        if not keys:
            return None
        sm, sp = per_image_score([bm[k] for k in keys]), per_image_score([bp[k] for k in keys])
        if len(sm) != len(sp):
            return None
        am, ap = paired_bootstrap_means(sm, sp)
        if name == "clean":
            out["delta_clean_pts"] = 100.0 * (am - ap)
        else:  # mCE(P) - mCE(M) = acc(M) - acc(P); relative: divided by mCE(P) = 1 - acc(P)
            out[f"robust_abs_pts_{name}"] = 100.0 * (am - ap)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[f"robust_rel_pct_{name}"] = 100.0 * (am - ap) / (1.0 - ap)
    return out


def t_intervals(deltas: pd.DataFrame, centres: Mapping[str, float], metrics) -> dict:
    """``<k>_low`` / ``<k>_high`` / ``<k>_se`` of each metric: the 95 % t interval over the
    per-seed differences ``deltas`` (two or more paired seeds), centred on ``centres[k]``."""
    n = len(deltas)
    tcrit = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1))
    out: dict = {}
    for k in metrics:
        se = float(deltas[k].std(ddof=1)) / math.sqrt(n)
        out.update({f"{k}_low": centres[k] - tcrit * se, f"{k}_high": centres[k] + tcrit * se, f"{k}_se": se})
    return out


def bootstrap_intervals(boot: Mapping[str, np.ndarray] | None, metrics) -> dict:
    """``<k>_low`` / ``<k>_high`` / ``<k>_se`` of each metric: the 95 % percentile interval of its
    bootstrap distribution over test images (one seed); NaN without one."""
    out: dict = {}
    for k in metrics:
        if boot is None:
            out.update({f"{k}_low": math.nan, f"{k}_high": math.nan, f"{k}_se": math.nan})
            continue
        lo, hi = np.nanquantile(boot[k], [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        out.update(
            {f"{k}_low": float(lo), f"{k}_high": float(hi), f"{k}_se": float(np.nanstd(boot[k], ddof=1))}
        )
    return out


def combined_intervals(centres: Mapping[str, float], per_arch: list[dict], metrics) -> dict:
    """The interval of a mean over architectures: centred on ``centres[k]`` (the mean), with the
    architectures' half-widths (and standard errors) in quadrature divided by their number."""
    k_arch = len(per_arch)
    out: dict = {}
    for k in metrics:
        half = math.sqrt(sum(((e[f"{k}_high"] - e[f"{k}_low"]) / 2) ** 2 for e in per_arch)) / k_arch
        se = math.sqrt(sum(e[f"{k}_se"] ** 2 for e in per_arch)) / k_arch
        out.update({f"{k}_low": centres[k] - half, f"{k}_high": centres[k] + half, f"{k}_se": se})
    return out


def interval_text(paired: bool, boot_available: bool) -> str:
    """What a one-seed (or unpaired) interval rests on, as the ``interval`` column says it."""
    if boot_available:
        return "bootstrap over test images (1 seed: evaluation noise only)"
    return "none (seeds not paired)" if not paired else "none (no per-image results)"


def _sig_row(sig: pd.DataFrame | None, label: str, arch: str, seed: str) -> pd.Series | None:
    if sig is None or sig.empty:
        return None
    rows = sig[(sig["label"] == label) & (sig["arch"] == arch) & (sig["seed"].astype(str) == seed)]
    return rows.iloc[0] if len(rows) else None


def _holm_p(sig: pd.DataFrame, label: str, arch: str, seed: str, key: str) -> float:
    row = _sig_row(sig, label, arch, seed)
    if row is None or f"{key}_p_holm" not in row.index:
        return math.nan
    return float(row[f"{key}_p_holm"])


def family_text(sig: pd.DataFrame | None, label: str, arch: str, seed: str) -> str:
    """The Holm family of the claim's test, named with its size: for one method vs plain on one
    architecture, its clean and mean-15 tests at one level (over seeds, or one seed's)."""
    row = _sig_row(sig, label, arch, seed)
    if row is None or "family" not in row.index:
        return "no test"
    return f"Holm over {int(row['family_size'])} tests ({row['family']})"


def n_text(n_seeds: int, paired: bool, n_images: int, kind: str) -> str:
    seeds = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    if not paired:
        return f"{seeds}, not paired"
    if kind.startswith("bootstrap"):
        return f"n = {seeds} × {n_images:,} test images"
    return f"n = {seeds}"


def claim_table(
    df: pd.DataFrame,
    records: list[RunRecord] | None = None,
    significance: pd.DataFrame | None = None,
    label: str = "auxiliary",
) -> pd.DataFrame:
    """:func:`compare.headline` of ``label`` over plain with, for every number, ``<col>_low`` /
    ``<col>_high`` (95 %) and ``<col>_se``; ``interval`` (what the interval rests on),
    ``n_test_images``, ``clean_p_holm`` / ``robust_p_holm`` (Holm-adjusted p-values of the
    significance table's tests of Δclean and of Δmean accuracy over the 15), the paper's values,
    ``verdict`` (``gain`` / ``inconclusive`` / ``opposite sign``) and ``matching_reading`` (the
    verdict in words: which reading of 21.64 matches, or why none can be said to)."""
    h = compare.headline(df, label=label)
    if h.empty:
        return h
    h = h.copy()
    h.insert(1, "method", label)
    runs = compare.run_frame(df)
    by_key = {(r.label, r.arch, r.seed): r for r in records or []}
    clean_n = df.loc[df["corruption"] == CLEAN, "n"]
    n_images = int(clean_n.min()) if len(clean_n) else 0
    metrics = compare.HEADLINE_METRICS
    extra: list[dict] = []
    for _, row in h.iterrows():
        arch = row["arch"]
        if arch == MEAN_ROW:
            extra.append({})
            continue
        deltas, paired = compare.paired_deltas(runs, arch, label, PLAIN)
        n = len(deltas)
        info: dict = {"n_test_images": n_images}
        if paired and n >= 2:
            info.update(t_intervals(deltas, row, metrics))
            info["interval"] = f"t over {n} seeds"
            seed_key = OVER_SEEDS
        else:
            seed = int(deltas.index[0]) if paired else None
            boot = None
            if paired and (label, arch, seed) in by_key and (PLAIN, arch, seed) in by_key:
                boot = bootstrap_deltas(by_key[(label, arch, seed)], by_key[(PLAIN, arch, seed)])
            info.update(bootstrap_intervals(boot, metrics))
            info["interval"] = interval_text(paired, boot is not None)
            seed_key = str(seed) if paired else ""
        info["clean_p_holm"] = _holm_p(significance, label, arch, seed_key, "clean")
        info["robust_p_holm"] = _holm_p(significance, label, arch, seed_key, "mean15")
        info["family"] = family_text(significance, label, arch, seed_key)
        info["_n_text"] = n_text(n, paired, n_images, info["interval"])
        extra.append(info)
    # the mean over architectures: standard errors in quadrature, every architecture must be tested
    per_arch = [e for e in extra if e]
    for i, row in h.iterrows():
        if row["arch"] != MEAN_ROW:
            continue
        k_arch = len(per_arch)
        info = {"n_test_images": n_images}
        info.update(combined_intervals(row, per_arch, metrics))
        info["interval"] = f"combined from the {k_arch} architectures' intervals"
        for key in ("clean_p_holm", "robust_p_holm"):
            ps = [e[key] for e in per_arch]
            # a claim about every architecture at once: the largest p (NaN when one is untested)
            info[key] = max(ps) if all(np.isfinite(ps)) else math.nan
        info["family"] = "the largest of the architectures' adjusted p (each its own family of 2 tests)"
        info["_n_text"] = f"{k_arch} architectures, {int(row['n_seeds'])} paired seeds in all"
        extra[i] = info
    ext = pd.DataFrame(extra, index=h.index)
    h = pd.concat([h, ext.drop(columns="_n_text")], axis=1)
    h["paper_delta_clean_pts"] = compare.PAPER_DELTA_CLEAN_PTS
    h["paper_robustness"] = compare.PAPER_ROBUSTNESS
    verdicts = [
        compare.claim_verdict(
            r,
            r["robust_abs_pts_15_low"],
            r["robust_abs_pts_15_high"],
            r["robust_p_holm"],
            ext.loc[i, "_n_text"],
        )
        for i, r in h.iterrows()
    ]
    h["verdict"] = [v for v, _ in verdicts]
    h["matching_reading"] = [t for _, t in verdicts]
    return h
