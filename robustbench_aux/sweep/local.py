"""Local executor: jobs as subprocesses, ``per_gpu`` at once on each GPU (or ``workers`` on the CPU).

Packing (``per_gpu`` K > 1) runs K jobs concurrently on each GPU, through CUDA MPS when its control
daemon can be started (:mod:`.mps`), else as plain concurrent processes; which one is printed. Each
job is its own process with its own seed-determined random stream, so a packed run computes what it
would compute alone (tested on the CPU: same metrics, weights and evaluation results).

A failed job does not stop the others; finished jobs are skipped, so re-running a sweep redoes only
what is not done. The status of every job is printed as a table at the start and the end, and a
one-line tally whenever a job changes state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from robustbench_aux.errors import UserError
from robustbench_aux.sweep.grid import Job
from robustbench_aux.sweep.job import job_state, last_error_line, run_job
from robustbench_aux.sweep.mps import start_mps


@dataclass
class Outcome:
    job: Job
    state: str  # done | failed | skipped
    seconds: float = 0.0
    detail: str = ""


def status_table(jobs: list[Job], states: dict[str, str]) -> str:
    width = max(len(j.name) for j in jobs)
    lines = [f"{'run':{width}s}  state", f"{'-' * width}  -------"]
    lines += [f"{j.name:{width}s}  {states[j.name]}" for j in jobs]
    return "\n".join(lines)


def local_tally(states: dict[str, str]) -> str:
    """One line counting the local jobs by state: queued | running | done | failed."""
    counts = {s: 0 for s in ("queued", "running", "done", "failed")}
    for s in states.values():
        counts[s if s in counts else "queued"] += 1
    return " | ".join(f"{k} {v}" for k, v in counts.items())


def run_local(
    jobs: list[Job],
    *,
    workers: int = 1,
    gpus: list[int] | None = None,
    per_gpu: int = 1,
    mps: str = "auto",
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run every unfinished job; returns one :class:`Outcome` per job (in grid order).

    With ``gpus``: ``per_gpu`` jobs at once on each (``CUDA_VISIBLE_DEVICES`` set per job; slots
    are filled GPU by GPU round robin). Without: ``max(workers, per_gpu)`` jobs at once on the CPU.
    ``mps``: ``auto`` tries CUDA MPS when packing GPUs, ``off`` never does.
    """
    if per_gpu < 1 or workers < 1:
        raise UserError(f"--per-gpu and --workers must be at least 1 (got {per_gpu}, {workers})")
    if mps not in ("auto", "off"):
        raise UserError(f"--mps must be auto or off, got {mps!r}")
    slots = [str(g) for _ in range(per_gpu) for g in gpus] if gpus else [None] * max(workers, per_gpu)
    free = list(slots)
    todo = sum(job_state(j) != "done" for j in jobs)
    daemon, packing = None, ""
    if gpus and per_gpu > 1 and todo > 1:
        if mps == "auto":
            daemon, why = start_mps()
            packing = "CUDA MPS" if daemon else f"plain concurrent processes (no MPS: {why})"
        else:
            packing = "plain concurrent processes (--mps off)"
        echo(f"packing: {per_gpu} runs per GPU on GPU(s) {','.join(map(str, gpus))} via {packing}")
    elif not gpus and len(slots) > 1:
        packing = "concurrent CPU processes"
        echo(f"packing: {len(slots)} concurrent runs on the CPU")
    try:
        return _run_slots(jobs, slots, free, daemon.env if daemon else {}, packing, echo)
    finally:
        if daemon is not None:
            daemon.stop()


def _run_slots(jobs, slots, free, extra_env, packing, echo) -> list[Outcome]:
    lock = threading.Lock()
    states = {j.name: ("done" if job_state(j) == "done" else "queued") for j in jobs}
    echo(status_table(jobs, states))

    def work(job: Job) -> Outcome:
        if states[job.name] == "done":
            return Outcome(job, "skipped")
        with lock:
            slot = free.pop(0)
            states[job.name] = "running"
            echo(f"start {job.name}{f' on GPU {slot}' if slot is not None else ''}  [{local_tally(states)}]")
        env = {**extra_env, **({"CUDA_VISIBLE_DEVICES": slot} if slot is not None else {})}
        note = f"packed: {packing}" + (f", GPU {slot}" if slot is not None else "") if packing else ""
        t0 = time.monotonic()
        try:
            rc = run_job(job, env=env, echo=echo, note=note)
        except Exception as exc:  # a broken job must not take the sweep down
            rc, err = 1, f"{type(exc).__name__}: {exc}"
        else:
            err = "" if rc == 0 else last_error_line(job)
        seconds = time.monotonic() - t0
        with lock:
            free.append(slot)
            states[job.name] = "done" if rc == 0 else "failed"
            echo(
                f"{states[job.name]:6s} {job.name} ({seconds:.0f} s)  [{local_tally(states)}]"
                + (f"  {err}" if err else "")
            )
        return Outcome(job, "done" if rc == 0 else "failed", seconds, err)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        outcomes = list(pool.map(work, jobs))
    echo(status_table(jobs, states))
    return outcomes
