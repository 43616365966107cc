"""Comparisons between runs: normalized and relative CE, the paper's headline numbers in both
readings, the cross-corruption interference matrix, and seen- vs unseen-family means.

All functions are pure: tidy tables (see :mod:`robustbench_aux.metrics.tidy`) in, pandas out.
Differences of accuracies are returned in percentage points (suffix ``_pts``), relative changes in
percent (suffix ``_pct``); plain accuracies stay fractions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CLEAN
from robustbench_aux.metrics.accuracy import (
    category_accuracy,
    clean_accuracy,
    corruption_accuracy,
    coverage,
    mce,
    mean_accuracy,
)
from robustbench_aux.runinfo import run_info

PLAIN = "plain"
# The paper's abstract: +2.21 % accuracy and 21.64 % robustness (corruption error), CIFAR-100,
# averaged over architectures. Which reading 21.64 is (points or relative %) is not stated.
PAPER_DELTA_CLEAN_PTS = 2.21
PAPER_ROBUSTNESS = 21.64

# The training corruptions (docs/training.md) and the CIFAR-C corruptions of the same family. impulse_noise is
# left out of "noise": salt-and-pepper replaces pixels with 0/255 rather than adding Gaussian noise,
# so Gaussian-noise training does not "see" it (documented in docs/evaluation.md).
SEEN_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "speckle_noise"),
    "blur": ("gaussian_blur", "defocus_blur"),
    "contrast": ("contrast", "brightness", "saturate"),
    "rotation": (),
}
TRAINING_CORRUPTIONS = tuple(SEEN_FAMILIES)


# ----------------------------------------------------------------------------- normalized CE
def _errors(df: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """E[c, s] = 1 - acc[c, s] as a (corruption x severity) table, and E_clean, for one run."""
    if df["run_id"].nunique() != 1:
        raise ValueError("expected the rows of exactly one run")
    corrupted = df[df["corruption"] != CLEAN]
    e = 1.0 - corrupted.pivot_table(index="corruption", columns="severity", values="acc", aggfunc="mean")
    return e, 1.0 - float(clean_accuracy(df).iloc[0])


def _common(e: pd.DataFrame, e_ref: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [c for c in ALL_19 if c in e.index and c in e_ref.index]
    cols = [s for s in e.columns if s in e_ref.columns]
    return e.loc[rows, cols], e_ref.loc[rows, cols]


def normalized_ce(run: pd.DataFrame, reference: pd.DataFrame) -> pd.Series:
    """Normalized CE[c] = sum_s E[c,s] / sum_s E_R[c,s] over the (c, s) blocks both runs have."""
    e, e_ref = _common(_errors(run)[0], _errors(reference)[0])
    return (e.sum(axis=1) / e_ref.sum(axis=1)).rename("normalized_ce")


def relative_ce(run: pd.DataFrame, reference: pd.DataFrame) -> pd.Series:
    """Relative CE[c] = sum_s (E[c,s] - E_clean) / sum_s (E_R[c,s] - E_R,clean).

    NaN where the reference loses nothing to the corruption (a zero or negative denominator);
    :func:`ratio_mce` also marks denominators that are positive but too small to divide by.
    """
    (e, e_clean), (e_r, e_r_clean) = _errors(run), _errors(reference)
    e, e_r = _common(e, e_r)
    den = (e_r - e_r_clean).sum(axis=1)
    return ((e - e_clean).sum(axis=1) / den.where(den > 0)).rename("relative_ce")


# A reference that loses less than this (a fraction: 0.01 = 1 point of accuracy, averaged over the
# severities) on a corruption makes a ratio against it meaningless: the corruption is "unstable".
MIN_REFERENCE_DEGRADATION = 0.01


def ratio_ce(run: pd.DataFrame, reference: pd.DataFrame, kind: str = "relative") -> pd.DataFrame:
    """Per corruption both runs have: numerator, denominator, ratio and whether it is ``unstable``.

    ``kind="normalized"``: sum_s E / sum_s E_R (unstable when the reference's mean error over the
    severities is below :data:`MIN_REFERENCE_DEGRADATION`). ``kind="relative"``: sum_s (E - E_clean)
    / sum_s (E_R - E_R,clean) (unstable when the reference's mean loss over the severities is below
    it, including a zero or negative loss). Unstable rows keep their ratio for the record.
    """
    (e, e_clean), (e_r, e_r_clean) = _errors(run), _errors(reference)
    e, e_r = _common(e, e_r)
    if kind == "normalized":
        num, den = e.sum(axis=1), e_r.sum(axis=1)
    elif kind == "relative":
        num, den = (e - e_clean).sum(axis=1), (e_r - e_r_clean).sum(axis=1)
    else:
        raise ValueError(f"kind must be 'normalized' or 'relative', got {kind!r}")
    n_sev = e_r.notna().sum(axis=1).clip(lower=1)
    unstable = (den / n_sev) < MIN_REFERENCE_DEGRADATION
    ratio = num / den.where(den != 0)
    return pd.DataFrame({"numerator": num, "denominator": den, "ratio": ratio, "unstable": unstable})


def ratio_mce(
    run: pd.DataFrame, reference: pd.DataFrame, kind: str = "relative", corruptions=BENCHMARK_15
) -> dict:
    """The mean ratio over the given corruptions, with the count of corruptions that entered it.

    Returns ``{"value", "n_used", "n_unstable", "n_missing", "n_set", "unstable", "min", "median",
    "max", "ratios"}``: ``value`` is the mean over the stable corruptions present (NaN when none
    is), ``min`` / ``median`` / ``max`` its spread over those corruptions, ``ratios`` the
    per-corruption ratios (stable and unstable alike), ``unstable`` lists those left out because
    the reference barely degrades on them, ``n_missing`` counts corruptions of the set not evaluated
    for both runs. Nothing is left out without being counted.
    """
    corruptions = tuple(corruptions)
    per = ratio_ce(run, reference, kind)
    present = [c for c in corruptions if c in per.index]
    per = per.loc[present]
    stable = per[~per["unstable"]]
    spread = stable["ratio"].astype(float)
    nan = float("nan")
    return {
        "value": float(stable["ratio"].mean()) if len(stable) else nan,
        "min": float(spread.min()) if len(spread) else nan,
        "median": float(spread.median()) if len(spread) else nan,
        "max": float(spread.max()) if len(spread) else nan,
        "ratios": per,
        "n_used": int(len(stable)),
        "n_unstable": int(per["unstable"].sum()),
        "n_missing": len(corruptions) - len(present),
        "n_set": len(corruptions),
        "unstable": [c for c in present if bool(per.loc[c, "unstable"])],
    }


def normalized_mce(run: pd.DataFrame, reference: pd.DataFrame, corruptions=BENCHMARK_15) -> float:
    """mCE_norm: the mean of normalized CE[c] over the given corruptions (default the 15) whose
    reference errs enough to divide by (see :func:`ratio_mce` for the counts)."""
    return ratio_mce(run, reference, "normalized", corruptions)["value"]


def relative_mce(run: pd.DataFrame, reference: pd.DataFrame, corruptions=BENCHMARK_15) -> float:
    """Relative mCE: the mean of relative CE[c] over the given corruptions (default the 15) on which
    the reference degrades enough to divide by (see :func:`ratio_mce` for the counts)."""
    return ratio_mce(run, reference, "relative", corruptions)["value"]


# ----------------------------------------------------------------------------- headline numbers
def run_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: identity columns plus clean_acc, mean_acc_15/19, mce (15), mce_19 and
    n_corruptions_15/19 (how many corruptions of each set the run was evaluated on)."""
    ident = df.drop_duplicates("run_id").set_index("run_id")[["dataset", "method", "label", "arch", "seed"]]
    m15, m19 = mean_accuracy(df, BENCHMARK_15), mean_accuracy(df, ALL_19)
    out = ident.assign(
        clean_acc=clean_accuracy(df),
        mean_acc_15=m15,
        mean_acc_19=m19,
        mce=mce(df),
        mce_19=1.0 - m19,
        n_corruptions_15=coverage(df, BENCHMARK_15),
        n_corruptions_19=coverage(df, ALL_19),
    )
    return out.reset_index()


