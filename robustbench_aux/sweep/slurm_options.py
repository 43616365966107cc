"""The Slurm options of a sweep, checked before anything is submitted.

They come from the grid's ``[slurm]`` table and the ``--slurm-*`` flags of ``sweep`` (a flag
replaces the grid's value)::

    [slurm]
    partition = "gpu"                  # one partition, or several separated by commas
    time = "1-00:00:00"                # per task: minutes (1440) or Slurm's [D-]HH:MM[:SS], D-HH, MM:SS
    gpus = 1                           # GPUs per task (0: request none)
    cpus = 8                           # CPUs per task
    mem = "32G"                        # memory per task: a number with an optional K, M, G or T (Slurm: MB)
    array_parallelism = 4              # at most this many tasks of the array run at once
    extra = ["account=proj", "qos=high"]   # further sbatch flags, long form, as --name[=value]

:class:`SlurmOptions` turns them into the parameters submitit writes into the job script
(``#SBATCH`` lines). Every value is checked here, so a bad one is a one-line error before
``sbatch`` is called; what only the cluster knows (does the partition exist) is checked against
it by :mod:`.slurm` before submitting.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from robustbench_aux.errors import UserError

DEFAULT_TIME_MIN = 24 * 60
DEFAULT_GPUS = 1
SIGNAL_DELAY_S = 90  # Slurm sends SIGUSR2 this long before the time limit (submitit checkpoints then)
JOB_NAME = "robustbench-aux"  # the array's name in squeue (extra = ["job-name=..."] replaces it)

# grid key -> the flag that sets it (for messages)
FLAGS = {
    "partition": "--slurm-partition",
    "time": "--slurm-time",
    "gpus": "--slurm-gpus",
    "cpus": "--slurm-cpus",
    "mem": "--slurm-mem",
    "array_parallelism": "--slurm-array-parallelism",
    "extra": "--slurm-extra",
}
# sbatch flags the sweep writes itself: given in `extra` they would contradict the job script
RESERVED = {
    "array": "the sweep makes the array",
    "output": "submitit names the log files",
    "error": "submitit names the log files",
    "open-mode": "submitit appends to the log files",
    "signal": "submitit's checkpoint signal",
    "requeue": "tasks are always requeueable",
    "no-requeue": "tasks must be requeueable to resume after preemption",
    "wrap": "the job script is submitit's",
    "partition": "use partition / --slurm-partition",
    "time": "use time / --slurm-time",
    "gpus-per-node": "use gpus / --slurm-gpus",
    "cpus-per-task": "use cpus / --slurm-cpus",
    "mem": "use mem / --slurm-mem",
}

_PARTITION = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")
_MEM = re.compile(r"^(\d+)([KMGT]?)$", re.IGNORECASE)
_FLAG = re.compile(r"^(?:--)?([a-z][a-z0-9-]*)(?:=(.+))?$", re.DOTALL)
_TIMES = (  # Slurm's --time formats -> (days, hours, minutes, seconds) group order
    (re.compile(r"^(\d+)$"), ("m",)),
    (re.compile(r"^(\d+):(\d+)$"), ("m", "s")),
    (re.compile(r"^(\d+):(\d+):(\d+)$"), ("h", "m", "s")),
    (re.compile(r"^(\d+)-(\d+)$"), ("d", "h")),
    (re.compile(r"^(\d+)-(\d+):(\d+)$"), ("d", "h", "m")),
    (re.compile(r"^(\d+)-(\d+):(\d+):(\d+)$"), ("d", "h", "m", "s")),
)
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _where(key: str, source: str) -> str:
    return FLAGS[key] if source == "flag" else f"[slurm] {key}"


def parse_time(value, where: str = "--slurm-time") -> int:
    """A task's time limit in whole minutes (rounded up; at least 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{where} must be minutes or [D-]HH:MM[:SS], got {value!r}")
    text = str(value).strip()
    for pattern, units in _TIMES:
        m = pattern.match(text)
        if m:
            seconds = sum(int(g) * _SECONDS[u] for g, u in zip(m.groups(), units))
            if seconds < 60:
                raise UserError(f"{where} must be at least one minute, got {value!r}")
            return math.ceil(seconds / 60)
    raise UserError(
        f"{where} must be minutes (e.g. 1440) or Slurm's [D-]HH:MM[:SS] (e.g. 1-00:00:00), got {value!r}"
    )


