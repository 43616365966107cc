"""Models from outside this suite, named by a spec string (``evaluate --model``).

- ``PKG.MODULE:FACTORY`` -- ``FACTORY(**kwargs)`` must return an ``nn.Module`` (a torchvision or timm
  constructor, or the user's own function or class); ``weights`` is then a state dict file;
- ``FILE.pt2`` -- a ``torch.export`` program (saved with ``torch.export.save``);
- ``FILE.pt`` / ``FILE.jit`` -- a TorchScript file (``torch.jit.save``);
- ``robustbench:<dataset>/<name>`` -- a RobustBench zoo model (corruptions threat model), when the
  ``robustbench`` package is importable (it is not a dependency of this suite).

Every model takes float images in [0, 1]; ``normalization`` (mean, std) wraps one that expects
normalized input.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from robustbench_aux.catalog import NORMALIZATION
from robustbench_aux.errors import UserError, exception_line, user_code
from robustbench_aux.infra.hashing import sha256_file
from robustbench_aux.infra.paths import component

log = logging.getLogger(__name__)

ROBUSTBENCH_PREFIX = "robustbench:"
EXPORT_SUFFIXES = (".pt2",)
SCRIPT_SUFFIXES = (".pt", ".pth", ".jit", ".torchscript")
# named input statistics accepted by --normalize (besides explicit numbers and "none")
NAMED_STATS = {
    "cifar10": NORMALIZATION["cifar10"],
    "cifar100": NORMALIZATION["cifar100"],
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass
class ExternalModel:
    module: nn.Module
    kind: str  # factory | export | torchscript | robustbench
    spec: str
    name: str  # a short name for run ids (the factory / file stem / zoo name)
    info: dict = field(default_factory=dict)  # provenance: weights file, kwargs, package versions


def parse_normalization(text: str | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``none`` -> None; ``cifar10``/``cifar100``/``imagenet`` -> their statistics;
    ``m1,m2,m3,s1,s2,s3`` (or ``m1,m2,m3/s1,s2,s3``) -> explicit mean and std."""
    if text is None or text.strip().lower() in ("", "none"):
        return None
    key = text.strip().lower()
    if key in NAMED_STATS:
        return NAMED_STATS[key]
    try:
        values = [float(t) for t in re.split(r"[,/ ]+", text.strip()) if t]
    except ValueError:
        values = []
    if len(values) != 6 or min(values[3:]) <= 0:
        raise UserError(
            f"--normalize {text!r}: expected none, {', '.join(NAMED_STATS)} or six numbers "
            "MEAN_R,MEAN_G,MEAN_B,STD_R,STD_G,STD_B (stds positive)"
        )
    return tuple(values[:3]), tuple(values[3:])


def _import_factory(spec: str):
    if not _FACTORY.match(spec):
        raise UserError(
            f"--model {spec!r} is neither PKG.MODULE:FACTORY, a .pt2 / .pt file nor robustbench:<dataset>/<name>"
        )
    module_name, attr = spec.split(":", 1)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import {module_name} for --model {spec} ({exc})") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module's own code failed at import
        raise UserError(f"importing {module_name} for --model {spec} raised {exception_line(exc)}") from None
    with user_code(f"--model {spec}", f"looking up {attr!r} in {module_name}"):
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise UserError(f"{module_name} has no attribute {attr!r} (--model {spec})")
            obj = getattr(obj, part)
    if not callable(obj):
        raise UserError(f"{spec} is not callable; name a function or class that returns an nn.Module")
    return obj


