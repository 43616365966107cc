"""Helpers that build fixture runs for evaluation and report tests.

- :func:`register_test_model` registers ``test_eval_cnn`` (a tiny CNN that normalizes its input
  itself, like the suite's models) in the real ``MODELS`` registry, once.
- :func:`save_tiny_run` writes a run directory (config.json + final.pt) holding that model.
- :func:`write_cifar_c` writes a small CIFAR-C directory in the published layout with a manifest.
- :func:`write_fixture_runs` writes evaluated runs (config.json + eval/results.csv + summary.json +
  per-image results) with accuracies from a known formula, for report tests and the example report.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustbench_aux.catalog import ALL_19, CATEGORY, CBAR_10, CLEAN, SEVERITIES
from robustbench_aux.checkpoint import save_checkpoint
from robustbench_aux.evaluation.results import build_summary, write_results
from robustbench_aux.evaluation.store import PER_IMAGE, block_name
from robustbench_aux.infra import atomic
from robustbench_aux.metrics.calibration import block_calibration
from robustbench_aux.metrics.tidy import block_rows, run_identity
from robustbench_aux.models import MODELS
from robustbench_aux.report.runs import SharedFacts

TEST_ARCH = "test_eval_cnn"
CIFAR10_NORM = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}


class TinyEvalCNN(nn.Module):
    """Two strided convolutions, global pooling, a linear head; normalizes float [0, 1] input."""

    def __init__(
        self,
        num_classes: int = 10,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        width: int = 8,
        delay_s: float = 0.0,
    ):
        super().__init__()
        self.delay_s = delay_s  # seconds slept per forward: makes a run slow enough to kill mid-way
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.fc(self.features((x - self.mean) / self.std))


def register_test_model() -> str:
    """Register ``test_eval_cnn`` in the real registry (idempotent); returns its name."""
    if TEST_ARCH not in MODELS:
        MODELS.add(TEST_ARCH, TinyEvalCNN, tags=("test",))
    return TEST_ARCH


def save_tiny_run(
    run_dir: Path,
    *,
    num_classes: int = 10,
    dataset: str = "cifar10",
    seed: int = 0,
    method: str = "plain",
    model: nn.Module | None = None,
    width: int = 8,
    delay_s: float = 0.0,
    **config_extra,
) -> Path:
    """A run directory holding ``test_eval_cnn`` (random weights unless ``model`` is given)."""
    register_test_model()
    torch.manual_seed(seed)
    kwargs = {
        "num_classes": num_classes,
        "mean": CIFAR10_NORM["mean"],
        "std": CIFAR10_NORM["std"],
        "width": width,
    }
    if delay_s:  # a constructor argument, so the model rebuilt from the checkpoint is slow too
        kwargs["delay_s"] = delay_s
    model = model if model is not None else TinyEvalCNN(**kwargs)
    config = {
        "run_id": f"{method}-{TEST_ARCH}-s{seed}",
        "method": method,
        "arch": TEST_ARCH,
        "dataset": dataset,
        "num_classes": num_classes,
        "seed": seed,
        "recipe": "test",
        "epochs": 0,
        "normalization": CIFAR10_NORM,
        "data": {"dataset": dataset},
        "code_version": "test",
        **config_extra,
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_json(run_dir / "config.json", config)
    save_checkpoint(
        run_dir / "final.pt",
        arch=TEST_ARCH,
        model_kwargs=kwargs,
        state_dict=model.state_dict(),
        config=config,
    )
    return run_dir


def _corrupt(x: np.ndarray, corruption: str, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Stand-in damage for fixtures (not the real corruption engine): noise or contrast loss."""
    f = x.astype(np.float32)
    if CATEGORY[corruption] == "noise":
        f = f + rng.normal(0, 12.0 * severity, f.shape)
    else:
        f = f.mean(axis=(1, 2), keepdims=True) + (f - f.mean(axis=(1, 2), keepdims=True)) * (
            1 - 0.15 * severity
        )
    return np.clip(f, 0, 255).astype(np.uint8)


