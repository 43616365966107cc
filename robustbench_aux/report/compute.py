"""Training compute per run: optimizer steps and images seen, and where compared methods differ.

Read from the run's ``metrics.csv`` (one row per finished epoch, written by ``train``): ``steps``
is the optimizer steps of an epoch, ``images`` the images trained on with every view counted (an
auxiliary step trains on k + 1 views of each image, an enlarged-dataset item is one image).
Runs trained before ``images`` was recorded, and models evaluated with ``evaluate --model``, have
no such file or column: their figures are unknown (NaN), never guessed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

from robustbench_aux.rundir import METRICS_CSV

# compared methods whose optimizer steps differ by more than this fraction are named in the banner
STEPS_TOLERANCE = 0.10
PLAIN = "plain"


def _total(rows: list[dict], column: str) -> float:
    values = [r.get(column) for r in rows]
    if not rows or any(v in (None, "") for v in values):
        return math.nan
    try:
        return float(sum(float(v) for v in values))
    except ValueError:
        return math.nan


def training_compute(run_dir: str | Path, columns=("steps", "images")) -> dict:
    """Totals over the epochs in ``<run_dir>/metrics.csv`` of ``columns`` (default ``steps`` and
    ``images``; ``seconds`` is the training time): NaN when the file or the column is missing or
    unreadable."""
    path = Path(run_dir) / METRICS_CSV
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = []
    return {c: _total(rows, c) for c in columns}


def steps_differences(runs: Iterable[tuple[str, str, float]]) -> list[str]:
    """Per architecture, the methods whose mean optimizer steps differ from the reference's by more
    than :data:`STEPS_TOLERANCE`: one text per architecture, e.g. ``"naive_augmentation 5.00×,
    per_corruption[noise] 2.00× the optimizer steps of plain (resnet18)"``.

    ``runs`` yields (label, arch, steps); runs with unknown steps (NaN) are left out. The reference
    is plain training of the architecture, else the method with the fewest steps.
    """
    by_arch: dict[str, dict[str, list[float]]] = {}
    for label, arch, steps in runs:
        if steps is None or not math.isfinite(float(steps)) or float(steps) <= 0:
            continue
        by_arch.setdefault(str(arch), {}).setdefault(str(label), []).append(float(steps))
    out = []
    for arch in sorted(by_arch):
        mean = {lab: sum(v) / len(v) for lab, v in by_arch[arch].items()}
        if len(mean) < 2:
            continue
        ref = PLAIN if PLAIN in mean else min(mean, key=lambda lab: (mean[lab], lab))
        differ = [
            (lab, mean[lab] / mean[ref])
            for lab in sorted(mean)
            if lab != ref
            and abs(mean[lab] / mean[ref] - 1) > STEPS_TOLERANCE + 1e-9  # 10 % apart is not more
        ]
        if differ:
            shown = ", ".join(f"{lab} {r:.2f}×" for lab, r in differ)
            out.append(f"{shown} the optimizer steps of {ref} ({arch})")
    return out
