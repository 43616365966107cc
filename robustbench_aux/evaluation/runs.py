"""Evaluate a run directory (or a bare checkpoint) of this suite; outputs go to ``<run>/eval/``.

The model is rebuilt with :func:`robustbench_aux.checkpoint.load_classifier`; it normalizes its
input itself with the statistics stored in its checkpoint, and the run config's ``normalization``
is recorded in the summary. Nothing about the dataset or its statistics is hard-coded here: the
test set is the run's ``dataset`` and its class count must match the model's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from robustbench_aux.checkpoint import find_checkpoint, load_classifier
from robustbench_aux.datasets import load_dataset
from robustbench_aux.errors import UserError
from robustbench_aux.evaluation.api import EvalResult, EvalSubject, evaluate
from robustbench_aux.evaluation.results import read_results
from robustbench_aux.infra.devices import resolve_device
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.paths import component
from robustbench_aux.lock import exclusive
from robustbench_aux.rundir import CONFIG_JSON, EVAL_DIR, LAST_PT, read_config

log = logging.getLogger(__name__)


def eval_dir_for(path: str | Path, out: str | Path | None = None) -> Path:
    """Where results go: ``out`` if given; ``<run>/eval`` for a run directory (or a checkpoint
    inside one); else ``<checkpoint stem>_eval/`` beside a bare checkpoint file."""
    if out is not None:
        return Path(out)
    path = Path(path)
    if path.is_dir():
        return path / EVAL_DIR
    if (path.parent / CONFIG_JSON).is_file():
        return path.parent / EVAL_DIR
    return path.parent / f"{path.stem}_{EVAL_DIR}"


def _run_config(path: Path, ckpt_config: dict) -> dict:
    """The checkpoint's config, completed by the run directory's config.json where present."""
    run_dir = path if path.is_dir() else path.parent
    config = read_config(run_dir, missing_ok=True, fix="restore it from the checkpoint")
    merged = {**config, **(ckpt_config or {})}
    merged.setdefault("run_id", run_dir.name)  # runs without an id are named after their directory
    for key in ("run_id", "arch"):  # later file names (export, report): checked where they are read
        if key in merged:
            component(merged[key], f"{run_dir}: config {key}")
    return merged


def _load_test_set(config: dict, data_root):
    name = config.get("dataset")
    if not name:
        raise UserError("the run's config names no dataset; it must hold a 'dataset' key (cifar10, cifar100)")
    if str(name).startswith("synthetic"):
        data_cfg = config.get("data") or {}
        return load_dataset(name, n_test=data_cfg.get("n_test"), seed=int(data_cfg.get("synthetic_seed", 0)))
    return load_dataset(name, data_root)


def evaluate_run(
    path: str | Path,
    corruptions_dir: str | Path | None,
    *,
    data_root: str | Path | None = None,
    n: int | None = None,
    device=None,
    out: str | Path | None = None,
    reference: str | Path | None = None,
    **kwargs,
) -> EvalResult:
    """Evaluate a run directory or checkpoint; write ``results.csv``/``summary.json`` to its eval dir.

    ``reference``: another evaluated run (directory or eval directory) for normalized/relative mCE.
    Further keyword arguments go to :func:`evaluate` (batch_size, precision, corruptions, restart...).
    """
    path = Path(path)
    ckpt = find_checkpoint(path)
    dev = resolve_device(device)
    model, ckpt_config = load_classifier(ckpt, device=dev)
    config = _run_config(path, ckpt_config)
    data = _load_test_set(config, data_root)
    k_cfg = config.get("num_classes")
    if k_cfg is not None and int(k_cfg) != data.num_classes:
        raise UserError(
            f"{ckpt} was trained with num_classes={k_cfg} but its dataset {data.name} has "
            f"{data.num_classes}; "
            "the config and checkpoint disagree (a checkpoint from another run?)"
        )
    ref_table = None
    if reference is not None:
        ref = Path(reference)
        ref_table, _ = read_results(ref / EVAL_DIR if (ref / EVAL_DIR).is_dir() else ref)
    out_dir = eval_dir_for(path, out)
    ckpt_sha = sha256_file(ckpt)
    extra = {
        "checkpoint": str(ckpt.resolve()),
        "checkpoint_sha256": ckpt_sha,
        # last.pt: training has not finished (export refuses it as a complete entry)
        "checkpoint_finished": ckpt.name != LAST_PT,
        "run_normalization": config.get("normalization"),
        "normalization_note": "applied inside the model with the statistics stored in its checkpoint",
        "run_data": config.get("data"),
        "run_code_version": config.get("code_version"),
        # the training run's protocol deviations from its recipe's source (config.json; [] = none)
        "recipe": config.get("recipe"),
        "recipe_source": config.get("recipe_source"),
        "deviations": list(config.get("deviations") or []),
    }
    with exclusive(out_dir, "--out"):  # one evaluation writes an evaluation directory at a time
        result = evaluate(
            model,
            data,
            corruptions_dir,
            n=n,
            device=dev,
            out_dir=out_dir,
            reference=ref_table,
            subject=EvalSubject(info=config, provenance=extra, fingerprint={"checkpoint_sha256": ckpt_sha}),
            **kwargs,
        )
    log.info("wrote %s", out_dir)
    return result