def write_cifar_c(
    directory: Path,
    images: np.ndarray,
    labels: np.ndarray,
    corruptions=("gaussian_noise", "contrast"),
    *,
    preset: str = "cifar",
    manifest: bool = True,
    seed: int = 0,
    presets: dict | None = None,
) -> Path:
    """A CIFAR-C directory in the published layout from the given test images (n per severity)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = {}
    for c in corruptions:
        arr = np.concatenate([_corrupt(images, c, s, rng) for s in SEVERITIES])
        atomic.save_npy(directory / f"{c}.npy", arr)
        entry = {"sha256": hashlib.sha256((directory / f"{c}.npy").read_bytes()).hexdigest()}
        if presets and c in presets:
            entry["preset"] = presets[c]
        files[f"{c}.npy"] = entry
    atomic.save_npy(directory / "labels.npy", np.tile(np.asarray(labels, np.int64), len(SEVERITIES)))
    if manifest:
        atomic.write_json(directory / "manifest.json", {"generated": True, "preset": preset, "files": files})
    return directory


# ----------------------------------------------------------------------------- report fixtures
ARCH_CLEAN = {"resnet18": 0.76, "resnet50": 0.78, "wrn40_2": 0.75}
# clean-accuracy shift (points/100) and robustness gain per method label, by training family
CLEAN_SHIFT = {
    "plain": 0.0,
    "naive_augmentation": -0.020,
    "auxiliary": 0.022,
    "auxiliary[no_sbn]": -0.005,
    "auxiliary[no_sbn_per_view]": 0.003,
    "naive_augmentation[joint_batch]": -0.024,
    "augmix": 0.012,
    "augmix[published protocol]": 0.021,
    "per_corruption[noise]": -0.010,
    "per_corruption[blur]": -0.004,
    "per_corruption[contrast]": -0.006,
    "per_corruption[rotation]": -0.008,
}
FAMILY_OF = {
    "gaussian_noise": "noise",
    "shot_noise": "noise",
    "speckle_noise": "noise",
    "impulse_noise": "noise",
    "gaussian_blur": "blur",
    "defocus_blur": "blur",
    "contrast": "contrast",
    "brightness": "contrast",
    "saturate": "contrast",
    "fog": "contrast",
}
GAIN = {  # robustness gain on a corruption family (fraction), and a penalty on others
    "naive_augmentation": ({"noise": 0.12, "blur": 0.08, "contrast": 0.06}, 0.0),
    "auxiliary": ({"noise": 0.14, "blur": 0.10, "contrast": 0.08}, 0.02),
    "auxiliary[no_sbn]": ({"noise": 0.10, "blur": 0.07, "contrast": 0.05}, 0.0),
    "auxiliary[no_sbn_per_view]": ({"noise": 0.12, "blur": 0.08, "contrast": 0.07}, 0.01),
    "naive_augmentation[joint_batch]": ({"noise": 0.11, "blur": 0.09, "contrast": 0.05}, 0.0),
    "augmix": ({"noise": 0.06, "blur": 0.09, "contrast": 0.05}, 0.05),
    "augmix[published protocol]": ({"noise": 0.07, "blur": 0.10, "contrast": 0.06}, 0.06),
    "per_corruption[noise]": ({"noise": 0.18, "contrast": -0.06}, -0.01),
    "per_corruption[blur]": ({"blur": 0.12, "noise": -0.03}, 0.0),
    "per_corruption[contrast]": ({"contrast": 0.10}, 0.0),
    "per_corruption[rotation]": ({}, 0.005),
}


def fixture_accuracy(label: str, arch: str, seed: int, corruption: str, severity: int) -> float:
    """The known accuracy a fixture run of ``label`` has on one block (a smooth made-up formula)."""
    clean = ARCH_CLEAN[arch] + CLEAN_SHIFT.get(label, 0.0) + 0.004 * (seed - 1)
    if corruption == CLEAN:
        return clean
    names = ALL_19 if corruption in ALL_19 else CBAR_10  # C-bar: no training family, the "other" gain
    hardness = 0.05 + 0.04 * (names.index(corruption) % 5)  # per-corruption difficulty
    base = clean - hardness * severity
    gains, other = GAIN.get(label, ({}, 0.0))
    gain = gains.get(FAMILY_OF.get(corruption, ""), other) * severity / 3.0
    if corruption in CBAR_10:  # unseen families: a third of the method's unseen gain, seed-dependent
        gain = (other / 3 + 0.002 * seed) * severity / 3.0
    return float(np.clip(base + gain, 0.02, 0.98))


def _per_image(acc: float, n: int, block_seed: int) -> np.ndarray:
    """Exactly round(acc·n) correct images; the easiest images (shared across runs) are correct."""
    order = np.random.default_rng(block_seed).permutation(n)
    return order < int(round(acc * n))


def _fixture_scores(hit: np.ndarray, label: str, seed: int, block_seed: int) -> np.ndarray:
    """Made-up (confidence, NLL, Brier) per image of 10 classes: the confidence is the block's
    accuracy plus an overconfidence that plain training has most of, jittered per image."""
    rng = np.random.default_rng(block_seed + 7 * seed)
    over = 0.15 if label == "plain" else 0.05
    conf = np.clip(hit.mean() + over + rng.normal(0, 0.08, len(hit)), 0.11, 0.999)
    p_y = np.where(hit, conf, (1 - conf) / 9)
    rest = (1 - conf) / 9
    brier = np.where(hit, (1 - conf) ** 2 + 9 * rest**2, conf**2 + (1 - rest) ** 2 + 8 * rest**2)
    return np.stack([conf, -np.log(p_y), brier], axis=1).astype(np.float32)


def fixture_config(label: str, arch: str, seed: int, dataset: str = "cifar100") -> dict:
    """The config.json of a fixture run of ``label`` (method plus corruption/variant keys).

    ``naive_augmentation[joint_batch]`` / ``per_corruption[noise,joint_batch]`` record that data
    reading (the plain ``naive_augmentation`` / ``per_corruption[...]`` the default one, as training
    writes it under ``options``); ``augmix[published protocol]`` is a run of the
    ``augmix_published`` recipe (100 epochs), every other run has the reference recipe's source.
    """
    method, _, inner = label.partition("[")
    parts = [p for p in inner.rstrip("]").split(",") if p]
    published = "published protocol" in parts
    config = {
        "run_id": f"{label.replace('[', '-').rstrip(']').replace(' ', '_').replace(',', '-')}-{arch}-s{seed}",
        "method": method,
        "arch": arch,
        "dataset": dataset,
        "num_classes": 100,
        "seed": seed,
        "recipe": "augmix_published" if published else "fixture",
        "recipe_source": "augmix_published" if published else "auxiliary_training_reference",
        # the recipe's reference length: no "fewer epochs" banner item
        "train": {"epochs": 100 if published else 210},
        "normalization": {"mean": [0.5071, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2762]},
        "data": {"dataset": dataset, "copy": "fixture (made-up numbers)"},
        "code_version": "fixture",
    }
    parts = [p for p in parts if p != "published protocol"]
    if method in ("naive_augmentation", "per_corruption"):
        reading = "joint_batch" if "joint_batch" in parts else "enlarged_dataset"
        config["options"] = {"data_reading": reading, "step_budget": "full_pass"}
        parts = [p for p in parts if p != "joint_batch"]
    if method == "per_corruption":
        config["corruption"] = parts[0]
    elif parts:
        config["variant"] = parts[0]
    return config


FIXTURE_TRAIN = 50_000  # training images behind a fixture run's metrics.csv (the full set)


def fixture_compute(config: dict) -> tuple[int, int]:
    """(optimizer steps, images with every view counted) per epoch of a fixture run, as the engine
    counts them at batch 128 on the full training set: enlarged-dataset naive / per-corruption
    augmentation visits 5 / 2 items per image, auxiliary training 5 views and AugMix 3 per image."""
    method = config["method"]
    reading = (config.get("options") or {}).get("data_reading")
    views = {"auxiliary": 5, "augmix": 3, "naive_augmentation": 5, "per_corruption": 2}.get(method, 1)
    items = FIXTURE_TRAIN * (views if reading == "enlarged_dataset" else 1)
    return -(-items // 128), FIXTURE_TRAIN * views


def write_fixture_metrics(run_dir: Path, config: dict) -> None:
    """The run's metrics.csv (one row per epoch: epoch, steps, images), as training writes it."""
    steps, images = fixture_compute(config)
    epochs = int(config["train"]["epochs"])
    rows = ["epoch,steps,images"] + [f"{e},{steps},{images}" for e in range(1, epochs + 1)]
    atomic.write_text(run_dir / "metrics.csv", "\n".join(rows) + "\n")


