"""``robustbench-aux export-evidence``: a run's evidence folder, to commit beside its report.

For each finished, evaluated run: ``config.json``, ``metrics.csv``, ``eval/results.csv``,
``eval/summary.json``, the per-image results of every block bit-packed in ``eval/per_image.npz``,
and ``evidence.json`` (each file's sha256), into ``OUT/<run id>/``; never a checkpoint.
``report OUT/*`` then renders from these folders alone, and ``reproduce`` reuses them instead of
training and evaluating the runs again (docs/reproduction.md).

Example::

    robustbench-aux export-evidence runs/cifar10-bf16 -o reports/cpu-cifar10/evidence
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export-evidence",
        help="write each evaluated run's evidence folder (no checkpoint) for a committed report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories (with eval/results.csv), or folders holding them")
    p.add_argument("-o", "--out", required=True, help="evidence directory, e.g. reports/<name>/evidence")
    p.add_argument(
        "--extras",
        default="",
        help="float per-image quantities of the evaluation store to pack too (comma-separated, or "
        "'all'; default none: each adds about 2.5 MB per run at full size)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robustbench_aux.errors import comma_list
    from robustbench_aux.evaluation import evidence
    from robustbench_aux.infra.paths import component, inside
    from robustbench_aux.report.runs import expand_run_paths
    from robustbench_aux.rundir import read_config

    out = Path(args.out)
    extras = None if args.extras == "all" else comma_list(args.extras)
    for run_dir in expand_run_paths(args.runs):
        run_id = read_config(run_dir).get("run_id") or run_dir.name
        folder = inside(out, component(str(run_id), f"{run_dir}: config run_id"))
        evidence.export(run_dir, folder, extras)
        print(f"wrote {folder} ({evidence.folder_bytes(folder) / 1e3:.0f} kB)")
    return 0
