"""Run configuration: dataclasses are the single source of truth; TOML recipes load into them.

A recipe (``robustbench_aux/recipes/<name>.toml`` or any ``.toml`` file) has the sections::

    description = "..."            # free text, copied into config.json
    extends = "reference"          # optional: start from another recipe (name or path)
    source = "..."                 # the protocol the recipe follows (e.g. auxiliary_training_reference)
    [train]   ...                  # TrainConfig fields
    [model]   ...                  # ModelConfig fields
    [method.<method name>] ...     # that method's Options fields (one section per method)
    [reference.train|model|method] # the source's value of each protocol switch (see deviations)

Resolution order: dataclass defaults < recipe (after its ``extends`` chain) < ``--epochs`` (which
rescales the recipe's epoch-denominated schedule) < ``--set key=value`` overrides. Every unknown or
misspelled key is a :class:`UserError` naming the key.

Protocol switches: the ``[reference]`` tables of a recipe name the switches that define its
source's protocol (noise arithmetic, numerics, view composition, initialisation, last batch...)
with the source's value. A run records every one of them, resolved for its device, and lists
those whose value differs as ``deviations`` (:func:`protocol_deviations`).
``--set`` keys may be bare (``lr``, ``alpha``, ``corruption``; looked up in the method's options,
then ``train``, then ``model``) or dotted (``train.lr``, ``method.alpha``, ``model.width``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

from robustbench_aux.errors import UserError, comma_list, did_you_mean, require_choices
from robustbench_aux.registry import Registry

_TOP_KEYS = ("description", "extends", "status", "source", "train", "model", "method", "reference")
_REFERENCE_SECTIONS = ("train", "model", "method")
AUX_INITS = ("kaiming_fan_out", "default")
# torch.compile modes for train.compile_mode
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    """Optimizer, schedule, data pipeline and device settings."""

    epochs: int = 210
    batch_size: int = 128  # images per optimizer step (global batch; split across DDP ranks)
    lr: float = 0.1  # for the whole global batch
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    # epoch points (0-based); a fractional one (a short run's rescaled schedule) takes effect at the
    # first step at or after it
    milestones: tuple[int | float, ...] = field(default=(60, 140, 180), metadata={"epochs": True})
    lr_decay: float = 0.1  # lr multiplier from each milestone on
    warmup_epochs: float = 0.0  # linear lr warm-up over this many epochs, per step (0 = none, the reference)
    n_train: int = 0  # use the first N training images; 0 = all
    crop_padding: int = 4  # random crop of the image padded by this many px (zeros)
    flip: bool = True
    normalization: str = "dataset"  # dataset | reference | cifar10 | cifar100 (catalog.NORMALIZATION)
    mean: tuple[float, ...] = ()  # explicit per-channel mean/std in [0, 1]; overrides normalization
    std: tuple[float, ...] = ()
    schedule: str = "step"  # step (milestones, per epoch) | cosine (per step, AugMix's LambdaLR form)
    lr_min: float = 0.0  # the cosine schedule's final lr
    drop_last: bool = False  # drop each epoch's last partial batch (the reference keeps it: 391 steps)
    channels_last: str = "auto"  # auto (on CUDA) | on | off: memory layout only
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off (fp32, the reference)
    tf32: bool = False  # allow TF32 matmul/convolutions on CUDA (off = true fp32, the reference)
    compile: bool = False  # torch.compile the model (CUDA)
    compile_mode: str = (
        "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    )
    optimizer_impl: str = (
        "default"  # SGD kernels: default (torch's choice) | foreach | fused (CUDA) | for_loop
    )
    finite_check: str = (
        "epoch"  # non-finite losses: found on the device, read once per epoch (epoch) or every step
    )
    sbn_passes: str = "auto"  # selective BN: single | per_view | auto (single on CUDA, per_view on the CPU)
    log_every: int = 50  # steps between log lines when no progress bar is shown

    def validate(self) -> None:
        """Each value against its meaning (called by :func:`assign` after every change)."""
        _require(self.epochs >= 1, "epochs", self.epochs, "at least 1")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, "at least 1")
        _require(_finite(self.lr) and self.lr > 0, "lr", self.lr, "a positive number")
        _require(_finite(self.momentum) and self.momentum >= 0, "momentum", self.momentum, ">= 0")
        _require(
            not self.nesterov or self.momentum > 0, "momentum", self.momentum, "> 0 with nesterov = true"
        )
        _require(
            _finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0"
        )
        _require(_finite(self.lr_decay) and 0 < self.lr_decay <= 1, "lr_decay", self.lr_decay, "in (0, 1]")
        _require(
            _finite(self.warmup_epochs) and self.warmup_epochs >= 0,
            "warmup_epochs",
            self.warmup_epochs,
            ">= 0",
        )
        _require(
            all(_finite(m) and m >= 0 for m in self.milestones),
            "milestones",
            self.milestones,
            "epoch numbers >= 0",
        )
        _require(self.n_train >= 0, "n_train", self.n_train, ">= 0 (0 = all images)")
        _require(self.crop_padding >= 0, "crop_padding", self.crop_padding, ">= 0")
        _require(self.log_every >= 0, "log_every", self.log_every, ">= 0")
        _require(
            all(_finite(m) and 0 <= m <= 1 for m in self.mean),
            "mean",
            self.mean,
            "per-channel values in [0, 1]",
        )
        _require(all(_finite(s) and s > 0 for s in self.std), "std", self.std, "positive per-channel values")
        _require(len(self.mean) in (0, 1, 3), "mean", self.mean, "0, 1 or 3 values")
        _require(len(self.std) in (0, 1, 3), "std", self.std, "0, 1 or 3 values")
        require_choices(
            self,
            {
                "channels_last": ("auto", "on", "off"),
                "amp": ("auto", "bf16", "off"),
                "sbn_passes": ("auto", "single", "per_view"),
                "schedule": ("step", "cosine"),
                "optimizer_impl": ("default", "foreach", "fused", "for_loop"),
                "finite_check": ("epoch", "step"),
                "compile_mode": COMPILE_MODES,
            },
        )


@dataclass
class ModelConfig:
    """Architecture options (the architecture itself is chosen with ``--arch``)."""

    width: int = 0  # ResNet base width; 0 = the architecture's default (64, resnet8 16, test_tiny 8)
    stem_relu: bool = False  # ResNet stem ReLU; the reference code has none
    aux_init: str = "kaiming_fan_out"  # auxiliary-head Conv2d init: kaiming_fan_out (reference) | default

    def validate(self) -> None:
        _require(self.width >= 0, "width", self.width, "> 0 (or 0 for the architecture's default)")
        require_choices(self, {"aux_init": AUX_INITS})


def _finite(x) -> bool:
    return math.isfinite(x)


def _require(ok: bool, key: str, value, meaning: str) -> None:
    """A UserError naming ``key`` unless ``ok``."""
    if not ok:
        raise UserError(f"{key} must be {meaning}, got {value!r}")


@dataclass
class RunConfig:
    """Everything that defines a run; written (resolved) into ``config.json``."""

    method: str
    arch: str
    dataset: str
    seed: int
    recipe: str
    train: TrainConfig
    model: ModelConfig
    options: typing.Any  # the method's Options dataclass instance
    description: str = ""
    recipe_status: str = ""  # e.g. "unverified" for the paper-text preset
    source: str = ""  # the protocol the recipe follows (its ``source`` key)
    reference: dict = field(default_factory=dict)  # {"train.amp": "off", ...}: the source's switch values
    schedule_scaling: dict | None = None  # what --epochs did to the epoch points (scale_schedule)
    # the epochs of the root of the recipe's extends chain: the schedule this run is measured
    # against (reports read it from config.json, never from today's recipe files)
    reference_epochs: int | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["options"] = dataclasses.asdict(self.options)
        return out


# --------------------------------------------------------------------------- recipes


def _recipe_dir():
    """The shipped recipes: package data ``robustbench_aux/recipes/*.toml`` (works when installed)."""
    return resources.files("robustbench_aux") / "recipes"


def recipe_names() -> list[str]:
    """Recipes shipped inside the package."""
    return sorted(p.name[:-5] for p in _recipe_dir().iterdir() if p.name.endswith(".toml"))


def _read_recipe_text(name_or_path: str, base: Path | None = None) -> tuple[str, str]:
    """(text, label) of a shipped recipe name or a ``.toml`` path (relative paths are taken
    relative to ``base``, the directory of the recipe that extends it, else the current one)."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise UserError(f"a recipe must be a name or a .toml path, got {name_or_path!r}")
    path = Path(name_or_path)
    if base is not None and not path.is_absolute() and (base / path).is_file():
        path = base / path
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise UserError(f"recipe file {path} does not exist")
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as exc:
            raise UserError(
                f"recipe file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None
    shipped = _recipe_dir() / f"{name_or_path}.toml"
    if not shipped.is_file():
        hint = did_you_mean(name_or_path, recipe_names())
        raise UserError(
            f"unknown recipe {name_or_path!r}{hint} (shipped: {', '.join(recipe_names())}; "
            "or give a .toml path)"
        )
    return shipped.read_text(encoding="utf-8"), name_or_path


def load_recipe(name_or_path: str, _seen: tuple[str, ...] = (), _base: Path | None = None) -> dict:
    """The recipe as a dict with its ``extends`` chain merged in (later sections win per key).

    A relative ``extends`` path is taken relative to the file that holds it."""
    text, label = _read_recipe_text(name_or_path, _base)
    if label in _seen:
        raise UserError(f"recipe {label} extends itself (chain: {' -> '.join(_seen + (label,))})")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {label} is not valid TOML: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise UserError(_unknown_key(key, _TOP_KEYS, f"recipe {label}"))
    for key in ("train", "model", "method", "reference"):
        if key in data and not isinstance(data[key], dict):
            raise UserError(f"recipe {label}: [{key}] must be a table")
    for key, section in data.get("reference", {}).items():
        if key not in _REFERENCE_SECTIONS or not isinstance(section, dict):
            raise UserError(
                f"recipe {label}: [reference.{key}] must be one of the tables train, model, method"
            )
    here = Path(label).parent if label.endswith(".toml") or Path(label).is_file() else None
    base = load_recipe(data["extends"], _seen + (label,), here) if "extends" in data else {}
    merged = {k: v for k, v in base.items() if k not in ("train", "model", "method", "reference")}
    merged.update(
        {k: v for k, v in data.items() if k not in ("train", "model", "method", "extends", "reference")}
    )
    ref_base, ref_new = base.get("reference", {}), data.get("reference", {})
    merged["reference"] = {
        sec: {**ref_base.get(sec, {}), **ref_new.get(sec, {})} for sec in _REFERENCE_SECTIONS
    }
    merged["train"] = {**base.get("train", {}), **data.get("train", {})}
    merged["model"] = {**base.get("model", {}), **data.get("model", {})}
    methods = {m: dict(v) for m, v in base.get("method", {}).items()}
    for m, section in data.get("method", {}).items():
        if not isinstance(section, dict):
            raise UserError(f"recipe {label}: [method.{m}] must be a table")
        methods[m] = {**methods.get(m, {}), **section}
    merged["method"] = methods
    merged["label"] = label
    # the root recipe's epochs: the reference schedule every recipe of the chain scales down from
    root_epochs = data.get("train", {}).get("epochs", TrainConfig.epochs)  # checked when assigned
    merged["reference_epochs"] = (
        base["reference_epochs"]
        if "extends" in data
        else root_epochs
        if isinstance(root_epochs, int) and not isinstance(root_epochs, bool)
        else None
    )
    return merged


# --------------------------------------------------------------------------- typed assignment


def _unknown_key(key: str, known, where: str) -> str:
    return f"unknown key {key!r} in {where}{did_you_mean(key, known)} (known: {', '.join(sorted(known))})"


def _coerce(value, hint, key: str):
    """``value`` converted to the field type ``hint``; a UserError naming ``key`` if impossible."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if set(args) == {int, float}:  # an epoch point: whole epochs stay integers
            return epoch_point(_coerce(value, float, key))
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str):
            value = comma_list(value)
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce(v, item, key) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
            return value.lower() in ("true", "on", "1")
        raise UserError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise UserError(f"{key} must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise UserError(f"{key} must be an integer, got {value!r}") from None
    if hint is float:
        if isinstance(value, bool):
            raise UserError(f"{key} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UserError(f"{key} must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UserError(f"{key} must be a string, got {value!r}")
        return str(value)
    return value


def assign(obj, values: dict, where: str) -> None:
    """Set dataclass fields of ``obj`` from ``values`` with type checks; unknown keys are errors."""
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise UserError(_unknown_key(key, names, where))
        setattr(obj, key, _coerce(value, hints[key], f"{where}.{key}"))
    check = getattr(obj, "validate", None)
    if check:
        check()


def _parse_value(text: str):
    """A ``--set`` value: TOML syntax if it parses (numbers, booleans, [lists], "strings"), else raw text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(pairs: list[str]) -> list[tuple[str, object]]:
    """``["lr=0.01", "train.epochs=3"]`` -> ``[("lr", 0.01), ("train.epochs", 3)]``."""
    out = []
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {pair!r}")
        out.append((key.strip(), _parse_value(value.strip())))
    return out


def _route_override(key: str, sections: dict[str, object]) -> tuple[str, str]:
    """(section, field) for a bare or dotted ``--set`` key."""
    if "." in key:
        section, _, name = key.partition(".")
        if section not in sections:
            raise UserError(_unknown_key(section, sections, "--set sections"))
        return section, name
    owners = [s for s, obj in sections.items() if key in {f.name for f in fields(obj)}]
    if not owners:
        known = {f"{s}.{f.name}" for s, obj in sections.items() for f in fields(obj)}
        known |= {f.name for obj in sections.values() for f in fields(obj)}
        raise UserError(_unknown_key(key, known, "--set"))
    return owners[0], key


def reference_values(data: dict, sections: dict[str, object], methods: Registry) -> dict:
    """The recipe's ``[reference]`` tables as ``{"train.amp": value, ...}``, coerced to the field
    types; a method key another method owns (an ``Options`` field of another entry of ``methods``)
    is skipped (that switch does not apply to this run)."""
    label, out = data["label"], {}
    for sec in _REFERENCE_SECTIONS:
        obj = sections[sec]
        hints = typing.get_type_hints(type(obj))
        for key, value in data.get("reference", {}).get(sec, {}).items():
            if key in hints:
                out[f"{sec}.{key}"] = _coerce(value, hints[key], f"recipe {label} [reference.{sec}].{key}")
                continue
            owners = [m for m in methods.names() if key in {f.name for f in fields(methods.get(m).Options)}]
            if sec != "method" or not owners:
                raise UserError(_unknown_key(key, hints, f"recipe {label} [reference.{sec}]"))
    return out


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def protocol_deviations(reference: dict, resolved: dict) -> list[dict]:
    """``[{"switch", "value", "reference"}]`` for every protocol switch whose resolved value differs
    from its reference value (``[]`` when the run follows its recipe's source exactly)."""
    return [
        {"switch": key, "value": _jsonable(resolved[key]), "reference": _jsonable(ref)}
        for key, ref in reference.items()
        if key in resolved and _jsonable(resolved[key]) != _jsonable(ref)
    ]


def resolved_amp(train: TrainConfig, device_type: str) -> str:
    """``bf16`` or ``off``: what ``amp`` means on ``device_type`` (``auto`` = bf16 on CUDA only)."""
    return "bf16" if train.amp == "bf16" or (train.amp == "auto" and device_type == "cuda") else "off"


def resolved_channels_last(train: TrainConfig, device_type: str) -> str:
    """``on`` or ``off``: what ``channels_last`` means on ``device_type`` (``auto`` = on on CUDA only)."""
    cl = train.channels_last
    return "on" if cl == "on" or (cl == "auto" and device_type == "cuda") else "off"


def resolved_sbn_passes(train: TrainConfig, device_type: str) -> str:
    """What ``sbn_passes`` means on ``device_type`` (``auto`` = single on CUDA, per_view elsewhere:
    the same mathematics either way; one large batch pays off on GPUs, small ones on CPUs)."""
    if train.sbn_passes != "auto":
        return train.sbn_passes
    return "single" if device_type == "cuda" else "per_view"


def resolved_switches(cfg: RunConfig, device_type: str) -> dict:
    """Every train/model/method setting as ``{"train.amp": value, ...}``, the device-dependent
    ``auto`` values (amp, channels_last) resolved for ``device_type``; TF32 exists on CUDA only."""
    out = {f"train.{f.name}": getattr(cfg.train, f.name) for f in fields(cfg.train)}
    out.update({f"model.{f.name}": getattr(cfg.model, f.name) for f in fields(cfg.model)})
    out.update({f"method.{f.name}": getattr(cfg.options, f.name) for f in fields(cfg.options)})
    out["train.amp"] = resolved_amp(cfg.train, device_type)
    out["train.channels_last"] = resolved_channels_last(cfg.train, device_type)
    out["train.tf32"] = bool(cfg.train.tf32 and device_type == "cuda")
    return out


def epoch_point(value: float) -> int | float:
    """An epoch number as recorded: an ``int`` when whole (``60.0`` -> ``60``), else the float."""
    return int(value) if math.isfinite(value) and float(value).is_integer() else value


def _same_order(a: list, b: list) -> bool:
    """True if every pair of ``a`` compares (<, =, >) as the same pair of ``b`` does."""
    sign = lambda x: (x > 0) - (x < 0)  # noqa: E731
    return all(sign(a[i] - a[j]) == sign(b[i] - b[j]) for i in range(len(a)) for j in range(i + 1, len(a)))


def scale_schedule(objs, old_epochs: int, new_epochs: int) -> dict:
    """Rescale the epoch points of ``objs`` (fields marked ``metadata={"epochs": True}``: lr
    milestones, the penalty start) from a run of ``old_epochs`` to one of ``new_epochs``.

    Each point p becomes p * new / old. Rounded to whole epochs when rounding keeps the order of
    all the points among themselves and against the run's start (0) and end (``new_epochs``): a
    point inside the run stays inside it, distinct points stay distinct, equal ones equal.
    Otherwise (short runs: ``--epochs 1`` would round the reference's 60/140/180 to 0/1/1) every
    point keeps its exact fraction of an epoch, which the engine applies at the first step at or
    after it. Returns what was done (recorded in config.json as ``schedule_scaling``)."""
    slots = [(obj, f.name) for obj in objs for f in fields(obj) if f.metadata.get("epochs")]
    shapes = [getattr(obj, name) for obj, name in slots]
    points = [float(v) for value in shapes for v in (value if isinstance(value, tuple) else (value,))]
    exact = [p * new_epochs / old_epochs for p in points]
    rounded = [float(round(x)) for x in exact]
    whole = _same_order(points + [0.0, float(old_epochs)], rounded + [0.0, float(new_epochs)])
    scaled = iter(rounded if whole else exact)
    for (obj, name), value in zip(slots, shapes):
        if isinstance(value, tuple):
            setattr(obj, name, tuple(epoch_point(next(scaled)) for _ in value))
        else:
            setattr(obj, name, epoch_point(next(scaled)))
    return {
        "from_epochs": old_epochs,
        "to_epochs": new_epochs,
        "points": "whole epochs" if whole else "fractions of an epoch (applied per step)",
    }


def resolve_config(
    *,
    methods: Registry,
    method: str,
    arch: str,
    dataset: str,
    seed: int,
    recipe: str,
    overrides: list[str] | None = None,
    epochs: int | None = None,
) -> RunConfig:
    """Build the run config: defaults, then the recipe, then ``--epochs``, then ``--set`` overrides.

    ``epochs`` (the ``--epochs`` flag) also rescales the epoch-denominated schedule (lr milestones,
    the auxiliary penalty start) proportionally (:func:`scale_schedule`), so a short run keeps the
    recipe's shape;
    ``--set epochs=N`` changes the number of epochs only.

    ``methods`` is the methods registry (``robustbench_aux.methods.METHODS``), handed in by the
    caller so that this module, below the methods, never imports them: ``methods.get(method).Options``
    is the run's options class, and a recipe's ``[method.<name>]`` sections are checked against it.
    """
    options_cls = methods.get(method).Options
    scaling = None
    data = load_recipe(recipe)
    for m in data["method"]:
        if m not in methods:
            raise UserError(f"recipe {data['label']}: [method.{m}]: " + methods.unknown_message(m))
    train, model, options = TrainConfig(), ModelConfig(), options_cls()
    label = data["label"]
    assign(train, data["train"], f"recipe {label} [train]")
    assign(model, data["model"], f"recipe {label} [model]")
    assign(options, data["method"].get(method, {}), f"recipe {label} [method.{method}]")
    sections = {"method": options, "train": train, "model": model}
    if epochs is not None:  # rescales the recipe's schedule; explicit --set values below win
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs}")
        scaling = scale_schedule((train, options), train.epochs, epochs)
        train.epochs = epochs
    for key, value in parse_overrides(overrides or []):
        section, name = _route_override(key, sections)
        assign(sections[section], {name: value}, f"--set {section}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**32 - 1:
        raise UserError(f"seed must be an integer in 0..{2**32 - 1}, got {seed!r}")
    if not 0 <= train.warmup_epochs <= train.epochs:
        raise UserError(
            f"warmup_epochs must be between 0 and epochs ({train.epochs}), got {train.warmup_epochs}"
        )
    return RunConfig(
        method=method,
        arch=arch,
        dataset=dataset,
        seed=seed,
        recipe=label,
        train=train,
        model=model,
        options=options,
        description=str(data.get("description", "")),
        recipe_status=str(data.get("status", "")),
        source=str(data.get("source", "")),
        reference=reference_values(data, sections, methods),
        schedule_scaling=scaling,
        reference_epochs=data["reference_epochs"],
    )
