"""``robustbench_aux.benchmark(model, dataset="cifar100", data_dir=...)``: RobustBench's two numbers.

``clean_acc`` on the clean test set and ``corruptions_acc``, the mean accuracy over the 15 benchmark
corruptions x 5 severities (RobustBench's ``corruptions`` threat model), both fractions in [0, 1].
The model takes float images in [0, 1] (pass ``normalization`` if it expects normalized input).

The result unpacks as that pair; it also carries ``.calibration`` (ECE, RMS calibration error, NLL
and Brier on the clean set and averaged over the 75 blocks, docs/metrics.md) and ``.table`` (the
tidy per-block table).
"""

from __future__ import annotations

from pathlib import Path

from robustbench_aux.catalog import BENCHMARK_15, CIFAR_C, CLEAN, SEVERITIES
from robustbench_aux.datasets import CifarCReader, resolve_data_root
from robustbench_aux.datasets.cifar_c import PUBLISHED_DIRS
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation.api import evaluate
from robustbench_aux.metrics.calibration import CALIBRATION_COLUMNS

CIFAR_C_DIR = {dataset: dirname for dirname, dataset in PUBLISHED_DIRS.items()}


class BenchmarkResult(tuple):
    """``(clean_acc, corruptions_acc)`` (unpacks and compares as that pair) with ``.calibration``:
    ``{"clean": {metric: value}, "corruptions": {metric: mean over the 75 blocks}}`` for metric in
    ece, rmsce, nll, brier (NaN where not recorded), and ``.table``, the tidy per-block table."""

    def __new__(cls, clean_acc: float, corruptions_acc: float, calibration: dict, table):
        obj = super().__new__(cls, (clean_acc, corruptions_acc))
        obj.calibration = calibration
        obj.table = table
        return obj

    @property
    def clean_acc(self) -> float:
        return self[0]

    @property
    def corruptions_acc(self) -> float:
        return self[1]

    def __getnewargs__(self):
        return (self[0], self[1], self.calibration, self.table)


def benchmark(
    model,
    dataset: str = "cifar100",
    data_dir: str | Path | None = None,
    *,
    corruptions_dir: str | Path | None = None,
    n: int | None = None,
    device=None,
    batch_size: int | None = None,
    precision: str = "fp32",
    normalization=None,
    out_dir: str | Path | None = None,
) -> BenchmarkResult:
    """``(clean_acc, corruptions_acc)`` of ``model`` (a :class:`BenchmarkResult` that also holds
    calibration); see the module docstring.

    ``data_dir`` holds ``<dataset>/`` (the array layout) and ``CIFAR-10-C/`` or ``CIFAR-100-C/``
    (``robustbench-aux data download-c``); ``corruptions_dir`` points elsewhere (e.g. a generated copy).
    ``n``: first n images of every block (default: all). ``out_dir``: also write the tidy CSV and summary
    there (and resume from it).
    """
    if dataset not in CIFAR_C_DIR:
        raise UserError(
            f"benchmark() covers cifar10 and cifar100, not {dataset!r}; use evaluate() for others"
        )
    root = resolve_data_root(data_dir)
    cdir = Path(corruptions_dir) if corruptions_dir is not None else root / CIFAR_C_DIR[dataset]
    reader = CifarCReader(cdir)
    if reader.benchmark != CIFAR_C:
        raise UserError(
            f"{cdir} is a {reader.label} directory; benchmark() reports RobustBench's CIFAR-C figure: pass a "
            "CIFAR-C directory (evaluate() takes CIFAR-C-bar)"
        )
    reader = CifarCReader(cdir, require=BENCHMARK_15)
    missing = [s for s in SEVERITIES if s not in reader.severities]
    if missing:
        raise UserError(f"{cdir} lacks severities {missing}; corruptions_acc needs all five")
    res = evaluate(
        model,
        dataset,
        cdir,
        data_root=root,
        n=n,
        device=device,
        batch_size=batch_size,
        precision=precision,
        normalization=normalization,
        corruptions=list(BENCHMARK_15),
        severities=SEVERITIES,
        out_dir=out_dir,
    )
    t = res.table
    clean = float(t.loc[t["corruption"] == CLEAN, "acc"].iloc[0])
    blocks = t[t["corruption"].isin(BENCHMARK_15)]
    assert len(blocks) == len(BENCHMARK_15) * len(SEVERITIES)
    # every block holds the same n images: the mean over the 75 blocks is RobustBench's mean
    clean_row = t.loc[t["corruption"] == CLEAN].iloc[0]
    calibration = {
        "clean": {k: float(clean_row[k]) for k in CALIBRATION_COLUMNS},
        # the mean over the 75 blocks (NaN when a block's calibration was not recorded)
        "corruptions": {k: float(blocks[k].mean(skipna=False)) for k in CALIBRATION_COLUMNS},
    }
    return BenchmarkResult(clean, float(blocks["acc"].mean()), calibration, t)
