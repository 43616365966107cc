"""robustbench-aux: train and compare corruption-robust CIFAR models (Auxiliary Training, CVPR 2020).

``robustbench_aux.benchmark(model, dataset="cifar100", data_dir=...)`` returns RobustBench's
``(clean_acc, corruptions_acc)``; see :mod:`robustbench_aux.evaluation.benchmark`.
"""

from robustbench_aux._version import __version__

__all__ = ["__version__", "benchmark"]


def __getattr__(name: str):
    # imported on first use: `robustbench-aux --help` does not load torch
    if name == "benchmark":
        from robustbench_aux.evaluation.benchmark import benchmark

        return benchmark
    raise AttributeError(f"module 'robustbench_aux' has no attribute {name!r}")
