"""Following a submitted array until every task has ended (``sweep --executor slurm --wait``).

A task's outcome is the result file submitit writes when the task's function returns or raises
(``<folder>/<job id>_result.pkl``): done, or failed with the run's last error line. A requeued task
writes none until its last attempt ends, so a preempted run is followed through its requeue. What
Slurm says about a task comes from ``squeue`` (it works on every cluster, with or without an
accounting database; ``sacct``, which submitit would ask, needs one): pending, running, or gone /
ended; a failed ``squeue`` call changes nothing (it is asked again at the next poll). A task that Slurm reports ended (or no longer lists) for ``GRACE_S`` seconds without a result
file was stopped from outside (cancelled, out of memory, node failure, time limit without requeue)
and is failed with Slurm's state as the reason.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from robustbench_aux.sweep.grid import Job
from robustbench_aux.sweep.job import last_error_line
from robustbench_aux.sweep.local import Outcome

GRACE_S = 30.0
# Slurm job states in which a task has not ended (it may run again)
ACTIVE = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "STOPPED",
    "SIGNALING",
    "STAGE_OUT",
    "RESIZING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "SPECIAL_EXIT",
    "RESV_DEL_HOLD",
}
RUNNING = {"CONFIGURING", "RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"}


@dataclass
class Task:
    """One submitted run: its job, submitit's handle and what is known about it."""

    job: Job
    handle: object  # a submitit Job
    state: str = "pending"  # pending | running | done | failed
    gone_since: float | None = None  # when Slurm first reported it ended without a result
    started: float | None = None
    outcome: Outcome | None = None

    @property
    def slurm_id(self) -> str:
        return str(self.handle.job_id)

    @property
    def slurm_log(self):
        return self.handle.paths.stderr


def queue_states(slurm_ids) -> dict[str, str] | None:
    """``{slurm id: state}`` from ``squeue`` for these jobs (array tasks one by one, as
    ``<array id>_<index>``); None when squeue fails (the controller is briefly unreachable)."""
    ids = sorted({str(i).split("_")[0] for i in slurm_ids})
    try:
        out = subprocess.run(
            ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(ids)}", "--format=%i|%T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue exits 1 with "Invalid job id specified" once every job has left the controller
        return {} if "invalid job id" in out.stderr.lower() else None
    states = {}
    for line in out.stdout.splitlines():
        sid, _, state = line.strip().partition("|")
        if sid:
            states[sid] = state.strip().split()[0] if state.strip() else ""
    return states


def _result(task: Task) -> Outcome | None:
    """The task's outcome from submitit's result file, or None while there is none."""
    if not task.handle.paths.result_pickle.exists():
        return None
    seconds = time.monotonic() - task.started if task.started else 0.0
    try:
        task.handle.result()
    except Exception:  # the task's function raised: the run failed
        return Outcome(task.job, "failed", seconds, last_error_line(task.job) or "the task raised an error")
    return Outcome(task.job, "done", seconds)


def slurm_tally(tasks: list[Task]) -> str:
    """One line counting the array's tasks by state: pending | running | done | failed."""
    counts = {s: 0 for s in ("pending", "running", "done", "failed")}
    for t in tasks:
        counts[t.state] += 1
    return " | ".join(f"{k} {v}" for k, v in counts.items())


def follow(
    tasks: list[Task],
    *,
    poll_s: float = 15.0,
    grace_s: float = GRACE_S,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Outcome]:
    """Poll until every task has ended; print a line whenever one changes state. Returns one
    :class:`Outcome` per task, in the order given."""
    open_tasks = list(tasks)
    while open_tasks:
        states = queue_states(t.slurm_id for t in open_tasks)
        now = clock()
        for task in list(open_tasks) if states is not None else []:  # squeue failed: ask again later
            slurm_state = states.get(task.slurm_id, "")
            active = slurm_state in ACTIVE
            # a result file is final only once Slurm is done with the task (not requeued)
            outcome = None if active else _result(task)
            if active:
                task.gone_since = None
            elif outcome is None:
                task.gone_since = task.gone_since if task.gone_since is not None else now
                if now - task.gone_since >= grace_s:
                    why = f"Slurm state {slurm_state}" if slurm_state else "no longer in the queue"
                    outcome = Outcome(task.job, "failed", 0.0, f"ended without a result ({why})")
            if outcome is not None:
                task.outcome, task.state = outcome, outcome.state
                open_tasks.remove(task)
                detail = f"  {outcome.detail}" if outcome.detail else ""
                echo(
                    f"{outcome.state:7s} {task.job.name} (slurm {task.slurm_id})  [{slurm_tally(tasks)}]{detail}"
                )
            elif active:
                new = "running" if slurm_state in RUNNING else "pending"
                if new != task.state:
                    task.state = new
                    if new == "running" and task.started is None:
                        task.started = now
                    echo(f"{new:7s} {task.job.name} (slurm {task.slurm_id})  [{slurm_tally(tasks)}]")
        if open_tasks:
            sleep(poll_s)
    return [t.outcome for t in tasks]
