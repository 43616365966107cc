"""Slurm executor through submitit (``pip install robustbench-aux[slurm]``).

Each job becomes one task of a job array. The task is :class:`ResumableJob`, a submitit
``Checkpointable``: on preemption or timeout submitit requeues it, and the requeued task re-runs the
job, which skips finished steps and resumes training from ``last.pt``.
"""

from __future__ import annotations

from pathlib import Path

from robustbench_aux.errors import UserError
from robustbench_aux.sweep.grid import Job
from robustbench_aux.sweep.job import run_job


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UserError("the slurm executor needs submitit: pip install 'robustbench-aux[slurm]'") from None
    return submitit


class ResumableJob:
    """Callable run on the cluster node; requeued (and thereby resumed) on preemption."""

    def __init__(self, job: Job):
        self.job = job

    def __call__(self) -> str:
        rc = run_job(self.job)
        if rc != 0:
            raise RuntimeError(
                f"{self.job.name} failed with exit code {rc}; see {self.job.run_dir / 'sweep.log'}"
            )
        return self.job.name

    def checkpoint(self, *args, **kwargs):
        """Called by submitit before requeueing: resubmit the same job (it resumes from last.pt)."""
        submitit = _submitit()
        return submitit.helpers.DelayedSubmission(ResumableJob(self.job))


def make_executor(folder: str | Path, *, local: bool = False, **slurm_params):
    """A submitit executor: Slurm by default, or submitit's local executor (used by the tests)."""
    submitit = _submitit()
    if local:
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=slurm_params.get("timeout_min", 60))
        return executor
    executor = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
    executor.update_parameters(**slurm_params)
    return executor


def submit(jobs: list[Job], executor) -> list:
    """Submit the jobs as one array; returns submitit job handles (``.result()`` waits for one)."""
    with executor.batch():
        handles = [executor.submit(ResumableJob(job)) for job in jobs]
    return handles
