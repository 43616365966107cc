"""Training engine: device-resident data, batched augmentation, resumable training loop, DDP helpers.

Entry point: :func:`robustbench_aux.engine.trainer.train` (used by ``robustbench-aux train``).
Evaluation lives elsewhere in the package.
"""
