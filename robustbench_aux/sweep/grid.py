"""Grid files: which runs a sweep trains and evaluates.

A grid is TOML with one ``[defaults]`` table and any number of ``[[runs]]`` blocks::

    [defaults]
    dataset = "cifar100"          # any dataset `train` accepts
    data = "data"                 # data root
    recipe = "reference"
    out = "runs/cifar100"         # each run gets <out>/<run id>/
    corruptions = "data/CIFAR-100-C"   # evaluate every run on this CIFAR-C directory (omit: train only)
    corruptions_bar = "data/CIFAR-100-C-bar-generated"   # optional: and on this CIFAR-C-bar directory
    c_bar = true                  # optional, for `reproduce`: generate CIFAR-C-bar and set corruptions_bar
    threads = 1                   # CPU threads of each train / evaluate process (omit: torch's default)

    [[runs]]
    methods = ["plain", "auxiliary"]
    archs = ["resnet18"]
    seeds = [0, 1, 2]
    vary = { corruption = ["noise", "blur"] }   # optional: one run per value, passed as --set key=value

    [slurm]                       # optional: what each Slurm task asks for (see .slurm_options)
    partition = "gpu"
    time = "1-00:00:00"

    [report]                      # optional, for `reproduce`: report --parity / --parity-label
    parity = "reports/cpu-cifar10-fp32"   # the same runs in another precision (results_long.csv)
    parity_label = "fp32"

Relative paths are taken relative to the current directory. Unknown keys and values of the wrong
type (``seeds = ["abc"]``, ``vary = {corruption = "noise"}``) are errors naming the key; a run id
(method, ``vary`` values, arch, seed joined by ``-``) must be a plain directory name inside ``out``.

Every value reaches a command line (printed shell-quoted, run without a shell) and the run ids
reach file names, so each is checked where it is read: no string may hold a line break, control
or invisible formatting character (:mod:`robustbench_aux.infra.plaintext`); a value passed after an
option (dataset, data, recipe, out, corruptions, device, methods, archs) may not start with ``-``;
``set`` and ``vary`` keys are ``--set`` keys (``lr``, ``train.lr``). Two ``[[runs]]`` blocks may
name the same run only with the same steps.
"""

from __future__ import annotations

import itertools
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from robustbench_aux.errors import UserError
from robustbench_aux.infra.paths import component, inside
from robustbench_aux.infra.plaintext import plain
from robustbench_aux.rundir import RunDir
from robustbench_aux.sweep.slurm_options import SlurmOptions, slurm_options

MAX_SEED = 2**32 - 1  # the range every seeded generator (torch, numpy) accepts

DEFAULT_KEYS = {
    "dataset": str,
    "data": str,
    "recipe": str,
    "out": str,
    "corruptions": str,
    "corruptions_bar": str,
    "c_bar": bool,
    "device": str,
    "epochs": int,
    "n_train": int,
    "eval_n": int,
    "eval_precision": str,
    "threads": int,
    "set": dict,
}
EVAL_PRECISIONS = ("fp32", "bf16", "fp16")  # evaluate --precision
RUN_KEYS = {"methods": list, "archs": list, "seeds": list, "vary": dict, "set": dict}
# [report] (for `reproduce`): another precision's results of the same runs, shown as a parity check
REPORT_KEYS = {"parity": str, "parity_label": str}
# strings passed as the value of an option: one starting with "-" would be read as an option
OPTION_VALUES = ("dataset", "data", "recipe", "out", "corruptions", "corruptions_bar", "device", "parity")
SET_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")  # a --set key: lr, train.lr
SCALARS = (str, int, float, bool)


@dataclass
class Step:
    """One CLI invocation (``robustbench-aux <argv>``), skipped once ``done`` exists."""

    argv: list[str]
    done: Path
    resume_if: Path | None = None


@dataclass
class Job:
    name: str
    run_dir: Path
    steps: list[Step] = field(default_factory=list)
    # what the train step is asked for: method, arch, seed, recipe, dataset, epochs, n_train (None when
    # not given) and the --set values ("set"); the pipeline resolves it to compare committed evidence
    spec: dict = field(default_factory=dict)


@dataclass
class Sweep:
    defaults: dict
    jobs: list[Job]
    slurm: SlurmOptions = field(default_factory=SlurmOptions)  # the grid's [slurm] table, checked
    report: dict = field(default_factory=dict)  # the grid's [report] table (REPORT_KEYS), checked


