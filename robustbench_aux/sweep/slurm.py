"""Slurm executor through submitit (``pip install robustbench-aux[slurm]``).

The unfinished runs of a grid become one job array, one task per run (a single run is one plain
job: submitit submits arrays of two or more). The task is :class:`ResumableJob`, a submitit
``Checkpointable``:

- on SIGUSR2 (Slurm sends it ``SIGNAL_DELAY_S`` before the time limit; ``scancel --signal=USR2``
  sends it by hand) submitit calls :meth:`ResumableJob.checkpoint` and requeues the task with
  ``scontrol requeue``;
- on preemption with ``PreemptMode=REQUEUE``, or ``scontrol requeue`` by hand, Slurm stops the task
  (SIGTERM to every process of the job, SIGKILL KillWait seconds later) and requeues it itself.
  The step (training) stops at the SIGTERM; the task, which submitit keeps alive through it, then
  waits for the SIGKILL (:func:`await_stop`) instead of recording the run as failed.

Either way the requeued task runs the same job again, which skips finished steps and resumes
training from ``last.pt``. :func:`job_script` is the ``sbatch`` script the submission writes, for
``sweep --dry-run``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from robustbench_aux.errors import UserError
from robustbench_aux.rundir import RunDir
from robustbench_aux.sweep.grid import Job
from robustbench_aux.sweep.job import last_error_line, run_job
from robustbench_aux.sweep.slurm_options import SlurmOptions, parse_folder


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UserError("the slurm executor needs submitit: pip install 'robustbench-aux[slurm]'") from None
    return submitit


def task_note() -> str:
    """Where this task runs, for the run's ``sweep.log`` (``slurm job 12_0 on node1, restart 1``)."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return ""
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    name = f"{array}_{task}" if array and task else env["SLURM_JOB_ID"]
    node = env.get("SLURMD_NODENAME") or socket.gethostname()
    return f"slurm job {name} (job id {env['SLURM_JOB_ID']}) on {node}, restart {env.get('SLURM_RESTART_COUNT', '0')}"


STOP_WAIT_S = 300.0  # how long a task whose step Slurm stopped waits to be ended by Slurm


def await_stop(job: Job, wait_s: float) -> None:
    """The step died of SIGTERM: Slurm is ending this job (preemption, requeue, cancel, time limit)
    and sends SIGKILL KillWait seconds after the SIGTERM. Returning now would record a failure for
    a run that is only being requeued, so wait for the SIGKILL; past ``wait_s`` the SIGTERM came
    from elsewhere and the caller reports the run failed."""
    with open(RunDir(job.run_dir).sweep_log, "a") as out:
        out.write("# the step was stopped by SIGTERM: waiting for Slurm to end (or requeue) the task\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


class ResumableJob:
    """Callable run on the cluster node; requeued (and thereby resumed) on preemption."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self) -> str:
        note = task_note()
        rc = run_job(self.job, note=note)
        if rc == -signal.SIGTERM and note:
            await_stop(self.job, STOP_WAIT_S)
        if rc != 0:
            detail = last_error_line(self.job)
            raise RuntimeError(
                f"{self.job.name} failed with exit code {rc}: {detail}; see {RunDir(self.job.run_dir).sweep_log}"
            )
        return self.job.name

    def checkpoint(self, *args, **kwargs):
        """Called by submitit before requeueing: resubmit the same job (it resumes from last.pt)."""
        submitit = _submitit()
        return submitit.helpers.DelayedSubmission(ResumableJob(self.job))


def submit_command(folder: str | Path) -> str:
    """The command each task runs: this Python running submitit's task entry point."""
    return shlex.join([sys.executable, "-u", "-m", "submitit.core._submit", str(folder)])


def job_script(options: SlurmOptions, folder: str | Path, n_tasks: int) -> str:
    """The ``sbatch`` script that submitting ``n_tasks`` runs with ``options`` writes (an array
    for two or more, as submitit submits them)."""
    from submitit.slurm.slurm import _make_sbatch_string

    folder = Path(parse_folder(str(Path(folder).expanduser().absolute())))
    params = options.sbatch_params()
    if n_tasks > 1:
        params["map_count"] = n_tasks
    return _make_sbatch_string(command=submit_command(folder), folder=folder, **params)


def check_cluster(options: SlurmOptions) -> None:
    """What only the cluster can tell, before submitting: Slurm's client is here and every
    partition asked for exists (a one-line UserError otherwise)."""
    for tool in ("sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            raise UserError(
                f"{tool} not found: run the slurm executor where Slurm's client commands are installed "
                "(sweep --dry-run --executor slurm prints the job script without them)"
            )
    if not options.partition:
        return
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--format=%R"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"sinfo could not list the partitions: {exc}") from None
    if out.returncode != 0:
        raise UserError(f"sinfo could not list the partitions: {_last_line(out.stderr or out.stdout)}")
    known = sorted({line.strip() for line in out.stdout.splitlines() if line.strip()})
    for name in options.partition.split(","):
        if name not in known:
            raise UserError(
                f"no partition {name!r} on this cluster (sinfo lists: {', '.join(known) or 'none'})"
            )


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def make_executor(folder: str | Path, options: SlurmOptions | None = None, *, local: bool = False):
    """A submitit executor: Slurm, or submitit's local executor (``local``; used by tests)."""
    submitit = _submitit()
    options = options or SlurmOptions()
    folder = parse_folder(str(folder))
    if local:
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=options.time_min)
        return executor
    executor = submitit.SlurmExecutor(folder=str(folder))
    executor.update_parameters(**options.sbatch_params())
    return executor


def submit(jobs: list[Job], executor) -> list:
    """Submit the jobs as one array; returns submitit job handles in the order of ``jobs``.

    ``sbatch`` refusing the job (a partition the account may not use, more GPUs than a node has)
    is a one-line UserError carrying sbatch's own message.
    """
    submitit = _submitit()
    try:
        with executor.batch():
            handles = [executor.submit(ResumableJob(job)) for job in jobs]
    except subprocess.CalledProcessError as exc:
        raise UserError(
            f"sbatch refused the job: {_last_line(_text(exc.stderr) or _text(exc.output))}"
        ) from None
    except submitit.core.utils.FailedJobError as exc:
        raise UserError(f"sbatch refused the job: {_last_line(str(exc))}") from None
    return handles


SUBMITTED = "# submitted as Slurm job "


def record(job: Job, handle) -> None:
    """Note the submission in the run's ``sweep.log`` (so a later sweep knows it is in the queue)."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(RunDir(job.run_dir).sweep_log, "a") as out:
        out.write(f"{SUBMITTED}{handle.job_id} (task log: {handle.paths.stderr})\n")


def last_submission(job: Job) -> str | None:
    """The Slurm id of the run's latest submission, from its ``sweep.log``."""
    log = RunDir(job.run_dir).sweep_log
    if not log.is_file():
        return None
    ids = [
        line[len(SUBMITTED) :].split()[0]
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith(SUBMITTED) and len(line) > len(SUBMITTED)
    ]
    return ids[-1] if ids else None


def in_flight(jobs: list[Job]) -> dict[str, str]:
    """``{run: slurm id}`` for the runs whose latest submission is still pending or running."""
    from robustbench_aux.sweep.slurm_status import ACTIVE, queue_states

    latest = {job.name: sid for job in jobs if (sid := last_submission(job))}
    if not latest:
        return {}
    states = queue_states(latest.values())
    if states is None:
        raise UserError("squeue failed: cannot tell which runs are still queued; try again")
    return {name: sid for name, sid in latest.items() if states.get(sid) in ACTIVE}


def _text(data) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
