"""The record of ``reproduce`` invocations, written beside their report as ``reproduction.json``.

It says what produced the page: the command as typed, the grid file (path, SHA-256 and its text),
the code version of the report and of every run, the machine, the wall time of each stage of this
invocation, and per run the training and evaluation time read from the run directory. A rerun that
skips finished runs records near-zero stage times; the per-run times are those of the runs' own
processes and survive such reruns, so the record always holds the cost of the runs it reports.

Its ``invocations`` list holds every invocation that wrote to this report directory, the interrupted
ones too: each is added with ``state = "running"`` when it starts and gets its end state (``finished``,
``trained`` for ``--stop-after train``, ``failed: <reason>``) when it ends; one killed on the way keeps
``running`` with no ``finished`` time, which the report shows as interrupted.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
from pathlib import Path

from robustbench_aux.infra import atomic
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.jsonio import read_json_object
from robustbench_aux.infra.versioning import code_version
from robustbench_aux.report.compute import training_compute
from robustbench_aux.rundir import RunDir
from robustbench_aux.runinfo import run_info

RECORD_NAME = "reproduction.json"
FORMAT = "robustbench-aux reproduction record 1"


def _number(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 3)


def run_record(run_dir: str | Path) -> dict:
    """One run's identity and cost: recipe, epochs, training images, deviations, code version,
    training seconds and images per second (over its epochs in ``metrics.csv``) and the seconds of
    its evaluation (``eval/summary.json``: the evaluating process's own time)."""
    rd = RunDir(Path(run_dir))
    config = read_json_object(rd.config, "rerun the training", missing_ok=True)
    summary = read_json_object(rd.summary, "rerun the evaluation", missing_ok=True)
    train = training_compute(rd.path, ("steps", "images", "seconds"))
    timing = summary.get("timing") or {}
    seconds = train["seconds"]
    info = run_info(config)
    return {
        "run_id": info.run_id if config.get("run_id") else rd.path.name,
        "code_version": info.code_version,
        "recipe": info.recipe,
        "epochs": info.epochs,
        "n_train": info.n_train,
        "deviations": [dict(d) for d in info.deviations],
        "train_seconds": _number(seconds),
        "train_images_per_s": _number(train["images"] / seconds) if seconds and seconds > 0 else None,
        "eval_seconds": _number(timing.get("seconds")),
        "eval_code_version": (summary.get("provenance") or {}).get("code_version"),
    }


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def grid_record(grid: Path) -> dict:
    return {"path": str(grid), "sha256": sha256_file(grid), "text": grid.read_text(encoding="utf-8")}


def _read_record(report_dir: Path) -> dict:
    path = Path(report_dir) / RECORD_NAME
    return read_json_object(path, f"remove {path} or choose another --report", missing_ok=True)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def start_invocation(report_dir: str | Path, *, command: str, grid: Path, started: _dt.datetime) -> int:
    """Add this invocation (state ``running``) to the record's ``invocations``; returns its index."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    record = _read_record(report_dir)
    invocations = list(record.get("invocations") or [])
    invocations.append(
        {
            "command": command,
            "grid_sha256": sha256_file(grid),
            "code_version": code_version(),
            "machine": machine(),
            "started": started.isoformat(timespec="seconds"),
            "state": "running",
        }
    )
    record = {"format": FORMAT, **record, "invocations": invocations}
    atomic.write_json(report_dir / RECORD_NAME, record)
    return len(invocations) - 1


def end_invocation(report_dir: str | Path, index: int, *, state: str, stages: dict[str, float]) -> None:
    """Give invocation ``index`` its end ``state``, end time and stage times."""
    record = _read_record(Path(report_dir))
    invocations = list(record.get("invocations") or [])
    if not 0 <= index < len(invocations):
        return  # the record was replaced meanwhile; nothing of ours to close
    invocations[index] = {
        **invocations[index],
        "state": state.splitlines()[0][:300] if state else "failed",
        "finished": _now(),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
    }
    atomic.write_json(Path(report_dir) / RECORD_NAME, {**record, "invocations": invocations})


def write_record(
    report_dir: str | Path,
    *,
    command: str,
    grid: Path,
    started: _dt.datetime,
    stages: dict[str, float],
    run_dirs: list[str | Path],
) -> Path:
    """Write ``<report_dir>/reproduction.json`` (atomically) and return its path; the invocations
    recorded so far are kept."""
    previous = _read_record(Path(report_dir))
    record = {
        "format": FORMAT,
        "command": command,
        "grid": grid_record(Path(grid)),
        "code_version": code_version(),
        "machine": machine(),
        "started": started.isoformat(timespec="seconds"),
        "finished": _now(),
        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
        "runs": [run_record(d) for d in run_dirs],
        "invocations": list(previous.get("invocations") or []),
    }
    return atomic.write_json(Path(report_dir) / RECORD_NAME, record)


def produced_by(command: str, grid: Path) -> str:
    """The provenance line of the page: the command and the grid's checksum."""
    return (
        f"{command} (grid {Path(grid).name}, sha256 {sha256_file(grid)[:12]}; {RECORD_NAME} beside this page)"
    )
