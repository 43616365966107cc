"""``evaluate(model, dataset=..., corruptions_dir=...)``: clean and CIFAR-C accuracy and calibration
(ECE, RMS calibration error, NLL, Brier; docs/metrics.md) of any model.

RobustBench-style one call on any ``torch.nn.Module`` that maps float [0, 1] images (B, 3, 32, 32)
to logits. Every (corruption, severity) block present in ``corruptions_dir`` (a CIFAR-C directory,
a CIFAR-C-bar directory, or a list holding one of each) is evaluated, batched
on the device; with ``out_dir`` each finished block is stored, so a killed call resumes, and the
tidy CSV plus the summary JSON (defined in docs/metrics.md) are written there, once.

It runs in three steps, each a function of its own: :func:`plan_evaluation` checks the inputs and
decides what to evaluate (an :class:`EvalPlan`), :func:`run_blocks` predicts every block (or loads
it from the block store), and :func:`finish_evaluation` builds the table and summary (with the
reference run's figures when one is given) and writes them. The options the steps share (test-set
size, batch size, device, precision, which blocks, ...) are one :class:`EvalOptions`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from robustbench_aux.catalog import ALL_19, CBAR_10, CIFAR_C, CIFAR_C_BAR, CLEAN, SEVERITIES, benchmark_of
from robustbench_aux.cifar_c_layout import LABELS_NPY
from robustbench_aux.datasets import CifarCReader, DatasetArrays, load_dataset
from robustbench_aux.errors import NonFiniteError, UserError, did_you_mean, user_code
from robustbench_aux.evaluation import provenance as prov
from robustbench_aux.evaluation.predict import (
    EvalBatch,
    NonFiniteLogits,
    Normalized,
    output_classes,
    predict_scores,
)
from robustbench_aux.evaluation.results import build_summary, write_results
from robustbench_aux.evaluation.store import BlockStore
from robustbench_aux.infra.devices import resolve_device
from robustbench_aux.infra.versioning import code_version
from robustbench_aux.metrics.calibration import block_calibration
from robustbench_aux.metrics.tidy import block_rows, run_identity

log = logging.getLogger(__name__)

Block = tuple[str, int]  # (corruption, severity); (CLEAN, 0) is the clean test set


@dataclass
class EvalResult:
    """What :func:`evaluate` returns: the tidy table, the summary dict, per-image correctness and
    per-image calibration scores (confidence, NLL, Brier; None for a block stored without them)."""

    table: pd.DataFrame
    summary: dict
    correct: dict[Block, np.ndarray] = field(repr=False)
    out_dir: Path | None = None
    scores: dict[Block, np.ndarray | None] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class EvalSubject:
    """What an evaluation is of, for this suite's own callers (a training run, an external model).

    ``info``: config-like identity (run_id, method, arch, seed, ...) for the table's rows;
    ``provenance``: extra keys for the summary's provenance; ``fingerprint``: extra keys that tell
    this evaluation's stored blocks from another's (a different checkpoint must not resume them);
    ``model_label``: set for a model from outside this suite (the ``--model`` spec): an exception
    raised in its forward (``SystemExit`` included) becomes a one-line error naming it.
    """

    info: Mapping | None = None
    provenance: Mapping | None = None
    fingerprint: Mapping | None = None
    model_label: str | None = None


@dataclass(frozen=True)
class EvalOptions:
    """The options :func:`plan_evaluation` takes and :func:`evaluate` passes on (see
    :func:`evaluate` for each): what to evaluate beyond the model, the dataset and the corruption
    directories, and how."""

    data_root: str | Path | None = None
    n: int | None = None
    batch_size: int | None = None
    device: str | torch.device | None = None
    precision: str = "fp32"
    normalization: tuple[Sequence[float], Sequence[float]] | None = None
    corruptions: Iterable[str] | None = None
    severities: Iterable[int] = SEVERITIES
    subject: EvalSubject = EvalSubject()
    verify: bool = True


@dataclass(frozen=True)
class CorruptionBenchmark:
    """One corruption benchmark of an evaluation (CIFAR-C or CIFAR-C-bar): its directory's reader
    and the provenance the summary records for it."""

    reader: CifarCReader
    provenance: dict

    @property
    def name(self) -> str:
        """``cifar-c`` or ``cifar-c-bar`` (``catalog.CIFAR_C`` / ``CIFAR_C_BAR``)."""
        return self.reader.benchmark


@dataclass
class EvalPlan:
    """Everything :func:`run_blocks` and :func:`finish_evaluation` need, checked up front."""

    model: torch.nn.Module  # on the device, wrapped in Normalized when asked
    device: torch.device
    x_test: np.ndarray
    y_test: np.ndarray
    data_desc: dict
    blocks: list[Block]
    model_label: str | None  # EvalSubject.model_label: the forward is code from outside this suite
    identity: dict
    fingerprint: dict
    n: int | None
    batch: EvalBatch  # shared by every block: a size halved after CUDA out of memory stays halved
    precision: str
    normalization: tuple[Sequence[float], Sequence[float]] | None
    was_training: bool  # the model came in training mode: put it back afterwards
    # the corruption directories given, CIFAR-C before CIFAR-C-bar (at most one of each)
    benchmarks: list[CorruptionBenchmark] = field(default_factory=list)

    def benchmark(self, name: str) -> CorruptionBenchmark | None:
        """The benchmark called ``name`` (``CIFAR_C`` / ``CIFAR_C_BAR``), None if no directory was given."""
        return next((b for b in self.benchmarks if b.name == name), None)


@dataclass
class BlockOutcome:
    """What :func:`run_blocks` found: per-image correctness, calibration scores and counts per
    block, and the work done."""

    correct: dict[Block, np.ndarray]
    counts: list[tuple[str, int, int, int]]  # (corruption, severity, n, n_correct)
    images_now: int  # images predicted in this call (the others came from the block store)
    compute_s: float
    # per block, float32 (n, 3) confidence / NLL / Brier; None for a stored block evaluated before
    # they were recorded (its calibration is "not recorded")
    scores: dict[Block, np.ndarray | None] = field(default_factory=dict)
    calibration: dict[Block, dict[str, float]] = field(default_factory=dict)


def _test_arrays(dataset, data_root, n: int | None) -> tuple[np.ndarray, np.ndarray, dict, int]:
    """(images, labels, provenance, num_classes) of the clean test set, first ``n`` images."""
    if isinstance(dataset, str):
        dataset = load_dataset(dataset, data_root)
    if isinstance(dataset, DatasetArrays):
        x, y, desc, k = dataset.test_x, dataset.test_y, dataset.describe(), dataset.num_classes
    elif isinstance(dataset, Sequence) and len(dataset) == 2:
        x, y = np.asarray(dataset[0]), np.asarray(dataset[1])
        k = 0  # unknown: only checked against the model's logits below
        desc = {"dataset": "user arrays", "source": "arrays passed to evaluate()", "n_test": int(len(y))}
    else:
        raise UserError(
            "dataset must be a name (cifar10, cifar100, synthetic<K>), DatasetArrays or (images, labels)"
        )
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise UserError(f"test images must be uint8 (N, H, W, 3), got {x.dtype} {x.shape}")
    return x[:n], np.asarray(y[:n]).astype(np.int64), desc, k


def _readers(corruptions_dir, num_classes: int | None) -> dict[str, CifarCReader]:
    """One reader per benchmark: ``corruptions_dir`` is None, one directory or a list of them (at
    most one CIFAR-C and one CIFAR-C-bar directory)."""
    if corruptions_dir is None:
        return {}
    dirs = [corruptions_dir] if isinstance(corruptions_dir, str | Path) else list(corruptions_dir)
    readers: dict[str, CifarCReader] = {}
    for d in dirs:
        r = CifarCReader(d, num_classes=num_classes)
        if r.benchmark in readers:
            raise UserError(
                f"two {r.label} directories given ({readers[r.benchmark].directory} and {r.directory}); "
                "pass at most one CIFAR-C and one CIFAR-C-bar directory"
            )
        readers[r.benchmark] = r
    return readers


def _blocks(readers: Mapping[str, CifarCReader], corruptions, severities) -> list[Block]:
    blocks = [(CLEAN, 0)]
    if not readers:
        return blocks
    if corruptions is None:
        wanted = [
            c for bench in (CIFAR_C, CIFAR_C_BAR) if bench in readers for c in readers[bench].corruptions
        ]
    else:
        wanted = list(corruptions)
    known = ALL_19 + CBAR_10
    unknown = [c for c in wanted if c not in known]
    if unknown:
        hint = did_you_mean(unknown[0], known, cutoff=0.6)
        raise UserError(
            f"unknown corruption name {unknown[0]!r}{hint}; choose from the 19 CIFAR-C and the ten "
            "CIFAR-C-bar names"
        )
    for c in wanted:
        reader = readers.get(benchmark_of(c))
        if reader is None:
            kind = "CIFAR-C-bar" if c in CBAR_10 else "CIFAR-C"
            raise UserError(
                f"{c} is a {kind} corruption but no {kind} directory was given (--corruptions DIR)"
            )
        if c not in reader.corruptions:
            raise UserError(f"{reader.directory} has no file for {c}; {reader.fix}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise UserError(f"severities must be in 1..5, got {bad}")
    return blocks + [(c, int(s)) for c in wanted for s in severities]


def _corruption_provenance(reader: CifarCReader, blocks, n, y_test, verify: bool) -> dict:
    """A CIFAR-C (or CIFAR-C-bar) directory's provenance (preset, checksums checked); refuses labels
    that are not the test set's, image for image."""
    used = sorted({c for c, _ in blocks if c in reader.corruptions})
    preset = prov.check_presets(reader, used)
    checked = prov.verify_checksums(reader, used) if verify else {}
    k = min(reader.n if n is None else min(n, reader.n), len(y_test))
    if not np.array_equal(reader.labels[:k], y_test[:k]):
        raise UserError(
            f"{reader.directory / LABELS_NPY} differs from the clean test labels of this dataset "
            "(image i of every block must be test image i); it belongs to another dataset or order"
        )
    described = reader.describe()
    return {
        **described,
        "preset": preset or described["preset"],
        "parameters": reader.manifest.get("parameters"),
        "verified_sha256": checked,
        "labels_match_test_set": True,
    }


