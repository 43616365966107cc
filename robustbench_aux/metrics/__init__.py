"""The metrics (defined in docs/metrics.md) as pure functions on the tidy results table.

- :mod:`~robustbench_aux.metrics.tidy` -- the table's columns, method labels, validation;
- :mod:`~robustbench_aux.metrics.accuracy` -- clean, per-corruption, per-severity, per-category,
  15-/19-means, unnormalized CE and mCE, the per-run summary;
- :mod:`~robustbench_aux.metrics.compare` -- normalized and relative mCE against a reference run
  (with counts and unstable corruptions), the paper's headline numbers (four readings) and which
  one matches, the interference matrix, seen/unseen families;
- :mod:`~robustbench_aux.metrics.uncertainty` -- seeds (mean ± std, n), bootstrap intervals over
  test images, paired bootstrap and McNemar tests (per seed), a test over seeds and its power, Holm correction.
"""

from robustbench_aux.catalog import CLEAN
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
    claim_verdict,
    family_accuracy,
    headline,
    interference_matrix,
    label_order,
    matching_reading,
    normalized_ce,
    normalized_mce,
    ratio_ce,
    ratio_mce,
    relative_ce,
    relative_mce,
    run_frame,
    seen_corruptions,
    training_corruptions,
)
from robustbench_aux.metrics.tidy import COLUMNS, block_rows, check_table, method_label, run_identity
from robustbench_aux.metrics.uncertainty import (
    aggregate_seeds,
    bootstrap_ci,
    detectable_difference,
    holm,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_means,
    paired_z,
    per_image_score,
    seed_test,
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
    "claim_verdict",
    "check_table",
    "clean_accuracy",
    "corruption_accuracy",
    "corruption_error",
    "coverage",
    "detectable_difference",
    "family_accuracy",
    "headline",
    "holm",
    "interference_matrix",
    "label_order",
    "matching_reading",
    "mce",
    "mcnemar",
    "mean_accuracy",
    "method_label",
    "normalized_ce",
    "normalized_mce",
    "paired_bootstrap",
    "paired_bootstrap_means",
    "paired_z",
    "per_image_score",
    "ratio_ce",
    "ratio_mce",
    "relative_ce",
    "relative_mce",
    "run_frame",
    "run_identity",
    "run_summary",
    "seed_test",
    "seen_corruptions",
    "severity_curve",
    "training_corruptions",
]
