"""Reliability battery, part 3: hostile models, archives and output folders.

What a hostile (or unlucky) user hands ``evaluate --model``, ``data download-c`` and ``train --out``:
models whose logits are NaN/inf, factories and forwards that raise or call ``sys.exit``, a
``robustbench`` installation missing a dependency, model names that walk out of their folder,
damaged ``torch.export`` / TorchScript files, URLs and checksums that are not, archives holding
files the CIFAR-C layout does not name or blocks that are not 10,000 images, a download killed
while extracting, folders holding another tool's ``config.json``. Every case runs in the world of
reliability_world.py and asserts its contract: the exit status, exactly one ``error:`` line (no
traceback, no line before it), and no file changed outside the command's output directory.
All files are local (``file://`` URLs, tar archives built here): no network.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_runs import write_cifar_c
from reliability_world import Case, build_world, copy_world, run_case, train_argv

from robustbench_aux import cli
from robustbench_aux.datasets import download, load_dataset

REPO = Path(__file__).resolve().parents[1]

# a user's model module: every way its code can fail
MODELS_PY = """
import sys
import torch
from torch import nn


class Lin(nn.Module):
    def __init__(self, k=10, value=None, boom=None, bad_from_call=0):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, k)
        self.value, self.boom, self.bad_from_call, self.calls = value, boom, bad_from_call, 0

    def forward(self, x):
        self.calls += 1
        if self.boom == "raise":
            raise RuntimeError("forward exploded")
        if self.boom == "exit":
            sys.exit(0)
        out = self.fc(x.flatten(1))
        if self.value is not None and self.calls >= self.bad_from_call:
            out = out * 0 + float(self.value)
        return out


def ok():
    return Lin()


def nan():
    return Lin(value="nan")


def inf():
    return Lin(value="inf")


def nan_later():
    # call 1 is the class-count probe, 2 the clean block, 3 the first corrupted block
    return Lin(value="nan", bad_from_call=3)


def raises():
    raise ValueError("no such backbone")


def exits():
    raise SystemExit(0)


def forward_raises():
    return Lin(boom="raise")


def forward_exits():
    return Lin(boom="exit")
"""

BROKEN_IMPORT_PY = 'raise RuntimeError("this module fails when imported")\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The battery's world plus ``ccm/``: a CIFAR-C directory of the test set ``evaluate --model
    --dataset synthetic10`` loads (the world's ``cc/`` matches its training run's test set)."""
    w = build_world(tmp_path_factory.mktemp("world") / "w")
    test = load_dataset("synthetic10")
    write_cifar_c(w / "ccm", test.test_x[:40], test.test_y[:40], ("gaussian_noise", "contrast"))
    return w


@pytest.fixture(scope="module")
def user_code(tmp_path_factory):
    """A folder on sys.path with the user's model modules and a robustbench installation whose
    import fails on a missing dependency; imported modules are forgotten afterwards."""
    d = tmp_path_factory.mktemp("usercode")
    (d / "hostile_models.py").write_text(MODELS_PY)
    (d / "broken_at_import.py").write_text(BROKEN_IMPORT_PY)
    (d / "robustbench").mkdir()
    (d / "robustbench" / "__init__.py").write_text("")
    (d / "robustbench" / "utils.py").write_text("import a_dependency_that_is_not_installed\n")
    sys.path.insert(0, str(d))
    yield d
    sys.path.remove(str(d))
    for name in [
        m for m in sys.modules if m.split(".")[0] in ("hostile_models", "broken_at_import", "robustbench")
    ]:
        del sys.modules[name]


# ----------------------------------------------------------------------------- archives


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def tar_bytes(
    files: dict[str, bytes], dirname: str = "CIFAR-10-C", links: dict[str, str] | None = None
) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        d = tarfile.TarInfo(dirname)
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{dirname}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"{dirname}/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def small_files(n: int = 4) -> dict[str, bytes]:
    """The layout's files with ``n`` images per block (the published files have 10,000)."""
    rng = np.random.default_rng(0)
    return {
        "labels.npy": _npy(np.tile(np.arange(n) % 10, 5).astype(np.uint8)),
        "fog.npy": _npy(rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8)),
    }


