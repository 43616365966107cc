"""Reliability battery, part 4: hostile grids and Slurm options.

Grid values and Slurm options reach a shell twice: in the commands a sweep prints (to be pasted)
and in the ``#SBATCH`` lines of the job script, where a line break starts a line of its own that
bash runs and ends sbatch's directive block early. Every case below feeds one hostile value to
``sweep --dry-run`` (with ``--executor slurm``) and asserts the battery's contract (exit 2, one
``error:`` line naming the value's key, nothing written); the property tests draw values with
shell metacharacters, quotes, control and Unicode characters and check that whatever is accepted
prints commands that split back into the real argv and a job script whose directive block holds
exactly the sweep's directives, and that everything else is a one-line error.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_world import GRID, Case, run_case

from robustbench_aux import cli
from robustbench_aux.errors import UserError
from robustbench_aux.infra.plaintext import first_control
from robustbench_aux.sweep.grid import sweep_from
from robustbench_aux.sweep.job import shown
from robustbench_aux.sweep.sbatch_flags import resolve
from robustbench_aux.sweep.slurm_options import parse_folder, slurm_options

pytest.importorskip("submitit")

SLURM_DRY = ["sweep", "grid.toml", "--executor", "slurm", "--dry-run", "--slurm-folder", "logs"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A grid and nothing else: a dry run reads the grid and writes nothing."""
    w = tmp_path_factory.mktemp("grids") / "w"
    w.mkdir()
    (w / "grid.toml").write_text(GRID)
    return w


def _grid(extra: str = "", replace: tuple[str, str] | None = None, slurm: str = ""):
    def setup(w: Path) -> None:
        text = GRID if replace is None else GRID.replace(*replace)
        assert replace is None or text != GRID, replace
        (w / "grid.toml").write_text(f"{slurm}\n{text}{extra}")

    return setup


def _case(id: str, words: str, setup=None, flags: tuple[str, ...] = (), slurm: str = "") -> Case:
    return Case(id, [*SLURM_DRY, *flags], words, _grid(slurm=slurm) if slurm else setup)


