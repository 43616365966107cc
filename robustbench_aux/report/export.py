"""Export evaluated runs in RobustBench's leaderboard shape (``model_info/<dataset>/corruptions``).

RobustBench keeps one JSON per model (accuracies as percent *strings* with two decimals, its
convention, not ours) and an ``unaggregated_results.csv`` with a two-row header (corruption,
severity) over the 15 benchmark corruptions in alphabetical order, holding fractions.
``corruptions_acc`` is the mean over those 15 corruptions x 5 severities.

CIFAR-C-bar results of a run (``evaluate --corruptions`` with a C-bar directory) are never exported:
RobustBench has no C-bar track. The entry's footnote says they were left out, ``cbar_note`` gives
the line the CLI prints, and a run evaluated on CIFAR-C-bar only, or a CIFAR-C-bar directory passed
instead of a run, is a one-line error.

What RobustBench would accept is checked: the dataset is cifar10 or cifar100, the corruptions are
the published CIFAR-C files (not a generated copy), and every block (clean included) holds
10,000 images. Anything else is refused unless ``allow_nonstandard``, and then the entry says so
(``nonstandard`` lists the reasons, the footnote starts with them).

A run of a published method (auxiliary training, AugMix) is labelled as a *reproduction*: the paper
is linked, but the paper's authors are not given as the entry's authors. Files are named in
RobustBench's ``<Name><Year><Word>`` style: ``Zhang2020Auxiliary_Repro_ResNet18`` for a reproduction
(first author and year of the paper), ``RobustbenchAux<Year><Method>_<Arch>`` for this suite's
baselines and models evaluated with ``evaluate --model``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from robustbench_aux.catalog import BENCHMARK_15, CBAR_10, CLEAN, SEVERITIES
from robustbench_aux.cifar_c_layout import corruption_npy
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.infra.paths import component, inside
from robustbench_aux.report.cbar import has_cbar
from robustbench_aux.report.csvcells import to_csv
from robustbench_aux.report.runs import RunRecord, load_runs


@dataclass(frozen=True)
class Paper:
    first_author: str
    year: int
    word: str  # the name's word
    title: str
    authors: str
    venue: str
    link: str


PAPERS = {
    "auxiliary": Paper(
        "Zhang",
        2020,
        "Auxiliary",
        "Auxiliary Training: Towards Accurate and Robust Models",
        "Linfeng Zhang, Muzhou Yu, Tong Chen, Zhenda Shi, Chenglong Bao, Kaisheng Ma",
        "CVPR 2020",
        "https://doi.org/10.1109/CVPR42600.2020.00045",
    ),
    "augmix": Paper(
        "Hendrycks",
        2020,
        "AugMix",
        "AugMix: A Simple Data Processing Method to Improve Robustness and Uncertainty",
        "Dan Hendrycks, Norman Mu, Ekin D. Cubuk, Barret Zoph, Justin Gilmer, Balaji Lakshminarayanan",
        "ICLR 2020",
        "https://arxiv.org/abs/1912.02781",
    ),
}
PAPER = PAPERS["auxiliary"]  # the paper this suite reproduces
SUITE_NAME = "RobustbenchAux"  # the <Name> of entries that are this suite's own (baselines, --model)
ARCH_NAMES = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "wrn40_2": "WideResNet-40-2",
}
ARCH_WORDS = {"wrn40_2": "WRN40_2"}
STANDARD_DATASETS = ("cifar10", "cifar100")
STANDARD_N = 10_000  # images per block in the published CIFAR-10-C / CIFAR-100-C
UNAGGREGATED = "unaggregated_results.csv"
MODEL_ID = re.compile(r"^[A-Z][A-Za-z]*\d{4}[A-Za-z0-9]+(_[A-Za-z0-9_]+)?$")


def _unfinished(r: RunRecord) -> bool:
    """Evaluated from ``last.pt``: training had not finished."""
    return (r.summary.get("provenance") or {}).get("checkpoint_finished") is False


CBAR_LEFT_OUT = "CIFAR-C-bar results left out (RobustBench has no CIFAR-C-bar track)"


def cbar_note(records: list[RunRecord]) -> str | None:
    """The line to print when any run has CIFAR-C-bar results: they are not in the export."""
    ids = [r.run_id for r in records if has_cbar(r.table)]
    if not ids:
        return None
    shown = ", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "")
    return f"note: {CBAR_LEFT_OUT}: {len(ids)} run(s) ({shown}); see `robustbench-aux report` for them"


def _complete(r: RunRecord, allow_partial: bool) -> tuple[pd.DataFrame, list[str]]:
    if has_cbar(r.table) and not r.table["corruption"].isin(BENCHMARK_15).any():
        raise UserError(
            f"run {r.run_id} was evaluated on CIFAR-C-bar only; RobustBench has no CIFAR-C-bar track and its "
            "corruptions_acc needs CIFAR-C: evaluate the run with --corruptions <CIFAR-C dir> too"
        )
    if _unfinished(r) and not allow_partial:
        raise UserError(
            f"run {r.run_id} was evaluated from an unfinished checkpoint (last.pt); finish its training "
            "and evaluate it again, or pass --allow-partial (the entry is then marked partial)"
        )
    t = r.table[r.table["corruption"].isin(BENCHMARK_15)]
    have = set(zip(t["corruption"], t["severity"], strict=True))
    missing = [f"{c}/{s}" for c in BENCHMARK_15 for s in SEVERITIES if (c, s) not in have]
    if missing and not allow_partial:
        raise UserError(
            f"run {r.run_id} lacks {len(missing)} of the 75 benchmark blocks "
            f"(e.g. {', '.join(missing[:3])}); "
            "RobustBench's corruptions_acc averages all 15 x 5: evaluate them, or pass --allow-partial"
        )
    return t, missing


def nonstandard_reasons(r: RunRecord) -> list[str]:
    """Why RobustBench would not accept this run's evaluation as a leaderboard entry (empty: it would)."""
    reasons = []
    dataset = str(r.table["dataset"].iloc[0])
    if dataset not in STANDARD_DATASETS:
        reasons.append(f"dataset {dataset} (RobustBench's corruption leaderboards are cifar10 and cifar100)")
    provenance = r.corruption_provenance.get("provenance") or "unknown"
    if provenance != "published":
        reasons.append(f"{provenance} CIFAR-C, not the published files (robustbench-aux data download-c)")
    t = r.table[r.table["corruption"].isin((CLEAN, *BENCHMARK_15))]
    n_min = int(t["n"].min()) if len(t) else 0
    if n_min < STANDARD_N:
        reasons.append(f"{n_min:,} images per block, not {STANDARD_N:,}")
    return reasons


