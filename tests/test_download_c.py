"""`data download-c` against a small CIFAR-C tar served on 127.0.0.1: MD5, resume, atomic extraction."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from robustbench_aux.cli import main
from robustbench_aux.datasets import download
from robustbench_aux.errors import UserError


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """These archives hold 4 images per block; the published files' 10,000 is checked in
    test_block_size_must_be_the_published_one."""
    for key, a in download.ARCHIVES.items():
        monkeypatch.setitem(download.ARCHIVES, key, dataclasses.replace(a, n_per_severity=4))


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def make_tar(dirname: str = "CIFAR-10-C", n: int = 4, extra: dict | None = None) -> bytes:
    rng = np.random.default_rng(0)
    files = {"labels.npy": _npy_bytes(np.tile(np.arange(n) % 10, 5).astype(np.uint8))}
    for c in ("fog", "gaussian_noise"):
        files[f"{c}.npy"] = _npy_bytes(rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8))
    files.update(extra or {})
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        d = tarfile.TarInfo(dirname)
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{dirname}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Server:
    """A local HTTP server for one payload; honours Range unless told not to; can cut a response short."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.ranges: list[str | None] = []
        self.honour_range = True
        self.cut_after: int | None = None  # send only this many bytes of the next response, then close
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                start = 0
                if rng and server.honour_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(server.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}"
                    )
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body, server.cut_after = body[: server.cut_after], None
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/CIFAR-10-C.tar"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _cli(root: Path, url: str, checksum: str) -> int:
    return main(
        [
            "data",
            "download-c",
            "--dataset",
            "cifar10",
            "--data",
            str(root),
            "--url",
            url,
            "--md5",
            checksum,
            "--no-progress",
        ]
    )


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_download_extracts_checks_and_cleans_up(tmp_path, capsys):
    payload = make_tar()
    with Server(payload) as s:
        assert _cli(tmp_path, s.url, md5(payload)) == 0
    target = tmp_path / "CIFAR-10-C"
    assert sorted(p.name for p in target.iterdir()) == ["fog.npy", "gaussian_noise.npy", "labels.npy"]
    assert _leftovers(tmp_path) == []  # no partial archive, no temporary extraction folder
    assert "2/19 corruptions, n=4 per severity (published)" in capsys.readouterr().out
    with Server(payload) as s:  # a second run finds it and downloads nothing
        assert _cli(tmp_path, s.url, md5(payload)) == 0
        assert s.ranges == []


def test_partial_download_resumes_with_range(tmp_path):
    payload = make_tar()
    part = tmp_path / ".CIFAR-10-C.tar.part"
    part.write_bytes(payload[:5000])
    with Server(payload) as s:
        assert _cli(tmp_path, s.url, md5(payload)) == 0
        assert s.ranges == ["bytes=5000-"]
    assert (tmp_path / "CIFAR-10-C" / "fog.npy").is_file() and not part.exists()


def test_interrupted_download_is_kept_and_resumed(tmp_path, capsys):
    payload = make_tar()
    with Server(payload) as s:
        s.cut_after = 7000
        assert _cli(tmp_path, s.url, md5(payload)) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith("error: ") and "rerun the same command to resume" in err and err.count("\n") == 1
        )
        assert (tmp_path / ".CIFAR-10-C.tar.part").stat().st_size == 7000
        assert not (tmp_path / "CIFAR-10-C").exists()
        assert _cli(tmp_path, s.url, md5(payload)) == 0
        assert s.ranges == [None, "bytes=7000-"]


def test_server_ignoring_range_restarts_from_zero(tmp_path):
    payload = make_tar()
    (tmp_path / ".CIFAR-10-C.tar.part").write_bytes(b"x" * 3000)  # not even the right bytes
    with Server(payload) as s:
        s.honour_range = False
        assert _cli(tmp_path, s.url, md5(payload)) == 0
    assert (tmp_path / "CIFAR-10-C" / "labels.npy").is_file()


