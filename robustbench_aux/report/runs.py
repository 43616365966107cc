"""Loading evaluated runs for a report, and refusing runs that cannot be compared.

A run is a directory with ``config.json`` and ``eval/results.csv`` + ``eval/summary.json`` (written
by ``robustbench-aux evaluate``), or a run's evidence folder (the same files, per-image results
bit-packed in ``eval/per_image.npz``, no checkpoint: :mod:`robustbench_aux.evaluation.evidence`),
checked against its manifest before it is read. A directory that is not itself a run but holds runs
one level down (a sweep's output folder, a report's ``evidence/``) stands for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from robustbench_aux.catalog import CLEAN
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation import evidence
from robustbench_aux.evaluation.results import read_results
from robustbench_aux.evaluation.store import load_per_image, load_per_image_scores
from robustbench_aux.infra.paths import component
from robustbench_aux.metrics.calibration import SCORE_FIELDS
from robustbench_aux.report.compute import training_compute
from robustbench_aux.rundir import EVAL_DIR, EVIDENCE_JSON, PER_IMAGE_NPZ, RESULTS_CSV, read_config
from robustbench_aux.runinfo import RunInfo, run_info


@dataclass
class RunRecord:
    """One evaluated run: its directory, config, summary and tidy table (per-image results on demand)."""

    path: Path
    config: dict
    summary: dict
    table: pd.DataFrame
    _per_image: dict | None = field(default=None, repr=False)
    eval_dir: Path | None = None  # where results.csv is (default: <path>/eval)
    _compute: dict | None = field(default=None, repr=False)
    _scores: dict | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.table["run_id"].iloc[0])

    @property
    def info(self) -> RunInfo:
        """What the run's config says about it (:mod:`robustbench_aux.runinfo`)."""
        return run_info(self.config)

    @property
    def label(self) -> str:
        return str(self.table["label"].iloc[0])

    @property
    def arch(self) -> str:
        return str(self.table["arch"].iloc[0])

    @property
    def seed(self) -> int:
        return int(self.table["seed"].iloc[0])

    def per_image(self) -> dict[tuple[str, int], np.ndarray]:
        """Per-image correctness of every block (empty when the run was evaluated without it)."""
        if self._per_image is None:
            eval_dir = self.eval_dir or self.path / EVAL_DIR
            packed = eval_dir / PER_IMAGE_NPZ
            # an evidence folder: the packed file (checked with the folder when it was loaded)
            self._per_image = (
                evidence.read_packed(packed).correct if packed.is_file() else load_per_image(eval_dir)
            )
        return self._per_image

    def scores(self) -> dict[tuple[str, int], np.ndarray]:
        """Per-image calibration scores of every block, (n, 3) float: confidence, NLL, Brier (the
        columns of SCORE_FIELDS). From an evidence folder, the quantities it packed (the pipeline
        packs the confidence, which the ECE bootstrap needs) with NaN columns for the others; empty
        when none were recorded."""
        if self._scores is None:
            eval_dir = self.eval_dir or self.path / EVAL_DIR
            packed = eval_dir / PER_IMAGE_NPZ
            if packed.is_file():
                extras = evidence.read_packed(packed).extras
                blocks = extras.get(SCORE_FIELDS[0], {})
                self._scores = {
                    key: np.stack(
                        [
                            np.asarray(extras[q][key], np.float32)
                            if key in extras.get(q, {})
                            else np.full(len(values), np.nan, np.float32)
                            for q in SCORE_FIELDS
                        ],
                        axis=1,
                    )
                    for key, values in blocks.items()
                }
            else:
                self._scores = load_per_image_scores(eval_dir)
        return self._scores

    def compute(self) -> dict:
        """Optimizer steps and images seen in training (:func:`report.compute.training_compute`)."""
        if self._compute is None:
            self._compute = training_compute(self.path)
        return self._compute

    @property
    def corruption_provenance(self) -> dict:
        return (self.summary.get("provenance") or {}).get("corruptions") or {}


def _is_run(path: Path) -> bool:
    return (path / EVAL_DIR / RESULTS_CSV).is_file() or (path / RESULTS_CSV).is_file()


def expand_run_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Run directories from the arguments: each path itself, or the runs one level below it."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError(f"no such run directory: {p}")
        if _is_run(p):
            out.append(p)
            continue
        children = sorted(c for c in p.iterdir() if c.is_dir() and _is_run(c)) if p.is_dir() else []
        if not children:
            raise UserError(
                f"{p} holds no evaluated run (no eval/results.csv); run `robustbench-aux evaluate {p}`"
            )
        out.extend(children)
    return out


