"""Running one job: its steps in order, each as a ``robustbench-aux`` subprocess.

A step whose ``done`` file exists is skipped; a step whose ``resume_if`` file exists gets
``--resume``. So re-running a job after a kill, a failure or a Slurm preemption continues it.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable

from robustbench_aux.rundir import RunDir
from robustbench_aux.sweep.grid import Job

log = logging.getLogger(__name__)


def command_line(argv: list[str]) -> list[str]:
    """The full command of one step: this Python running the package's CLI."""
    return [sys.executable, "-m", "robustbench_aux", *argv]


def shown(argv: list[str]) -> str:
    """``robustbench-aux ARGV`` shell-quoted: pasted into a shell it is the very argv the run passes."""
    return shlex.join(["robustbench-aux", *argv])


def step_argv(step) -> list[str]:
    """The arguments a step runs with now: its argv, plus ``--resume`` once its ``resume_if`` exists."""
    argv = list(step.argv)
    if step.resume_if is not None and step.resume_if.exists():
        argv.append("--resume")
    return argv


WARNING_SIGNALS = tuple(getattr(signal, n) for n in ("SIGUSR1", "SIGUSR2") if hasattr(signal, n))


def _ignore(signals) -> Callable[[], None]:
    """A ``preexec_fn``: the step's process ignores ``signals``."""

    def preexec() -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)

    return preexec


def job_state(job: Job) -> str:
    """``done`` when every step is finished, ``partial`` when a run was started, else ``queued``."""
    if all(step.done.exists() for step in job.steps):
        return "done"
    if any(step.done.exists() or (step.resume_if and step.resume_if.exists()) for step in job.steps):
        return "partial"
    return "queued"


def run_job(job: Job, *, env: dict | None = None, echo=print, note: str = "") -> int:
    """Run the job's unfinished steps; returns the first non-zero exit code, or 0.

    The output of every step is appended to ``<run_dir>/sweep.log``; ``echo`` receives each command
    line before it runs (so a sweep prints every command it runs, ready to paste). ``note`` (how
    the job shares its device, when packed; where a Slurm task runs) goes into the log as a ``#``
    line before each command.

    A step's process ignores SIGUSR1/SIGUSR2, Slurm's warning signals before preemption or timeout:
    they are for the submitit task above, which checkpoints and requeues the job; the training keeps
    going (and writing last.pt) until the job is stopped.
    """
    job.run_dir.mkdir(parents=True, exist_ok=True)
    logfile = RunDir(job.run_dir).sweep_log
    for step in job.steps:
        if step.done.exists():
            continue
        argv = step_argv(step)
        cmd = command_line(argv)
        echo(f"[{job.name}] {shown(argv)}")
        with open(logfile, "a") as out:
            if note:
                out.write(f"# {note}\n")
            out.write(f"$ {shlex.join(cmd)}\n")
            out.flush()
            rc = subprocess.call(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                preexec_fn=_ignore(WARNING_SIGNALS) if os.name == "posix" else None,
            )
        if rc != 0:
            log.warning("%s: step failed with exit code %d (log: %s)", job.name, rc, logfile)
            return rc
        if not step.done.exists():
            log.warning("%s: step exited 0 but did not write %s", job.name, step.done)
            return 1
    return 0


def last_error_line(job: Job) -> str:
    """The last line of the job's log that looks like an error, for the failure summary."""
    logfile = RunDir(job.run_dir).sweep_log
    if not logfile.is_file():
        return ""
    lines = [ln.strip() for ln in logfile.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln]
    return (errors or lines or [""])[-1][:200]
