"""Evaluation on the clean test set and CIFAR-C: the one-call API and the run-directory path.

- :func:`evaluate` -- any ``torch.nn.Module`` (float [0, 1] NCHW in, logits out);
- :func:`evaluate_run` -- a run directory or checkpoint of this suite, outputs in ``<run>/eval/``;
- :func:`read_results` -- read an evaluation directory's ``results.csv`` and ``summary.json``.
"""

from importlib import import_module

# name -> submodule. Resolved on first use (PEP 562) so that the torch-free parts (``results``,
# ``store``, ``evidence``), which the report reads, import without torch; ``api``/``predict``/``runs`` need it.
_HOME = {
    "EvalBatch": "predict",
    "EvalOptions": "api",
    "EvalResult": "api",
    "EvalSubject": "api",
    "evaluate": "api",
    "Normalized": "predict",
    "predict_labels": "predict",
    "predict_scores": "predict",
    "build_summary": "results",
    "read_results": "results",
    "write_results": "results",
    "eval_dir_for": "runs",
    "evaluate_run": "runs",
    "load_per_image": "store",
    "load_per_image_scores": "store",
}

__all__ = [
    "EvalBatch",
    "EvalOptions",
    "EvalResult",
    "Normalized",
    "EvalSubject",
    "build_summary",
    "eval_dir_for",
    "evaluate",
    "evaluate_run",
    "load_per_image",
    "load_per_image_scores",
    "predict_labels",
    "predict_scores",
    "read_results",
    "write_results",
]


def __getattr__(name):
    if name in _HOME:
        return getattr(import_module(f"robustbench_aux.evaluation.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