def load_run(path: str | Path) -> RunRecord:
    """Read one evaluated run: ``path`` is the run directory, or an evaluation directory (its
    ``eval/`` or any ``evaluate --out DIR``)."""
    path = Path(path)
    if evidence.is_complete(path):
        evidence.verify(path)  # its files as exported: a changed or missing one is a one-line error
    elif (path / EVAL_DIR / PER_IMAGE_NPZ).is_file():
        raise UserError(
            f"{path} is an incomplete evidence folder (no {EVIDENCE_JSON}: its export was interrupted); "
            "export it again from its run directory (robustbench-aux export-evidence)"
        )
    eval_dir = path / EVAL_DIR
    if (path / RESULTS_CSV).is_file() and not (eval_dir / RESULTS_CSV).is_file():
        eval_dir = path
        path = path.parent if path.name == EVAL_DIR else path
    table, summary = read_results(eval_dir)
    if table["run_id"].nunique() != 1:
        raise UserError(f"{eval_dir / RESULTS_CSV} holds several runs; a run's table holds one")
    for column in ("run_id", "arch"):  # both become file names (<run_id>.json, interference_<arch>.csv)
        component(str(table[column].iloc[0]), f"{eval_dir / RESULTS_CSV}: {column}")
    config = read_config(path, missing_ok=True, fix="the run directory is damaged")
    if config.get("method"):
        # the label is derived from the config again, so runs evaluated before a labelling rule
        # existed (data reading, AugMix's published protocol) are still told apart
        table = table.assign(label=run_info(config).label)
    return RunRecord(path, config, summary, table, eval_dir=eval_dir)


def load_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    """Load every run named (or found one level below); duplicate run ids are an error."""
    records = [load_run(p) for p in expand_run_paths(paths)]
    if not records:
        raise UserError("no runs given; pass run directories (or a folder holding them)")
    seen: dict[str, Path] = {}
    for r in records:
        if r.run_id in seen:
            raise UserError(
                f"run id {r.run_id!r} appears twice ({seen[r.run_id]} and {r.path}); pass each run once"
            )
        seen[r.run_id] = r.path
    return records


def _blocks(r: RunRecord) -> frozenset:
    t = r.table[r.table["corruption"] != CLEAN]
    return frozenset(zip(t["corruption"], t["severity"], strict=True))


def _describe_blocks(b: frozenset) -> str:
    names = sorted({c for c, _ in b})
    sevs = sorted({s for _, s in b})
    return f"{len(names)} corruptions x severities {sevs}" if names else "no corruptions"


@dataclass(frozen=True)
class SharedFacts:
    """What every run of a report shares (:func:`check_comparable` refuses runs that differ)."""

    dataset: str
    clean_test_images: int
    corruption_provenance: str | None  # "published" / "generated" (None: not recorded)
    corruption_preset: str | None
    images_per_block: int  # the largest corruption block (0: no corrupted block)
    corruption_set: str  # the (corruption, severity) blocks in words

    @property
    def published(self) -> bool:
        return self.corruption_provenance == "published"


# each shared fact's name in a refusal message (the one mapping from identifier to display label)
FACT_LABELS = {
    "dataset": "dataset",
    "clean_test_images": "clean test images",
    "corruption_provenance": "corruption provenance (published/generated)",
    "corruption_preset": "corruption preset",
    "images_per_block": "images per corruption block",
    "corruption_set": "corruption set",
}


def check_comparable(records: list[RunRecord]) -> SharedFacts:
    """Refuse runs evaluated on different data; returns the shared provenance facts.

    Compared: dataset, clean test size, published vs generated corruptions, corruption preset,
    images per block, and the set of (corruption, severity) blocks. The message names the
    difference and the runs on each side.
    """
    facts = {
        "dataset": lambda r: r.table["dataset"].iloc[0],
        "clean_test_images": lambda r: int(r.table.loc[r.table["corruption"] == CLEAN, "n"].iloc[0]),
        "corruption_provenance": lambda r: r.corruption_provenance.get("provenance"),
        "corruption_preset": lambda r: r.corruption_provenance.get("preset"),
        "images_per_block": lambda r: (
            int(r.table.loc[r.table["corruption"] != CLEAN, "n"].max())
            if (r.table["corruption"] != CLEAN).any()
            else 0
        ),
        "corruption_set": _blocks,
    }
    shared = {}
    for name, get in facts.items():
        values: dict = {}
        for r in records:
            values.setdefault(get(r), []).append(r.run_id)
        if len(values) > 1:
            parts = []
            for v, ids in values.items():
                shown = _describe_blocks(v) if name == "corruption_set" else v
                parts.append(f"{shown!s} ({', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''})")
            raise UserError(
                f"runs cannot be compared: different {FACT_LABELS[name]}: {' vs '.join(parts)}; "
                "re-evaluate them on the same data or report them separately"
            )
        shared[name] = next(iter(values))
    shared["dataset"] = str(shared["dataset"])
    shared["corruption_set"] = _describe_blocks(shared["corruption_set"])
    return SharedFacts(**shared)


def combined_table(records: list[RunRecord]) -> pd.DataFrame:
    """All runs' tidy tables in one."""
    return pd.concat([r.table for r in records], ignore_index=True)
