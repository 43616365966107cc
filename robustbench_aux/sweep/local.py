"""Local executor: jobs as subprocesses, one per visible GPU (or ``workers`` on the CPU).

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

from robustbench_aux.sweep.grid import Job
from robustbench_aux.sweep.job import job_state, last_error_line, run_job


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


def tally(states: dict[str, str]) -> str:
    counts = {s: 0 for s in ("queued", "running", "done", "failed")}
    for s in states.values():
        counts[s if s in counts else "queued"] += 1
    return " | ".join(f"{k} {v}" for k, v in counts.items())


def run_local(
    jobs: list[Job], *, workers: int = 1, gpus: list[int] | None = None, echo: Callable[[str], None] = print
) -> list[Outcome]:
    """Run every unfinished job; returns one :class:`Outcome` per job (in grid order)."""
    slots = [str(g) for g in gpus] if gpus else [None] * max(1, workers)
    free = list(slots)
    lock = threading.Lock()
    states = {j.name: ("done" if job_state(j) == "done" else "queued") for j in jobs}
    echo(status_table(jobs, states))

    def work(job: Job) -> Outcome:
        if states[job.name] == "done":
            return Outcome(job, "skipped")
        with lock:
            slot = free.pop(0)
            states[job.name] = "running"
            echo(f"start {job.name}{f' on GPU {slot}' if slot is not None else ''}  [{tally(states)}]")
        env = {"CUDA_VISIBLE_DEVICES": slot} if slot is not None else {}
        t0 = time.monotonic()
        try:
            rc = run_job(job, env=env, echo=echo)
        except Exception as exc:  # a broken job must not take the sweep down
            rc, err = 1, f"{type(exc).__name__}: {exc}"
        else:
            err = "" if rc == 0 else last_error_line(job)
        seconds = time.monotonic() - t0
        with lock:
            free.append(slot)
            states[job.name] = "done" if rc == 0 else "failed"
            echo(f"{states[job.name]:6s} {job.name} ({seconds:.0f} s)  [{tally(states)}]" + (f"  {err}" if err else ""))
        return Outcome(job, "done" if rc == 0 else "failed", seconds, err)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        outcomes = list(pool.map(work, jobs))
    echo(status_table(jobs, states))
    return outcomes
