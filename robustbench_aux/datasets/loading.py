"""Finding, downloading and converting datasets; the data-root rule.

Data root: the ``--data`` flag, then ``$ROBUSTBENCH_AUX_DATA``, then ``./data``. Under it,
``<root>/<dataset>/`` holds the array layout and ``<root>/downloads/`` torchvision's archives.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from robustbench_aux.catalog import OFFICIAL_COPY
from robustbench_aux.datasets.arrays import DatasetArrays, read_array_dir, write_array_dir
from robustbench_aux.datasets.synthetic import make_synthetic
from robustbench_aux.errors import UserError

log = logging.getLogger(__name__)

ENV_VAR = "ROBUSTBENCH_AUX_DATA"
DATASETS = {"cifar10": 10, "cifar100": 100}
_SYNTHETIC = re.compile(r"^synthetic(\d+)$")


def resolve_data_root(arg: str | os.PathLike | None = None) -> Path:
    """``--data`` beats ``$ROBUSTBENCH_AUX_DATA`` beats ``./data``."""
    if arg:
        return Path(arg).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path("data")


def _torchvision_class(name: str):
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]


def _not_found(name: str, root: Path) -> UserError:
    cls = _torchvision_class(name)
    return UserError(
        f"{name} not found: looked for the array layout in {root / name} and torchvision's "
        f"{cls.base_folder} in {root / 'downloads'}; run `robustbench-aux data prepare --dataset {name} "
        f"--data {root}` to download it (needs internet; this machine may be offline) or point --data / "
        f"${ENV_VAR} at a directory holding {name}/train_x.npy ..."
    )


def prepare_dataset(name: str, root: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Make ``<root>/<name>/`` hold the array layout: reuse it, else convert torchvision's copy
    (downloading it when ``download`` is true). Returns the array directory."""
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = resolve_data_root(root)
    target = root / name
    if (target / "test_y.npy").is_file():
        read_array_dir(target, name, num_classes=DATASETS[name])  # validate what is there
        return target
    cls = _torchvision_class(name)
    downloads = root / "downloads"
    if not download and not (downloads / cls.base_folder).is_dir():
        raise _not_found(name, root)
    try:
        downloads.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create {downloads} ({exc.strerror}); choose a writable --data root"
        ) from None
    if not os.access(downloads, os.W_OK):
        raise UserError(f"data root {root} is not writable; choose a writable --data root")
    try:
        train = cls(str(downloads), train=True, download=download)
        test = cls(str(downloads), train=False, download=False)
    except (OSError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"could not obtain {name} into {downloads} ({first}); this machine may be offline: copy "
            f"{cls.filename} into {downloads} or the array layout into {target}"
        ) from None
    log.info("converting %s into the array layout at %s", name, target)
    data = DatasetArrays(
        name,
        np.asarray(train.data, np.uint8),
        np.asarray(train.targets, np.int64),
        np.asarray(test.data, np.uint8),
        np.asarray(test.targets, np.int64),
        list(train.classes),
        f"torchvision {cls.__name__} converted to {target}",
    )
    return write_array_dir(target, data)


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
) -> DatasetArrays:
    """Load ``cifar10``, ``cifar100`` (array layout, converting a torchvision copy if needed) or
    ``synthetic<K>`` (K classes, generated; ``n_train``/``n_test`` default 5000/1000)."""
    for key, value in (("n_train", n_train), ("n_test", n_test)):
        if value is not None and value < 0:
            raise UserError(f"{key} must be >= 0 (0 or none = all images), got {value}")
    m = _SYNTHETIC.match(name)
    if m:
        if int(m.group(1)) < 2:
            raise UserError(f"dataset {name!r}: a classification dataset needs at least 2 classes")
        data = make_synthetic(int(m.group(1)), n_train or 5000, n_test or 1000, seed=seed)
        return data
    if name not in DATASETS:
        raise UserError(
            f"unknown dataset {name!r}; choose cifar10, cifar100 or synthetic<K> (e.g. synthetic100)"
        )
    root = resolve_data_root(root)
    target = root / name
    if not (target / "test_y.npy").is_file() and not (target / "train_x.npy").is_file():
        cls = _torchvision_class(name)
        if download or (root / "downloads" / cls.base_folder).is_dir():
            prepare_dataset(name, root, download=download)
        else:
            raise _not_found(name, root)
    data = read_array_dir(target, name, num_classes=DATASETS[name])
    data.meta["copy"] = _copy_label(target)
    return data.subset(n_train, n_test)


def _copy_label(directory: Path) -> str:
    """Name the copy honestly: the shared CIFAR-10 is a JPEG-q75 re-encoding, not the official release."""
    readme = directory.parent / "README.md"
    if readme.is_file() and "JPEG" in readme.read_text(errors="ignore"):
        return "CIFAR-10 (JPEG-q75 copy)"
    return OFFICIAL_COPY
