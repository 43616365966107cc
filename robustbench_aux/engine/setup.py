"""Building what a run needs from its config: device, data, normalization, method, model, lr schedule."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from robustbench_aux.catalog import NORMALIZATION
from robustbench_aux.config import RunConfig, TrainConfig
from robustbench_aux.datasets import DatasetArrays, load_dataset
from robustbench_aux.errors import UserError
from robustbench_aux.methods import build_method
from robustbench_aux.models import MODELS, build_model

SYNTHETIC_TRAIN_DEFAULT = 5000  # images when a synthetic dataset is asked for without n_train


@dataclass
class Run:
    data: DatasetArrays
    method: object
    model: torch.nn.Module
    model_kwargs: dict
    normalization: dict


def lr_at_epoch(t: TrainConfig, epoch: float) -> float:
    """Step schedule: ``lr * lr_decay ** (number of milestones <= epoch)``; ``epoch`` is a position
    in epochs (0-based; ``e + step / steps`` inside epoch e)."""
    return t.lr * t.lr_decay ** sum(epoch >= m for m in t.milestones)


def step_position(epoch: int, step: int, steps: int) -> float:
    """Where ``step`` (0-based) of ``steps`` in ``epoch`` starts, in epochs: exactly ``epoch`` at the
    first step, so whole-epoch milestones and penalty starts act at epoch boundaries; a fractional
    one (a short run's rescaled schedule) acts from the first step at or after it."""
    return epoch + step / steps


def lr_at_step(t: TrainConfig, epoch: int, step: int, steps: int, warmup: bool = True) -> float:
    """The lr of ``step`` (0-based) of ``steps`` in ``epoch``: the step schedule (milestones at
    :func:`step_position`) or, for ``schedule = "cosine"``, AugMix's per-step cosine from ``lr``
    (first step) towards ``lr_min`` over all ``epochs * steps`` steps; times the warm-up factor."""
    if t.schedule == "cosine":
        progress = (epoch * steps + step) / (t.epochs * steps)
        lr = t.lr_min + (t.lr - t.lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        lr = lr_at_epoch(t, step_position(epoch, step, steps))
    return lr * warmup_factor(t, epoch, step, steps) if warmup else lr


def epoch_steps(n: int, batch: int, drop_last: bool, world_size: int = 1) -> int:
    """Optimizer steps per epoch over ``n`` items: ``n // batch`` when the last partial batch is
    dropped, else ``ceil(n / batch)`` (the reference: 391 steps on 50,000 images at batch 128).
    A last batch too small to give every DDP process an image is dropped."""
    rest = n % batch
    return n // batch + (0 if drop_last or rest < world_size else 1)


def warmup_factor(t: TrainConfig, epoch: int, step: int, steps: int) -> float:
    """Linear warm-up: the fraction of the scheduled lr for ``step`` (0-based) of ``steps`` in
    ``epoch``, rising to 1 at the end of ``warmup_epochs`` (1 throughout when it is 0)."""
    if t.warmup_epochs <= 0 or epoch >= t.warmup_epochs:
        return 1.0
    return min(1.0, (epoch + (step + 1) / steps) / t.warmup_epochs)


def resolve_normalization(t: TrainConfig, dataset: str) -> dict:
    """Per-channel mean/std in [0, 1]: explicit values, else a named NORMALIZATION entry
    (``dataset`` = the dataset's own; synthetic data uses CIFAR-10's)."""
    if t.mean or t.std:
        if len(t.mean) != 3 or len(t.std) != 3:
            raise UserError(f"mean and std need 3 values each, got {list(t.mean)} and {list(t.std)}")
        return {"mean": list(t.mean), "std": list(t.std), "source": "explicit"}
    key = t.normalization
    if key == "dataset":
        key = dataset if dataset in NORMALIZATION else "cifar10"
    if key not in NORMALIZATION:
        raise UserError(
            f"unknown normalization {key!r}; choose dataset, {', '.join(NORMALIZATION)} or set mean/std"
        )
    mean, std = NORMALIZATION[key]
    return {"mean": list(mean), "std": list(std), "source": key}


def load_training_data(cfg: RunConfig, data_root) -> DatasetArrays:
    n = cfg.train.n_train or None
    if re.match(r"^synthetic\d+$", cfg.dataset):
        # the synthetic data's own seed is fixed: the training seed must not change the dataset
        return load_dataset(cfg.dataset, data_root, n_train=n or SYNTHETIC_TRAIN_DEFAULT, n_test=200, seed=0)
    data = load_dataset(cfg.dataset, data_root, n_train=n)
    if n and n > len(data.train_y):
        raise UserError(f"n_train {n} exceeds the {len(data.train_y)} training images of {cfg.dataset}")
    return data


def model_kwargs_for(cfg: RunConfig, num_classes: int, normalization: dict, method) -> dict:
    """The constructor kwargs stored in every checkpoint (enough to rebuild the model)."""
    kwargs = {"num_classes": num_classes, "mean": normalization["mean"], "std": normalization["std"]}
    is_resnet = "resnet" in MODELS.tags(cfg.arch) or cfg.arch == "test_tiny"
    if cfg.model.width:
        if not is_resnet:
            raise UserError(f"model.width applies to ResNets only, not {cfg.arch!r}")
        kwargs["width"] = cfg.model.width
    if cfg.model.aux_init != "kaiming_fan_out" and method.model_kwargs().get("num_aux_heads"):
        kwargs["aux_init"] = cfg.model.aux_init  # only when not the default: older code loads the checkpoint
    if cfg.model.stem_relu:
        if not is_resnet:
            raise UserError(f"model.stem_relu applies to ResNets only, not {cfg.arch!r}")
        kwargs["stem_relu"] = True
    kwargs.update(method.model_kwargs())
    return kwargs


def build_run(cfg: RunConfig, data_root, device: torch.device) -> Run:
    """Data, method and freshly initialised model (under ``torch.manual_seed(cfg.seed)``)."""
    MODELS.entry(cfg.arch)  # a "did you mean" error before loading any data
    data = load_training_data(cfg, data_root)
    normalization = resolve_normalization(cfg.train, cfg.dataset)
    method = build_method(cfg.method, cfg.options, crop_padding=cfg.train.crop_padding, flip=cfg.train.flip)
    kwargs = model_kwargs_for(cfg, data.num_classes, normalization, method)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, **kwargs).to(device)
    return Run(data, method, model, kwargs, normalization)
