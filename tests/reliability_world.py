"""A small world of inputs for the reliability battery (tests/test_reliability_*.py).

``build_world(root)`` writes, once per module: a finished tiny training run (``run/``), an
evaluated fixture run (``evruns/<id>/``), a CIFAR-C directory matching the run's test set
(``cc/``), a grid and a recipe. Each test copies the world into its own temporary directory,
mutates it, runs one command in-process and checks the contract of every bad input:

- the exit status (2 for bad input; 3 for a diverged run);
- stderr is exactly one line, ``error: ...``, containing the expected words (no traceback);
- no file outside the command's output directory is created or changed (sha256 before/after;
  the writer lock ``.lock`` aside).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fixtures_runs import write_cifar_c, write_fixture_run

from robustbench_aux import cli
from robustbench_aux.datasets import load_dataset

TINY = ["--recipe", "smoke", "--arch", "test_tiny", "--dataset", "synthetic10", "--device", "cpu"]
N = 40  # images per CIFAR-C block
GRID = """[defaults]
dataset = "synthetic10"
recipe = "smoke"
out = "sweep"
epochs = 1
n_train = 64
device = "cpu"

[[runs]]
methods = ["plain"]
archs = ["test_tiny"]
seeds = [0]
"""


def train_argv(out: str = "new", *extra: str) -> list[str]:
    return ["train", "--method", "plain", *TINY, "--n-train", "64", "--epochs", "1", "--out", out, *extra]


def build_world(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    assert cli.main(train_argv(str(root / "run"), "--set", "batch_size=32")) == 0
    test = load_dataset("synthetic10", n_test=200, seed=0)  # the test set evaluate loads for the run
    write_cifar_c(root / "cc", test.test_x[:N], test.test_y[:N], ("gaussian_noise", "contrast"))
    for label in ("plain", "auxiliary"):  # two runs: the report's paired tests read per-image files
        write_fixture_run(root / "evruns", label, "resnet18", 0, n=20)
    (root / "grid.toml").write_text(GRID)
    (root / "recipe.toml").write_text('extends = "smoke"\n[train]\nlr = 0.05\n')
    return root


def copy_world(world: Path, tmp_path: Path) -> Path:
    """The world copied five levels below ``tmp_path``: an escape by up to five ``..`` stays inside
    ``tmp_path``, where the snapshot sees it."""
    dest = tmp_path / "a" / "b" / "c" / "d" / "w"
    shutil.copytree(world, dest)
    return dest


def snapshot(root: Path, allowed: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file (and ``"dir"`` for every directory) under ``root``, except those under
    ``allowed`` prefixes and the writer locks of directories that existed before."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.name == ".lock" or any(rel == a or rel.startswith(a.rstrip("/") + "/") for a in allowed):
            continue
        if p.is_dir():
            out[rel] = "dir"
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@dataclass
class Case:
    """One bad input: ``argv`` run in the world's copy after ``setup(world)``."""

    id: str
    argv: list[str]
    words: str  # expected (case-insensitive) in the error line
    setup: object = None  # callable(world: Path) or None
    rc: int = 2
    allowed: tuple[str, ...] = field(
        default_factory=tuple
    )  # output paths that may change (relative to tmp_path)


def run_case(case: Case, world: Path, tmp_path: Path, capsys, monkeypatch) -> str:
    """Run one case and assert the contract; returns the error line."""
    w = copy_world(world, tmp_path)
    if case.setup is not None:
        case.setup(w)
    monkeypatch.chdir(w)
    prefix = w.relative_to(tmp_path).as_posix()
    allowed = tuple(f"{prefix}/{a}" for a in case.allowed)
    before = snapshot(tmp_path, allowed)
    capsys.readouterr()
    rc = cli.main([a.replace("{w}", str(w)) for a in case.argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == case.rc, f"exit status {rc}, stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line: {err!r}"
    assert "Traceback" not in err and "weights_only=False" not in err
    assert case.words.lower() in lines[0].lower(), lines[0]
    after = snapshot(tmp_path, allowed)
    assert after == before, {
        "created": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in before if k in after and before[k] != after[k]),
    }
    return lines[0]