def write_fixture_run(
    root: Path,
    label: str,
    arch: str,
    seed: int,
    *,
    n: int = 200,
    corruptions=ALL_19,
    dataset: str = "cifar100",
    preset: str = "cifar",
    provenance: str = "generated",
    calibration: bool = False,
) -> Path:
    """One evaluated fixture run under ``root``; returns its directory. With ``calibration`` its
    blocks also get per-image scores (made-up confidences: overconfident by a label-dependent
    amount) and the table its calibration columns."""
    config = fixture_config(label, arch, seed, dataset)
    run_dir = root / config["run_id"]
    atomic.write_json(run_dir / "config.json", config)
    write_fixture_metrics(run_dir, config)
    blocks = [(CLEAN, 0)] + [(c, s) for c in corruptions for s in SEVERITIES]
    correct, counts, cal = {}, [], {}
    for i, (c, s) in enumerate(blocks):
        acc = fixture_accuracy(label, arch, seed, c, s)
        hit = _per_image(acc, n, block_seed=1000 + i)
        correct[(c, s)] = hit
        counts.append((c, s, n, int(hit.sum())))
        atomic.save_npy(run_dir / "eval" / PER_IMAGE / f"{block_name(c, s)}.npy", hit)
        if calibration:
            scores = _fixture_scores(hit, label, seed, block_seed=2000 + i)
            for j, quantity in enumerate(("confidence", "nll", "brier")):
                path = run_dir / "eval" / PER_IMAGE / f"{block_name(c, s)}.{quantity}.npy"
                atomic.save_npy(path, np.ascontiguousarray(scores[:, j]))
            cal[(c, s)] = block_calibration(hit, scores)
    table = block_rows(run_identity(config), counts, cal)
    prov = {
        "data": {"dataset": dataset, "copy": "fixture (made-up numbers)", "n_test": n},
        "corruptions": {
            "provenance": provenance,
            "preset": preset,
            "n_per_severity": n,
            "corruptions": list(corruptions),
            "manifest_sha256": {},
        },
        "code_version": "fixture",
        "torch": torch.__version__,
        "device": "none (fixture)",
    }
    if any(c in CBAR_10 for c in corruptions):
        prov["corruptions_bar"] = {
            "benchmark": "cifar-c-bar",
            "provenance": "generated",
            "preset": "cifar10-c-bar",
            "parameters": "the published CIFAR-10-C-bar levels (fixture)",
            "corruptions": [c for c in corruptions if c in CBAR_10],
        }
    write_results(run_dir / "eval", table, build_summary(table, correct, provenance=prov))
    return run_dir


