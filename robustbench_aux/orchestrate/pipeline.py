"""The end-to-end pipeline behind ``make reproduce-cifar100`` and ``make demo``.

prepare the dataset -> find the published CIFAR-C (else, with ``download_c``, download it; else
generate it with the ``cifar`` preset) -> when the grid says ``c_bar = true``, generate CIFAR-C-bar
(``cifar10-c-bar`` preset, same images) beside it
-> train and evaluate the grid (skipping finished runs, resuming interrupted ones) -> write each run's
evidence folder beside the report (``<report>/evidence/<run id>/``) -> report, rendered from those
folders alone.

A run whose evidence folder is already there and complete, made with the config the grid asks for
(method, arch, seed, recipe, epochs, every ``--set`` value) and evaluated the same way (precision,
CIFAR-C-bar, images per block), is neither trained nor evaluated again: its evidence goes to the
report as it is, on any machine, without its run directory. So adding seeds or methods to a grid and
rerunning it trains and evaluates only the new runs. An evidence folder made another way is a
one-line error (remove it to redo the run), never mixed in; an incomplete one (an interrupted
export) is made again.

Every step runs as a ``robustbench-aux`` command that is printed before it runs, so a log of the
pipeline is a list of commands anyone can paste.
"""

from __future__ import annotations

import datetime as _dt
import logging
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from robustbench_aux.config import resolve_config
from robustbench_aux.datasets import CifarCReader, load_dataset, prepare_dataset, resolve_data_root
from robustbench_aux.datasets.cifar_c import CBAR_DIRS
from robustbench_aux.datasets.loading import DATASETS
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation import evidence
from robustbench_aux.methods import METHODS
from robustbench_aux.report.reproduction import end_invocation, produced_by, start_invocation, write_record
from robustbench_aux.rundir import EVIDENCE_DIR, RunDir, read_config
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.grid import Job, Sweep, set_values
from robustbench_aux.sweep.job import command_line, shown
from robustbench_aux.sweep.local import run_local

log = logging.getLogger(__name__)

# per-image float quantities packed into each committed evidence folder beside correctness: the
# confidence, which the report's per-seed ECE bootstrap needs (about 2.5 MB per full-size run);
# NLL and Brier per block stay in results.csv
EVIDENCE_EXTRAS = ("confidence",)

CIFAR_C_NAMES = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


@dataclass
class Pipeline:
    grid: Path
    dataset: str
    data: Path
    out: Path  # run directories
    report: Path  # report directory
    download: bool = True
    generate_n: int | None = None  # first n test images when CIFAR-C must be generated (None = all)
    filters: dict = field(default_factory=dict)  # methods / archs / seeds for the grid
    overrides: dict = field(default_factory=dict)  # [defaults] overrides (epochs, device, n_train, eval_n)
    workers: int = 1
    gpus: list[int] = field(default_factory=list)
    per_gpu: int = 1  # runs at once on each GPU (packing; on the CPU: runs at once)
    mps: str = "auto"  # packed GPUs through CUDA MPS when possible (auto) or never (off)
    seed: int = 0
    hint: str = ""  # appended to a missing-dataset error (the demo names its offline fallback)
    corruptions: Path | None = None  # a given CIFAR-C directory (skips the search and generation)
    download_c: bool = False  # try the published CIFAR-C download before generating (make reproduce-cifar100)
    command: str = ""  # the command line that started the pipeline (recorded beside the report)
    stop_after: str = "report"  # "train": train the grid's runs only (no CIFAR-C, evaluation or report)


def run_cli(argv: list[str], echo=print) -> None:
    """Run one ``robustbench-aux`` command, printed first; a failure stops the pipeline."""
    echo(shown(argv))
    rc = subprocess.call(command_line(argv))
    if rc != 0:
        raise UserError(f"step failed (exit code {rc}): {shown(argv)}")