ARCHIVES = {
    "small-blocks": tar_bytes(small_files()),
    "extra-readme": tar_bytes({**small_files(), "README.txt": b"hello"}),
    "unknown-npy": tar_bytes({**small_files(), "evil.npy": _npy(np.zeros(3))}),
    "subfolder": tar_bytes({**small_files(), "sub/fog.npy": small_files()["fog.npy"]}),
    "bad-labels": tar_bytes({**small_files(), "labels.npy": b"not an npy file"}),
    "symlink": tar_bytes(small_files(), links={"gaussian_noise.npy": "/etc/passwd"}),
}


def _archive(name: str):
    def setup(w: Path) -> None:
        (w / "arch").mkdir(exist_ok=True)
        (w / "arch" / f"{name}.tar").write_bytes(ARCHIVES[name])

    return setup


def download_argv(name: str, md5: str | None = None, url: str | None = None) -> list[str]:
    md5 = md5 if md5 is not None else hashlib.md5(ARCHIVES[name]).hexdigest()
    url = url if url is not None else f"file://{{w}}/arch/{name}.tar"
    return [
        "data",
        "download-c",
        "--dataset",
        "cifar10",
        "--data",
        "dl",
        "--url",
        url,
        "--md5",
        md5,
        "--no-progress",
    ]


# ----------------------------------------------------------------------------- the cases

EVAL_MODEL = [
    "evaluate",
    "--dataset",
    "synthetic10",
    "--device",
    "cpu",
    "--n",
    "40",
    "--out",
    "ev",
    "--model",
]

MODELS = [
    Case(
        "logits-nan",
        [*EVAL_MODEL, "hostile_models:nan"],
        "the clean test set: the model's logits are nan",
        rc=3,
        allowed=("ev",),
    ),
    Case(
        "logits-inf",
        [*EVAL_MODEL, "hostile_models:inf"],
        "infinite for 40 of 40 images",
        rc=3,
        allowed=("ev",),
    ),
    Case(
        "logits-nan-in-a-corrupted-block",
        [*EVAL_MODEL, "hostile_models:nan_later", "--corruptions", "ccm", "--severities", "1"],
        "block gaussian_noise severity 1: the model's logits are nan",
        rc=3,
        allowed=("ev",),
    ),
    Case(
        "factory-raises",
        [*EVAL_MODEL, "hostile_models:raises"],
        "hostile_models:raises(): building the model raised valueerror: no such backbone",
    ),
    Case("factory-exits", [*EVAL_MODEL, "hostile_models:exits"], "raised systemexit(0)"),
    Case(
        "forward-raises",
        [*EVAL_MODEL, "hostile_models:forward_raises"],
        "forward (on one blank image) raised runtimeerror",
    ),
    Case(
        "forward-exits",
        [*EVAL_MODEL, "hostile_models:forward_exits"],
        "forward (on one blank image) raised systemexit",
    ),
    Case(
        "module-raises-on-import",
        [*EVAL_MODEL, "broken_at_import:f"],
        "importing broken_at_import for --model",
    ),
    Case(
        "robustbench-dependency-missing",
        [*EVAL_MODEL, "robustbench:cifar10/Standard"],
        "'a_dependency_that_is_not_installed'",
    ),
    Case(
        "robustbench-name-traversal",
        [*EVAL_MODEL, "robustbench:cifar10/../../x"],
        "cannot be used in a file name",
    ),
    Case(
        "robustbench-name-dotdot", [*EVAL_MODEL, "robustbench:cifar100/.."], "cannot be used in a file name"
    ),
    Case(
        "name-dotdot",
        [*EVAL_MODEL, "hostile_models:ok", "--name", ".."],
        "--name '..' cannot be used in a file name",
    ),
    Case("name-dot", [*EVAL_MODEL, "hostile_models:ok", "--name", "."], "cannot be used in a file name"),
    Case(
        "out-holds-a-foreign-config",
        [*EVAL_MODEL, "hostile_models:ok", "--out", "foreign"],
        "not an evaluation of --model",
        setup=lambda w: (w / "foreign").mkdir() or (w / "foreign" / "config.json").write_text("[1, 2]"),
    ),
]

