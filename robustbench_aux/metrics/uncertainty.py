"""Uncertainty: mean ± std over seeds, 95 % bootstrap intervals over test images, paired tests.

Per-image inputs are boolean "correct" arrays. A CIFAR-C block holds the test images in test-set
order, so image i of every block is the same underlying test image: the per-image score
``r_i = mean over blocks of correct[block, i]`` is what a bootstrap over test images resamples,
and the mean of r_i equals the mean over blocks of block accuracy when all blocks have equal n.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

BOOTSTRAP_SAMPLES = 2000
_CHUNK = 250  # bootstrap resamples drawn at a time: bounds memory at _CHUNK x n indices


def aggregate_seeds(
    runs: pd.DataFrame, values: Sequence[str], by: Sequence[str] = ("label", "arch")
) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed) and n of each value column over the runs of each group."""
    g = runs.groupby(list(by), sort=False)[list(values)]
    mean, std, n = g.mean(), g.std(ddof=1), g.size()
    out = pd.concat({"mean": mean, "std": std}, axis=1).swaplevel(axis=1)
    out.columns = [f"{v}_{stat}" for v, stat in out.columns]
    out = out[[f"{v}_{s}" for v in values for s in ("mean", "std")]]
    out.insert(0, "n_seeds", n)
    return out.reset_index()


def per_image_score(correct_blocks: Sequence[np.ndarray]) -> np.ndarray:
    """r_i: for each test image, the fraction of the given blocks in which it was classified correctly."""
    if not correct_blocks:
        raise ValueError("no blocks given")
    n = min(len(b) for b in correct_blocks)
    return np.mean([np.asarray(b[:n], dtype=np.float64) for b in correct_blocks], axis=0)