def _to_eval(model: torch.nn.Module) -> bool:
    """Put ``model`` in eval mode, warning if it was training; True if it was (to restore it after).

    A ``torch.export`` program cannot switch modes (its mode was fixed when it was exported): kept as is.
    """
    if not model.training:
        return False
    try:
        model.eval()
    except NotImplementedError:
        return False
    warnings.warn(
        f"{type(model).__name__} was in training mode; it is evaluated in eval mode (BatchNorm running "
        "statistics, no dropout) and put back in training mode afterwards",
        UserWarning,
        stacklevel=4,
    )
    return True


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.model if isinstance(model, Normalized) else model


def _check_classes(model, device, x_test, y_test, num_classes: int) -> None:
    k_out = output_classes(model, device, int(x_test.shape[1]))
    if len(y_test) and int(y_test.max()) >= k_out:
        raise UserError(f"test labels reach {int(y_test.max())} but the model outputs {k_out} classes")
    if num_classes and k_out != num_classes:
        raise UserError(
            f"the model outputs {k_out} classes but the test set has {num_classes}; a checkpoint from a "
            "different dataset? evaluate it on a dataset with as many classes"
        )


def plan_evaluation(
    model: torch.nn.Module,
    dataset: str | DatasetArrays | tuple,
    corruptions_dir: str | Path | Sequence[str | Path] | None,
    options: EvalOptions = EvalOptions(),
) -> EvalPlan:
    """Check every input (test set, CIFAR-C directory and its labels, the model's class count) and
    list the blocks; puts the model in eval mode on the device. Arguments as :func:`evaluate`."""
    o = options
    device, n, subject, normalization = resolve_device(o.device), o.n, o.subject, o.normalization
    if n is not None and n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    x_test, y_test, data_desc, num_classes = _test_arrays(dataset, o.data_root, n)
    readers = _readers(corruptions_dir, num_classes or None)
    blocks = _blocks(readers, o.corruptions, tuple(o.severities))
    benchmarks = [
        CorruptionBenchmark(readers[name], _corruption_provenance(readers[name], blocks, n, y_test, o.verify))
        for name in (CIFAR_C, CIFAR_C_BAR)
        if name in readers
    ]
    c = next((b for b in benchmarks if b.name == CIFAR_C), None)
    bar = next((b for b in benchmarks if b.name == CIFAR_C_BAR), None)
    was_training = _to_eval(model)
    try:
        # (no .eval() on the wrapper: a torch.export program would refuse the mode switch; see _to_eval)
        model = (Normalized(model, *normalization) if normalization is not None else model).to(device)
        with user_code(subject.model_label, "the model's forward (on one blank image)"):
            _check_classes(model, device, x_test, y_test, num_classes)
    except BaseException:
        if was_training:
            _unwrap(model).train()
        raise
    fingerprint = {
        "weights": prov.model_digest(model),
        "dataset": data_desc.get("dataset"),
        "n": n,
        "corruptions_dir": str(c.reader.directory.resolve()) if c is not None else None,
        "corruption_files": (c.provenance.get("manifest_sha256") or None) if c is not None else None,
        "precision": o.precision,
        **dict(subject.fingerprint or {}),
    }
    if bar is not None:  # only then: a CIFAR-C-only evaluation keeps its earlier fingerprint
        fingerprint["corruptions_bar_dir"] = str(bar.reader.directory.resolve())
        fingerprint["corruption_bar_files"] = bar.provenance.get("manifest_sha256") or None
    identity = run_identity(
        subject.info or {"run_id": "model", "method": "external", "arch": type(model).__name__}
    )
    return EvalPlan(
        model=model,
        device=device,
        x_test=x_test,
        y_test=y_test,
        data_desc=data_desc,
        blocks=blocks,
        model_label=subject.model_label,
        identity=identity,
        fingerprint=fingerprint,
        n=n,
        batch=EvalBatch(device, o.batch_size),
        precision=o.precision,
        normalization=normalization,
        was_training=was_training,
        benchmarks=benchmarks,
    )


