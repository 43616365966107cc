"""Datasets: CIFAR-10/100 in the array layout, the published CIFAR-C layout, synthetic data.

Entry points:
- :func:`load_dataset` -- a :class:`DatasetArrays` for ``cifar10``, ``cifar100`` or ``synthetic<K>``;
- :func:`prepare_dataset` -- download/convert CIFAR into the array layout;
- :class:`CifarCReader` -- validated, memory-mapped access to a CIFAR-10-C / CIFAR-100-C directory;
- :func:`resolve_data_root` -- ``--data``, then ``$ROBUSTBENCH_AUX_DATA``, then ``./data``.
"""

from robustbench_aux.catalog import NORMALIZATION
from robustbench_aux.datasets.arrays import DatasetArrays, read_array_dir, write_array_dir
from robustbench_aux.datasets.cifar_c import CifarCBlock, CifarCReader
from robustbench_aux.datasets.loading import (
    DATASETS,
    load_dataset,
    prepare_dataset,
    resolve_data_root,
)
from robustbench_aux.datasets.synthetic import make_synthetic

__all__ = [
    "DATASETS",
    "NORMALIZATION",
    "CifarCBlock",
    "CifarCReader",
    "DatasetArrays",
    "load_dataset",
    "make_synthetic",
    "prepare_dataset",
    "read_array_dir",
    "resolve_data_root",
    "write_array_dir",
]
