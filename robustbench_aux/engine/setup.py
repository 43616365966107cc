"""Building what a run needs from its config: device, data, normalization, method, model, lr schedule."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from robustbench_aux.config import RunConfig, TrainConfig
from robustbench_aux.datasets import NORMALIZATION, DatasetArrays, load_dataset
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


def lr_at_epoch(t: TrainConfig, epoch: int) -> float:
    """Step schedule: ``lr * lr_decay ** (number of milestones <= epoch)`` (0-based epochs)."""
    return t.lr * t.lr_decay ** sum(epoch >= m for m in t.milestones)


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