# the four readings of the paper's robustness figure: (column, kind, corruption set)
READINGS = (
    ("robust_abs_pts_15", "absolute points", "15"),
    ("robust_rel_pct_15", "relative %", "15"),
    ("robust_abs_pts_19", "absolute points", "19"),
    ("robust_rel_pct_19", "relative %", "19"),
)
HEADLINE_METRICS = ("delta_clean_pts",) + tuple(r[0] for r in READINGS)


def paired_deltas(runs: pd.DataFrame, arch: str, label: str, reference: str) -> tuple[pd.DataFrame, bool]:
    """Per-seed (method - reference) rows of :data:`HEADLINE_METRICS` for one architecture (``runs``
    from :func:`run_frame`), indexed by seed; one row of unpaired means when no seed matches."""
    cols = ["clean_acc", "mce", "mce_19"]
    m = runs[(runs["arch"] == arch) & (runs["label"] == label)].groupby("seed")[cols].mean()
    p = runs[(runs["arch"] == arch) & (runs["label"] == reference)].groupby("seed")[cols].mean()
    seeds = m.index.intersection(p.index)
    paired = len(seeds) > 0
    if paired:
        m, p = m.loc[seeds], p.loc[seeds]
    else:
        m, p = m.mean().to_frame().T, p.mean().to_frame().T
    out = {"delta_clean_pts": 100.0 * (m["clean_acc"].to_numpy() - p["clean_acc"].to_numpy())}
    for key, s in (("mce", "15"), ("mce_19", "19")):
        gain = p[key].to_numpy() - m[key].to_numpy()
        out[f"robust_abs_pts_{s}"] = 100.0 * gain
        out[f"robust_rel_pct_{s}"] = 100.0 * gain / p[key].to_numpy()
    return pd.DataFrame(out, index=m.index if paired else None), paired