def run_blocks(plan: EvalPlan, store: BlockStore | None = None) -> BlockOutcome:
    """Predict every block of ``plan`` in order; a block already in ``store`` is loaded instead of
    predicted, and a newly predicted one is stored at once (so a killed evaluation resumes)."""
    done = BlockOutcome(correct={}, counts=[], images_now=0, compute_s=0.0)
    for corruption, severity in tqdm(plan.blocks, desc="evaluate", unit="block", disable=None):
        if corruption == CLEAN:
            x, y = plan.x_test, plan.y_test
        else:
            b = plan.benchmark(benchmark_of(corruption)).reader.block(corruption, severity, plan.n)
            x, y = b.images, b.labels.astype(np.int64)
        hit = store.load(corruption, severity, len(y)) if store else None
        scores = store.load_scores(corruption, severity, len(y)) if hit is not None else None
        if hit is None:
            t0 = time.perf_counter()
            block = "the clean test set" if corruption == CLEAN else f"block {corruption} severity {severity}"
            try:
                with user_code(plan.model_label, f"the model's forward on {block}"):
                    predicted, scores = predict_scores(
                        plan.model, x, y, batch_size=plan.batch, device=plan.device, precision=plan.precision
                    )
            except NonFiniteLogits as exc:
                kept = "; the blocks finished before it are kept" if store and done.counts else ""
                raise NonFiniteError(f"{block}: {exc}{kept}") from None
            hit = predicted == y
            done.compute_s += time.perf_counter() - t0
            done.images_now += len(y)
            if store:
                store.save(corruption, severity, hit, scores)
        done.correct[(corruption, severity)] = hit
        done.scores[(corruption, severity)] = scores
        done.calibration[(corruption, severity)] = block_calibration(hit, scores)
        done.counts.append((corruption, severity, len(hit), int(hit.sum())))
        log.debug("%s s%d: %.4f", corruption, severity, hit.mean() if len(hit) else float("nan"))
    missing = [b for b, v in done.scores.items() if v is None]
    if missing:
        log.warning(
            "%d of %d blocks were stored before calibration was recorded: their ECE, RMS calibration error, "
            "NLL and Brier are 'not recorded' (evaluate into a new --out to record them)",
            len(missing),
            len(done.scores),
        )
    return done