ARCHIVE_CASES = [
    Case(
        "md5-not-hex",
        download_argv("small-blocks", md5="z" * 32),
        "is not an md5 checksum",
        _archive("small-blocks"),
    ),
    Case(
        "md5-short",
        download_argv("small-blocks", md5="0" * 31),
        "32 hexadecimal digits",
        _archive("small-blocks"),
    ),
    Case(
        "url-ftp",
        download_argv("small-blocks", url="ftp://host/x.tar"),
        "not an http://, https:// or file:// url",
    ),
    Case(
        "url-not-a-url",
        download_argv("small-blocks", url="CIFAR-10-C.tar"),
        "not an http://, https:// or file:// url",
    ),
    Case("url-no-host", download_argv("small-blocks", url="https:///x.tar"), "names no host"),
    Case(
        "url-file-missing",
        download_argv("small-blocks", url="file:///nonexistent/x.tar"),
        "check the path",
        allowed=("dl",),
    ),
    Case(
        "blocks-not-10000",
        download_argv("small-blocks"),
        "4 images per severity block, the published files 10,000",
        _archive("small-blocks"),
        allowed=("dl",),
    ),
    Case(
        "file-the-layout-does-not-name",
        download_argv("extra-readme"),
        "does not name",
        _archive("extra-readme"),
        allowed=("dl",),
    ),
    Case(
        "unknown-corruption-file",
        download_argv("unknown-npy"),
        "does not name",
        _archive("unknown-npy"),
        allowed=("dl",),
    ),
    Case("sub-folder", download_argv("subfolder"), "does not name", _archive("subfolder"), allowed=("dl",)),
    Case(
        "symbolic-link", download_argv("symlink"), "not a regular file", _archive("symlink"), allowed=("dl",)
    ),
    Case(
        "content-check-fails",
        download_argv("bad-labels"),
        "cifar-10-c/labels.npy is truncated",
        _archive("bad-labels"),
        allowed=("dl",),
    ),
]

OUTPUTS = [
    Case(
        "train-out-foreign-config",
        train_argv("hf"),
        "not a training run's",
        lambda w: (w / "hf").mkdir() or (w / "hf" / "config.json").write_text('{"model_type": "bert"}'),
    ),
    Case(
        "train-out-config-not-json",
        train_argv("junk"),
        "not a training run's",
        lambda w: (w / "junk").mkdir() or (w / "junk" / "config.json").write_bytes(b"\xff\xfe"),
    ),
]


@pytest.mark.parametrize("case", MODELS, ids=[c.id for c in MODELS])
def test_hostile_models(case, world, user_code, tmp_path, capsys, monkeypatch):
    line = run_case(case, world, tmp_path, capsys, monkeypatch)
    assert not (tmp_path / "a" / "b" / "c" / "d" / "w" / "ev" / "config.json").exists()  # nothing scored
    assert "x" not in {p.name for p in tmp_path.rglob("x")}, "a traversal target was written"
    assert "Traceback" not in line


@pytest.mark.parametrize("case", ARCHIVE_CASES, ids=[c.id for c in ARCHIVE_CASES])
def test_hostile_archives(case, world, tmp_path, capsys, monkeypatch):
    """Refused before or after the download, and nothing left in the data root: no CIFAR-10-C
    folder, no temporary extraction folder, no partial archive (its content would never pass)."""
    line = run_case(case, world, tmp_path, capsys, monkeypatch)
    dl = tmp_path / "a" / "b" / "c" / "d" / "w" / "dl"
    assert not dl.exists() or sorted(p.name for p in dl.iterdir()) == []
    assert "extract-" not in line  # no hint naming the temporary folder, which is gone


@pytest.mark.parametrize("case", OUTPUTS, ids=[c.id for c in OUTPUTS])
def test_hostile_output_folders(case, world, tmp_path, capsys, monkeypatch):
    run_case(case, world, tmp_path, capsys, monkeypatch)


def test_battery_part_3_size():
    """The figure docs/reliability.md reports."""
    assert len(MODELS) + len(ARCHIVE_CASES) + len(OUTPUTS) == 28