def test_bad_checksum_is_refused_and_nothing_extracted(tmp_path, capsys):
    payload = make_tar()
    with Server(payload) as s:
        assert _cli(tmp_path, s.url, "0" * 32) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the downloaded archive's MD5 is") and err.count("\n") == 1
    assert not (tmp_path / "CIFAR-10-C").exists() and _leftovers(tmp_path) == []


def test_full_disk_during_extraction_leaves_nothing(tmp_path, monkeypatch, capsys):
    payload = make_tar()
    real_extract = tarfile.TarFile.extract
    calls = []

    def extract_then_fail(self, member, *args, **kwargs):
        calls.append(member.name)
        if len(calls) == 3:  # the folder and one file are written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_extract(self, member, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extract", extract_then_fail)
    with Server(payload) as s:
        assert _cli(tmp_path, s.url, md5(payload)) == 2
    assert capsys.readouterr().err.startswith("error: disk full while extracting")
    assert not (tmp_path / "CIFAR-10-C").exists()
    assert [p for p in tmp_path.iterdir() if "extract" in p.name] == []


def test_too_little_free_space_is_refused_before_downloading(tmp_path, monkeypatch, capsys):
    payload = make_tar()
    monkeypatch.setattr(download.shutil, "disk_usage", lambda p: type("U", (), {"free": 10})())
    with Server(payload) as s:
        assert _cli(tmp_path, s.url, md5(payload)) == 2
    assert capsys.readouterr().err.startswith("error: not enough disk space")
    assert not (tmp_path / "CIFAR-10-C").exists()


def test_archive_with_unsafe_or_foreign_entries_is_refused(tmp_path):
    bad = make_tar(dirname="something-else")
    (tmp_path / "a.tar").write_bytes(bad)
    with pytest.raises(UserError, match="not CIFAR-C"):
        download.extract(tmp_path / "a.tar", "CIFAR-10-C", tmp_path, 10)
    assert not (tmp_path / "CIFAR-10-C").exists()
    broken = make_tar(extra={"labels.npy": b"not an npy file"})
    (tmp_path / "b.tar").write_bytes(broken)
    with pytest.raises(UserError):
        download.extract(tmp_path / "b.tar", "CIFAR-10-C", tmp_path, 10)
    assert (
        not (tmp_path / "CIFAR-10-C").exists()
        and [p for p in tmp_path.iterdir() if "extract" in p.name] == []
    )


def test_unreachable_server_is_a_one_line_error(tmp_path, capsys):
    with Server(b"") as s:
        url = s.url
    assert _cli(tmp_path, url, "0" * 32) == 2  # server closed: connection refused
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download") and err.count("\n") == 1


def test_published_defaults():
    assert download.ARCHIVES["cifar100"].md5 == "11f0ed0f1191edbf9fa23466ae6021d3"
    assert "3555552" in download.ARCHIVES["cifar100"].url and "2535967" in download.ARCHIVES["cifar10"].url


def test_data_info_never_suggests_generating_under_published_names(tmp_path, capsys):
    assert main(["data", "info", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "data download-c --dataset cifar100" in out
    for name in ("CIFAR-10-C", "CIFAR-100-C"):
        assert f"--out {tmp_path / name})" not in out and f"--out {tmp_path / name}-generated" in out


def test_pipeline_downloads_else_generates(tmp_path, monkeypatch):
    from robustbench_aux.orchestrate import pipeline

    calls = []

    def fake_run_cli(argv, echo=print):
        calls.append(argv[0] if argv[0] != "data" else "download-c")
        if argv[0] == "data":
            raise UserError("step failed (exit code 2)")

    monkeypatch.setattr(pipeline, "run_cli", fake_run_cli)
    p = pipeline.Pipeline(
        grid=Path("g.toml"),
        dataset="cifar10",
        data=tmp_path,
        out=tmp_path / "runs",
        report=tmp_path / "r",
        download_c=True,
    )
    got = pipeline.corruption_dir(p, echo=lambda *a: None)
    assert calls == ["download-c", "corrupt"] and got.name == "CIFAR-10-C-generated"
    calls.clear()
    p.download_c = False
    pipeline.corruption_dir(p, echo=lambda *a: None)
    assert calls == ["corrupt"]