def _bootstrap_means(scores: np.ndarray, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(scores)
    out = np.empty(samples)
    for lo in range(0, samples, _CHUNK):
        hi = min(lo + _CHUNK, samples)
        idx = rng.integers(0, n, size=(hi - lo, n))
        out[lo:hi] = scores[idx].mean(axis=1)
    return out


def bootstrap_ci(
    scores: np.ndarray, *, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): the percentile bootstrap interval of the mean of per-image scores."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return (float("nan"),) * 3
    boot = _bootstrap_means(scores, samples, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    return float(scores.mean()), float(low), float(high)


def paired_bootstrap(
    scores_a: np.ndarray,
    scores_b: np.ndarray,
    *,
    level: float = 0.95,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict:
    """Paired bootstrap of mean(a) - mean(b) over the same test images.

    Returns ``{"delta", "low", "high", "p_value", "se", "p_value_z", "n"}`` with ``delta`` etc. as
    fractions. ``p_value`` is two-sided, from the bootstrap distribution shifted to mean zero (the
    null of no difference); its smallest value is 1 / (samples + 1), too coarse to survive a
    multiple-comparison correction over many cells. ``p_value_z`` is the two-sided normal p-value
    of delta / se, with ``se`` the bootstrap standard error: continuous, for Holm's correction.
    """
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: shapes {a.shape} and {b.shape}")
    d = a - b
    observed = float(d.mean())
    boot = _bootstrap_means(d, samples, seed)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [alpha, 1.0 - alpha])
    extreme = np.abs(boot - observed) >= abs(observed) - 1e-12
    p = (1 + int(extreme.sum())) / (samples + 1)
    se = float(boot.std(ddof=1))
    if se > 0:
        p_z = float(2 * stats.norm.sf(abs(observed) / se))
    else:
        p_z = 1.0 if observed == 0 else 0.0
    return {
        "delta": observed,
        "low": float(low),
        "high": float(high),
        "p_value": float(p),
        "se": se,
        "p_value_z": p_z,
        "n": int(len(d)),
    }


def paired_bootstrap_means(
    scores_a: np.ndarray, scores_b: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The means of ``a`` and of ``b`` in each bootstrap resample of the same test images.

    Any statistic of the two means (a difference, a ratio) then has its bootstrap distribution.
    The resamples are those of :func:`paired_bootstrap` with the same ``seed``, so
    ``means_a - means_b`` is its distribution of the difference.
    """
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: shapes {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    n = len(a)
    out_a, out_b = np.empty(samples), np.empty(samples)
    for lo in range(0, samples, _CHUNK):
        hi = min(lo + _CHUNK, samples)
        idx = rng.integers(0, n, size=(hi - lo, n))
        out_a[lo:hi] = a[idx].mean(axis=1)
        out_b[lo:hi] = b[idx].mean(axis=1)
    return out_a, out_b


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test on paired correctness (e.g. method vs plain on the clean test set).

    ``b`` = images only ``a`` gets right, ``c`` = images only ``b`` gets right; under the null of
    equal accuracy, b ~ Binomial(b + c, 1/2). Returns ``{"b", "c", "p_value"}``.
    """
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b_.shape:
        raise ValueError(f"McNemar needs the same images: shapes {a.shape} and {b_.shape}")
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return {"b": only_a, "c": only_b, "p_value": p}


def seed_test(deltas: Sequence[float]) -> dict:
    """A test over seeds: one-sample t-test of the per-seed paired differences against 0.

    The seed is the unit of replication of a training method; each delta is one seed's (method -
    reference) difference with the reference of the same seed. Needs at least 2 seeds (returns a
    NaN p-value otherwise, and when all deltas are equal, where the t statistic is undefined).
    Returns ``{"delta", "std", "n", "t", "p_value"}``.
    """
    d = np.asarray(deltas, np.float64)
    d = d[np.isfinite(d)]
    n = int(len(d))
    mean = float(d.mean()) if n else float("nan")
    std = float(d.std(ddof=1)) if n > 1 else float("nan")
    if n < 2 or not std > 0:
        return {"delta": mean, "std": std, "n": n, "t": float("nan"), "p_value": float("nan")}
    res = stats.ttest_1samp(d, 0.0)
    return {"delta": mean, "std": std, "n": n, "t": float(res.statistic), "p_value": float(res.pvalue)}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN entries are left out and stay NaN).

    The k-th smallest of m p-values is multiplied by (m - k + 1), adjusted values are made
    non-decreasing in that order and capped at 1; a test is significant at level alpha when its
    adjusted p-value is <= alpha. Controls the family-wise error rate under any dependence.
    """
    p = np.asarray(p_values, np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


def paired_z(scores_a: np.ndarray, scores_b: np.ndarray) -> dict:
    """Normal-approximation paired test of mean(a) - mean(b) over the same test images.

    For cells of a large table (thousands of test images each), where a bootstrap per cell would
    cost too much: z = mean(d) / (std(d) / sqrt(n)) with d = a - b per image. Returns
    ``{"delta", "se", "p_value", "n"}`` (two-sided; p = 1 when nothing differs).
    """
    a, b = np.asarray(scores_a, np.float64), np.asarray(scores_b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: shapes {a.shape} and {b.shape}")
    d = a - b
    n = int(len(d))
    delta = float(d.mean()) if n else float("nan")
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if not n > 1:
        p = float("nan")
    elif se > 0:
        p = float(2 * stats.norm.sf(abs(delta) / se))
    else:
        p = 1.0 if delta == 0 else 0.0
    return {"delta": delta, "se": se, "p_value": p, "n": n}


def detectable_difference(std: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean difference a two-sided one-sample t-test over ``n`` seeds detects with
    probability ``power`` at level ``alpha``, when the per-seed differences spread with sd ``std``:
    (t_{1-alpha/2, n-1} + t_{power, n-1}) * std / sqrt(n) (the usual approximation, which leaves
    out the non-central t). NaN with fewer than 2 seeds or an unknown sd.

    With 2 seeds it is about 10 sd (12.71 + 1.38 = 14.08, / sqrt 2), with 3 seeds about 3.9 sd,
    with 5 about 1.7 sd: a handful of seeds detects only differences far larger than their spread.
    """
    if n < 2 or not np.isfinite(std):
        return float("nan")
    df = n - 1
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * std / np.sqrt(n))
