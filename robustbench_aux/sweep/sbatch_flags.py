"""sbatch's options, and option names resolved the way sbatch resolves them.

sbatch reads its options (on the command line and in ``#SBATCH`` lines alike) with getopt_long:
a long option may be abbreviated to any prefix that names one option alone (``--out`` is
``--output``), an exact name wins over longer ones (``--mem`` is not ambiguous beside
``--mem-per-cpu``), and short options (``-o``) are aliases of long ones. A later option replaces
an earlier one. So checking the name a user wrote is not enough: :func:`resolve` finds the option
sbatch will apply, and the sweep's policy (:mod:`.slurm_options`) judges that.

The table below is data, not a guess: the long options of sbatch's manual page (``man sbatch``,
section OPTIONS, Slurm 26.11), each with its short alias and whether it takes a value, plus the few
names sbatch's option table accepts without documenting them (marked). A site's plugins (SPANK)
may add options of their own; a name that matches nothing here is passed on unchanged and sbatch
judges it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from robustbench_aux.errors import UserError

REQUIRED, OPTIONAL, NONE = "required", "optional", "none"
_ARG_KINDS = {"=": REQUIRED, "[=]": OPTIONAL, "-": NONE}

# name, short alias ("-" for none), value ("=" required, "[=]" optional, "-" none).
# Source: sbatch's documented long options (man sbatch, OPTIONS); "*" marks names that sbatch's
# option table accepts but the manual does not list (aliases and internal options).
_TABLE = """
account A = | acctg-freq - = | array a = | autocomplete* - = | batch - = | bb - = | bbf - =
begin b = | chdir D = | cluster* - = | cluster-constraint - = | clusters M = | comment - =
consolidate-segments - - | constraint C = | container - = | container-id - = | context* - =
contiguous - - | core-spec S = | cores-per-socket - = | cpu-freq - = | cpus-per-gpu - =
cpus-per-task c = | deadline - = | delay-boot - = | dependency d = | distribution m =
error e = | exclude x = | exclusive - [=] | export - = | export-file - = | external* - -
extra - = | extra-node-info B = | get-user-env - - | gid - = | gpu-bind - = | gpu-freq - =
gpus G = | gpus-per-node - = | gpus-per-socket - = | gpus-per-task - = | gres - =
gres-flags - = | help h - | hint - = | hold H - | ignore-pbs - - | input i = | job-name J =
kill-on-invalid-dep - = | licenses L = | mail-type - = | mail-user - = | mcs-label - =
mem - = | mem-bind - = | mem-per-cpu - = | mem-per-gpu - = | mem-update - = | mincpus - =
network - = | nice - [=] | no-kill k [=] | no-requeue - - | nodefile F = | nodelist w =
nodes N = | ntasks n = | ntasks-per-core - = | ntasks-per-gpu - = | ntasks-per-node - =
ntasks-per-socket - = | ntasks-per-tres* - = | oom-kill-step - [=] | open-mode - =
output o = | overcommit O - | oversubscribe s - | parsable - - | partition p = | prefer - =
priority - = | profile - = | propagate - [=] | qos q = | quiet Q - | reboot - -
requeue - [=] | reservation - = | resources - = | resv-ports - [=] | runtime - = | segment - =
signal - = | sockets-per-node - = | spread-job - - | spread-segments - - | stepmgr - -
switches - = | tasks-per-node* - = | test-only - - | thread-spec - = | threads-per-core - =
time t = | time-min - = | tmp - = | tres-bind - = | tres-per-task - = | uid - = | usage - -
use-min-nodes - - | verbose v - | version V - | wait W - | wait-all-nodes - = | wckey - =
wrap - =
"""


@dataclass(frozen=True)
class SbatchOption:
    name: str  # the long name, without "--"
    short: str | None  # the one-letter alias, without "-"
    arg: str  # REQUIRED, OPTIONAL or NONE
    documented: bool = True


def _parse_table(text: str) -> dict[str, SbatchOption]:
    options = {}
    for entry in text.replace("\n", "|").split("|"):
        if not entry.strip():
            continue
        name, short, arg = entry.split()
        documented = not name.endswith("*")
        name = name.rstrip("*")
        options[name] = SbatchOption(name, None if short == "-" else short, _ARG_KINDS[arg], documented)
    return options


OPTIONS: dict[str, SbatchOption] = _parse_table(_TABLE)
SHORT: dict[str, SbatchOption] = {o.short: o for o in OPTIONS.values() if o.short}

_LONG_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


def resolve(name: str, where: str) -> SbatchOption | None:
    """The option sbatch applies for ``--name``: the exact one, else the one it abbreviates; None
    for a name that abbreviates nothing here (a site's plugin option, or one sbatch refuses).
    A prefix of several options is a UserError, as it is for sbatch."""
    if name in OPTIONS:
        return OPTIONS[name]
    matches = [option for full, option in OPTIONS.items() if full.startswith(name)]
    if len(matches) > 1:
        shown = ", ".join(f"--{m.name}" for m in matches[:6]) + (", ..." if len(matches) > 6 else "")
        raise UserError(
            f"{where}: --{name} is ambiguous for sbatch (it abbreviates {shown}); write the name out"
        )
    return matches[0] if matches else None


@dataclass(frozen=True)
class Flag:
    """One further sbatch flag: the name to write (resolved to the full name where sbatch knows it),
    its value (None for none) and the option sbatch applies (None for a name it does not document)."""

    name: str
    value: str | None
    option: SbatchOption | None
    given: str  # as the user wrote it, for messages


def _split(raw: str, where: str) -> tuple[str, str | None, SbatchOption | None]:
    """``--name[=value]`` / ``name[=value]`` / ``-X[value]`` / ``-X value`` -> (name, value, option)."""
    if raw.startswith("-") and not raw.startswith("--"):
        letter, rest = raw[1:2], raw[2:]
        option = SHORT.get(letter)
        if option is None:
            raise UserError(f"{where}: {raw!r} is not an sbatch option (no short option -{letter[:1]})")
        if rest.startswith(" "):
            rest = rest[1:]
        if option.arg == NONE and rest:
            raise UserError(f"{where}: -{letter} (--{option.name}) takes no value; give one option per entry")
        return option.name, (rest if rest or option.arg == REQUIRED else None), option
    body = raw[2:] if raw.startswith("--") else raw
    name, sep, value = body.partition("=")
    if not _LONG_NAME.fullmatch(name):
        raise UserError(
            f"{where}: {raw!r} is not an sbatch flag (give name=value, --name=value or -X value, "
            "e.g. account=proj)"
        )
    option = resolve(name, where)
    return (option.name if option else name), (value if sep else None), option


def parse_flag(raw, where: str) -> Flag:
    """One entry of ``[slurm] extra`` / ``--slurm-extra`` as sbatch would read it (a UserError for
    one it would refuse: a value where none is taken, none where one is needed)."""
    if not isinstance(raw, str):
        raise UserError(f'{where}: {raw!r} is not an sbatch flag (give strings like "account=proj")')
    name, value, option = _split(raw, where)
    if option is not None and option.arg == NONE and value is not None:
        raise UserError(f"{where}: --{name} takes no value, got {raw!r}")
    if option is not None and option.arg == REQUIRED and not value:
        raise UserError(f"{where}: --{name} needs a value (--{name}=VALUE), got {raw!r}")
    return Flag(name, value, option, raw)
