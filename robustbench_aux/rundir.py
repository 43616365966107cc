"""The run directory's file names, in one place (docs/design.md lists what each file holds).

Every stage that writes or reads a run directory (train, evaluate, report, sweep, check) spells its
files through this module: the names below, or a :class:`RunDir`. It imports only
``errors`` of the project, so it sits at the bottom of the import order. :func:`read_config` is the
one reader of ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustbench_aux.infra.jsonio import read_json_object

CONFIG_JSON = "config.json"  # the resolved run config
METRICS_CSV = "metrics.csv"  # one row per epoch
LAST_PT = "last.pt"  # resumable checkpoint, every epoch
FINAL_PT = "final.pt"  # checkpoint of the finished run
EVAL_DIR = "eval"  # evaluation outputs:
RESULTS_CSV = "results.csv"  # eval/results.csv, the tidy long table
SUMMARY_JSON = "summary.json"  # eval/summary.json, per-run summary and provenance
PROGRESS_JSON = "progress.json"  # eval/progress.json, the resumable evaluation's finished blocks
PER_IMAGE_DIR = "per_image"  # eval/per_image/<block>.npy, per-image correctness
# (and eval/per_image/<block>.<quantity>.npy, float per-image quantities: confidence, nll, brier)
SWEEP_LOG = "sweep.log"  # the sweep's log of the run's steps
LOCK_FILE = ".lock"  # one writer per run / evaluation / CIFAR-C directory
# a run's evidence (evaluation/evidence.py): the files above without checkpoints, beside a report
EVIDENCE_DIR = "evidence"  # <report>/evidence/<run id>/, one folder per run
PER_IMAGE_NPZ = "per_image.npz"  # eval/per_image.npz, every block's per-image results, bit-packed
EVIDENCE_JSON = "evidence.json"  # the folder's manifest (sha256 of each file), written last


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory's files."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / CONFIG_JSON

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_CSV

    @property
    def last(self) -> Path:
        return self.path / LAST_PT

    @property
    def final(self) -> Path:
        return self.path / FINAL_PT

    @property
    def eval_dir(self) -> Path:
        return self.path / EVAL_DIR

    @property
    def results(self) -> Path:
        return self.eval_dir / RESULTS_CSV

    @property
    def summary(self) -> Path:
        return self.eval_dir / SUMMARY_JSON

    @property
    def per_image_dir(self) -> Path:
        return self.eval_dir / PER_IMAGE_DIR

    @property
    def per_image_packed(self) -> Path:
        return self.eval_dir / PER_IMAGE_NPZ

    @property
    def evidence_manifest(self) -> Path:
        return self.path / EVIDENCE_JSON

    @property
    def sweep_log(self) -> Path:
        return self.path / SWEEP_LOG

    @property
    def lock(self) -> Path:
        return self.path / LOCK_FILE


def read_config(
    run_dir: str | Path, *, missing_ok: bool = False, fix: str = "the run directory is damaged"
) -> dict:
    """The run directory's ``config.json`` as a dict (``{}`` if absent and ``missing_ok``); a one-line
    UserError naming the file and ``fix`` if it cannot be read, is not JSON or not a JSON object."""
    return read_json_object(RunDir(run_dir).config, fix, missing_ok=missing_ok)