def _camel(text: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", text) if p)


def _variant(r: RunRecord) -> str:
    """The bracketed part of the label (variant or training corruption), e.g. ``no_sbn``."""
    return r.label.partition("[")[2].rstrip("]")


def model_id(r: RunRecord, year: int | None = None) -> str:
    """RobustBench-style file name (no suffix) of a run; see the module docstring."""
    method = r.label.split("[")[0]
    arch = ARCH_WORDS.get(r.arch) or _camel(ARCH_NAMES.get(r.arch, r.arch))
    paper = PAPERS.get(method)
    if paper is not None:
        return f"{paper.first_author}{paper.year}{paper.word}{_camel(_variant(r))}_Repro_{arch}"
    year = year or datetime.datetime.now(datetime.UTC).year
    if method == "external":
        return f"{SUITE_NAME}{year}{_camel(r.run_id)}"
    return f"{SUITE_NAME}{year}{_camel(r.label)}_{arch}"


def robustbench_entry(
    r: RunRecord, *, allow_partial: bool = False, allow_nonstandard: bool = False, **fields
) -> dict:
    """One run as a RobustBench leaderboard JSON entry (``fields`` override link, name, authors, venue)."""
    t, missing = _complete(r, allow_partial)
    reasons = nonstandard_reasons(r)
    if reasons and not allow_nonstandard:
        raise UserError(
            f"run {r.run_id} is not a standard RobustBench evaluation: {'; '.join(reasons)}; "
            "pass --allow-nonstandard to export it marked as such"
        )
    clean = float(r.table.loc[r.table["corruption"] == CLEAN, "acc"].iloc[0])
    corr = float(t["acc"].mean())  # equal n per block: the mean over blocks is the mean over images
    method = r.label.split("[")[0]
    paper = PAPERS.get(method)
    cp = r.corruption_provenance
    run_note = (
        f"robustbench-aux run {r.run_id} ({r.label}{'' if r.seed < 0 else f', seed {r.seed}'}); corruptions "
        f"{cp.get('provenance', 'unknown')} ({cp.get('preset', '?')} preset)"
    )
    if paper is not None:
        variant = _variant(r)
        name = (
            f"{paper.title}{f' ({variant} variant)' if variant else ''} - reproduction with robustbench-aux"
        )
        footnote = (
            f"Reproduction of {paper.first_author} et al. ({paper.venue}) with robustbench-aux, not the "
            f"authors' entry; {run_note}"
        )
    elif method == "external":
        name, footnote = r.run_id, f"Evaluated with robustbench-aux evaluate --model; {run_note}"
    else:
        name, footnote = f"{r.label} (robustbench-aux baseline)", run_note
    entry = {
        "link": paper.link if paper else "",
        "name": name,
        "authors": "",  # who trained this run: pass --authors (never the paper's authors for a reproduction)
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": str(r.table["dataset"].iloc[0]),
        "venue": f"{paper.venue} (reproduction)" if paper else "",
        "architecture": ARCH_NAMES.get(r.arch, r.arch),
        "eps": None,
        "clean_acc": f"{100 * clean:.2f}",
        "reported": "",
        "corruptions_acc": f"{100 * corr:.2f}",
        "footnote": footnote,
    }
    if reasons:
        entry["nonstandard"] = reasons
        entry["footnote"] = f"NON-STANDARD evaluation ({'; '.join(reasons)}). {footnote}"
    entry.update({k: v for k, v in fields.items() if v is not None})
    partial = ([f"{len(missing)} of 75 benchmark blocks missing"] if missing else []) + (
        ["unfinished training (last.pt)"] if _unfinished(r) else []
    )
    if has_cbar(r.table):
        entry["footnote"] += f"; {CBAR_LEFT_OUT}"
    if partial:  # only with --allow-partial: never a leaderboard entry without the mark
        entry["partial"] = True
        entry["footnote"] += f"; PARTIAL: {', '.join(partial)}"
    return entry


def model_ids(records: list[RunRecord], given: str | None = None) -> list[str]:
    """File names of the runs: :func:`model_id`, ``_s<seed>`` added where two runs would collide."""
    if given is not None:
        if len(records) != 1:
            raise UserError("--model-id names one exported run; pass a single run with it")
        if not MODEL_ID.match(given):
            raise UserError(
                f"--model-id {given!r} is not in RobustBench's <Name><Year><Word> style (e.g. Smith2024Robust_WRN)"
            )
        return [given]
    ids = [model_id(r) for r in records]
    ids = [f"{i}_s{r.seed}" if ids.count(i) > 1 and r.seed >= 0 else i for i, r in zip(ids, records)]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise UserError(
            f"several runs would be exported as {', '.join(dup)}; export them one at a time with --model-id"
        )
    return ids


def unaggregated_table(records: list[RunRecord], ids: list[str] | None = None) -> pd.DataFrame:
    """Rows = model ids (run ids if none given), columns = (corruption, severity) over the 15 in
    alphabetical order, fractions."""
    cols = pd.MultiIndex.from_product([sorted(BENCHMARK_15), list(SEVERITIES)])
    rows = {}
    for r, name in zip(records, ids or [r.run_id for r in records]):
        t = r.table[r.table["corruption"].isin(BENCHMARK_15)]
        rows[name] = t.set_index(["corruption", "severity"])["acc"].reindex(cols)
    return pd.DataFrame(rows).T.reindex(columns=cols)


def _refuse_corruption_dirs(run_paths) -> None:
    """A corruption directory passed where an evaluated run is required: one line naming it."""
    for raw in run_paths:
        p = Path(raw)
        if not p.is_dir():
            continue
        if any((p / corruption_npy(c)).is_file() for c in CBAR_10):
            raise UserError(
                f"{p} is a CIFAR-C-bar directory, not an evaluated run; export takes runs evaluated on CIFAR-C "
                "(RobustBench has no CIFAR-C-bar track)"
            )
        if any((p / corruption_npy(c)).is_file() for c in BENCHMARK_15):
            raise UserError(f"{p} is a CIFAR-C directory, not an evaluated run; pass run directories")


def export_robustbench(
    run_paths,
    out_dir: str | Path,
    *,
    allow_partial: bool = False,
    allow_nonstandard: bool = False,
    model_id: str | None = None,
    **fields,
) -> list[Path]:
    """Write ``<model id>.json`` per run and ``unaggregated_results.csv`` into ``out_dir``; every run is
    checked before anything is written."""
    _refuse_corruption_dirs(run_paths)
    records = load_runs(run_paths)
    out_dir = Path(out_dir)
    entries = [
        robustbench_entry(r, allow_partial=allow_partial, allow_nonstandard=allow_nonstandard, **fields)
        for r in records
    ]
    ids = model_ids(records, model_id)
    # every target checked before the first write: a refusal leaves the output directory as it was
    targets = [inside(out_dir, f"{component(i, 'model id')}.json") for i in ids]
    unaggregated = inside(out_dir, UNAGGREGATED)
    written = [atomic.write_json(target, e) for target, e in zip(targets, entries)]
    table = unaggregated_table(records, ids)
    written.append(atomic.write_text(unaggregated, to_csv(table, float_format="%.4f")))
    return written
