"""robustbench-aux: train and compare corruption-robust CIFAR models (Auxiliary Training, CVPR 2020)."""

__version__ = "0.1.0"