def finish_evaluation(
    plan: EvalPlan,
    done: BlockOutcome,
    *,
    started: float,
    subject: EvalSubject = EvalSubject(),
    reference: pd.DataFrame | None = None,
    out_dir: str | Path | None = None,
) -> EvalResult:
    """The tidy table and the summary (normalized/relative mCE against ``reference``, another
    run's table, when given); written to ``out_dir`` once when given."""
    table = block_rows(plan.identity, done.counts, done.calibration)
    norm = plan.normalization
    c, bar = plan.benchmark(CIFAR_C), plan.benchmark(CIFAR_C_BAR)
    provenance = {
        "data": plan.data_desc,
        "corruptions": c.provenance if c is not None else {"provenance": None},  # no CIFAR-C directory
        **({"corruptions_bar": bar.provenance} if bar is not None else {}),
        "code_version": code_version(),
        "torch": torch.__version__,
        "device": str(plan.device),
        "precision": plan.precision,
        "batch_size": plan.batch.size,  # the size used (smaller than asked after CUDA out of memory)
        "explicit_normalization": {"mean": list(norm[0]), "std": list(norm[1])} if norm is not None else None,
        "weights_sha256": plan.fingerprint["weights"],
        **dict(subject.provenance or {}),
    }
    timing = {
        "seconds": time.perf_counter() - started,
        "images_evaluated_now": done.images_now,
        "images_per_second": done.images_now / done.compute_s if done.compute_s > 0 else None,
    }
    summary = build_summary(table, done.correct, provenance=provenance, timing=timing, reference=reference)
    if out_dir is not None:
        write_results(out_dir, table, summary)
    return EvalResult(
        table, summary, done.correct, Path(out_dir) if out_dir is not None else None, done.scores
    )


