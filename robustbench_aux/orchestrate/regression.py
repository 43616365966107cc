"""CI regression checks: small fixed CPU runs whose metrics must stay near stored values.

The check is defined by ``baselines/ci/check.toml`` (a grid plus the corruption subset and the
tolerances) and its expected values live in ``baselines/ci/expected.json``, written by
``robustbench-aux check --update``. ``run_check`` trains and evaluates the grid (reusing finished
runs in the work directory), then compares every metric with its expected value.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from robustbench_aux.cifar_c_layout import MANIFEST
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.orchestrate.pipeline import corrupt_argv, run_cli
from robustbench_aux.rundir import RunDir
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.local import run_local

CHECK_KEYS = {"dataset", "n_test", "corruptions", "severities", "metrics", "tolerance", "seed"}


@dataclass
class Drift:
    run: str
    metric: str
    expected: float
    got: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return abs(self.got - self.expected) <= self.tolerance


def load_check(spec_path: Path) -> dict:
    try:
        spec = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"check definition {spec_path} does not exist (or is a directory)") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"check definition {spec_path} is not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"check definition {spec_path} is not valid TOML ({exc})") from None
    check = spec.get("check", {})
    if not isinstance(check, dict):
        raise UserError(f"{spec_path}: [check] must be a table")
    unknown = set(check) - CHECK_KEYS
    if unknown:
        raise UserError(f"{spec_path} [check]: unknown key(s) {', '.join(sorted(unknown))}")
    missing = sorted({"dataset", "n_test", "corruptions", "metrics"} - set(check))
    if missing:
        raise UserError(f"{spec_path} [check]: missing key(s) {', '.join(missing)}")
    types = {
        "dataset": str,
        "n_test": int,
        "corruptions": list,
        "metrics": list,
        "tolerance": dict,
        "seed": int,
        "severities": list,
    }
    for key, kind in types.items():
        if key in check and (not isinstance(check[key], kind) or isinstance(check[key], bool)):
            raise UserError(f"{spec_path} [check]: {key} must be a {kind.__name__}, got {check[key]!r}")
    if check["n_test"] < 1:
        raise UserError(f"{spec_path} [check]: n_test must be at least 1, got {check['n_test']}")
    return check


def measure(spec_path: Path, data: Path, work: Path, echo=print) -> dict[str, dict[str, float]]:
    """Run the check's grid in ``work`` and return {run name: {metric: value}}."""
    check = load_check(spec_path)
    cdir = work / "cifar-c"
    if not (cdir / MANIFEST).is_file():
        argv = corrupt_argv(
            check["dataset"],
            data,
            cdir,
            seed=check.get("seed", 0),
            n=check["n_test"],
            corruptions=check["corruptions"],
            severities=check.get("severities"),
        )
        run_cli(argv, echo)
    overrides = {
        "dataset": check["dataset"],
        "data": str(data),
        "out": str(work / "runs"),
        "corruptions": str(cdir),
        "eval_n": check["n_test"],
        "device": "cpu",
    }
    sweep = load_sweep(spec_path.parent / "grid.toml", overrides=overrides)
    outcomes = run_local(sweep.jobs, echo=echo)
    failed = [o.job.name for o in outcomes if o.state == "failed"]
    if failed:
        raise UserError(f"check runs failed: {', '.join(failed)} (logs: {work / 'runs'}/<run>/sweep.log)")
    results = {}
    for job in sweep.jobs:
        summary = json.loads((RunDir(job.run_dir).summary).read_text())
        results[job.name] = {m: float(summary[m]) for m in check["metrics"]}
    return results


def drift_rows(expected: dict, got: dict, tolerance: dict) -> list[Drift]:
    """One :class:`Drift` row per expected (run, metric): the measured value against the expected one
    and its tolerance (``tolerance[metric]``, else ``tolerance["default"]``)."""
    rows = []
    for run, metrics in expected.items():
        if run not in got:
            raise UserError(f"expected run {run!r} was not produced by the check grid; re-run with --update")
        for metric, value in metrics.items():
            rows.append(
                Drift(
                    run, metric, value, got[run][metric], float(tolerance.get(metric, tolerance["default"]))
                )
            )
    return rows


def table(rows: list[Drift]) -> str:
    width = max(len(r.run) for r in rows)
    lines = [
        f"{'run':{width}s}  {'metric':12s} {'expected':>9s} {'got':>9s} {'diff':>8s} {'tol':>6s}  status"
    ]
    for r in rows:
        lines.append(
            f"{r.run:{width}s}  {r.metric:12s} {r.expected:9.4f} {r.got:9.4f} {r.got - r.expected:+8.4f} "
            f"{r.tolerance:6.3f}  {'ok' if r.ok else 'DRIFTED'}"
        )
    return "\n".join(lines)


def run_check(spec_path: Path, data: Path, work: Path, *, update: bool = False, echo=print) -> int:
    """Measure and compare (or, with ``update``, store the measurement as the new expectation)."""
    check = load_check(spec_path)
    got = measure(spec_path, data, work, echo)
    expected_path = spec_path.parent / "expected.json"
    if update:
        atomic.write_json(
            expected_path,
            {
                "regenerate": f"robustbench-aux check --data <dir holding {check['dataset']}/> --update",
                "runs": got,
            },
        )
        echo(f"wrote {expected_path}")
        return 0
    if not expected_path.is_file():
        raise UserError(f"{expected_path} does not exist; create it with `robustbench-aux check --update`")
    rows = drift_rows(json.loads(expected_path.read_text())["runs"], got, check["tolerance"])
    echo(table(rows))
    drifted = [r for r in rows if not r.ok]
    echo(f"metrics within tolerance: {len(rows) - len(drifted)} passed, {len(drifted)} failed")
    return 1 if drifted else 0