def _check_keys(table, allowed: dict, where: str) -> None:
    if not isinstance(table, dict):
        raise UserError(f"{where} must be a table, got {table!r}")
    for key, value in table.items():
        if key not in allowed:
            raise UserError(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        kind = allowed[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
        if kind is str:
            _option_value(value, f"{where}: {key!r}", key in OPTION_VALUES)
    for key in ("methods", "archs"):
        for v in table.get(key, []) if key in allowed else []:
            if not isinstance(v, str):
                raise UserError(f"{where}: {key!r} must list names (strings), got {v!r}")
            _option_value(component(v, f"{where}: {key[:-1]}"), f"{where}: {key[:-1]}", True)
    if "seeds" in allowed:
        for v in table.get("seeds", []):
            check_seed(v, f"{where}: seed")
    for key, low in (("epochs", 1), ("n_train", 0), ("eval_n", 1), ("threads", 1)):
        if key in allowed and key in table and table[key] < low:
            raise UserError(f"{where}: {key!r} must be at least {low}, got {table[key]!r}")
    if "eval_precision" in allowed and table.get("eval_precision", "fp32") not in EVAL_PRECISIONS:
        raise UserError(
            f"{where}: 'eval_precision' must be one of {', '.join(EVAL_PRECISIONS)}, "
            f"got {table['eval_precision']!r}"
        )
    _check_set(table.get("set") or {}, where)
    _check_vary(table.get("vary") or {}, where)


def _option_value(value: str, what: str, after_option: bool) -> str:
    """A string from the grid: one line, and not starting with ``-`` when it follows an option."""
    plain(value, what)
    if after_option and value.startswith("-"):
        raise UserError(f"{what} must not start with '-' (it would be read as an option), got {value!r}")
    return value


def _check_set_key(key, what: str) -> None:
    if not isinstance(key, str) or not SET_KEY.fullmatch(key):
        raise UserError(f"{what}: {key!r} is not a --set key (a name like lr or train.lr)")


def _check_scalar(value, what: str, lists: bool = False) -> None:
    """A value passed as ``--set key=value``: a string, number or boolean (``lists``: or a list of
    them); strings one line."""
    if lists and isinstance(value, list):
        for item in value:
            _check_scalar(item, what)
        return
    if not isinstance(value, SCALARS):
        kinds = "strings, numbers or booleans" + (" (or lists of them)" if lists else "")
        raise UserError(f"{what} values must be {kinds}, got {value!r}")
    if isinstance(value, str):
        plain(value, what)


def _check_set(options: dict, where: str) -> None:
    for key, value in options.items():
        _check_set_key(key, f"{where}: set")
        _check_scalar(value, f"{where}: set.{key}", lists=True)


def _check_vary(vary: dict, where: str) -> None:
    for key, values in vary.items():
        _check_set_key(key, f"{where}: vary")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}: vary.{key} must be a non-empty list of values, got {values!r}")
        for v in values:
            _check_scalar(v, f"{where}: vary.{key}")


def check_seed(value, what: str = "seed") -> int:
    """``value`` as a seed: an integer in 0..2**32-1 (a UserError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise UserError(f"{what} must be an integer in 0..{MAX_SEED}, got {value!r}")
    return value


def set_values(options: dict) -> list[str]:
    """``key=value`` texts of ``--set`` options, as ``train`` reads them (booleans lower-case)."""
    return [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in options.items()
    ]


def _set_args(options: dict) -> list[str]:
    out: list[str] = []
    for text in set_values(options):
        out += ["--set", text]
    return out


def _run_id(method: str, variant: dict, arch: str, seed: int) -> str:
    parts = [method, *(str(v) for v in variant.values()), arch, f"s{seed}"]
    return "-".join(parts)


def make_job(defaults: dict, method: str, arch: str, seed: int, variant: dict, fixed: dict) -> Job:
    """The train (and, with ``corruptions``, evaluate) steps of one run."""
    name = component(
        _run_id(method, variant, arch, seed), "run id (from the grid's method, vary values, arch)"
    )
    run_dir = inside(defaults.get("out", "runs"), name)
    train = [
        "train",
        "--method",
        method,
        "--arch",
        arch,
        "--seed",
        str(seed),
        "--out",
        str(run_dir),
        "--recipe",
        defaults.get("recipe", "reference"),
        "--dataset",
        defaults.get("dataset", "cifar100"),
    ]
    for key, flag in (
        ("data", "--data"),
        ("device", "--device"),
        ("epochs", "--epochs"),
        ("n_train", "--n-train"),
        ("threads", "--threads"),
    ):
        if key in defaults:
            train += [flag, str(defaults[key])]
    sets = {**defaults.get("set", {}), **fixed, **variant}
    train += _set_args(sets)
    spec = {
        "method": method,
        "arch": arch,
        "seed": seed,
        "recipe": defaults.get("recipe", "reference"),
        "dataset": defaults.get("dataset", "cifar100"),
        "epochs": defaults.get("epochs"),
        "n_train": defaults.get("n_train"),
        "set": sets,
    }
    steps = [Step(train, RunDir(run_dir).final, resume_if=RunDir(run_dir).last)]
    if defaults.get("corruptions"):
        evaluate = ["evaluate", str(run_dir), "--corruptions", str(defaults["corruptions"])]
        if defaults.get("corruptions_bar"):  # CIFAR-C-bar in the same evaluation (one results.csv)
            evaluate += ["--corruptions", str(defaults["corruptions_bar"])]
        for key, flag in (
            ("data", "--data"),
            ("device", "--device"),
            ("eval_n", "--n"),
            ("eval_precision", "--precision"),
            ("threads", "--threads"),
        ):
            if key in defaults:
                evaluate += [flag, str(defaults[key])]
        steps.append(Step(evaluate, RunDir(run_dir).summary))
    return Job(name, run_dir, steps, spec)


def _same_steps(a: Job, b: Job) -> bool:
    """The two jobs run the same commands (``--set`` pairs compared as a set: their order does not
    change the run)."""

    def canonical(job: Job):
        return [(_set_pairs_sorted(step.argv), step.done, step.resume_if) for step in job.steps]

    return canonical(a) == canonical(b)


def _set_pairs_sorted(argv: list[str]) -> list[str]:
    pairs = sorted(argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--set")
    rest = [arg for i, arg in enumerate(argv) if arg != "--set" and (i == 0 or argv[i - 1] != "--set")]
    return rest + pairs


def _difference(a: Job, b: Job) -> str:
    """What differs between the first steps of two jobs with one run id, for the message."""
    for step_a, step_b in zip(a.steps, b.steps):
        only_a = [x for x in step_a.argv if x not in step_b.argv]
        only_b = [x for x in step_b.argv if x not in step_a.argv]
        if only_a or only_b:
            return f"{shlex.join(only_a) or 'nothing'} vs {shlex.join(only_b) or 'nothing'}"
    return f"{len(a.steps)} vs {len(b.steps)} steps"


def _block_jobs(defaults: dict, block: dict, methods, archs, seeds):
    """The jobs of one [[runs]] block, in grid order."""
    vary = block.get("vary", {})
    keys = list(vary)
    variants = [dict(zip(keys, values)) for values in itertools.product(*(vary[k] for k in keys))]
    for method in block["methods"]:
        if methods is not None and method not in methods:
            continue
        for arch, seed, variant in itertools.product(
            archs or block["archs"], seeds or block["seeds"], variants
        ):
            yield make_job(defaults, method, arch, int(seed), variant, block.get("set", {}))


def expand(defaults: dict, blocks: list[dict], *, methods=None, archs=None, seeds=None) -> list[Job]:
    """All jobs of the grid. ``archs``/``seeds`` replace every block's lists, ``methods`` filters them.

    A run named twice with the same steps is one job; with different steps (another ``set``, say)
    it is a UserError naming both blocks."""
    if not isinstance(blocks, list):
        raise UserError("the grid's runs must be [[runs]] blocks (an array of tables), not one [runs] table")
    _check_keys({"methods": methods or [], "archs": archs or [], "seeds": seeds or []}, RUN_KEYS, "filters")
    jobs: dict[str, tuple[int, Job]] = {}
    for i, block in enumerate(blocks):
        _check_keys(block, RUN_KEYS, f"[[runs]] block {i + 1}")
        for key in ("methods", "archs", "seeds"):
            if not block.get(key):
                raise UserError(f"[[runs]] block {i + 1}: {key!r} is missing or empty")
        for job in _block_jobs(defaults, block, methods, archs, seeds):
            first, seen = jobs.setdefault(job.name, (i, job))
            if not _same_steps(seen, job):
                raise UserError(
                    f"[[runs]] blocks {first + 1} and {i + 1} both make run {job.name!r} with different "
                    f"steps ({_difference(seen, job)}); give one of them a vary value or drop the run from one"
                )
    return [job for _, job in jobs.values()]


def read_grid(path: str | Path) -> dict:
    """The grid file's TOML document (one-line errors for a missing, binary or invalid file)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"grid file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"grid file {path} is a directory") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML ({exc})") from None


def sweep_from(doc: dict, where: str, *, overrides: dict | None = None, **filters) -> Sweep:
    """The sweep of a grid document (``where`` names it in errors): every value checked."""
    for key in doc:
        if key not in ("defaults", "runs", "slurm", "report"):
            raise UserError(
                f"{where}: unknown top-level key {key!r} (allowed: defaults, runs, slurm, report)"
            )
    if not isinstance(doc.get("defaults", {}), dict):
        raise UserError(f"{where}: defaults must be a [defaults] table, got {doc['defaults']!r}")
    defaults = {**doc.get("defaults", {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    _check_keys(defaults, DEFAULT_KEYS, f"{where} [defaults]")
    jobs = expand(defaults, doc.get("runs", []), **filters)
    if not jobs:
        raise UserError(f"{where}: the grid (after filters {filters}) holds no runs")
    try:
        slurm = slurm_options(doc.get("slurm", {}))
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    report = doc.get("report", {})
    _check_keys(report, REPORT_KEYS, f"{where} [report]")
    if "parity_label" in report and "parity" not in report:
        raise UserError(f"{where} [report]: 'parity_label' names the 'parity' results; give 'parity' too")
    return Sweep(defaults, jobs, slurm, report)


def load_sweep(path: str | Path, *, overrides: dict | None = None, **filters) -> Sweep:
    """Read a grid file; ``overrides`` replace ``[defaults]`` entries; ``filters`` go to :func:`expand`."""
    return sweep_from(read_grid(path), str(path), overrides=overrides, **filters)