def evaluate(
    model: torch.nn.Module,
    dataset: str | DatasetArrays | tuple = "cifar100",
    corruptions_dir: str | Path | Sequence[str | Path] | None = None,
    *,
    out_dir: str | Path | None = None,
    reference: pd.DataFrame | None = None,
    restart: bool = False,
    **options,
) -> EvalResult:
    """Evaluate ``model`` on the clean test set and every CIFAR-C block; see the module docstring.

    The other keywords are :class:`EvalOptions`'s fields (``data_root``, ``n``, ``batch_size``,
    ``device``, ``precision``, ``normalization``, ``corruptions``, ``severities``, ``subject``,
    ``verify``); an unknown keyword is a TypeError naming it.

    ``dataset``: a dataset name (loaded from ``data_root``), a DatasetArrays or ``(images, labels)``.
    ``n``: images per block (default: all). ``normalization``: ``(mean, std)`` for a foreign model
    that expects normalized input (this suite's models normalize internally: leave it None).
    ``reference``: another run's results table (``read_results``) for normalized/relative mCE.
    ``subject``: what the evaluation is of (:class:`EvalSubject`; this suite's run and model paths).
    ``restart``: discard stored blocks of a different evaluation in ``out_dir`` instead of refusing.
    ``verify``: check CIFAR-C files against the manifest's sha256 before starting.
    """
    started = time.perf_counter()
    opts = EvalOptions(**options)
    plan = plan_evaluation(model, dataset, corruptions_dir, opts)
    try:
        store = BlockStore(out_dir, plan.fingerprint, restart=restart) if out_dir is not None else None
        done = run_blocks(plan, store)
        return finish_evaluation(
            plan, done, started=started, subject=opts.subject, reference=reference, out_dir=out_dir
        )
    finally:
        if plan.was_training:
            _unwrap(plan.model).train()  # hand the model back in the mode it came in
