"""Run configuration: dataclasses are the single source of truth; TOML recipes load into them.

A recipe (``robustbench_aux/recipes/<name>.toml`` or any ``.toml`` file) has the sections::

    description = "..."            # free text, copied into config.json
    extends = "reference"          # optional: start from another recipe (name or path)
    [train]   ...                  # TrainConfig fields
    [model]   ...                  # ModelConfig fields
    [method.<method name>] ...     # that method's Options fields (one section per method)

Resolution order: dataclass defaults < recipe (after its ``extends`` chain) < ``--epochs`` (which
rescales the recipe's epoch-denominated schedule) < ``--set key=value`` overrides. Every unknown or
misspelled key is a :class:`UserError` naming the key.
``--set`` keys may be bare (``lr``, ``alpha``, ``corruption``; looked up in the method's options,
then ``train``, then ``model``) or dotted (``train.lr``, ``method.alpha``, ``model.width``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path

import tomllib

from robustbench_aux.errors import UserError

_TOP_KEYS = ("description", "extends", "status", "train", "model", "method")


@dataclass
class TrainConfig:
    """Optimizer, schedule, data pipeline and device settings."""

    epochs: int = 210
    batch_size: int = 128  # images per optimizer step (global batch; split across DDP ranks)
    lr: float = 0.1  # for the whole global batch
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    milestones: tuple[int, ...] = field(default=(60, 140, 180), metadata={"epochs": True})
    lr_decay: float = 0.1  # lr multiplier at each milestone (start of that 0-based epoch)
    warmup_epochs: float = 0.0  # linear lr warm-up over this many epochs, per step (0 = none, the reference)
    n_train: int = 0  # use the first N training images; 0 = all
    crop_padding: int = 4  # random crop of the image padded by this many px (zeros)
    flip: bool = True
    normalization: str = "dataset"  # dataset | reference | cifar10 | cifar100 (datasets.NORMALIZATION)
    mean: tuple[float, ...] = ()  # explicit per-channel mean/std in [0, 1]; overrides normalization
    std: tuple[float, ...] = ()
    channels_last: str = "auto"  # auto (on CUDA) | on | off
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off
    compile: bool = False  # torch.compile the model (CUDA)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    optimizer_impl: str = "default"  # SGD kernels: default (torch's choice) | foreach | fused (CUDA) | for_loop
    finite_check: str = "epoch"  # non-finite losses: found on the device, read once per epoch (epoch) or every step
    sbn_passes: str = "auto"  # selective BN: single | per_view | auto (single on CUDA, per_view on the CPU)
    log_every: int = 50  # steps between log lines when no progress bar is shown


@dataclass
class ModelConfig:
    """Architecture options (the architecture itself is chosen with ``--arch``)."""

    width: int = 0  # ResNet base width; 0 = the architecture's default (64, resnet8 16, test_tiny 8)
    stem_relu: bool = False  # ResNet stem ReLU; the reference code has none


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


def _read_recipe_text(name_or_path: str) -> tuple[str, str]:
    """(text, label) of a shipped recipe name or a ``.toml`` path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise UserError(f"recipe file {path} does not exist")
        return path.read_text(encoding="utf-8"), str(path)
    shipped = _recipe_dir() / f"{name_or_path}.toml"
    if not shipped.is_file():
        close = difflib.get_close_matches(name_or_path, recipe_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UserError(
            f"unknown recipe {name_or_path!r}{hint} (shipped: {', '.join(recipe_names())}; "
            "or give a .toml path)"
        )
    return shipped.read_text(encoding="utf-8"), name_or_path


def load_recipe(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict:
    """The recipe as a dict with its ``extends`` chain merged in (later sections win per key)."""
    text, label = _read_recipe_text(name_or_path)
    if label in _seen:
        raise UserError(f"recipe {label} extends itself (chain: {' -> '.join(_seen + (label,))})")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {label} is not valid TOML: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise UserError(_unknown_key(key, _TOP_KEYS, f"recipe {label}"))
    for key in ("train", "model", "method"):
        if key in data and not isinstance(data[key], dict):
            raise UserError(f"recipe {label}: [{key}] must be a table")
    base = load_recipe(data["extends"], _seen + (label,)) if "extends" in data else {}
    merged = {k: v for k, v in base.items() if k not in ("train", "model", "method")}
    merged.update({k: v for k, v in data.items() if k not in ("train", "model", "method", "extends")})
    merged["train"] = {**base.get("train", {}), **data.get("train", {})}
    merged["model"] = {**base.get("model", {}), **data.get("model", {})}
    methods = {m: dict(v) for m, v in base.get("method", {}).items()}
    for m, section in data.get("method", {}).items():
        if not isinstance(section, dict):
            raise UserError(f"recipe {label}: [method.{m}] must be a table")
        methods[m] = {**methods.get(m, {}), **section}
    merged["method"] = methods
    merged["label"] = label
    return merged


# --------------------------------------------------------------------------- typed assignment


def _unknown_key(key: str, known, where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r} in {where}{hint} (known: {', '.join(sorted(known))})"


def _coerce(value, hint, key: str):
    """``value`` converted to the field type ``hint``; a UserError naming ``key`` if impossible."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
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


def scale_schedule(obj, factor: float) -> None:
    """Rescale every field marked ``metadata={"epochs": True}`` (epoch numbers) by ``factor``."""
    for f in fields(obj):
        if f.metadata.get("epochs"):
            value = getattr(obj, f.name)
            if isinstance(value, tuple):
                setattr(obj, f.name, tuple(int(round(v * factor)) for v in value))
            else:
                setattr(obj, f.name, int(round(value * factor)))


def resolve_config(
    *,
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
    the auxiliary penalty start) proportionally, so a short run keeps the recipe's shape;
    ``--set epochs=N`` changes the number of epochs only.
    """
    from robustbench_aux.methods import METHODS

    options_cls = METHODS.get(method).Options
    data = load_recipe(recipe)
    for m in data["method"]:
        if m not in METHODS:
            raise UserError(f"recipe {data['label']}: [method.{m}]: " + METHODS.unknown_message(m))
    train, model, options = TrainConfig(), ModelConfig(), options_cls()
    label = data["label"]
    assign(train, data["train"], f"recipe {label} [train]")
    assign(model, data["model"], f"recipe {label} [model]")
    assign(options, data["method"].get(method, {}), f"recipe {label} [method.{method}]")
    sections = {"method": options, "train": train, "model": model}
    if epochs is not None:  # rescales the recipe's schedule; explicit --set values below win
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs}")
        factor = epochs / train.epochs
        train.epochs = epochs
        scale_schedule(train, factor)
        scale_schedule(options, factor)
    for key, value in parse_overrides(overrides or []):
        section, name = _route_override(key, sections)
        assign(sections[section], {name: value}, f"--set {section}")
    if train.epochs < 1 or train.batch_size < 1:
        raise UserError(f"epochs and batch_size must be positive (got {train.epochs}, {train.batch_size})")
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
    )
