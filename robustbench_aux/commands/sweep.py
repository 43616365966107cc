"""``robustbench-aux sweep <grid.toml>``: train and evaluate a grid of runs, locally or on Slurm.

Finished runs are skipped and interrupted ones resumed, so the same command can be re-run at will.
"""

from __future__ import annotations

import argparse
import sys

from robustbench_aux.errors import UserError, comma_list
from robustbench_aux.infra.shipped import resolve_grid
from robustbench_aux.rundir import RunDir
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.slurm_options import parse_folder


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


def add_slurm_options(p: argparse.ArgumentParser) -> None:
    """What each Slurm task asks for; every one replaces the grid's [slurm] value (docs/reproduction.md)."""
    g = p.add_argument_group("slurm executor (each flag replaces the grid's [slurm] value)")
    g.add_argument("--slurm-folder", default="runs/slurm", help="submitit's folder: job scripts, task logs")
    g.add_argument("--slurm-partition", help="partition (several: comma-separated)")
    g.add_argument("--slurm-time", help="time limit per task: minutes or [D-]HH:MM[:SS] (default 1440)")
    g.add_argument("--slurm-gpus", help="GPUs per task (default 1; 0 requests none)")
    g.add_argument("--slurm-cpus", help="CPUs per task (default: the cluster's)")
    g.add_argument("--slurm-mem", help="memory per task, e.g. 32G (default: the cluster's)")
    g.add_argument(
        "--slurm-array-parallelism", metavar="N", help="at most N tasks of the array at once (default: all)"
    )
    g.add_argument(
        "--slurm-extra",
        action="append",
        metavar="NAME=VALUE",
        help="a further sbatch flag, e.g. account=proj or --qos=high (repeatable)",
    )
    g.add_argument(
        "--wait",
        action="store_true",
        help="follow the submitted tasks until all have ended, then summarise (exit 1 if any failed)",
    )
    g.add_argument(
        "--poll", type=float, default=15.0, metavar="S", help="with --wait: seconds between queue checks"
    )


def slurm_flags(args: argparse.Namespace) -> dict:
    """The --slurm-* flags given, as [slurm] grid keys."""
    keys = ("partition", "time", "gpus", "cpus", "mem", "array_parallelism", "extra")
    return {k: getattr(args, f"slurm_{k}", None) for k in keys}


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
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the commands without running them (with --executor slurm: also the job script)",
    )
    add_slurm_options(p)
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
    options = sweep.slurm.updated(slurm_flags(args))
    if args.poll <= 0:
        raise UserError(f"--poll must be a positive number of seconds, got {args.poll}")
    print(f"{len(sweep.jobs)} run(s) in {args.grid}")
    if args.executor != "local":  # its log paths land in the job script's #SBATCH lines
        args.slurm_folder = parse_folder(args.slurm_folder)
    if args.dry_run:
        print_commands(sweep.jobs)
        if args.executor == "slurm":
            print_job_script(sweep.jobs, options, args.slurm_folder)
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
        return summarise(outcomes)
    return run_submitit(sweep.jobs, options, args)


def print_commands(jobs) -> None:
    """Every step's command, shell-quoted as the run passes it (with ``--resume`` where it would
    resume), so a pasted line is the same argv."""
    from robustbench_aux.sweep.job import shown, step_argv

    for job in jobs:
        for step in job.steps:
            print(shown(step_argv(step)))


def summarise(outcomes, logs: dict | None = None) -> int:
    """The summary line and one line per failed run (with its log); 1 if any failed."""
    failed = [o for o in outcomes if o.state == "failed"]
    print(f"summary: {len(outcomes) - len(failed)} done, {len(failed)} failed")
    for o in failed:
        where = f"log: {RunDir(o.job.run_dir).sweep_log}"
        if logs and o.job.name in logs:
            where += f"; slurm log: {logs[o.job.name]}"
        print(f"  failed: {o.job.name}: {o.detail}  ({where})", file=sys.stderr)
    return 1 if failed else 0


def print_job_script(jobs, options, folder) -> None:
    from robustbench_aux.sweep.job import job_state
    from robustbench_aux.sweep.slurm import job_script

    todo = [j for j in jobs if job_state(j) != "done"]
    if not todo:
        print("# every run is finished: nothing would be submitted")
        return
    print(f"# the sbatch job script for the {len(todo)} unfinished run(s):")
    for i, job in enumerate(todo):
        print(f"#   task {i}: {job.name}" if len(todo) > 1 else f"#   the one task: {job.name}")
    print(job_script(options, folder, len(todo)), end="")


def run_submitit(jobs, options, args) -> int:
    """Submit the unfinished runs (not those still queued or running) as one array."""
    from robustbench_aux.sweep.job import job_state
    from robustbench_aux.sweep.slurm import check_cluster, in_flight, make_executor, record, submit

    on_slurm = args.executor == "slurm"
    if on_slurm:
        check_cluster(options)
    done = [j.name for j in jobs if job_state(j) == "done"]
    queued = in_flight([j for j in jobs if j.name not in done]) if on_slurm else {}
    if done:
        print(f"skipping {len(done)} finished run(s): {', '.join(done)}")
    for name, sid in queued.items():
        print(f"skipping {name}: still in the queue as Slurm job {sid}")
    todo = [j for j in jobs if j.name not in done and j.name not in queued]
    if not todo:
        print("nothing to submit")
        return 0
    executor = make_executor(args.slurm_folder, options, local=not on_slurm)
    handles = submit(todo, executor)
    print(f"submitted {len(handles)} task(s): {', '.join(str(h.job_id) for h in handles)}")
    logs = {}
    for job, handle in zip(todo, handles):
        logs[job.name] = handle.paths.stderr
        if on_slurm:
            record(job, handle)
            print(f"  {handle.job_id}  {job.name}  (task log: {handle.paths.stderr})")
    if not on_slurm:
        errors = 0
        for h in handles:
            try:
                print(f"done: {h.result()}")
            except Exception as exc:  # report every failed task, then fail
                errors += 1
                print(f"failed: {str(exc).splitlines()[-1] if str(exc) else exc}", file=sys.stderr)
        return 1 if errors else 0
    if not args.wait:
        print("not waiting: --wait follows the tasks; re-running this command skips finished runs")
        return 0
    from robustbench_aux.sweep.slurm_status import Task, follow

    outcomes = follow([Task(j, h) for j, h in zip(todo, handles)], poll_s=args.poll)
    return summarise(outcomes, logs)