def corrupt_argv(
    dataset: str,
    data,
    out,
    *,
    seed: int = 0,
    n: int | None = None,
    device: str | None = None,
    corruptions=None,
    severities=None,
    preset: str = "cifar",
    threads: int | None = None,
) -> list[str]:
    """The ``robustbench-aux corrupt`` command generating CIFAR-C with the ``cifar`` preset (or
    CIFAR-C-bar with ``preset="cifar10-c-bar"``)."""
    argv = [
        "corrupt",
        "--dataset",
        dataset,
        "--data",
        str(data),
        "--preset",
        preset,
        "--out",
        str(out),
        "--seed",
        str(seed),
    ]
    for flag, value in (("--n", n), ("--device", device), ("--threads", threads)):
        if value:
            argv += [flag, str(value)]
    for flag, values in (("--corruptions", corruptions), ("--severities", severities)):
        if values:
            argv += [flag, ",".join(str(v) for v in values)]
    return argv


def ensure_dataset(p: Pipeline, echo=print) -> None:
    """Load the dataset, downloading/converting it when allowed; a missing one is a one-line error."""
    if p.dataset.startswith("synthetic"):
        return
    if p.dataset not in DATASETS:
        raise UserError(f"unknown dataset {p.dataset!r}; choose cifar10, cifar100 or synthetic<K>")
    try:
        load_dataset(p.dataset, p.data)
    except UserError as exc:
        if not p.download:
            raise UserError(f"{exc}{p.hint}") from None
        echo(shown(["data", "prepare", "--dataset", p.dataset, "--data", str(p.data)]))
        try:
            prepare_dataset(p.dataset, p.data, download=True)
        except UserError as exc2:
            raise UserError(f"{exc2}{p.hint}") from None


def corruption_dir(p: Pipeline, echo=print, threads: int | None = None) -> Path:
    """The given directory, else the published CIFAR-C under the data root when valid, else a
    generated copy (created here; generation resumes per file)."""
    if p.corruptions is not None:
        given = CifarCReader(p.corruptions)  # validate before hours of training
        if given.benchmark != "cifar-c":
            raise UserError(
                f"{p.corruptions} is a {given.label} directory; --corruptions needs CIFAR-C "
                "(CIFAR-C-bar comes with the grid's c_bar = true)"
            )
        return p.corruptions
    published = resolve_data_root(p.data) / CIFAR_C_NAMES.get(p.dataset, f"{p.dataset}-C")
    if published.is_dir():
        try:
            reader = CifarCReader(published)
            if reader.provenance == "published":
                echo(f"using the published corruptions in {published}")
                return published
        except UserError as exc:
            echo(f"not using {published}: {exc}")
    elif p.download_c and p.dataset in CIFAR_C_NAMES:
        try:
            run_cli(["data", "download-c", "--dataset", p.dataset, "--data", str(p.data)], echo)
            return published
        except UserError as exc:
            echo(f"the published {CIFAR_C_NAMES[p.dataset]} could not be downloaded ({exc}); generating it")
    generated = p.out / f"{CIFAR_C_NAMES.get(p.dataset, p.dataset + '-C')}-generated"
    device = p.overrides.get("device") or (
        "cuda" if p.gpus else None
    )  # generate on the GPU when there is one
    argv = corrupt_argv(
        p.dataset, p.data, generated, seed=p.seed, n=p.generate_n, device=device, threads=threads
    )
    run_cli(argv, echo)
    return generated


def cbar_dir(p: Pipeline, echo=print) -> Path:
    """Generate CIFAR-C-bar (the ``cifar10-c-bar`` preset, the same ``generate_n`` first test images
    and seed as CIFAR-C) into ``<out>/CIFAR-10(0)-C-bar-generated``; generation resumes per file."""
    out = p.out / CBAR_DIRS.get(p.dataset, f"{p.dataset}-C-bar-generated")
    device = p.overrides.get("device") or ("cuda" if p.gpus else None)
    argv = corrupt_argv(
        p.dataset, p.data, out, seed=p.seed, n=p.generate_n, device=device, preset="cifar10-c-bar"
    )
    run_cli(argv, echo)
    return out


def wants_cbar(p: Pipeline) -> bool:
    """The grid's ``c_bar = true`` (or a ``c_bar`` override): also generate and evaluate CIFAR-C-bar."""
    if "c_bar" in p.overrides and p.overrides["c_bar"] is not None:
        return bool(p.overrides["c_bar"])
    return bool(load_sweep(p.grid, **p.filters).defaults.get("c_bar"))