def load_state_dict_file(model: nn.Module, path: str | Path) -> dict:
    """Load a state dict file into ``model`` (strictly); unwraps ``{"state_dict": ...}`` / ``{"model": ...}``
    and a DataParallel ``module.`` prefix. Returns provenance facts."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is bad input here
        raise UserError(
            f"cannot read weights {path} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    try:
        result = model.load_state_dict(obj, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise UserError(
            f"{path} does not fit the model ({first}); wrong factory or arguments (e.g. --model-arg num_classes=...)?"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        miss, extra = result.missing_keys, result.unexpected_keys
        raise UserError(
            f"{path} does not fit the model: {len(miss)} missing key(s) {miss[:3]}, {len(extra)} unexpected "
            f"{extra[:3]}; wrong factory or arguments (e.g. --model-arg num_classes=...)?"
        )
    return {"weights": str(path.resolve()), "weights_sha256": sha256_file(path)}


def _load_file(path: Path) -> tuple[nn.Module, str]:
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.suffix in EXPORT_SUFFIXES:
        with _torch_export_log() as logged:
            try:
                program = torch.export.load(str(path))
            except Exception as exc:  # noqa: BLE001
                cause = logged[-1] if logged else exception_line(exc)  # the reason torch logged, if any
                raise UserError(f"{path} is not a torch.export program ({cause})") from None
        return program.module(), "export"
    try:
        with warnings.catch_warnings():
            # torch deprecates TorchScript in favour of torch.export; this suite still reads the
            # files, and the user of a file cannot change how it was saved
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning
            )
            return torch.jit.load(str(path), map_location="cpu"), "torchscript"
    except Exception:  # noqa: BLE001
        raise UserError(
            f"{path} is not a TorchScript file; a state dict goes with its architecture: --model "
            "PKG.MODULE:FACTORY --weights FILE; a checkpoint of this suite is evaluated as `evaluate RUN`"
        ) from None


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.lines.append(
            exception_line(exc) if exc is not None else record.getMessage().splitlines()[0][:200]
        )


@contextlib.contextmanager
def _torch_export_log():
    """While torch.export reads a file: its logger's records (a damaged file makes it log a whole
    traceback as a warning, then fail with "check the warnings above") are kept, not printed; the
    yielded list holds one line per record, for the error message."""
    logger = logging.getLogger("torch.export")
    capture = _Capture()
    saved = logger.handlers[:], logger.propagate
    logger.handlers[:] = [capture]
    logger.propagate = False
    try:
        yield capture.lines
    finally:
        logger.handlers[:], logger.propagate = saved


def _load_robustbench(spec: str) -> tuple[nn.Module, str, dict]:
    rest = spec[len(ROBUSTBENCH_PREFIX) :]
    dataset, _, name = rest.partition("/")
    if dataset not in ("cifar10", "cifar100") or not name:
        raise UserError(f"--model {spec}: expected robustbench:cifar10/<name> or robustbench:cifar100/<name>")
    component(name, f"--model {spec}: the model name")  # robustbench makes it a file name: no / or ..
    try:
        from robustbench.utils import load_model  # optional: not a dependency of this suite
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "robustbench":  # the package itself (or its utils) is absent
            raise UserError(
                "--model robustbench:... needs the robustbench package, which is not installed "
                "(pip install git+https://github.com/RobustBench/robustbench.git)"
            ) from None
        raise UserError(
            f"the robustbench package is installed but cannot be imported: {exception_line(exc)}"
            + (
                f" (a dependency it needs is missing: install the package providing {exc.name!r})"
                if exc.name
                else ""
            )
        ) from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken installation
        raise UserError(f"importing the robustbench package raised {exception_line(exc)}") from None
    try:
        model = load_model(model_name=name, dataset=dataset, threat_model="corruptions")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - unknown names, missing weights offline, ...
        raise UserError(f"robustbench could not load {dataset}/{name} ({exception_line(exc)})") from None
    return model, name, {"robustbench_dataset": dataset}


def load_external(
    spec: str,
    *,
    weights: str | Path | None = None,
    kwargs: Mapping | None = None,
) -> ExternalModel:
    """Build the model a spec names (see the module docstring)."""
    kwargs = dict(kwargs or {})
    if spec.startswith(ROBUSTBENCH_PREFIX):
        if weights or kwargs:
            raise UserError("--weights and --model-arg do not apply to robustbench: models")
        model, name, info = _load_robustbench(spec)
        return ExternalModel(model, "robustbench", spec, name, info)
    path = Path(spec)
    if path.suffix in EXPORT_SUFFIXES + SCRIPT_SUFFIXES or path.is_file():
        if weights or kwargs:
            raise UserError(
                f"--weights and --model-arg go with PKG.MODULE:FACTORY, not with a model file ({spec})"
            )
        model, kind = _load_file(path)
        return ExternalModel(
            model, kind, spec, path.stem, {"file": str(path.resolve()), "file_sha256": sha256_file(path)}
        )
    factory = _import_factory(spec)
    call = f"{spec}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    with user_code(f"the factory {call}", "building the model", "fix the factory or its --model-arg values"):
        model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise UserError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module")
    with user_code(f"--model {spec}", "switching the model to eval mode"):
        model.eval()  # a freshly built module is in training mode; evaluation is in eval mode
    info: dict = {"factory": spec, "kwargs": kwargs}
    if weights is not None:
        info.update(load_state_dict_file(model, weights))
    top = spec.split(":", 1)[0].split(".")[0]
    package = importlib.import_module(top)
    info["package_version"] = f"{top} {getattr(package, '__version__', 'unknown')}"
    return ExternalModel(model, "factory", spec, spec.rsplit(":", 1)[1].rsplit(".", 1)[-1], info)


def parse_model_args(items) -> dict:
    """``["num_classes=10", "pretrained=False"]`` -> ``{"num_classes": 10, "pretrained": False}``."""
    import ast

    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UserError(f"--model-arg {item!r}: expected KEY=VALUE (e.g. num_classes=100)")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = {"true": True, "false": False, "none": None}.get(value.lower(), value)
    return out


def evaluate_external(
    spec: str,
    dataset: str,
    corruptions_dir=None,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    weights: str | Path | None = None,
    model_args: Mapping | None = None,
    normalization=None,
    data_root=None,
    **kwargs,
):
    """Evaluate the model ``spec`` names like a run: ``<out>/config.json`` + ``<out>/eval/`` (readable by
    ``report`` and ``export``). ``out`` defaults to ``runs/external/<name>``. Further keyword arguments
    go to :func:`robustbench_aux.evaluation.evaluate`."""
    from robustbench_aux.datasets import load_dataset
    from robustbench_aux.evaluation.api import EvalSubject, evaluate
    from robustbench_aux.infra import atomic
    from robustbench_aux.rundir import CONFIG_JSON, EVAL_DIR, read_config

    ext = load_external(spec, weights=weights, kwargs=model_args)
    run_id = name or ext.name
    what = "--name" if name else f"the name taken from --model {spec} (pass --name)"
    component(run_id, what)  # no '/', '.' or '..': it names the output folder
    if not re.fullmatch(r"[\w.+-]+", run_id):
        raise UserError(f"{what} {run_id!r}: use letters, digits and . _ + - only (it names files)")
    out = Path(out) if out is not None else Path("runs") / "external" / run_id
    cfg_path = out / CONFIG_JSON
    if cfg_path.is_file():
        try:
            old = read_config(out)
        except UserError:  # not JSON, not an object: not ours either
            old = {}
        if old.get("method") != "external":
            raise UserError(
                f"{out} holds a config.json that is not an evaluation of --model (a training run's or "
                "another tool's); pass --out a folder of its own"
            )
    data = load_dataset(dataset, data_root)
    config = {
        "run_id": run_id,
        "method": "external",
        "arch": ext.name,
        "dataset": data.name,
        "num_classes": data.num_classes,
        "seed": None,
        "model": {"spec": spec, "kind": ext.kind, **ext.info},
        "normalization": None
        if normalization is None
        else {"mean": list(normalization[0]), "std": list(normalization[1])},
        "data": data.describe(),
    }
    from robustbench_aux.infra.versioning import code_version

    config["code_version"] = code_version()
    result = evaluate(
        ext.module,
        data,
        corruptions_dir,
        out_dir=out / EVAL_DIR,
        normalization=normalization,
        subject=EvalSubject(
            info=config,
            provenance={"model": config["model"]},
            fingerprint={"model_spec": spec, "normalization": config["normalization"]},
            model_label=f"--model {spec}",
        ),
        **kwargs,
    )
    atomic.write_json(cfg_path, config)
    if ext.kind == "factory" and weights is None:  # after the work: an error stays the only line
        log.warning("no --weights: %s was evaluated with the weights its factory returns", spec)
    return result
