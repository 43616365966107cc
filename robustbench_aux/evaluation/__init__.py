"""Evaluation on the clean test set and CIFAR-C: the one-call API and the run-directory path.

- :func:`evaluate` -- any ``torch.nn.Module`` (float [0, 1] NCHW in, logits out);
- :func:`evaluate_run` -- a run directory or checkpoint of this suite, outputs in ``<run>/eval/``;
- :func:`read_results` -- read an evaluation directory's ``results.csv`` and ``summary.json``.
"""

from robustbench_aux.evaluation.api import EvalResult, evaluate
from robustbench_aux.evaluation.predict import Normalized, predict_labels
from robustbench_aux.evaluation.results import build_summary, read_results, write_results
from robustbench_aux.evaluation.runs import eval_dir_for, evaluate_run
from robustbench_aux.evaluation.store import load_per_image

__all__ = [
    "EvalResult",
    "Normalized",
    "build_summary",
    "eval_dir_for",
    "evaluate",
    "evaluate_run",
    "load_per_image",
    "predict_labels",
    "read_results",
    "write_results",
]
