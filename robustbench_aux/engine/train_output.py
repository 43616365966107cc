"""The trainer's output directory (--out): the checks before a run starts or resumes there, and the
writes of its config.json and metrics.csv (file names: robustbench_aux.rundir)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from robustbench_aux import rundir
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.rundir import LOCK_FILE, SWEEP_LOG, RunDir

# config keys that must match for --resume to continue a run
IDENTITY_KEYS = ("method", "arch", "dataset", "seed", "train", "model", "options")
# train settings that change speed or logging only: a resume may change them (e.g. on another device)
SPEED_ONLY_TRAIN_KEYS = (
    "log_every",
    "compile",
    "amp",
    "tf32",
    "channels_last",
    "sbn_passes",
    "compile_mode",
    "optimizer_impl",
    "finite_check",
)


def write_config(out: Path, config: dict) -> None:
    """Write the resolved run config as ``config.json`` (atomically)."""
    atomic.write_json(RunDir(out).config, config)


# the fix a damaged config.json's error names: the trainer would overwrite or resume it
DAMAGED_FIX = "the run directory is damaged, use a new --out"


# files a directory may hold before `train` makes it a run (sweep writes its log first)
PRE_RUN_FILES = (SWEEP_LOG, LOCK_FILE)


def is_run_config(config: dict) -> bool:
    """True if ``config`` is a training run's config.json (it names the run's identity: method,
    arch, dataset, seed and the train/model/options settings)."""
    return all(k in config for k in IDENTITY_KEYS) and all(
        isinstance(config[k], dict) for k in ("train", "model", "options")
    )


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that is a file, a non-empty directory that is not a run directory, or a
    directory whose ``config.json`` is not a training run's (``train`` would overwrite its
    ``config.json``/``metrics.csv``)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory; choose a new --out")
    if not out.is_dir():
        return
    if RunDir(out).config.is_file():
        try:
            foreign = not is_run_config(rundir.read_config(out, fix=DAMAGED_FIX))
        except UserError:  # not JSON, not an object, not UTF-8
            foreign = True
        if foreign:
            raise UserError(
                f"--out {out} holds a config.json that is not a training run's (no method, arch, dataset, "
                "seed and train/model/options settings); choose an empty or new --out"
            )
        return
    others = sorted(
        p.name
        for p in out.iterdir()
        if p.name not in PRE_RUN_FILES and not (p.name.startswith(".") and p.name.endswith(".tmp"))
    )
    if others:
        raise UserError(
            f"--out {out} is a non-empty directory that is not a run directory (it holds "
            f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''} and no config.json); "
            "choose an empty or new --out"
        )


def check_resumable(out: Path, config: dict, action: str = "--resume") -> None:
    """A UserError naming the first differing setting if ``out`` holds a different run."""
    old = rundir.read_config(out, fix=DAMAGED_FIX)
    for key in IDENTITY_KEYS:
        before, now = old.get(key), config[key]
        if key == "train" and isinstance(before, dict):
            before = {k: v for k, v in before.items() if k not in SPEED_ONLY_TRAIN_KEYS}
            now = {k: v for k, v in now.items() if k not in SPEED_ONLY_TRAIN_KEYS}
        if key in old and _jsonable(before) != _jsonable(now):
            raise UserError(
                f"{action}: {out} was trained with a different {key!r} "
                f"({before!r} vs now {now!r}); "
                f"{'resume with the same settings' if action == '--resume' else 'use the same settings'} "
                "or choose a new --out"
            )


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def write_metrics(out: Path, rows: list[dict]) -> None:
    """Rewrite ``metrics.csv`` atomically from all epoch rows so far (so it always matches last.pt)."""
    if not rows:
        return
    columns = list(rows[0])
    for row in rows[1:]:
        columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})  # floats as repr: exact round trip
    atomic.write_text(RunDir(out).metrics, buf.getvalue())
