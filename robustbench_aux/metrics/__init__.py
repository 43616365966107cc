"""Metrics of METRICS.md as pure functions on the tidy results table.

- :mod:`~robustbench_aux.metrics.tidy` -- the table's columns, method labels, validation;
- :mod:`~robustbench_aux.metrics.accuracy` -- clean, per-corruption, per-severity, per-category,
  15-/19-means, unnormalized CE and mCE, the per-run summary;
- :mod:`~robustbench_aux.metrics.compare` -- normalized and relative mCE against a reference run,
  the paper's headline numbers (both readings), the interference matrix, seen/unseen families;
- :mod:`~robustbench_aux.metrics.uncertainty` -- seeds (mean ± std, n), bootstrap intervals over
  test images, paired bootstrap and McNemar tests.
"""

from robustbench_aux.metrics.accuracy import (
    block_accuracy,
    category_accuracy,
    clean_accuracy,
    corruption_accuracy,
    corruption_error,
    coverage,
    mce,
    mean_accuracy,
    run_summary,
    severity_curve,
)
from robustbench_aux.metrics.compare import (
    SEEN_FAMILIES,
    closest_reading,
    family_accuracy,
    headline,
    interference_matrix,
    label_order,
    normalized_ce,
    normalized_mce,
    relative_ce,
    relative_mce,
    run_frame,
    seen_corruptions,
    training_corruptions,
)
from robustbench_aux.metrics.tidy import CLEAN, COLUMNS, block_rows, check_table, method_label, run_identity
from robustbench_aux.metrics.uncertainty import (
    aggregate_seeds,
    bootstrap_ci,
    mcnemar,
    paired_bootstrap,
    per_image_score,
)

__all__ = [
    "CLEAN",
    "COLUMNS",
    "SEEN_FAMILIES",
    "aggregate_seeds",
    "block_accuracy",
    "block_rows",
    "bootstrap_ci",
    "category_accuracy",
    "check_table",
    "clean_accuracy",
    "closest_reading",
    "corruption_accuracy",
    "corruption_error",
    "coverage",
    "family_accuracy",
    "headline",
    "interference_matrix",
    "label_order",
    "mce",
    "mcnemar",
    "mean_accuracy",
    "method_label",
    "normalized_ce",
    "normalized_mce",
    "paired_bootstrap",
    "per_image_score",
    "relative_ce",
    "relative_mce",
    "run_frame",
    "run_identity",
    "run_summary",
    "seen_corruptions",
    "severity_curve",
    "training_corruptions",
]
