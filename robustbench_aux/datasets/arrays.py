"""The array layout: ``<root>/<dataset>/{train_x,train_y,test_x,test_y}.npy`` plus ``classes.json``.

Images are uint8 NHWC RGB, labels int64. It is the cache format the suite converts CIFAR into
and the layout of the shared CIFAR-10 copy; it memory-maps, so loading is instant.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustbench_aux.datasets.npy import check_images, check_labels, load_npy
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic

SPLIT_FILES = ("train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy")


@dataclass
class DatasetArrays:
    """A whole dataset as arrays. ``source`` says where it came from and is copied into every output."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]
    source: str
    synthetic: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> DatasetArrays:
        """The first ``n_train`` / ``n_test`` images (the shared copy is pre-shuffled, so prefixes are fair)."""
        out = DatasetArrays(
            self.name,
            self.train_x[:n_train],
            self.train_y[:n_train],
            self.test_x[:n_test],
            self.test_y[:n_test],
            list(self.classes),
            self.source,
            self.synthetic,
            dict(self.meta),
        )
        if n_train is not None or n_test is not None:
            out.meta["subset"] = {"n_train": len(out.train_y), "n_test": len(out.test_y)}
        return out

    def describe(self) -> dict:
        """Provenance record written into run directories and reports."""
        return {
            "dataset": self.name,
            "source": self.source,
            "synthetic": self.synthetic,
            "num_classes": self.num_classes,
            "n_train": int(len(self.train_y)),
            "n_test": int(len(self.test_y)),
            **self.meta,
        }


def read_array_dir(
    directory: str | Path, name: str, *, num_classes: int | None = None, mmap: bool = True
) -> DatasetArrays:
    """Read and validate one dataset in the array layout."""
    directory = Path(directory)
    fix = f"re-create it with `robustbench-aux data prepare --dataset {name} --data {directory.parent}`"
    train_x = load_npy(directory / "train_x.npy", fix=fix, mmap=mmap)
    train_y = load_npy(directory / "train_y.npy", fix=fix, mmap=mmap)
    test_x = load_npy(directory / "test_x.npy", fix=fix, mmap=mmap)
    test_y = load_npy(directory / "test_y.npy", fix=fix, mmap=mmap)
    classes_path = directory / "classes.json"
    if classes_path.is_file():
        try:
            classes = json.loads(classes_path.read_text(encoding="utf-8"))
        except ValueError as exc:  # bad JSON or not UTF-8
            raise UserError(f"{classes_path} is not a JSON list of class names ({exc}); {fix}") from None
        if not isinstance(classes, list) or not all(isinstance(c, (str, int)) for c in classes):
            raise UserError(f"{classes_path} is not a JSON list of class names; {fix}")
        classes = [str(c) for c in classes]
    else:
        k = num_classes or int(max(np.max(train_y), np.max(test_y))) + 1
        classes = [str(i) for i in range(k)]
    if num_classes is not None and len(classes) != num_classes:
        raise UserError(f"{classes_path} lists {len(classes)} classes, expected {num_classes}; {fix}")
    for x, y, stem in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        check_images(x, directory / f"{stem}_x.npy", fix=fix)
        check_labels(y, directory / f"{stem}_y.npy", fix=fix, rows=x.shape[0], num_classes=len(classes))
    return DatasetArrays(name, train_x, train_y, test_x, test_y, classes, f"array layout at {directory}")


def write_array_dir(directory: str | Path, data: DatasetArrays) -> Path:
    """Write ``data`` in the array layout, each file atomically (a killed write leaves no half file)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {directory} ({exc.strerror}); choose a writable --data root"
        ) from None
    if not _writable(directory):
        raise UserError(f"data root {directory} is not writable; choose another --data root")
    for stem in ("train", "test"):
        atomic.save_npy(
            directory / f"{stem}_x.npy", np.ascontiguousarray(getattr(data, f"{stem}_x"), np.uint8)
        )
        atomic.save_npy(directory / f"{stem}_y.npy", np.asarray(getattr(data, f"{stem}_y"), np.int64))
    atomic.write_json(directory / "classes.json", list(data.classes))
    return directory


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)
