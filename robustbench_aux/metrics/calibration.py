"""Calibration under corruption (docs/metrics.md#calibration-under-corruption), without torch.

Evaluation keeps three float32 numbers per test image beside its correctness, taken from the
softmax p of the image's logits (y its label, ŷ = argmax): the confidence max_k p_k, the negative
log-likelihood −ln p_y and the Brier score Σ_k (p_k − 1[k = y])². Every block metric is computed
from those per-image values, so a resumed evaluation gives the same numbers as an uninterrupted
one:

- ECE = Σ_b (n_b / n) · |acc_b − conf_b| over :data:`N_BINS` equal-width confidence bins on [0, 1]
  (bin b holds confidences in ((b − 1) / 15, b / 15]; an empty bin contributes 0);
- RMS calibration error = sqrt(Σ_b (n_b / n) · (acc_b − conf_b)²) over the same bins;
- NLL = mean of −ln p_y;  Brier = mean of Σ_k (p_k − 1[k = y])² (in [0, 2]).

A block evaluated before these were recorded has no per-image values: its metrics are NaN ("not
recorded"), never 0, and every mean over blocks says how many blocks entered it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CLEAN

N_BINS = 15  # equal-width confidence bins of ECE and RMS calibration error (Guo et al. 2017 use 15)
# the per-image values stored beside correctness, in this column order (float32, shape (n, 3))
SCORE_FIELDS = ("confidence", "nll", "brier")
SCORE_DTYPE = np.float32
# the tidy table's calibration columns, in this order (NaN where not recorded)
CALIBRATION_COLUMNS = ("ece", "rmsce", "nll", "brier")
METRIC_NAMES = {
    "ece": "expected calibration error (15 bins)",
    "rmsce": "RMS calibration error (15 bins)",
    "nll": "negative log-likelihood",
    "brier": "Brier score",
}
NOT_RECORDED = "not recorded"


def bin_edges(n_bins: int = N_BINS) -> np.ndarray:
    """The upper edges 1/15, 2/15, ..., 1 of the equal-width bins (bin b is (edge[b-1], edge[b]])."""
    return np.linspace(0.0, 1.0, n_bins + 1)[1:]


def bin_index(confidence: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """The bin (0 .. n_bins − 1) of each confidence: bin b holds (b / n_bins, (b + 1) / n_bins]."""
    conf = np.asarray(confidence, np.float64)
    return np.minimum(np.searchsorted(bin_edges(n_bins), conf, side="left"), n_bins - 1)


def reliability(correct: np.ndarray, confidence: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """Per bin: ``low`` / ``high`` (its edges), ``n``, ``acc`` and ``conf`` (NaN for an empty bin)."""
    correct = np.asarray(correct, np.float64)
    conf = np.asarray(confidence, np.float64)
    idx = bin_index(conf, n_bins)
    n = np.bincount(idx, minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(idx, correct, minlength=n_bins) / n
        mean_conf = np.bincount(idx, conf, minlength=n_bins) / n
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "n": n, "acc": acc, "conf": mean_conf})


def calibration_errors(
    correct: np.ndarray, confidence: np.ndarray, n_bins: int = N_BINS
) -> tuple[float, float]:
    """(ECE, RMS calibration error) of one block; NaN for an empty block."""
    correct = np.asarray(correct, np.float64)
    conf = np.asarray(confidence, np.float64)
    n = len(conf)
    if n == 0:
        return float("nan"), float("nan")
    idx = bin_index(conf, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    gap = np.bincount(idx, correct - conf, minlength=n_bins)  # n_b · (acc_b − conf_b); 0 when empty
    ece = float(np.abs(gap).sum() / n)
    filled = counts > 0
    rms = float(np.sqrt((gap[filled] ** 2 / counts[filled]).sum() / n))
    return ece, rms


def block_calibration(correct: np.ndarray, scores: np.ndarray | None) -> dict[str, float]:
    """ECE, RMS calibration error, NLL and Brier of one block from its per-image correctness and
    stored scores (``(n, 3)``: confidence, NLL, Brier); all NaN when ``scores`` is None."""
    if scores is None:
        return {k: float("nan") for k in CALIBRATION_COLUMNS}
    scores = np.asarray(scores)
    correct = np.asarray(correct, bool)
    if scores.shape != (len(correct), len(SCORE_FIELDS)):
        raise ValueError(f"scores of shape {scores.shape} for {len(correct)} images; expected (n, 3)")
    if len(correct) == 0:
        return {k: float("nan") for k in CALIBRATION_COLUMNS}
    ece, rms = calibration_errors(correct, scores[:, 0])
    return {
        "ece": ece,
        "rmsce": rms,
        "nll": float(np.mean(scores[:, 1], dtype=np.float64)),
        "brier": float(np.mean(scores[:, 2], dtype=np.float64)),
    }


def scores_from_probabilities(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The per-image (confidence, NLL, Brier) of softmax rows ``probs`` (n, K) (for tests and checks:
    evaluation computes the same on the device from log-softmax)."""
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.int64)
    rows = np.arange(len(y))
    onehot = np.zeros_like(p)
    onehot[rows, y] = 1.0
    with np.errstate(divide="ignore"):
        nll = -np.log(p[rows, y])
    return np.stack([p.max(axis=1), nll, ((p - onehot) ** 2).sum(axis=1)], axis=1).astype(SCORE_DTYPE)


