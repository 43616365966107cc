"""The tidy long results table: its columns, method labels, and building it from block counts.

One row per (run, corruption, severity); the clean test set is ``corruption="clean", severity=0``.
``benchmark`` names the set a block belongs to: ``cifar-c`` (the 19), ``cifar-c-bar`` (the ten
CIFAR-10-C-bar corruptions) or ``clean``; tables written before the column existed get it from
the corruption name when read.
Accuracies are fractions in [0, 1]; ``correct`` and ``n`` are image counts, so every mean can be
recomputed exactly from the file. The calibration columns (ECE, RMS calibration error, NLL, Brier;
:mod:`~robustbench_aux.metrics.calibration`) are computed over the same n images; they are empty
(NaN, "not recorded") for blocks evaluated before they were recorded, and tables written before the
columns existed get them, empty, when read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from robustbench_aux.catalog import ALL_19, CATEGORY, CBAR_10, CBAR_CATEGORY, CLEAN, benchmark_of
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.calibration import CALIBRATION_COLUMNS

# identity columns copied from the run config into every row
RUN_COLUMNS = ("run_id", "dataset", "method", "label", "arch", "seed")
ACCURACY_COLUMNS = RUN_COLUMNS + ("corruption", "category", "benchmark", "severity", "n", "correct", "acc")
COLUMNS = ACCURACY_COLUMNS + CALIBRATION_COLUMNS

# methods that train on one named corruption carry it in their config under this key
CORRUPTION_KEY = "corruption"
VARIANT_KEY = "variant"
# naive / per-corruption augmentation record how the corrupted images were added (docs/training.md);
# the default reading is left out of the label, the other one is named in it
DATA_READING_KEY = "data_reading"
DEFAULT_DATA_READING = "enlarged_dataset"
DATA_READING_METHODS = ("naive_augmentation", "per_corruption")
# with the enlarged dataset, ``step_budget = "as_plain"`` trains plain training's steps per epoch
# (docs/training.md); such runs are labelled apart from the full-pass default
STEP_BUDGET_KEY = "step_budget"
AS_PLAIN_STEPS = "as_plain"
PLAIN_STEPS_LABEL = "plain steps"
# an AugMix run on AugMix's own published protocol (recipe source augmix_published) is labelled
# apart from the shared-schedule AugMix, so the two are never averaged or shown as one method
AUGMIX_PUBLISHED_SOURCE = "augmix_published"
PUBLISHED_PROTOCOL = "published protocol"
AUGMIX_PUBLISHED_LABEL = f"augmix[{PUBLISHED_PROTOCOL}]"


def data_reading(config: Mapping) -> str | None:
    """The recorded ``data_reading`` of a naive / per-corruption run (None: other method or not recorded)."""
    if str(config.get("method")) not in DATA_READING_METHODS:
        return None
    options = {**config, **(config.get("options") or {})}
    value = options.get(DATA_READING_KEY)
    return str(value) if value not in (None, "") else None


def step_budget(config: Mapping) -> str | None:
    """The recorded ``step_budget`` of a naive / per-corruption run (None: other method or not recorded)."""
    if str(config.get("method")) not in DATA_READING_METHODS:
        return None
    options = {**config, **(config.get("options") or {})}
    value = options.get(STEP_BUDGET_KEY)
    return str(value) if value not in (None, "") else None


def is_augmix_published(config: Mapping) -> bool:
    """True for an AugMix run trained on AugMix's published protocol (its recipe source, or the
    shipped ``augmix_published`` recipe when the source was not recorded)."""
    if str(config.get("method")) != "augmix":
        return False
    source = config.get("recipe_source")
    if source not in (None, ""):
        return str(source) == AUGMIX_PUBLISHED_SOURCE
    return str(config.get("recipe")) == AUGMIX_PUBLISHED_SOURCE


def method_label(config: Mapping) -> str:
    """The displayed method name: ``method`` plus its training corruption or variant in brackets.

    ``per_corruption`` with ``corruption="noise"`` -> ``per_corruption[noise]``; an ``auxiliary`` run
    with ``variant="no_sbn"`` -> ``auxiliary[no_sbn]`` (``no_sbn_per_view`` ->
    ``auxiliary[no_sbn_per_view]``); a naive / per-corruption run read as one joint batch ->
    ``naive_augmentation[joint_batch]`` (the default ``enlarged_dataset`` is not named), one trained
    for plain training's steps (``step_budget = "as_plain"``) -> ``naive_augmentation[plain steps]``; AugMix on
    its published protocol -> ``augmix[published protocol]``; plain stays ``plain``.
    """
    method = str(config.get("method", "unknown"))
    # training writes method options under "options"; flat configs (fixtures, foreign runs) also work
    options = {**config, **(config.get("options") or {})}
    parts = []
    if method == "per_corruption" and options.get(CORRUPTION_KEY):
        parts.append(str(options[CORRUPTION_KEY]))
    if options.get(VARIANT_KEY) not in (None, "", "full"):
        parts.append(str(options[VARIANT_KEY]))
    reading = data_reading(config)
    if reading is not None and reading != DEFAULT_DATA_READING:
        parts.append(reading)
    if step_budget(config) == AS_PLAIN_STEPS:
        parts.append(PLAIN_STEPS_LABEL)
    if is_augmix_published(config):
        parts.append(PUBLISHED_PROTOCOL)
    return f"{method}[{','.join(parts)}]" if parts else method


def run_identity(config: Mapping) -> dict:
    """The identity columns of a run, from its config (missing keys become placeholders)."""
    return {
        "run_id": str(config.get("run_id", "run")),
        "dataset": str(config.get("dataset", "unknown")),
        "method": str(config.get("method", "unknown")),
        "label": method_label(config),
        "arch": str(config.get("arch", "unknown")),
        "seed": int(config["seed"]) if config.get("seed") is not None else -1,
    }


def category_of(corruption: str) -> str:
    """``clean`` for the clean set, else the CIFAR-C category (noise / blur / weather / digital);
    ``c-bar`` for the ten CIFAR-10-C-bar corruptions."""
    if corruption == CLEAN:
        return CLEAN
    if corruption in CBAR_10:
        return CBAR_CATEGORY
    if corruption not in CATEGORY:
        raise UserError(
            f"unknown corruption {corruption!r}; expected one of the 19 CIFAR-C names, the ten "
            "CIFAR-10-C-bar names or 'clean'"
        )
    return CATEGORY[corruption]


def benchmark_column(corruptions: pd.Series) -> pd.Series:
    """The ``benchmark`` of each row from its corruption name (``cifar-c``, ``cifar-c-bar``, ``clean``)."""
    return corruptions.map(lambda c: benchmark_of(str(c)) or "unknown")


def block_rows(
    identity: Mapping,
    counts: Iterable[tuple[str, int, int, int]],
    calibration: Mapping[tuple[str, int], Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """Build the tidy table of one run from ``(corruption, severity, n, correct)`` tuples and, per
    block, its calibration metrics (``calibration[(corruption, severity)]``; NaN where absent)."""
    rows = []
    calibration = calibration or {}
    for corruption, severity, n, correct in counts:
        cal = calibration.get((corruption, int(severity))) or {}
        rows.append(
            {
                **identity,
                "corruption": corruption,
                "category": category_of(corruption),
                "benchmark": benchmark_of(corruption),
                "severity": int(severity),
                "n": int(n),
                "correct": int(correct),
                "acc": correct / n if n else float("nan"),
                **{k: float(cal.get(k, float("nan"))) for k in CALIBRATION_COLUMNS},
            }
        )
    return sort_table(pd.DataFrame(rows, columns=list(COLUMNS)))


def sort_table(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical row order: run, then clean first, the 19 corruptions in catalog order and the ten
    C-bar ones, then severity."""
    order = {name: i for i, name in enumerate((CLEAN,) + ALL_19 + CBAR_10)}
    key = df["corruption"].map(order).fillna(len(order))
    return (
        df.assign(_k=key)
        .sort_values(["run_id", "_k", "severity"], kind="stable")
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def check_table(df: pd.DataFrame, source: str = "results table") -> pd.DataFrame:
    """Validate a tidy table (columns present, accuracies in [0, 1], one clean row per run).

    A table without the ``benchmark`` column (written before it existed) gets it from the
    corruption names, in place."""
    if "benchmark" not in df.columns and "corruption" in df.columns:
        df.insert(
            df.columns.get_loc("category") + 1 if "category" in df.columns else len(df.columns),
            "benchmark",
            benchmark_column(df["corruption"]),
        )
    for col in CALIBRATION_COLUMNS:  # written before calibration was recorded: "not recorded"
        if col not in df.columns and "acc" in df.columns:
            df[col] = float("nan")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source} lacks column(s) {', '.join(missing)}; re-run `robustbench-aux evaluate`")
    if ((df["acc"] < 0) | (df["acc"] > 1)).any():
        raise UserError(f"{source} has accuracies outside [0, 1] (files store fractions, not percent)")
    for col in ("ece", "rmsce"):
        if ((df[col] < 0) | (df[col] > 1)).any():
            raise UserError(f"{source} has {col} outside [0, 1]; re-run `robustbench-aux evaluate`")
    clean = df[df["corruption"] == CLEAN].groupby("run_id").size()
    runs = df["run_id"].unique()
    if len(clean) != len(runs) or (clean != 1).any():
        raise UserError(f"{source} must hold exactly one clean row per run")
    return df