def headline(df: pd.DataFrame, label: str = "auxiliary", reference: str = PLAIN) -> pd.DataFrame:
    """The paper's headline numbers of ``label`` over ``reference``, per architecture and averaged.

    Columns: arch, n_seeds, paired (seeds matched), n_corruptions_15 / n_corruptions_19 (how many
    corruptions of each set entered the means), and for ``delta_clean_pts`` (Δclean in points) and
    the four readings of the robustness gain -- ``robust_abs_pts_15`` (mCE(P) - mCE(M) in points over
    the 15 benchmark corruptions), ``robust_rel_pct_15`` ((mCE(P) - mCE(M)) / mCE(P) in %), and the
    same over all 19 (``_19``) -- its mean and its std over seeds (NaN for one seed). The last row,
    arch ``mean over architectures``, averages the per-architecture means. Empty if no
    architecture has both runs.
    """
    runs = run_frame(df)
    rows = []
    for arch in sorted(runs["arch"].unique()):
        sub = runs[runs["arch"] == arch]
        if label not in set(sub["label"]) or reference not in set(sub["label"]):
            continue
        deltas, paired = paired_deltas(runs, arch, label, reference)
        row = {
            "arch": arch,
            "n_seeds": len(deltas),
            "paired": paired,
            "n_corruptions_15": int(sub["n_corruptions_15"].min()),
            "n_corruptions_19": int(sub["n_corruptions_19"].min()),
        }
        for k in HEADLINE_METRICS:
            row[k] = float(deltas[k].mean())
            row[f"{k}_std"] = float(deltas[k].std(ddof=1)) if len(deltas) > 1 else float("nan")
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["arch", "n_seeds", "paired", *HEADLINE_METRICS])
    table = pd.DataFrame(rows)
    if len(table) > 1:
        avg = {
            "arch": "mean over architectures",
            "n_seeds": int(table["n_seeds"].sum()),
            "paired": bool(table["paired"].all()),
            "n_corruptions_15": int(table["n_corruptions_15"].min()),
            "n_corruptions_19": int(table["n_corruptions_19"].min()),
        }
        for k in HEADLINE_METRICS:
            avg[k] = float(table[k].mean())
            avg[f"{k}_std"] = float(table[k].std(ddof=1))
        table = pd.concat([table, pd.DataFrame([avg])], ignore_index=True)
    return table


NEITHER = "neither"


