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
    extra = ["account=proj", "-q high"]   # further sbatch flags: [--]name[=value] or -X [value]

:class:`SlurmOptions` turns them into the parameters submitit writes into the job script
(``#SBATCH`` lines). Every value is checked here, so a bad one is a one-line error before
``sbatch`` is called; what only the cluster knows (does the partition exist) is checked against
it by :mod:`.slurm` before submitting.

A ``#SBATCH`` line is a bash comment that ends at a newline, so no value may hold a line break or
other control character (:mod:`robustbench_aux.infra.plaintext`); patterns are matched whole; counts and
times are ASCII digits, bounded and computed in integers. ``extra`` names are resolved as sbatch
resolves them (:mod:`.sbatch_flags`: prefixes, short options) and refused when the option they
name is one the sweep writes or relies on (:data:`RESERVED`), or clashes with one it writes from
a key that is set (:data:`CLASHES`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from robustbench_aux.errors import UserError
from robustbench_aux.infra.plaintext import plain
from robustbench_aux.sweep.sbatch_flags import parse_flag

DEFAULT_TIME_MIN = 24 * 60
DEFAULT_GPUS = 1
SIGNAL_DELAY_S = 90  # Slurm sends SIGUSR2 this long before the time limit (submitit checkpoints then)
JOB_NAME = "robustbench-aux"  # the array's name in squeue (extra = ["job-name=..."] replaces it)
MAX_TIME_MIN = 2**32 - 3  # Slurm keeps a time limit in 32 bits of minutes; the two largest mean "none"
MAX_COUNT = 65534  # Slurm keeps CPU counts per task in 16 bits; no node has more GPUs
MAX_DIGITS = 12  # digits of a number in a time or memory size (more is a mistake, not a request)
MAX_PARTITION = 1000  # characters of the partition list

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
_SUBMIT = "sbatch must submit the job and print its id, which submitit reads"
_ONE_TASK = "each array task runs its run's steps once, on one node"
# sbatch options the sweep writes itself, or whose effect would undo what it relies on: given in
# `extra` (under any name sbatch resolves to them) they would contradict the job script
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
    "nodes": _ONE_TASK,
    "ntasks": _ONE_TASK,
    "ntasks-per-node": _ONE_TASK,
    "tasks-per-node": _ONE_TASK,
    "ntasks-per-core": _ONE_TASK,
    "ntasks-per-socket": _ONE_TASK,
    "ntasks-per-gpu": _ONE_TASK,
    "ntasks-per-tres": _ONE_TASK,
    "chdir": "the runs' relative paths are taken from the submitting directory",
    "clusters": "the sweep follows its tasks with squeue on this cluster",
    "cluster": "the sweep follows its tasks with squeue on this cluster",
    "parsable": _SUBMIT,
    "quiet": _SUBMIT,
    "test-only": _SUBMIT,
    "wait": _SUBMIT,
    "help": _SUBMIT,
    "usage": _SUBMIT,
    "version": _SUBMIT,
    "autocomplete": _SUBMIT,
}
# options that clash with one the sweep writes when a key is set: option -> (key, what it writes)
CLASHES = {
    "gpus": ("gpus", "--gpus-per-node"),
    "gpus-per-task": ("gpus", "--gpus-per-node"),
    "gpus-per-socket": ("gpus", "--gpus-per-node"),
    "mem-per-cpu": ("mem", "--mem"),
    "mem-per-gpu": ("mem", "--mem"),
    "cpus-per-gpu": ("cpus", "--cpus-per-task"),
}
GPU_LISTS = ("gres", "tres-per-task")  # their values may ask for GPUs too (gpu:2, gres/gpu:1)

_PARTITION = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")
_MEM = re.compile(rf"([0-9]{{1,{MAX_DIGITS}}})([KMGTkmgt]?)")
_DIGITS = re.compile(r"[0-9]+")
_N = rf"([0-9]{{1,{MAX_DIGITS}}})"
_TIMES = (  # Slurm's --time formats -> (days, hours, minutes, seconds) group order
    (re.compile(rf"{_N}"), ("m",)),
    (re.compile(rf"{_N}:{_N}"), ("m", "s")),
    (re.compile(rf"{_N}:{_N}:{_N}"), ("h", "m", "s")),
    (re.compile(rf"{_N}-{_N}"), ("d", "h")),
    (re.compile(rf"{_N}-{_N}:{_N}"), ("d", "h", "m")),
    (re.compile(rf"{_N}-{_N}:{_N}:{_N}"), ("d", "h", "m", "s")),
)
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _where(key: str, source: str) -> str:
    return FLAGS[key] if source == "flag" else f"[slurm] {key}"


def _text(value, where: str) -> str:
    """A string or integer value as text, refused when it holds a control character."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UserError(f"{where} must be a string or an integer, got {value!r}")
    return plain(str(value), where).strip(" ")


def _seconds(text: str) -> int | None:
    """Slurm's time formats -> seconds (integer arithmetic); None if none fits."""
    for pattern, units in _TIMES:
        m = pattern.fullmatch(text)
        if m:
            return sum(int(g) * _SECONDS[u] for g, u in zip(m.groups(), units))
    return None


def parse_time(value, where: str = "--slurm-time") -> int:
    """A task's time limit in whole minutes (rounded up; at least 1, at most :data:`MAX_TIME_MIN`)."""
    seconds = None
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        seconds = _seconds(_text(value, where))
    if seconds is None:
        raise UserError(
            f"{where} must be minutes (e.g. 1440) or Slurm's [D-]HH:MM[:SS] (e.g. 1-00:00:00) in ASCII "
            f"digits, got {value!r}"
        )
    if seconds < 60:
        raise UserError(f"{where} must be at least one minute, got {value!r}")
    minutes = -(-seconds // 60)  # rounded up, in integers
    if minutes > MAX_TIME_MIN:
        raise UserError(
            f"{where} must be at most {MAX_TIME_MIN} minutes (Slurm's largest limit), got {value!r}"
        )
    return minutes


def _count(value, where: str, low: int) -> int:
    """An integer in ``low``..:data:`MAX_COUNT`: a TOML integer or a string of ASCII digits."""
    if isinstance(value, str) and _DIGITS.fullmatch(plain(value, where).strip(" ")):
        digits = value.strip(" ")
        value = int(digits) if len(digits) <= MAX_DIGITS else MAX_COUNT + 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_COUNT:
        raise UserError(f"{where} must be an integer in {low}..{MAX_COUNT} (ASCII digits), got {value!r}")
    return value


def parse_mem(value, where: str = "--slurm-mem") -> str:
    """Memory per task in Slurm's syntax: a number with an optional K/M/G/T suffix (MB without)."""
    m = (
        _MEM.fullmatch(_text(value, where))
        if isinstance(value, (int, str)) and not isinstance(value, bool)
        else None
    )
    if m is None:
        raise UserError(
            f"{where} must be a number of MB or a size like 16G (suffix K, M, G or T; ASCII digits), "
            f"got {value!r}"
        )
    return f"{int(m.group(1))}{m.group(2).upper()}"


def parse_partition(value, where: str = "--slurm-partition") -> str:
    """One partition name or several, comma-separated (letters, digits, ``_``, ``.``, ``-``)."""
    if not isinstance(value, str) or len(value) > MAX_PARTITION or not _PARTITION.fullmatch(value):
        raise UserError(f"{where} must be a partition name (or several, comma-separated), got {value!r}")
    return value


def _sbatch_value(value: str | None, where: str, given: str) -> str | None:
    """A value bound for an ``#SBATCH`` line: one line, and no backslash (sbatch reads a backslash
    as an escape even inside quotes, so the value it would apply is not the one given)."""
    if value is None:
        return None
    plain(value, f"{where}: {given!r}")
    if "\\" in value:
        raise UserError(f"{where}: {given!r} holds a backslash, which sbatch would read as an escape")
    return value


def parse_extra(values, where: str = "--slurm-extra") -> tuple[tuple[str, str | None], ...]:
    """Extra sbatch flags, each ``name``, ``name=value``, ``--name``, ``--name=value`` or a short
    option (``-q high``); names are resolved as sbatch resolves them (prefixes, short aliases), and
    reserved options are refused under any name."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise UserError(f'{where} must be a list of sbatch flags like ["account=proj"], got {values!r}')
    flags: dict[str, str | None] = {}
    for raw in values:
        if isinstance(raw, str):
            plain(raw, where)
        flag = parse_flag(raw, where)
        if flag.name in RESERVED:
            raise UserError(f"{where}: {_shown(flag)} cannot be given here ({RESERVED[flag.name]})")
        if flag.name in flags:
            raise UserError(f"{where}: --{flag.name} is given twice")
        flags[flag.name] = _sbatch_value(flag.value, where, flag.given)
    return tuple(flags.items())


def _shown(flag) -> str:
    """``--output``, with what the user wrote when that was an abbreviation or a short option."""
    written = flag.given.lstrip("-").partition("=")[0]
    return f"--{flag.name}" + ("" if written == flag.name else f" ({flag.given!r} to sbatch)")


def _asks_for_gpus(value: str | None) -> bool:
    """A gres / tres-per-task list naming GPUs (``gpu:2``, ``gpu:a100:1``, ``gres/gpu=1``)."""
    items = (value or "").split(",")
    return any(re.split(r"[:=]", item.strip())[0].removeprefix("gres/") == "gpu" for item in items)


def _clash(name: str, value: str | None) -> tuple[str, str] | None:
    """(the key, the option the sweep writes from it) that the extra flag ``--name=value`` clashes
    with when that key is set; None when it clashes with nothing."""
    if name in GPU_LISTS:
        return ("gpus", "--gpus-per-node") if _asks_for_gpus(value) else None
    return CLASHES.get(name)


def parse_folder(value, where: str = "--slurm-folder") -> str:
    """submitit's folder: its log paths land in ``#SBATCH`` lines, so one line, no backslash, and
    no ``%`` (Slurm reads it in a log path as a file-name pattern)."""
    text = plain(value, where)
    if not text or "%" in text or "\\" in text:
        raise UserError(f"{where} must be a folder path without '%' or a backslash, got {value!r}")
    return text


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
    extra_where: str = field(default="[slurm] extra", compare=False, repr=False)  # for messages

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
                changes["extra_where"] = where
        options = replace(self, **changes)
        options.check_clashes()
        return options

    def check_clashes(self) -> None:
        """A UserError for an extra flag that clashes with one these options make the sweep write
        (``mem-per-cpu`` beside ``mem``, ``gpus`` or a GPU ``gres`` beside ``gpus``, ...)."""
        for name, value in self.extra:
            clash = _clash(name, value)
            if clash is None or not getattr(self, clash[0]):
                continue
            key, writes = clash
            flag = f"--{name}" + ("" if value is None else f"={value}")
            fix = "set gpus = 0 (or --slurm-gpus 0)" if key == "gpus" else f"leave {key} unset"
            raise UserError(
                f"{self.extra_where}: {flag!r} clashes with {writes}, which the sweep writes from "
                f"{key} / {FLAGS[key]}; {fix} to give your own"
            )

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