FIXTURE_LABELS = (
    "plain",
    "naive_augmentation",
    "naive_augmentation[joint_batch]",
    "per_corruption[noise]",
    "per_corruption[blur]",
    "per_corruption[contrast]",
    "per_corruption[rotation]",
    "auxiliary",
    "auxiliary[no_sbn]",
    "auxiliary[no_sbn_per_view]",
    "augmix",
    "augmix[published protocol]",
)


def write_fixture_runs(
    root: Path,
    *,
    archs=("resnet18", "resnet50"),
    seeds=(0, 1, 2),
    labels=FIXTURE_LABELS,
    n: int = 200,
    corruptions=ALL_19,
) -> list[Path]:
    """Evaluated fixture runs for every (label, arch, seed); returns their directories."""
    return [
        write_fixture_run(root, lab, a, s, n=n, corruptions=corruptions)
        for a in archs
        for lab in labels
        for s in seeds
    ]


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


_REPORT_CACHE: dict = {}


# the section ids every rendered report page must have
SECTIONS = (
    "claim",
    "methods",
    "tradeoff",
    "interference",
    "families",
    "severity",
    "corruptions",
    "significance",
    "runs",
    "provenance",
)


def build_fixture_report(tmp_path_factory) -> dict:
    """Fixture runs (12 labels x 2 architectures x 2 seeds, 19 corruptions, n=100) and their report.

    Built once per test session and shared by the test modules that wrap it in a fixture.
    """
    if "report" not in _REPORT_CACHE:
        from robustbench_aux.report import build_report

        root = tmp_path_factory.mktemp("fixture_report")
        runs = write_fixture_runs(root / "runs", seeds=(0, 1), n=100)
        index = build_report(
            [root / "runs"], root / "report", note="fixture runs with made-up numbers <test>"
        )
        _REPORT_CACHE["report"] = {"root": root, "runs": runs, "index": index, "out": root / "report"}
    return _REPORT_CACHE["report"]


# what a report's runs share in the paper's setting (published CIFAR-100-C, full blocks and test set):
# the banner tests vary one fact at a time from here
PAPER_SHARED = SharedFacts(
    dataset="cifar100",
    clean_test_images=10_000,
    corruption_provenance="published",
    corruption_preset="cifar",
    images_per_block=10_000,
    corruption_set="the 19 CIFAR-C corruptions x severities 1-5",
)