def matching_reading(readings: Mapping[str, float], paper: float = PAPER_ROBUSTNESS) -> str:
    """Which reading of the paper's robustness figure a measurement matches, or ``"neither"``.

    ``readings`` maps the :data:`READINGS` columns to measured values. A reading is a candidate only
    when it has the paper's sign (a gain). The nearest candidate matches only when it is clearly
    nearer than every reading of the other kind: its distance to ``paper`` is at most half of theirs.
    The corruption set is named when the nearest is also clearly nearer than the same kind over the
    other set; otherwise both sets are said to agree. Otherwise the answer starts with "neither".
    """
    vals = {col: float(readings[col]) for col, _, _ in READINGS if np.isfinite(readings.get(col, np.nan))}
    if not vals:
        return f"{NEITHER} (nothing measured)"
    cands = {c: v for c, v in vals.items() if np.sign(v) == np.sign(paper) and v != 0}
    if not cands:
        return f"{NEITHER} (the measured change has the opposite sign to the paper's)"
    dist = {c: abs(v - paper) for c, v in vals.items()}
    best = min(cands, key=dist.get)
    kind = {c: k for c, k, _ in READINGS}
    sets = {c: s for c, _, s in READINGS}
    other_kind = [dist[c] for c in vals if kind[c] != kind[best]]
    if other_kind and dist[best] > 0.5 * min(other_kind):
        return f"{NEITHER} (no reading is clearly nearer than the others)"
    same_kind = [dist[c] for c in vals if kind[c] == kind[best] and c != best]
    if same_kind and dist[best] > 0.5 * min(same_kind):
        return f"{kind[best]} (15 and 19 corruptions alike)"
    return f"{kind[best]}, {sets[best]} corruptions"


INCONCLUSIVE = "inconclusive"
OPPOSITE_SIGN = "opposite sign"
GAIN = "gain"
ALPHA = 0.05


def _p_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def claim_verdict(
    readings: Mapping[str, float],
    low: float,
    high: float,
    p_holm: float,
    n_text: str,
    *,
    alpha: float = ALPHA,
    paper: float = PAPER_ROBUSTNESS,
    key: str = "robust_abs_pts_15",
    over: str = "15 corruptions",
) -> tuple[str, str]:
    """The verdict on the paper's robustness claim, respecting the measurement's uncertainty.

    ``readings`` as in :func:`matching_reading`; the decision rests on ``robust_abs_pts_15`` (the
    gain in mean accuracy over the 15 benchmark corruptions, points), its 95 % interval
    ``[low, high]`` and the Holm-adjusted p-value of its test (``p_holm``); ``n_text`` says what
    the interval rests on ("1 seed x 500 test images"). Returns ``(verdict, text)``:

    - ``"inconclusive"`` when the interval contains 0, the adjusted p-value is above ``alpha``, or
      either is missing: the text gives the change, its interval, n and the adjusted p;
    - ``"opposite sign"`` when the change is a significant loss ("neither: ..."), the text with the
      same evidence;
    - ``"gain"`` otherwise: the text is :func:`matching_reading`'s answer and the evidence.

    ``key`` / ``over`` name another gain to decide on (the report's CIFAR-C-bar claim passes
    ``"robust_abs_pts_cbar"`` / ``"10 C-bar corruptions"``); a gain on a key that is not one of
    :data:`READINGS` is said as "gain", since the paper's 21.64 is about CIFAR-C.
    """
    delta = float(readings.get(key, np.nan))
    finite = all(np.isfinite(v) for v in (delta, low, high, p_holm))
    if not finite:
        missing = "no interval" if not np.isfinite(low) or not np.isfinite(high) else "no paired test"
        shown = f"{delta:+.2f} points over {over}, " if np.isfinite(delta) else ""
        return INCONCLUSIVE, f"{INCONCLUSIVE} ({shown}{missing}; {n_text})"
    evidence = (
        f"{delta:+.2f} points over {over}, 95 % interval {low:+.2f} to {high:+.2f}, "
        f"{n_text}, Holm-adjusted p = {_p_text(p_holm)}"
    )
    if low <= 0 <= high or p_holm > alpha:
        return INCONCLUSIVE, f"{INCONCLUSIVE} ({evidence})"
    if np.sign(delta) != np.sign(paper):
        return (
            OPPOSITE_SIGN,
            f"{NEITHER} (a significant change of the opposite sign to the paper's: {evidence})",
        )
    said = matching_reading(readings, paper) if key in {c for c, _, _ in READINGS} else GAIN
    return GAIN, f"{said} ({evidence})"


