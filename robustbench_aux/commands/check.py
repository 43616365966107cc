"""``robustbench-aux check``: small fixed CPU runs compared with stored expected metrics (CI).

Trains and evaluates the grid of ``baselines/ci/`` on a subset of real CIFAR-10 with a generated
CIFAR-10-C subset, then prints a table of every metric against ``baselines/ci/expected.json`` and
fails if any drifted beyond its tolerance. ``--update`` stores the new values instead.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from robustbench_aux.datasets import resolve_data_root
from robustbench_aux.errors import UserError
from robustbench_aux.infra.shipped import CI_SPEC
from robustbench_aux.orchestrate.regression import run_check

DEFAULT_SPEC = CI_SPEC  # shipped inside the package: works from an installed wheel


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="CI regression check on small fixed runs", description=__doc__)
    p.add_argument(
        "--spec",
        default=str(DEFAULT_SPEC),
        help="check definition (default: the shipped baselines/ci/check.toml)",
    )
    p.add_argument("--data", help="data root holding cifar10/ (default: $ROBUSTBENCH_AUX_DATA, then ./data)")
    p.add_argument("--work", help="work directory for the runs (default: a temporary directory)")
    p.add_argument("--update", action="store_true", help="store the measured metrics as the expected values")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = resolve_data_root(args.data)
    spec_dir = Path(args.spec).parent
    if args.update and not os.access(spec_dir, os.W_OK):
        raise UserError(
            f"--update writes {spec_dir / 'expected.json'}, which is not writable (an installed package?); "
            "copy the check folder elsewhere and pass --spec <copy>/check.toml"
        )
    if args.work:
        return run_check(Path(args.spec), data, Path(args.work), update=args.update)
    with tempfile.TemporaryDirectory(prefix="robustbench-aux-check-") as tmp:
        return run_check(Path(args.spec), data, Path(tmp), update=args.update)
