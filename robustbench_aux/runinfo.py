"""What a run's ``config.json`` says about the run, decoded in one place.

Training writes the resolved config (``config.RunConfig.to_dict``); fixtures, foreign runs and runs
written by older versions of the suite hold other shapes (method options flat instead of under
``options``, no ``reference_epochs``, no ``recipe_source``). :func:`run_info` reads every shape into
one frozen :class:`RunInfo`, and every module that needs a fact about a run (its label, epochs,
training images, data reading, the reference schedule's length, deviations) asks it, never the
dict: each "not recorded" fallback lives here.

The method label: ``method`` plus, in brackets, what sets the run apart from the method's default:
``per_corruption`` with ``corruption="noise"`` -> ``per_corruption[noise]``; an ``auxiliary`` run
with ``variant="no_sbn"`` -> ``auxiliary[no_sbn]``; a naive / per-corruption run read as one joint
batch -> ``naive_augmentation[joint_batch]`` (the default ``enlarged_dataset`` is not named), one
trained for plain training's steps (``step_budget = "as_plain"``) ->
``naive_augmentation[plain steps]``; AugMix on its published protocol -> ``augmix[published
protocol]``; plain stays ``plain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
NO_VARIANT = (None, "", "full")


def _text(value) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RunInfo:
    """One run's facts from its config (None: not recorded)."""

    run_id: str
    dataset: str
    method: str
    arch: str
    seed: int  # -1 when not recorded
    recipe: str | None
    recipe_source: str | None
    epochs: int | None  # epochs trained (``train.epochs``, or a flat ``epochs``)
    # the epochs of the schedule the run's recipe scales down from (the root of its ``extends``
    # chain): recorded by training; for older runs the length ``--epochs`` scaled from, else None
    reference_epochs: int | None
    n_train: int | None  # training images (``data.n_train``)
    data_copy: str | None  # the dataset copy (``data.copy``)
    code_version: str | None
    normalization: object
    amp: str  # training autocast ("fp32" when off or not recorded)
    corruption: str | None  # per_corruption's training corruption
    variant: str | None  # an ablation switch (``auxiliary`` variant), None for the full method
    train_corruptions: tuple[str, ...] | None  # the corruptions listed in the options, if any
    data_reading: str | None  # naive / per-corruption only
    step_budget: str | None  # naive / per-corruption only
    augmix_published: bool
    deviations: tuple[Mapping, ...]

    @property
    def label(self) -> str:
        """The displayed method name (see the module docstring)."""
        parts = []
        if self.method == "per_corruption" and self.corruption:
            parts.append(self.corruption)
        if self.variant is not None:
            parts.append(self.variant)
        if self.data_reading is not None and self.data_reading != DEFAULT_DATA_READING:
            parts.append(self.data_reading)
        if self.step_budget == AS_PLAIN_STEPS:
            parts.append(PLAIN_STEPS_LABEL)
        if self.augmix_published:
            parts.append(PUBLISHED_PROTOCOL)
        return f"{self.method}[{','.join(parts)}]" if parts else self.method


def run_info(config: Mapping) -> RunInfo:
    """Decode a run's config (any recorded shape) into a :class:`RunInfo`."""
    method = str(config.get("method", "unknown"))
    # training writes method options under "options"; flat configs (fixtures, foreign runs) also work
    options = {**config, **(config.get("options") or {})}
    train = config.get("train") or {}
    data = config.get("data") or {}
    reading = options.get(DATA_READING_KEY) if method in DATA_READING_METHODS else None
    budget = options.get(STEP_BUDGET_KEY) if method in DATA_READING_METHODS else None
    source = _text(config.get("recipe_source"))
    published = method == "augmix" and (
        source == AUGMIX_PUBLISHED_SOURCE if source else str(config.get("recipe")) == AUGMIX_PUBLISHED_SOURCE
    )
    reference = config.get("reference_epochs")
    if reference is None:  # recorded before training wrote it: what --epochs scaled from, if it did
        reference = (config.get("schedule_scaling") or {}).get("from_epochs")
    listed = options.get("corruptions") or options.get("train_corruptions")
    amp = str(train.get("amp") or "off")
    if amp == "auto":  # bf16 on CUDA only (config.resolved_amp), for runs that recorded "auto"
        amp = "bf16" if str(config.get("device") or "").startswith("cuda") else "off"
    deviations = config.get("deviations") or []
    return RunInfo(
        run_id=str(config.get("run_id", "run")),
        dataset=str(config.get("dataset", "unknown")),
        method=method,
        arch=str(config.get("arch", "unknown")),
        seed=int(config["seed"]) if config.get("seed") is not None else -1,
        recipe=_text(config.get("recipe")),
        recipe_source=source,
        epochs=_int(train.get("epochs", config.get("epochs"))),
        reference_epochs=_int(reference),
        n_train=_int(data.get("n_train")),
        data_copy=_text(data.get("copy")),
        code_version=_text(config.get("code_version")),
        normalization=config.get("normalization"),
        amp="fp32" if amp == "off" else amp,
        corruption=_text(options.get(CORRUPTION_KEY)),
        variant=None if options.get(VARIANT_KEY) in NO_VARIANT else str(options[VARIANT_KEY]),
        train_corruptions=tuple(str(c) for c in listed) if listed else None,
        data_reading=_text(reading),
        step_budget=_text(budget),
        augmix_published=published,
        deviations=tuple(d for d in deviations if isinstance(d, Mapping))
        if isinstance(deviations, list)
        else (),
    )
