"""``robustbench-aux sweep <grid.toml>``: train and evaluate a grid of runs, locally or on Slurm.

Finished runs are skipped and interrupted ones resumed, so the same command can be re-run at will.
"""

from __future__ import annotations

import argparse
import sys

from robustbench_aux.errors import comma_list
from robustbench_aux.shipped import resolve_grid
from robustbench_aux.sweep import load_sweep


def _csv(kind):
    return lambda s: [kind(x) for x in comma_list(s)]


def add_sweep_filters(p: argparse.ArgumentParser) -> None:
    """Options that limit or adjust a grid (shared with the reproduction pipeline)."""
    p.add_argument("--methods", type=_csv(str), help="only these methods (comma-separated)")
    p.add_argument("--archs", type=_csv(str), help="replace every block's architectures (comma-separated)")
    p.add_argument("--seeds", type=_csv(int), help="replace every block's seeds (comma-separated)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs for every run")
    p.add_argument("--dataset", help="override [defaults] dataset")
    p.add_argument("--data", help="override [defaults] data root")
    p.add_argument("--out", help="override [defaults] out (root of the run directories)")
    p.add_argument("--corruptions", help="override [defaults] corruptions (CIFAR-C directory to evaluate on)")
    p.add_argument("--device", help="override [defaults] device")
    p.add_argument("--n-train", type=int, help="train on the first N training images")
    p.add_argument("--eval-n", type=int, help="evaluate on the first N images per corruption block")
    p.add_argument(
        "--threads", type=int, help="override [defaults] threads (CPU threads of each train/evaluate process)"
    )


def add_packing_options(p: argparse.ArgumentParser) -> None:
    """Where local runs go: which GPUs, how many runs at once on each (shared with ``reproduce``)."""
    p.add_argument("--gpus", type=_csv(int), help="GPU ids for the local executor (default: all visible)")
    p.add_argument(
        "--per-gpu",
        type=int,
        default=1,
        metavar="K",
        help="runs at once on each GPU (packing; on the CPU: K runs at once); default 1",
    )
    p.add_argument(
        "--mps",
        choices=("auto", "off"),
        default="auto",
        help="packed GPUs: use CUDA MPS when its daemon starts (auto, default) or never (off)",
    )


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of trainings + evaluations (local or Slurm)", description=__doc__
    )
    p.add_argument(
        "grid",
        help="grid TOML file, or a shipped grid by name: cifar100, demo, cpu_cifar10, augmix_published (baselines/grids/)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "slurm", "submitit-local"),
        default="local",
        help="local subprocesses (default), a Slurm job array, or submitit's local executor",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel jobs on the CPU (local executor)")
    add_packing_options(p)
    p.add_argument("--dry-run", action="store_true", help="print the commands without running them")
    p.add_argument("--slurm-folder", default="runs/slurm", help="submitit log folder")
    p.add_argument("--slurm-partition", help="Slurm partition")
    p.add_argument("--slurm-time", type=int, default=24 * 60, help="minutes per task (default 1440)")
    p.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per task (default 1)")
    add_sweep_filters(p)
    p.set_defaults(func=run)


def overrides_from(args: argparse.Namespace) -> dict:
    keys = ("dataset", "data", "out", "corruptions", "device", "epochs", "n_train", "eval_n", "threads")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def visible_gpus() -> list[int]:
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def run(args: argparse.Namespace) -> int:
    sweep = load_sweep(
        resolve_grid(args.grid),
        overrides=overrides_from(args),
        methods=args.methods,
        archs=args.archs,
        seeds=args.seeds,
    )
    print(f"{len(sweep.jobs)} run(s) in {args.grid}")
    if args.dry_run:
        for job in sweep.jobs:
            for step in job.steps:
                print("robustbench-aux " + " ".join(step.argv))
        return 0
    if args.executor == "local":
        from robustbench_aux.sweep.local import run_local

        outcomes = run_local(
            sweep.jobs,
            workers=args.workers,
            gpus=args.gpus or visible_gpus(),
            per_gpu=args.per_gpu,
            mps=args.mps,
        )
        failed = [o for o in outcomes if o.state == "failed"]
        print(f"summary: {len(outcomes) - len(failed)} done, {len(failed)} failed")
        for o in failed:
            print(
                f"  failed: {o.job.name}: {o.detail}  (log: {o.job.run_dir / 'sweep.log'})", file=sys.stderr
            )
        return 1 if failed else 0
    from robustbench_aux.sweep.slurm import make_executor, submit

    params = {
        "timeout_min": args.slurm_time,
        "gpus_per_node": args.slurm_gpus,
        "slurm_partition": args.slurm_partition,
    }
    executor = make_executor(
        args.slurm_folder,
        local=args.executor == "submitit-local",
        **{k: v for k, v in params.items() if v is not None},
    )
    handles = submit(sweep.jobs, executor)
    print(f"submitted {len(handles)} task(s): {', '.join(str(h.job_id) for h in handles)}")
    if args.executor == "submitit-local":
        errors = 0
        for h in handles:
            try:
                print(f"done: {h.result()}")
            except Exception as exc:  # report every failed task, then fail
                errors += 1
                print(f"failed: {str(exc).splitlines()[-1] if str(exc) else exc}", file=sys.stderr)
        return 1 if errors else 0
    return 0