def _count(value, where: str, low: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{where} must be an integer >= {low}, got {value!r}")
    return value


def parse_mem(value, where: str = "--slurm-mem") -> str:
    """Memory per task in Slurm's syntax: a number with an optional K/M/G/T suffix (MB without)."""
    m = (
        _MEM.match(str(value).strip())
        if isinstance(value, (int, str)) and not isinstance(value, bool)
        else None
    )
    if m is None:
        raise UserError(
            f"{where} must be a number of MB or a size like 16G (suffix K, M, G or T), got {value!r}"
        )
    return f"{int(m.group(1))}{m.group(2).upper()}"


def parse_partition(value, where: str = "--slurm-partition") -> str:
    if not isinstance(value, str) or not _PARTITION.match(value):
        raise UserError(f"{where} must be a partition name (or several, comma-separated), got {value!r}")
    return value


def parse_extra(values, where: str = "--slurm-extra") -> tuple[tuple[str, str | None], ...]:
    """Extra sbatch flags, each ``name``, ``name=value``, ``--name`` or ``--name=value``."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise UserError(f'{where} must be a list of sbatch flags like ["account=proj"], got {values!r}')
    flags: dict[str, str | None] = {}
    for raw in values:
        m = _FLAG.match(raw) if isinstance(raw, str) else None
        if m is None or "\n" in raw:
            raise UserError(
                f"{where}: {raw!r} is not a long sbatch flag (give name=value or --name=value, e.g. account=proj)"
            )
        name, value = m.group(1), m.group(2)
        if name in RESERVED:
            raise UserError(f"{where}: --{name} cannot be given here ({RESERVED[name]})")
        if name in flags:
            raise UserError(f"{where}: --{name} is given twice")
        flags[name] = value
    return tuple(flags.items())


@dataclass(frozen=True)
class SlurmOptions:
    """What each task of the array asks Slurm for."""

    partition: str | None = None
    time_min: int = DEFAULT_TIME_MIN
    gpus: int = DEFAULT_GPUS
    cpus: int | None = None
    mem: str | None = None
    array_parallelism: int | None = None
    extra: tuple[tuple[str, str | None], ...] = ()

    def updated(self, values: dict, source: str = "flag") -> SlurmOptions:
        """These options with ``values`` (grid keys; None = keep) checked and applied.

        ``source`` is ``flag`` or ``grid``: it only decides how an error names the value.
        """
        changes: dict = {}
        for key, value in values.items():
            if key not in FLAGS:
                raise UserError(f"[slurm]: unknown key {key!r} (allowed: {', '.join(sorted(FLAGS))})")
            if value is None:
                continue
            where = _where(key, source)
            if key == "partition":
                changes["partition"] = parse_partition(value, where)
            elif key == "time":
                changes["time_min"] = parse_time(value, where)
            elif key == "gpus":
                changes["gpus"] = _count(value, where, 0)
            elif key == "cpus":
                changes["cpus"] = _count(value, where, 1)
            elif key == "mem":
                changes["mem"] = parse_mem(value, where)
            elif key == "array_parallelism":
                changes["array_parallelism"] = _count(value, where, 1)
            else:
                changes["extra"] = parse_extra(value, where)
        return replace(self, **changes)

    def sbatch_params(self) -> dict:
        """The parameters of submitit's Slurm executor (they become the job script's #SBATCH lines)."""
        params: dict = {"job_name": JOB_NAME, "time": self.time_min, "signal_delay_s": SIGNAL_DELAY_S}
        if self.partition:
            params["partition"] = self.partition
        if self.gpus:
            params["gpus_per_node"] = self.gpus  # one task per job: per node = per task
        if self.cpus:
            params["cpus_per_task"] = self.cpus
        if self.mem:
            params["mem"] = self.mem
        if self.array_parallelism:
            params["array_parallelism"] = self.array_parallelism
        additional: dict = {"requeue": True}  # scontrol requeue and preemption need it
        for name, value in self.extra:
            additional[name.replace("-", "_")] = True if value is None else value
        params["additional_parameters"] = additional
        return params


def slurm_options(grid_table: dict | None = None, flags: dict | None = None) -> SlurmOptions:
    """The options of a sweep: the defaults, then the grid's ``[slurm]`` table, then the flags."""
    table = grid_table or {}
    if not isinstance(table, dict):
        raise UserError(f"[slurm] must be a table, got {table!r}")
    return SlurmOptions().updated(table, "grid").updated(flags or {}, "flag")