# ----------------------------------------------------------------------------- interference
def label_order(labels: Iterable[str]) -> list[str]:
    """Rows in the report's order: plain, per-corruption models, naive augmentation, auxiliary, others."""
    rank = {PLAIN: 0, "per_corruption": 1, "naive_augmentation": 2, "auxiliary": 3}
    return sorted(set(labels), key=lambda x: (rank.get(x.split("[")[0], 4), x))


def interference_matrix(
    df: pd.DataFrame, arch: str | None = None, reference: str = PLAIN, by_severity: bool = False
) -> pd.DataFrame:
    """Cross-corruption interference: acc_col(row) - acc_col(plain), in points, seeds averaged.

    Rows are method labels of one architecture (``arch``; required when several are present).
    Columns: ``clean``, the corruptions present (catalog order), then the category means. With
    ``by_severity`` the index is (label, severity) and columns are the corruptions only.
    Raises ``KeyError`` when the reference label has no run of that architecture.
    """
    archs = sorted(df["arch"].unique())
    if arch is None:
        if len(archs) != 1:
            raise ValueError(f"several architectures present ({', '.join(archs)}); pass arch=")
        arch = archs[0]
    sub = df[df["arch"] == arch]
    labels = sub.drop_duplicates("run_id").set_index("run_id")["label"]
    if reference not in set(labels):
        raise KeyError(f"no {reference!r} run for architecture {arch!r}")
    if by_severity:
        corrupted = sub[sub["corruption"] != CLEAN].assign(label=lambda d: d["run_id"].map(labels))
        acc = corrupted.pivot_table(
            index=["label", "severity"], columns="corruption", values="acc", aggfunc="mean"
        )
        acc = acc[[c for c in ALL_19 if c in acc.columns]]
        ref = acc.xs(reference, level="label")
        delta = 100.0 * acc.sub(ref, level="severity")
        order = label_order(acc.index.get_level_values("label"))
        return delta.reindex(
            pd.MultiIndex.from_product([order, sorted(ref.index)], names=["label", "severity"])
        )
    per_run = pd.concat([clean_accuracy(sub), corruption_accuracy(sub), category_accuracy(sub)], axis=1)
    per_label = per_run.groupby(labels).mean()  # average over seeds
    delta = 100.0 * (per_label - per_label.loc[reference])
    delta.index.name = "label"
    return delta.loc[label_order(delta.index)]


# ----------------------------------------------------------------------------- seen vs unseen
def training_corruptions(config: Mapping) -> tuple[str, ...]:
    """Which training corruptions a run trained on: the method's four (noise, blur, contrast, rotation) or
    CIFAR-C specs such as ``cifar_c:fog@3``. Reads the engine's ``options`` and flat configs alike."""
    info = run_info(config)
    if info.method == "per_corruption":
        return (info.corruption,) if info.corruption else ()
    if info.method in ("naive_augmentation", "auxiliary"):
        return info.train_corruptions or TRAINING_CORRUPTIONS
    return ()


def _family(training_corruption: str, families: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The CIFAR-C corruptions a training corruption 'covers'; a ``cifar_c:NAME@S`` spec covers NAME."""
    if training_corruption.startswith("cifar_c:"):
        return (training_corruption.split(":", 1)[1].split("@", 1)[0],)
    return families.get(training_corruption, ())


def seen_corruptions(trained_on: Iterable[str], families: Mapping[str, tuple[str, ...]] = SEEN_FAMILIES):
    """CIFAR-C corruptions in the same family as the training corruptions, in catalog order."""
    seen = {c for t in trained_on for c in _family(t, families)}
    return tuple(c for c in ALL_19 if c in seen)


def family_accuracy(df: pd.DataFrame, trained_on: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Per run: mean acc[c] over seen-family and over unseen-family corruptions (of those present).

    ``trained_on`` maps run_id -> training corruptions (see :func:`training_corruptions`); runs
    that trained on none of them get NaN seen means and every corruption counted as unseen.
    """
    wide = corruption_accuracy(df)
    rows = {}
    for rid in wide.index:
        seen = [c for c in seen_corruptions(trained_on.get(rid, ())) if c in wide.columns]
        unseen = [c for c in wide.columns if c not in seen]
        rows[rid] = {
            "seen_acc": float(wide.loc[rid, seen].mean()) if seen else np.nan,
            "unseen_acc": float(wide.loc[rid, unseen].mean()) if unseen else np.nan,
            "n_seen": len(seen),
            "n_unseen": len(unseen),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run_id")