def test_the_cases_fail_for_their_reason(world, user_code, tmp_path, capsys, monkeypatch):
    """The same commands work on sound input: a sound factory scores, a valid archive extracts."""
    w = copy_world(world, tmp_path)
    monkeypatch.chdir(w)
    assert cli.main([*EVAL_MODEL, "hostile_models:ok", "--corruptions", "ccm", "--severities", "1"]) == 0
    assert (w / "ev" / "config.json").is_file()
    _archive("small-blocks")(w)
    monkeypatch.setitem(
        download.ARCHIVES,
        "cifar10",
        __import__("dataclasses").replace(download.ARCHIVES["cifar10"], n_per_severity=4),
    )
    assert cli.main([a.replace("{w}", str(w)) for a in download_argv("small-blocks")]) == 0
    assert sorted(p.name for p in (w / "dl" / "CIFAR-10-C").iterdir()) == ["fog.npy", "labels.npy"]


# ----------------------------------------------------------------------------- interrupted extraction


def test_stale_extraction_folders_are_removed_on_the_next_run(tmp_path):
    """A kill -9 during extraction leaves .CIFAR-10-C.extract-<pid>-*: the next run removes it once
    that process is gone; a live one (another download in progress) is kept."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".CIFAR-10-C.extract-{dead.pid}-abc"
    (stale / "CIFAR-10-C").mkdir(parents=True)
    (stale / "CIFAR-10-C" / "fog.npy").write_bytes(b"x" * 1000)
    live = tmp_path / f".CIFAR-10-C.extract-{os.getpid()}-def"
    live.mkdir()
    old = tmp_path / ".CIFAR-10-C.extract-oldformat"  # an older version's name, without a pid
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    archive = tmp_path / "a.tar"
    archive.write_bytes(ARCHIVES["small-blocks"])
    with pytest.raises(download.UserError, match="10,000"):  # any run of download-c cleans up first
        download.download_cifar_c(
            "cifar10",
            tmp_path,
            url=archive.as_uri(),
            md5=hashlib.md5(ARCHIVES["small-blocks"]).hexdigest(),
            echo=lambda *a: None,
            progress=False,
        )
    assert not stale.exists() and not old.exists() and live.is_dir()


def test_sigterm_during_extraction_removes_the_temporary_folder(tmp_path):
    """SIGTERM while extracting: the process exits (143) and its temporary folder is gone."""
    root = tmp_path / "root"
    root.mkdir()
    archive = tmp_path / "a.tar"
    archive.write_bytes(ARCHIVES["small-blocks"])
    script = textwrap.dedent(
        f"""
        import sys, tarfile, time
        from pathlib import Path
        from robustbench_aux.datasets import download, load_dataset
        real = tarfile.TarFile.extract
        def slow(self, *a, **k):
            real(self, *a, **k)
            print("extracting", flush=True)
            time.sleep(60)
        tarfile.TarFile.extract = slow
        download.extract(Path({str(archive)!r}), "CIFAR-10-C", Path({str(root)!r}), 10)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "extracting"
        assert [p.name for p in root.iterdir() if ".extract-" in p.name]  # the folder exists now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    assert list(root.iterdir()) == []


def test_torch_log_and_warnings_never_precede_the_error(tmp_path):
    """In a fresh process (torch logs and warns once per process; pytest would hide both): a
    damaged torch.export file and a damaged TorchScript file give one error line each and nothing
    before it (torch logged a whole traceback for the first and a FutureWarning for the second)."""
    (tmp_path / "bad.pt2").write_bytes(b"garbage")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    script = textwrap.dedent(
        """
        import sys
        from robustbench_aux import cli
        for spec in sys.argv[1:]:
            print("=== " + spec, file=sys.stderr, flush=True)
            cli.main(["evaluate", "--model", spec, "--dataset", "synthetic10", "--device", "cpu", "--out", "o"])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-c", script, "bad.pt2", "bad.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    chunks = proc.stderr.split("=== ")[1:]
    assert len(chunks) == 2, proc.stderr
    for chunk in chunks:
        lines = [ln for ln in chunk.splitlines()[1:] if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), chunk
