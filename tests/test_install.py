"""Installability: the wheel ships the grids and the CI spec; `check` runs from a wheel install offline.

The wheel test builds the package, installs it into a temporary venv that sees this interpreter's
site-packages through a path entry (so torch is not downloaded again; the editable install of the
source tree there is not activated), and runs the console script from outside the source tree.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from robustbench_aux.infra.shipped import CI_SPEC, GRIDS, grid_names, resolve_grid

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_requires_python_has_tomllib():
    """tomllib is in the standard library from 3.11: the declared minimum must not be below it."""
    spec = PYPROJECT["project"]["requires-python"]
    low = re.match(r">=\s*(\d+)\.(\d+)", spec)
    assert low and (int(low[1]), int(low[2])) >= (3, 11), spec
    assert not any("tomli" in d for d in PYPROJECT["project"]["dependencies"])


def test_dependencies_are_headless_and_lean():
    core = PYPROJECT["project"]["dependencies"]
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = [re.split(r"[<>=!;\[ ]", d)[0] for d in core]
    assert "opencv-python-headless" in names and "opencv-python" not in names
    for only_fidelity in ("imagecorruptions", "scikit-image", "setuptools"):
        assert only_fidelity not in names
        assert any(d.startswith(only_fidelity) for d in extras["fidelity"])
        assert any(d.startswith(only_fidelity) for d in extras["dev"])  # CI runs the fidelity tests
    assert "tb" not in extras


def test_no_core_module_imports_the_fidelity_packages():
    """imagecorruptions and skimage are imported only by the compatibility layer (lazily)."""
    for path in (REPO / "robustbench_aux").rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(from|import)\s+(imagecorruptions|skimage|pkg_resources)\b", line):
                assert path.name == "compat.py", (path, line)


def test_shipped_files_are_package_data():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["robustbench_aux"]
    pkg = REPO / "robustbench_aux"
    shipped = [p.relative_to(pkg).as_posix() for p in (pkg / "baselines").rglob("*") if p.is_file()]
    assert {"baselines/ci/check.toml", "baselines/ci/grid.toml", "baselines/ci/expected.json"} <= set(shipped)
    for f in shipped:
        assert any(fnmatch.fnmatch(f, g) for g in globs), f"{f} is not covered by package-data"
    assert CI_SPEC.is_file() and set(grid_names()) >= {"cifar100", "demo", "cpu_cifar10"}
    assert resolve_grid("cifar100") == GRIDS / "cifar100.toml"
    assert (
        resolve_grid(REPO / "baselines/grids/cifar100.toml").resolve() == GRIDS / "cifar100.toml"
    )  # the link


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: the build writes build/ and *.egg-info beside the sources
    shutil.copytree(
        REPO / "robustbench_aux", src / "robustbench_aux", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = dict(check=True, capture_output=True, text=True, env=env)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        **run,
    )
    (wheel,) = (tmp / "dist").glob("robustbench_aux-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], **run)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], **run)
    # afterwards (so pip never sees the source tree's install): torch & co. from this interpreter
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], **run
    ).stdout.strip()
    Path(site, "shared_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp / "elsewhere"
    outside.mkdir()
    offline = {
        **env,
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "PIP_NO_INDEX": "1",
    }
    return {"bin": venv / "bin", "cwd": outside, "env": offline}


def _cli(w, *args, timeout=600):
    return subprocess.run(
        [str(w["bin"] / "robustbench-aux"), *args],
        cwd=w["cwd"],
        env=w["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_wheel_install_runs_sweep_and_reproduce_grids_by_name(wheel_venv):
    w = wheel_venv
    where = subprocess.run(
        [str(w["bin"] / "python"), "-c", "import robustbench_aux; print(robustbench_aux.__file__)"],
        cwd=w["cwd"],
        env=w["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "site-packages" in where and str(REPO) not in where
    r = _cli(w, "sweep", "cifar100", "--dry-run")
    assert r.returncode == 0 and "robustbench-aux train --method auxiliary" in r.stdout, r.stderr
    r = _cli(w, "reproduce", "--grid", "nope", "--report", "r")
    # the wheel names every grid the source tree ships (augmix_published, cifar100, demo, ...)
    assert r.returncode == 2 and f"shipped grid name ({', '.join(grid_names())})" in r.stderr, r.stderr


@pytest.mark.slow
def test_wheel_install_runs_check_offline(wheel_venv, cifar10_root):
    """The CI regression check (training 2 tiny runs, several minutes on 2 shared cores) from the wheel."""
    r = _cli(wheel_venv, "check", "--data", str(cifar10_root), timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "metrics within tolerance: 4 passed, 0 failed" in r.stdout