def run_pipeline(p: Pipeline, echo=print) -> Path:
    """Run every stage; returns the report's ``index.html``. Beside it, ``reproduction.json`` records
    the command, the grid, the machine, each stage's wall time and each run's cost."""
    started, stages = _dt.datetime.now(_dt.UTC), {}
    clock = time.perf_counter()

    def stage_done(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = now - clock
        clock = now

    command = p.command or shown(["reproduce", "--grid", str(p.grid)])
    planned = _grid_jobs(p)
    reused = reusable_evidence(p, planned)
    if len(reused) < len(planned.jobs):  # bad input stops here, before anything is written
        ensure_dataset(p, echo)
    stage_done("dataset")
    invocation = start_invocation(p.report, command=command, grid=p.grid, started=started)
    try:
        index = _run_stages(p, echo, started, stages, stage_done, command, planned, reused)
    except BaseException as exc:
        end_invocation(p.report, invocation, state=f"failed: {exc}" if str(exc) else "failed", stages=stages)
        raise
    end_invocation(
        p.report, invocation, state="trained" if p.stop_after == "train" else "finished", stages=stages
    )
    return index


def expected_config(job: Job) -> dict:
    """The resolved config the job's ``train`` step would write (its identity keys are compared
    with an evidence folder's ``config.json``)."""
    s = job.spec
    overrides = set_values(s.get("set") or {})
    if s.get("n_train") is not None:
        overrides.append(f"train.n_train={s['n_train']}")
    return resolve_config(
        methods=METHODS,
        method=s["method"],
        arch=s["arch"],
        dataset=s["dataset"],
        seed=int(s["seed"]),
        recipe=s["recipe"],
        overrides=overrides,
        epochs=s.get("epochs"),
    ).to_dict()


def evidence_folder(p: Pipeline, job: Job) -> Path:
    return p.report / EVIDENCE_DIR / job.name


def reusable_evidence(p: Pipeline, sweep: Sweep) -> dict[str, Path]:
    """Job name -> its complete, matching evidence folder, for the jobs that need no training or
    evaluation here (see the module docstring). A job whose run directory is finished is not among
    them: its evidence is refreshed from the run directory. A complete folder made another way, or
    one beside a run directory of another run, is a one-line error."""
    precision = str(sweep.defaults.get("eval_precision") or "fp32")
    c_bar, n = wants_cbar(p), sweep.defaults.get("eval_n")
    reused: dict[str, Path] = {}
    for job in sweep.jobs:
        folder = evidence_folder(p, job)
        if not evidence.is_complete(folder):
            continue  # none, or an interrupted export: the run makes it (again)
        evidence.verify(folder)
        recorded = read_config(folder, fix=f"remove {folder} to redo the run")
        differs = evidence.config_difference(
            recorded, expected_config(job)
        ) or evidence.evaluation_difference(folder, precision=precision, c_bar=c_bar, n=n)
        if differs:
            raise UserError(
                f"{folder} was made with another {differs} than {p.grid.name} asks for; remove it to "
                "train and evaluate the run again, or rerun with the grid it was made with"
            )
        run_config = read_config(job.run_dir, missing_ok=True, fix=f"remove {job.run_dir}")
        other = run_config and evidence.config_difference(run_config, recorded)
        if other:
            raise UserError(
                f"{job.run_dir} and {folder} hold different runs ({other}); remove the one that is stale"
            )
        run = RunDir(job.run_dir)
        if not (run.final.is_file() and run.summary.is_file()):  # a finished run directory is the source
            reused[job.name] = folder
    return reused


def _grid_jobs(p: Pipeline) -> Sweep:
    """The grid's jobs before CIFAR-C is known (the train steps and the identity of every run)."""
    return load_sweep(
        p.grid,
        overrides={**p.overrides, "dataset": p.dataset, "data": str(p.data), "out": str(p.out)},
        **p.filters,
    )


def _train_only(p: Pipeline, echo, stage_done, planned: Sweep, reused: dict[str, Path]) -> None:
    """Train every run of the grid (skipping finished ones, resuming interrupted ones, leaving out
    those with committed evidence); nothing else."""
    jobs = [replace(job, steps=job.steps[:1]) for job in planned.jobs if job.name not in reused]
    echo(f"training {len(jobs)} run(s) from {p.grid} (--stop-after train: no evaluation, no report)")
    outcomes = (
        run_local(jobs, workers=p.workers, gpus=p.gpus, per_gpu=p.per_gpu, mps=p.mps, echo=echo)
        if jobs
        else []
    )
    stage_done("runs")
    failed = [o.job.name for o in outcomes if o.state == "failed"]
    if failed:
        raise UserError(
            f"{len(failed)} run(s) failed: {', '.join(failed)}; see sweep.log in each run directory"
        )


def _run_stages(p: Pipeline, echo, started, stages, stage_done, command, planned, reused) -> Path:
    if reused:
        echo(
            f"reusing the evidence of {len(reused)} run(s) in {p.report / EVIDENCE_DIR} "
            f"(not trained or evaluated again): {', '.join(reused)}"
        )
    if len(reused) == len(planned.jobs):  # nothing to train or evaluate: no dataset, no CIFAR-C
        for stage in ("corruptions", "runs"):
            stage_done(stage)
        if p.stop_after == "train":
            return p.report / "index.html"
        return _report(p, echo, started, stages, stage_done, command, reused, [])
    if p.stop_after == "train":
        _train_only(p, echo, stage_done, planned, reused)
        return p.report / "index.html"
    # the grid is read (and checked) before CIFAR-C is generated; its CPU threads apply to that too
    threads = load_sweep(p.grid, overrides=p.overrides, **p.filters).defaults.get("threads")
    cdir = corruption_dir(p, echo, threads)
    overrides = {
        **p.overrides,
        "dataset": p.dataset,
        "data": str(p.data),
        "out": str(p.out),
        "corruptions": str(cdir),
    }
    if wants_cbar(p):
        overrides["corruptions_bar"] = str(cbar_dir(p, echo))
    stage_done("corruptions")
    sweep = load_sweep(p.grid, overrides=overrides, **p.filters)
    jobs = [job for job in sweep.jobs if job.name not in reused]
    echo(f"training and evaluating {len(jobs)} run(s) from {p.grid}")
    outcomes = run_local(jobs, workers=p.workers, gpus=p.gpus, per_gpu=p.per_gpu, mps=p.mps, echo=echo)
    stage_done("runs")
    failed = [o.job.name for o in outcomes if o.state == "failed"]
    finished = [o.job for o in outcomes if o.state != "failed"]
    if not finished and not reused:
        raise UserError(f"every run failed ({', '.join(failed)}); see sweep.log in each run directory")
    return _report(p, echo, started, stages, stage_done, command, reused, finished, failed)


def _report(p: Pipeline, echo, started, stages, stage_done, command, reused, finished, failed=()) -> Path:
    """Write the evidence folders of the runs finished here, then the report from every run's
    evidence folder and the reproduction record."""
    folders = dict(reused)
    for job in finished:
        folder = evidence_folder(p, job)
        echo(f"evidence of {job.name}: {folder}")
        folders[job.name] = evidence.export(job.run_dir, folder, extras=EVIDENCE_EXTRAS)
    # in name order, as `report <report>/evidence/*` or `report <report>/evidence` gives them: the
    # committed page re-renders to the same tables from its evidence folders
    paths = [str(folders[name]) for name in sorted(folders)]
    argv = ["report", *paths, "-o", str(p.report), "--produced-by", produced_by(command, p.grid)]
    report_options = load_sweep(p.grid, **p.filters).report  # the grid's [report] table
    for key, flag in (("parity", "--parity"), ("parity_label", "--parity-label")):
        if key in report_options:
            argv += [flag, report_options[key]]
    run_cli(argv, echo)
    stage_done("report")
    write_record(p.report, command=command, grid=p.grid, started=started, stages=stages, run_dirs=paths)
    if failed:
        raise UserError(f"report written without {len(failed)} failed run(s): {', '.join(failed)}")
    return p.report / "index.html"