CASES = [
    # control characters in grid values, each named by its key
    _case(
        "data-newline",
        "'data' holds a control character (U+000A LINE FEED)",
        _grid(replace=('device = "cpu"', 'device = "cpu"\ndata = "d\\n#SBATCH --output=/tmp/x"')),
    ),
    _case(
        "out-cr",
        "'out' holds a control character (U+000D CARRIAGE RETURN)",
        _grid(replace=('out = "sweep"', 'out = "sweep\\r"')),
    ),
    _case(
        "vary-line-separator",
        "vary.amp holds a control character (U+2028 LINE SEPARATOR)",
        _grid('vary = {amp = ["a\\u2028b"]}\n'),
    ),
    _case(
        "vary-next-line",
        "vary.amp holds a control character (U+0085 NEXT LINE)",
        _grid('vary = {amp = ["a\\u0085b"]}\n'),
    ),
    _case(
        "vary-bidi-override",
        "vary.amp holds a control character (U+202E RIGHT-TO-LEFT OVERRIDE)",
        _grid('vary = {amp = ["a\\u202eb"]}\n'),
    ),
    _case("set-nul", "set.amp holds a control character (U+0000 NUL)", _grid('set = {amp = "a\\u0000"}\n')),
    _case(
        "set-escape",
        "set.amp holds a control character (U+001B ESCAPE)",
        _grid(replace=("[[runs]]", '[defaults.set]\namp = "\\u001b[2J"\n\n[[runs]]')),
    ),
    _case("set-key-shell", "'lr; touch x' is not a --set key", _grid('set = {"lr; touch x" = 1}\n')),
    _case("vary-key-equals", "'a=b' is not a --set key", _grid('vary = {"a=b" = [1]}\n')),
    _case(
        "recipe-option",
        "'recipe' must not start with '-'",
        _grid(replace=('recipe = "smoke"', 'recipe = "--help"')),
    ),
    _case("method-escape", "method", _grid(replace=('methods = ["plain"]', 'methods = ["pl\\u001bain"]'))),
    # two blocks naming one run with different steps
    _case(
        "same-run-other-set",
        "[[runs]] blocks 1 and 2 both make run 'plain-test_tiny-s0'",
        _grid('\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\nseeds = [0]\nset = {lr = 0.5}\n'),
    ),
    # Slurm values: control characters, patterns matched whole, strict counts and times
    _case(
        "partition-newline",
        "[slurm] partition must be a partition name",
        slurm='[slurm]\npartition = "gpu\\n#SBATCH --output=/tmp/x"\n',
    ),
    _case(
        "partition-trailing-newline",
        "[slurm] partition must be a partition name",
        slurm='[slurm]\npartition = "gpu\\n"\n',
    ),
    _case(
        "cpus-superscript",
        "[slurm] cpus must be an integer in 1..65534 (ASCII digits), got '²'",
        slurm='[slurm]\ncpus = "²"\n',
    ),
    _case("gpus-arabic-digit", "[slurm] gpus must be an integer", slurm='[slurm]\ngpus = "\\u0663"\n'),
    _case(
        "array-fullwidth-digit",
        "--slurm-array-parallelism must be an integer",
        flags=("--slurm-array-parallelism", "\uff14"),
    ),
    _case("cpus-flag-superscript", "--slurm-cpus must be an integer", flags=("--slurm-cpus", "\u00b3")),
    _case(
        "time-huge",
        "[slurm] time must be at most 4294967293 minutes",
        slurm='[slurm]\ntime = "99999999999:00:00"\n',
    ),
    _case("time-arabic-digit", "[slurm] time must be minutes", slurm='[slurm]\ntime = "1-\\u0661:00"\n'),
    _case("mem-newline", "[slurm] mem holds a control character", slurm='[slurm]\nmem = "4G\\n"\n'),
    # extra: names as sbatch resolves them, values one line without backslashes
    _case(
        "extra-output-prefix",
        "--output ('out=/tmp/x' to sbatch) cannot be given here",
        slurm='[slurm]\nextra = ["out=/tmp/x"]\n',
    ),
    _case(
        "extra-no-requeue-prefix",
        "--no-requeue ('--no-req' to sbatch) cannot be given here",
        slurm='[slurm]\nextra = ["--no-req"]\n',
    ),
    _case(
        "extra-short-output",
        "--output ('-o/tmp/x' to sbatch) cannot be given here",
        flags=("--slurm-extra=-o/tmp/x",),
    ),
    _case(
        "extra-signal-prefix",
        "--signal ('sig=USR1@10' to sbatch) cannot be given here",
        flags=("--slurm-extra", "sig=USR1@10"),
    ),
    _case(
        "extra-chdir-short",
        "--chdir ('-D /' to sbatch) cannot be given here",
        flags=("--slurm-extra", "-D /"),
    ),
    _case("extra-ntasks", "--ntasks cannot be given here", slurm='[slurm]\nextra = ["ntasks=2"]\n'),
    _case("extra-ambiguous", "--par is ambiguous for sbatch", slurm='[slurm]\nextra = ["par=gpu"]\n'),
    _case(
        "extra-mem-per-cpu",
        "'--mem-per-cpu=1G' clashes with --mem",
        slurm='[slurm]\nmem = "4G"\nextra = ["mem-per-cpu=1G"]\n',
    ),
    _case(
        "extra-gpu-gres",
        "'--gres=gpu:2' clashes with --gpus-per-node",
        slurm='[slurm]\nextra = ["gres=gpu:2"]\n',
    ),
    _case(
        "extra-newline",
        "[slurm] extra holds a control character (U+000A LINE FEED)",
        slurm='[slurm]\nextra = ["comment=x\\n#SBATCH --output=/tmp/y"]\n',
    ),
    _case(
        "extra-backslash",
        "holds a backslash, which sbatch would read as an escape",
        slurm='[slurm]\nextra = ["comment=x\\\\"]\n',
    ),
    _case(
        "folder-newline",
        "--slurm-folder holds a control character (U+000A LINE FEED)",
        flags=("--slurm-folder", "logs\ntouch x"),
    ),
    # reproduce reads the same grid first: the same one-line errors, before anything is written
    Case(
        "reproduce-cpus-superscript",
        ["reproduce", "--grid", "grid.toml", "--report", "rep"],
        "[slurm] cpus must be an integer in 1..65534 (ASCII digits), got '²'",
        _grid(slurm='[slurm]\ncpus = "²"\n'),
    ),
    Case(
        "reproduce-same-run-other-set",
        ["reproduce", "--grid", "grid.toml", "--report", "rep"],
        "[[runs]] blocks 1 and 2 both make run 'plain-test_tiny-s0' with different steps (--set lr=0.5 vs nothing)",
        _grid('set = {lr = 0.5}\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\nseeds = [0]\n'),
    ),
    _case(
        "folder-percent", "--slurm-folder must be a folder path without '%'", flags=("--slurm-folder", "l%x")
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_grids_and_slurm_options(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)


def test_battery_size():
    """The figure docs/reliability.md reports."""
    assert len(CASES) == 36


def test_world_is_sound(world, tmp_path, capsys, monkeypatch):
    """The same dry run on the untouched grid prints the commands and the job script."""
    monkeypatch.chdir(world)
    assert cli.main(SLURM_DRY) == 0
    out = capsys.readouterr().out
    assert "#SBATCH --output=" in out and "robustbench-aux train --method plain" in out
    assert not (world / "logs").exists() and not (world / "sweep").exists()


# ---------------------------------------------------------------- accepted hostile values, run by a shell


def test_printed_commands_run_by_bash_are_the_real_argv(world, tmp_path, capsys, monkeypatch):
    """Values holding $(...), backticks, ; and quotes are accepted and printed quoted: bash, given a
    printed line, passes exactly the argv the sweep runs, and runs none of the payload."""
    monkeypatch.chdir(tmp_path)
    canary = tmp_path / "pwned"
    payload = f"$(touch {canary})`touch {canary}`; touch {canary} 'q' \"d\" \\ * ~ #"
    grid = GRID.replace('recipe = "smoke"', f"recipe = {_toml(payload)}")
    grid += f"vary = {{corruption = [{_toml('a;touch pwned')}]}}\nset = {{alpha = {_toml(payload)}}}\n"
    (tmp_path / "grid.toml").write_text(grid)
    assert cli.main(["sweep", "grid.toml", "--dry-run"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("robustbench-aux ")]
    sweep = sweep_from(_read(tmp_path / "grid.toml"), "grid.toml")
    assert [shlex.split(ln) for ln in lines] == [
        ["robustbench-aux", *s.argv] for j in sweep.jobs for s in j.steps
    ]
    for line in lines:
        script = "printf '%s\\0' " + line.removeprefix("robustbench-aux ")
        argv = subprocess.run(["bash", "-c", script], capture_output=True, check=True).stdout.split(b"\0")[
            :-1
        ]
        assert [a.decode() for a in argv] == shlex.split(line)[1:]
    assert not canary.exists()


def _toml(text: str) -> str:
    """``text`` as a TOML basic string."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _read(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- property tests

SHELL = list("abcXYZ019_.,:/=+-@% $()`;&|<>*?[]{}~!#'\"\\") + ["é", "日", "\u00a0", "\U0001f600", "²"]
CONTROLS = ["\n", "\r", "\0", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\u200b", "\ufeff"]
# shell metacharacters, quotes, backslashes and Unicode (letters, NBSP, emoji, a superscript digit)
shellish = st.text(alphabet=st.sampled_from(SHELL), min_size=1, max_size=10)
# the same with control characters, line separators, bidirectional and zero-width characters mixed in
hostile = st.text(alphabet=st.sampled_from(SHELL + CONTROLS + ["\u0663", "\uff14"]), max_size=10)
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _one_line_error(exc: UserError) -> None:
    message = str(exc)
    assert message and len(message.splitlines()) == 1 and first_control(message) is None, repr(message)


def _with_one_hostile(fields: dict) -> st.SearchStrategy:
    """``fields`` (name -> strategy) drawn, and at times one of them replaced by a hostile value (a
    grid or table with every field hostile would only ever test the first check)."""
    base = st.fixed_dictionaries(fields)
    swap = st.tuples(st.sampled_from(sorted(fields)), st.one_of(hostile, st.integers(-(10**13), 10**13)))
    return st.builds(lambda d, s: {**d, s[0]: s[1]} if s else d, base, st.one_of(st.none(), swap))


grids = _with_one_hostile(
    {
        "data": st.one_of(st.just("data"), shellish),
        "recipe": st.one_of(st.just("smoke"), shellish),
        "out": st.one_of(st.just("runs"), shellish).map(lambda s: "o" + s),
        "device": st.sampled_from(["cpu", "cuda:0"]),
        "set_key": st.sampled_from(["lr", "train.lr", "alpha"]),
        "set_value": st.one_of(shellish, st.integers(-5, 5), st.floats(allow_nan=False), st.booleans()),
        "vary_key": st.sampled_from(["corruption", "amp"]),
        "vary_value": st.one_of(shellish.map(lambda s: s.replace("/", "")), st.integers(-3, 3)),
        "method": st.sampled_from(["plain", "auxiliary"]),
        "arch": st.sampled_from(["test_tiny", "resnet18"]),
    }
)


@SETTINGS
@given(g=grids)
def test_accepted_grid_values_print_commands_that_split_back_into_the_real_argv(g):
    doc = {
        "defaults": {
            "data": g["data"],
            "recipe": g["recipe"],
            "out": g["out"],
            "device": g["device"],
            "corruptions": "cc",
            "set": {g["set_key"]: g["set_value"]},
        },
        "runs": [
            {
                "methods": [g["method"]],
                "archs": [g["arch"]],
                "seeds": [0],
                "vary": {g["vary_key"]: [g["vary_value"]]},
            }
        ],
    }
    try:
        sweep = sweep_from(doc, "grid.toml")
    except UserError as exc:
        _one_line_error(exc)
        return
    for job in sweep.jobs:
        assert first_control(job.name) is None and "/" not in job.name
        for step in job.steps:
            line = shown(step.argv)
            assert first_control(line) is None and "\n" not in line
            assert shlex.split(line) == ["robustbench-aux", *step.argv]
        train = job.steps[0].argv
        assert train[train.index("--data") + 1] == g["data"]
        assert train[train.index("--recipe") + 1] == g["recipe"]


EXTRAS = [
    "account=proj",
    "--qos=high",
    "-q low",
    "exclusive",
    "job-name=my job",
    "mail-type=END",
    "container-image=x:y",
    "out=/tmp/x",
    "--req",
    "-o x",
    "mem-per-cpu=1G",
    "gres=gpu:1",
]
extras = st.one_of(
    st.sampled_from(EXTRAS),
    shellish.map(lambda s: "comment=" + s),
    shellish.map(lambda s: "--" + s),
    st.tuples(st.sampled_from(["-J", "-A ", "--wckey=", "begin="]), shellish).map("".join),
)
slurm_tables = _with_one_hostile(
    {
        "partition": st.sampled_from(["gpu", "a,b", "x.y-z_1"]),
        "time": st.sampled_from(["90", "1-00:00:00", "2:30", 45, "0-0:1:1"]),
        "gpus": st.sampled_from([0, 1, "2"]),
        "cpus": st.sampled_from([4, "8", 1]),
        "mem": st.sampled_from(["32G", "16000", 512, "4g"]),
        "array_parallelism": st.sampled_from([2, "3", 1]),
        "extra": st.lists(extras, max_size=3, unique_by=lambda flag: flag[:4]),
    }
)
folders = st.one_of(
    st.sampled_from(["/tmp/logs", "/tmp/my logs", "/tmp/l'o\"g$(x)`y`;#"]),
    shellish.map(lambda s: "/tmp/" + s),
    hostile.map(lambda s: "/tmp/" + s),
)


@SETTINGS
@given(table=slurm_tables, folder=folders, n_tasks=st.sampled_from([1, 3]))
def test_accepted_slurm_options_give_a_job_script_with_exactly_the_sweeps_directives(table, folder, n_tasks):
    from robustbench_aux.sweep.slurm import job_script

    try:
        options = slurm_options(table)
        folder = parse_folder(folder)
    except UserError as exc:
        _one_line_error(exc)
        return
    script = job_script(options, folder, n_tasks)
    assert _directives(script) == _expected(options, folder, n_tasks)


def _directives(script: str) -> dict[str, str | None]:
    """The options sbatch reads from ``script``'s directive block, by full name, read as sbatch reads
    them: lines split at LF only, the block ends at the first line that is not a comment, each
    ``#SBATCH`` line split into arguments with sbatch's quoting (quotes group, a backslash escapes
    even inside quotes, an unquoted ``#`` ends the line), and option names resolved by prefix. Every
    option must appear once; the lines between ``# Parameters`` and ``# command`` must all be
    directives."""
    lines = script.split("\n")
    block = lines[lines.index("# Parameters") + 1 : lines.index("# command")]
    assert all(ln.startswith("#SBATCH --") for ln in block if ln), block
    found: dict[str, str | None] = {}
    for line in lines[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        if not line.startswith("#SBATCH"):
            continue
        for arg in _sbatch_arguments(line[len("#SBATCH") :]):
            name, sep, value = arg.removeprefix("--").partition("=")
            option = resolve(name, "test")
            full = option.name if option else name
            assert arg.startswith("--") and full not in found, (arg, found)
            found[full] = value if sep else None
    return found


def _sbatch_arguments(text: str) -> list[str]:
    """sbatch's splitting of the rest of an ``#SBATCH`` line into arguments."""
    args, current, quote, escaped, started = [], [], "", False, False
    for char in text + " ":
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped, started = True, True
        elif quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote, started = char, True
        elif char in "# \t\v\f\r":  # whitespace ends an argument, "#" the line
            if started or current:
                args.append("".join(current))
            current, started = [], False
            if char == "#":
                break
        else:
            current.append(char)
            started = True
    assert not quote and not escaped, f"unmatched quote in {text!r}"
    return args


def _expected(options, folder: str, n_tasks: int) -> dict[str, str | None]:
    """What the sweep means the directives to be: its own, then the extra flags given."""
    from pathlib import Path

    logs = str(Path(folder).absolute() / ("%A_%a_0_log" if n_tasks > 1 else "%j_0_log"))
    want: dict[str, str | None] = {
        "job-name": "robustbench-aux",
        "nodes": "1",
        "time": str(options.time_min),
        "signal": "USR2@90",
        "output": logs + ".out",
        "error": logs + ".err",
        "open-mode": "append",
        "requeue": None,
        "wckey": "submitit",
    }
    if n_tasks > 1:
        want["array"] = f"0-{n_tasks - 1}%{min(n_tasks, options.array_parallelism or 256)}"
    for key, name in (("partition", "partition"), ("gpus", "gpus-per-node"), ("cpus", "cpus-per-task")):
        if getattr(options, key):
            want[name] = str(getattr(options, key))
    if options.mem:
        want["mem"] = options.mem
    want.update(dict(options.extra))
    return want
