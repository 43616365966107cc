"""Reliability battery, part 2: one writer per run, no non-finite checkpoint, full and read-only
disks, orphaned temporary files, evaluation outputs usable downstream.

The disk tests mount a small tmpfs (root only) and are skipped where that is not possible.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability_world import TINY, build_world, copy_world, snapshot, train_argv

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_checkpoint, nonfinite_tensors
from robustbench_aux.infra import atomic
from robustbench_aux.lock import LOCK_NAME, exclusive

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("world") / "w")


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- one writer per run


@pytest.mark.parametrize(
    "argv, target",
    [
        (train_argv("run", "--set", "batch_size=32", "--resume"), "run"),
        (train_argv("fresh"), "fresh"),
        (["evaluate", "run", "--device", "cpu", "--corruptions", "cc", "--n", "40"], "run/eval"),
        (
            [
                "corrupt",
                "--dataset",
                "synthetic10",
                "--corruptions",
                "gaussian_noise",
                "--n",
                "20",
                "--workers",
                "1",
                "--out",
                "cco",
            ],
            "cco",
        ),
    ],
    ids=["train-resume", "train-new", "evaluate", "corrupt"],
)
def test_second_writer_gets_one_line_error(argv, target, world, tmp_path, capsys, monkeypatch):
    w = copy_world(world, tmp_path)
    monkeypatch.chdir(w)
    before = snapshot(w)
    with exclusive(w / target):  # the first writer (this process) holds the directory
        assert cli.main(argv) == 2
    assert "another process" in _one_error(capsys)
    assert snapshot(w) == before


def _wait_for_lock(path: Path, pid: int, proc, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().strip() == str(pid):
            return
        if proc.poll() is not None:
            raise AssertionError(f"first writer ended early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("first writer never took the lock")


def _start_train(out: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "robustbench_aux", *train_argv(str(out), "--set", "batch_size=32", *extra)]
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_train_processes(tmp_path, capsys):
    """A real second `train` into the same --out while the first runs (frozen with SIGSTOP at a
    random point after it took the lock) is refused; the first finishes with its own config."""
    out = tmp_path / "run"
    first = _start_train(out, tmp_path, "--seed", "1")
    try:
        _wait_for_lock(out / LOCK_NAME, first.pid, first)
        os.kill(first.pid, signal.SIGSTOP)
        assert cli.main(train_argv(str(out), "--set", "batch_size=32", "--seed", "2")) == 2
        assert f"another process (pid {first.pid})" in _one_error(capsys)
        os.kill(first.pid, signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 1 and load_checkpoint(out / "final.pt")["config"]["seed"] == 1


def test_lock_is_released_when_the_writer_is_killed(tmp_path, capsys):
    out = tmp_path / "run"
    first = _start_train(out, tmp_path)
    _wait_for_lock(out / LOCK_NAME, first.pid, first)
    first.kill()
    first.wait()
    assert cli.main(train_argv(str(out), "--set", "batch_size=32", "--resume")) == 0
    assert (out / "final.pt").is_file()


# ----------------------------------------------------------------------------- non-finite state


def test_diverging_last_step_leaves_no_non_finite_checkpoint(tmp_path, capsys):
    """The issue's case: one epoch at lr 1e6 ends with infinite BN running variances (the loss of
    every step was finite). Exit status 3, no final.pt, last.pt finite; evaluate marks it unfinished."""
    out = tmp_path / "run"
    argv = ["train", "--method", "plain", *TINY, "--out", str(out)]
    rc = cli.main([*argv, "--set", "lr=1e6", "--set", "epochs=1", "--n-train", "192"])
    assert rc == 3
    line = _one_error(capsys)
    assert "nan or infinite" in line.lower() and "running_var" in line
    assert not (out / "final.pt").exists()
    for ckpt_file in out.glob("*.pt"):
        assert nonfinite_tensors(load_checkpoint(ckpt_file)["state_dict"]) == []
    assert load_checkpoint(out / "last.pt")["epoch"] == 0


def test_evaluate_refuses_a_non_finite_checkpoint(world, tmp_path, capsys):
    w = copy_world(world, tmp_path)
    ckpt = torch.load(w / "run" / "final.pt", weights_only=True)
    name = next(k for k in ckpt["state_dict"] if k.endswith("running_var"))
    ckpt["state_dict"][name][0] = float("nan")
    torch.save(ckpt, w / "run" / "final.pt")
    assert cli.main(["evaluate", str(w / "run"), "--device", "cpu"]) == 2
    assert name in _one_error(capsys)
    assert not (w / "run" / "eval" / "results.csv").exists()


def test_sweep_reports_a_diverged_run_as_failed(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(
        '[defaults]\ndataset = "synthetic10"\nrecipe = "smoke"\nout = "runs"\nn_train = 192\n'
        'device = "cpu"\nset = {lr = 1e6, epochs = 1}\n[[runs]]\nmethods = ["plain"]\narchs = ["test_tiny"]\nseeds = [0]\n'
    )
    os.chdir(tmp_path)
    try:
        assert cli.main(["sweep", str(grid)]) == 1
    finally:
        os.chdir(REPO)
    captured = capsys.readouterr()
    assert "failed" in captured.err and "NaN or infinite" in captured.err
    assert "1 failed" in captured.out
    log = (tmp_path / "runs" / "plain-test_tiny-s0" / "sweep.log").read_text()
    assert log.count("error:") == 1 and "Traceback" not in log


# ----------------------------------------------------------------------------- full / read-only disks


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        )
    except OSError:
        return False
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture()
def small_disk(tmp_path):
    """A 256 KiB tmpfs, filled up except for a few bytes (skipped if it cannot be mounted)."""
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        (mnt / "keep.txt").write_text("written before\n")
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mnt
    finally:
        _umount(mnt)


DISK_CASES = {
    "train": train_argv("{m}/run"),
    "evaluate": ["evaluate", "run", "--device", "cpu", "--corruptions", "cc", "--n", "40", "--out", "{m}/ev"],
    "corrupt": [
        "corrupt",
        "--dataset",
        "synthetic10",
        "--corruptions",
        "gaussian_noise",
        "--n",
        "20",
        "--workers",
        "1",
        "--out",
        "{m}/cc",
    ],
    "report": ["report", "evruns", "-o", "{m}/rep"],
    "export": ["export", "evruns", "-o", "{m}/exp", "--allow-nonstandard"],
}


@pytest.mark.parametrize("command", list(DISK_CASES))
def test_disk_full(command, small_disk, world, tmp_path, capsys, monkeypatch):
    w = copy_world(world, tmp_path / "world")
    monkeypatch.chdir(w)
    before = snapshot(w)
    rc = cli.main([a.replace("{m}", str(small_disk)) for a in DISK_CASES[command]])
    assert rc == 2
    assert "no space left on device" in _one_error(capsys).lower()
    assert snapshot(w) == before
    assert (small_disk / "keep.txt").read_text() == "written before\n"
    left = [
        p.name
        for p in small_disk.rglob("*")
        if p.is_file() and p.name not in ("filler", "keep.txt", LOCK_NAME)
    ]
    assert not [n for n in left if n.endswith(".tmp")], left  # no half-written temporary file


@pytest.mark.parametrize("command", list(DISK_CASES))
def test_read_only_output(command, world, tmp_path, capsys, monkeypatch):
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True, capture_output=True)
        w = copy_world(world, tmp_path / "world")
        monkeypatch.chdir(w)
        before = snapshot(w)
        assert cli.main([a.replace("{m}", str(mnt)) for a in DISK_CASES[command]]) == 2
        assert "read-only" in _one_error(capsys).lower()
        assert snapshot(w) == before
    finally:
        _umount(mnt)


# ----------------------------------------------------------------------------- temporary files


def test_orphaned_temporary_files_are_removed_on_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = tmp_path / f".config.json.{dead.pid}.abc123.tmp"
    old_style = tmp_path / ".config.json.k3j_x9.tmp"
    live = tmp_path / f".config.json.{os.getpid()}.zz.tmp"  # a write in progress in a live process
    other = tmp_path / f".metrics.csv.{dead.pid}.q.tmp"  # another file's: left to its own next write
    for p in (orphan, old_style, live, other):
        p.write_text("partial")
    os.utime(old_style, (time.time() - 2 * atomic.ORPHAN_AGE_S,) * 2)
    atomic.write_json(tmp_path / "config.json", {"a": 1})
    assert not orphan.exists() and not old_style.exists()
    assert live.exists() and other.exists()
    assert json.loads((tmp_path / "config.json").read_text()) == {"a": 1}


# ----------------------------------------------------------------------------- outputs downstream


def test_evaluate_out_dir_is_usable_by_report_and_export(world, tmp_path, capsys):
    w = copy_world(world, tmp_path)
    ev = tmp_path / "elsewhere" / "ev"
    assert (
        cli.main(
            [
                "evaluate",
                str(w / "run"),
                "--device",
                "cpu",
                "--corruptions",
                str(w / "cc"),
                "--n",
                "40",
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    assert cli.main(["report", str(ev), "-o", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "index.html").is_file()
    assert (
        cli.main(["export", str(ev), "-o", str(tmp_path / "exp"), "--allow-partial", "--allow-nonstandard"])
        == 0
    )
    (exported,) = (tmp_path / "exp").glob("*.json")
    entry = json.loads(exported.read_text())
    assert entry["partial"] is True and "partial" in entry["footnote"].lower()


def test_unfinished_run_is_marked_and_not_exported_as_complete(world, tmp_path, capsys):
    w = copy_world(world, tmp_path)
    (w / "run" / "final.pt").unlink()  # as if stopped after the last epoch's last.pt
    assert (
        cli.main(["evaluate", str(w / "run"), "--device", "cpu", "--corruptions", str(w / "cc"), "--n", "40"])
        == 0
    )
    summary = json.loads((w / "run" / "eval" / "summary.json").read_text())
    assert summary["provenance"]["checkpoint_finished"] is False
    capsys.readouterr()
    assert cli.main(["export", str(w / "run"), "-o", str(tmp_path / "exp"), "--allow-nonstandard"]) == 2
    assert "unfinished" in _one_error(capsys)
    assert (
        cli.main(
            ["export", str(w / "run"), "-o", str(tmp_path / "exp"), "--allow-partial", "--allow-nonstandard"]
        )
        == 0
    )
    (exported,) = (tmp_path / "exp").glob("*.json")
    entry = json.loads(exported.read_text())
    assert entry["partial"] is True and "unfinished" in entry["footnote"]


def test_recipe_extends_is_relative_to_the_recipe_file(tmp_path, monkeypatch):
    from robustbench_aux.config import load_recipe

    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "base.toml").write_text("[train]\nlr = 0.02\nepochs = 3\n")
    (tmp_path / "recipes" / "child.toml").write_text('extends = "base.toml"\n[train]\nlr = 0.01\n')
    monkeypatch.chdir(REPO)  # not the recipes' directory
    merged = load_recipe(str(tmp_path / "recipes" / "child.toml"))
    assert merged["train"] == {"lr": 0.01, "epochs": 3}


def test_os_error_message_is_one_line():
    msg = cli.os_error_message(OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    assert msg.startswith("No space left on device: /x/y") and "\n" not in msg
