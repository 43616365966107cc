"""The evaluation outputs: ``results.csv`` (tidy long table) and ``summary.json`` (per-run summary).

Both are written atomically into the evaluation directory (``<run>/eval/`` for a run). The
summary holds the accuracy figures of :func:`robustbench_aux.metrics.run_summary`, the calibration
figures of :func:`robustbench_aux.metrics.calibration.calibration_summary` (None where not
recorded; summaries written before them have no ``calibration`` key), 95 % bootstrap
intervals over test images, the reference run used for normalized CE (if any) and provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from robustbench_aux.catalog import BENCHMARK_15, CLEAN
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.infra.jsonio import read_json_object
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.accuracy import cbar_summary, run_summary
from robustbench_aux.metrics.calibration import calibration_summary
from robustbench_aux.metrics.tidy import COLUMNS, check_table
from robustbench_aux.metrics.uncertainty import bootstrap_ci, per_image_score
from robustbench_aux.rundir import RESULTS_CSV, SUMMARY_JSON

SUMMARY_FORMAT = "robustbench-aux-eval/1"


def _interval(scores: np.ndarray) -> dict:
    mean, low, high = bootstrap_ci(scores)
    return {"mean": mean, "low": low, "high": high, "level": 0.95, "n_images": int(len(scores))}


def accuracy_bootstrap_95(correct: Mapping[tuple[str, int], np.ndarray]) -> dict:
    """95 % bootstrap intervals over test images for clean_acc and mean_acc_15 (blocks present)."""
    out = {}
    if (CLEAN, 0) in correct and len(correct[(CLEAN, 0)]):
        out["clean_acc"] = _interval(np.asarray(correct[(CLEAN, 0)], np.float64))
    bench = [v for (c, _), v in correct.items() if c in BENCHMARK_15 and len(v)]
    if bench:
        out["mean_acc_15"] = _interval(per_image_score(bench))
    return out


def build_summary(
    table: pd.DataFrame,
    correct: Mapping[tuple[str, int], np.ndarray] | None = None,
    *,
    provenance: Mapping | None = None,
    timing: Mapping | None = None,
    reference: pd.DataFrame | None = None,
) -> dict:
    """The summary JSON of one run (see the module docstring); ``reference`` is another run's table."""
    check_table(table)
    ident = table.iloc[0]
    summary = {
        "format": SUMMARY_FORMAT,
        **{
            k: (int(ident[k]) if k == "seed" else str(ident[k]))
            for k in ("run_id", "dataset", "method", "label", "arch", "seed")
        },
        **run_summary(table),
        "bootstrap_95": accuracy_bootstrap_95(correct) if correct else {},
        "calibration": calibration_summary(table),
        "reference_run": None,
        "mce_normalized": None,
        "mce_relative": None,
    }
    cbar = cbar_summary(table)
    if cbar is not None:  # only when C-bar was evaluated: CIFAR-C-only summaries keep their keys
        summary["c_bar"] = cbar
    if reference is not None:
        summary.update(reference_figures(table, reference))
    summary["provenance"] = dict(provenance or {})
    summary["timing"] = dict(timing or {})
    return summary


def reference_figures(table: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """Normalized and relative mCE of ``table``'s run against the reference run's table, each with
    how many corruptions entered it and which were left out as unstable (docs/metrics.md)."""
    out: dict = {"reference_run": str(reference["run_id"].iloc[0])}
    for key, kind in (("mce_normalized", "normalized"), ("mce_relative", "relative")):
        r = compare.ratio_mce(table, reference, kind)
        out[key] = None if np.isnan(r["value"]) else r["value"]
        out[f"{key}_n"] = r["n_used"]
        out[f"{key}_unstable"] = r["unstable"]
    return out


def write_results(out_dir: str | Path, table: pd.DataFrame, summary: Mapping) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``summary.json`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    csv = atomic.write_text(
        out_dir / RESULTS_CSV, table[list(COLUMNS)].to_csv(index=False, float_format="%.6f")
    )
    js = atomic.write_json(out_dir / SUMMARY_JSON, _jsonable(summary))
    return csv, js


def _jsonable(obj):
    """NaN -> None, numpy scalars -> Python (JSON has no NaN)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and np.isnan(obj):
        return None
    return obj


def read_results(eval_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read and validate ``results.csv`` and ``summary.json`` of an evaluation directory."""
    eval_dir = Path(eval_dir)
    csv, js = eval_dir / RESULTS_CSV, eval_dir / SUMMARY_JSON
    for p in (csv, js):
        if not p.is_file():
            raise UserError(
                f"{p} is missing; run `robustbench-aux evaluate {eval_dir.parent} --corruptions <dir>` first"
            )
    try:
        table = pd.read_csv(
            csv, dtype={"run_id": str, "label": str, "method": str, "arch": str, "dataset": str}
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{csv} is not a readable CSV ({exc}); re-run the evaluation") from None
    summary = read_json_object(js, "re-run the evaluation")
    return check_table(table, str(csv)), summary