def has_calibration(df: pd.DataFrame) -> bool:
    """Whether any block of the table has calibration recorded."""
    return all(c in df.columns for c in CALIBRATION_COLUMNS) and bool(df["ece"].notna().any())


def _run_means(df: pd.DataFrame, metric: str, corruptions) -> tuple[pd.Series, pd.Series]:
    """Per run: the mean over the given corruptions of (metric averaged over severities), and how
    many (corruption, severity) blocks with the metric recorded entered it."""
    sub = df[df["corruption"].isin(list(corruptions))]
    per_c = sub.pivot_table(index="run_id", columns="corruption", values=metric, aggfunc="mean")
    n = sub.assign(_r=sub[metric].notna()).groupby("run_id")["_r"].sum()
    return per_c.mean(axis=1, skipna=True), n


def calibration_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: ``clean_<m>``, ``mean_<m>_15``, ``mean_<m>_19`` for each calibration metric
    m (means over corruptions of the mean over severities, as the accuracy means), and
    ``calibration_blocks`` / ``calibration_blocks_recorded`` (blocks, and blocks with calibration)."""
    runs = df.drop_duplicates("run_id")["run_id"]
    out = pd.DataFrame(index=pd.Index(runs, name="run_id"))
    table = df.copy()
    for m in CALIBRATION_COLUMNS:
        if m not in table.columns:
            table[m] = np.nan
    clean = table[table["corruption"] == CLEAN].set_index("run_id")
    for m in CALIBRATION_COLUMNS:
        out[f"clean_{m}"] = clean[m].reindex(out.index)
        for name, names in (("15", BENCHMARK_15), ("19", ALL_19)):
            mean, _ = _run_means(table, m, names)
            out[f"mean_{m}_{name}"] = mean.reindex(out.index)
    out["calibration_blocks"] = table.groupby("run_id").size().reindex(out.index)
    out["calibration_blocks_recorded"] = table.groupby("run_id")["ece"].count().reindex(out.index)
    return out.reset_index()


def calibration_severity(df: pd.DataFrame, metric: str = "ece", corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Per run, the mean of ``metric`` over the given corruptions at each severity, with clean as
    severity 0: rows run_id, columns 0..5 (NaN where not recorded)."""
    sub = df[df["corruption"].isin(list(corruptions)) | (df["corruption"] == CLEAN)]
    return sub.pivot_table(index="run_id", columns="severity", values=metric, aggfunc="mean", dropna=False)


def calibration_summary(df: pd.DataFrame) -> dict:
    """The calibration part of one run's summary JSON: per metric, clean, the 15- and 19-means
    and the severity curve over the 15; ``blocks_recorded`` of ``blocks``; values None where not
    recorded (never 0)."""
    runs = df["run_id"].unique()
    if len(runs) != 1:
        raise ValueError(f"calibration_summary needs the rows of one run, got {len(runs)}")
    row = calibration_frame(df).iloc[0]

    def _f(v) -> float | None:
        return None if pd.isna(v) else float(v)

    out: dict = {
        "n_bins": N_BINS,
        "blocks": int(row["calibration_blocks"]),
        "blocks_recorded": int(row["calibration_blocks_recorded"]),
    }
    for m in CALIBRATION_COLUMNS:
        curve = calibration_severity(df, m)
        out[m] = {
            "clean": _f(row[f"clean_{m}"]),
            "mean_15": _f(row[f"mean_{m}_15"]),
            "mean_19": _f(row[f"mean_{m}_19"]),
            "by_severity_15": {str(k): _f(v) for k, v in curve.iloc[0].items() if k != 0}
            if len(curve)
            else {},
        }
    return out


def bootstrap_ece_blocks(
    correct_blocks: Mapping, score_blocks: Mapping, index: np.ndarray, n_bins: int = N_BINS
) -> np.ndarray:
    """ECE averaged over the given blocks in each resample of the test images: ``index`` (R, n)
    holds the resampled image indices (the same images in every block); returns (R,) values.

    One matrix product per call of resample counts and per-bin gaps, so thousands of resamples of
    10,000 images stay fast: ECE_r = Σ_b |Σ_i w_ri (c_i − conf_i) [i in b]| / n, with w_ri how often
    resample r drew image i."""
    r, n = index.shape
    keys = list(correct_blocks)
    if not keys:
        return np.full(r, np.nan)
    flat = (np.arange(r)[:, None] * n + index).ravel()
    counts = np.bincount(flat, minlength=r * n).reshape(r, n).astype(np.float32)
    gaps = np.zeros((n, len(keys) * n_bins), np.float32)
    rows = np.arange(n)
    for j, k in enumerate(keys):
        c = np.asarray(correct_blocks[k][:n], np.float64)
        conf = np.asarray(score_blocks[k][:n, 0], np.float64)
        gaps[rows, j * n_bins + bin_index(conf, n_bins)] = c - conf
    per_bin = np.abs((counts @ gaps).astype(np.float64)).reshape(r, len(keys), n_bins)
    return per_bin.sum(axis=2).mean(axis=1) / n
