"""Download the published CIFAR-10-C / CIFAR-100-C archives (Zenodo) into ``<root>/CIFAR-*-C/``.

- resumable: the archive is written to ``<root>/.<name>.tar.part``; a rerun asks the server for the
  rest (HTTP ``Range``) and starts over only if the server ignores the range;
- checked: the finished archive's MD5 must match (a mismatch deletes it: it would never pass);
- atomic: the archive is extracted into a temporary folder beside the target
  (``.<name>.extract-<pid>-<random>``), validated as the published layout, and only then renamed to
  ``<root>/CIFAR-*-C``; a bad archive, a full disk or a kill leaves no half-extracted target. The
  temporary folder is removed on errors, on SIGINT/SIGTERM/SIGHUP, and, after a SIGKILL, by the next
  run (once its process is gone);
- only the published layout is placed under the published name: ``<name>/labels.npy`` and
  ``<name>/<corruption>.npy`` for the 19 corruptions, 10,000 images per severity block; any other
  entry, link or block size is refused;
- the URL (http, https or file) and MD5 (32 hex digits) can be overridden (a mirror, or a local
  file in tests); both are checked before anything is downloaded.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import signal
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from robustbench_aux.catalog import ALL_19
from robustbench_aux.cifar_c_layout import LABELS_NPY, MANIFEST, corruption_npy
from robustbench_aux.datasets.cifar_c import CifarCReader
from robustbench_aux.datasets.loading import DATASETS, resolve_data_root
from robustbench_aux.errors import UserError
from robustbench_aux.infra.atomic import ORPHAN_AGE_S, pid_alive

log = logging.getLogger(__name__)

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    dataset: str
    dirname: str  # the folder the archive holds, and its name under the data root
    url: str
    md5: str
    size: int | None  # bytes, as listed on Zenodo (None: unknown)
    record: str
    n_per_severity: int = 10_000  # images per (corruption, severity) block of the published files


ARCHIVES = {
    "cifar10": Archive(
        "cifar10",
        "CIFAR-10-C",
        "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1",
        "56bf5dcef84df0e2308c6dcbcbbd8499",
        2_918_471_680,
        "https://zenodo.org/records/2535967",
    ),
    "cifar100": Archive(
        "cifar100",
        "CIFAR-100-C",
        "https://zenodo.org/records/3555552/files/CIFAR-100-C.tar?download=1",
        "11f0ed0f1191edbf9fa23466ae6021d3",
        None,
        "https://zenodo.org/records/3555552",
    ),
}


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _check_free(directory: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise UserError(
            f"not enough disk space in {directory} for {what}: {needed / 2**30:.2f} GiB needed, "
            f"{free / 2**30:.2f} GiB free; free some space or pass --data elsewhere"
        )


URL_SCHEMES = ("http", "https", "file")


class DiskFull(UserError):
    """The disk filled up while extracting: the archive itself is fine (kept for a rerun)."""


def check_url(url: str) -> str:
    """``url`` if it is an http, https or file URL naming something; else a one-line UserError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in URL_SCHEMES:
        raise UserError(
            f"--url {url!r} is not an http://, https:// or file:// URL; give the address of the archive"
        )
    if parts.scheme.lower() != "file" and not parts.netloc:
        raise UserError(f"--url {url!r} names no host; e.g. https://host/path/CIFAR-10-C.tar")
    if parts.scheme.lower() == "file" and not parts.path:
        raise UserError(f"--url {url!r} names no file; e.g. file:///path/to/CIFAR-10-C.tar")
    return url


def check_md5(md5: str) -> str:
    """``md5`` in lower case if it is 32 hexadecimal digits; else a one-line UserError."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", md5 or ""):
        raise UserError(f"--md5 {md5!r} is not an MD5 checksum (32 hexadecimal digits)")
    return md5.lower()


def _extract_prefix(dirname: str) -> str:
    return f".{dirname}.extract-"


def remove_stale_extractions(root: Path, dirname: str) -> list[Path]:
    """Remove temporary extraction folders of ``dirname`` left in ``root`` by killed runs: those whose
    process (the pid in the name) is gone; a name without a pid (older versions) once it is older
    than an hour. Returns the folders removed."""
    removed = []
    prefix = _extract_prefix(dirname)
    for tmp in root.glob(f"{prefix}*"):
        pid = tmp.name[len(prefix) :].split("-", 1)[0]
        try:
            stale = (
                not pid_alive(int(pid)) if pid.isdigit() else time.time() - tmp.stat().st_mtime > ORPHAN_AGE_S
            )
        except OSError:
            continue
        if stale and tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
            log.info("removed %s, left by an interrupted extraction", tmp)
    return removed


@contextlib.contextmanager
def _exit_on_termination():
    """SIGTERM and SIGHUP raise SystemExit (128 + signal) inside the block, so its ``finally``
    clauses run (a kill -9 cannot be caught: the next run removes what it left). Only in the main
    thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        saved[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def fetch(url: str, part: Path, *, timeout: float = 30.0, progress: bool | None = None) -> Path:
    """Download ``url`` into ``part``, continuing an existing partial file with an HTTP Range request."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "robustbench-aux"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the range starts at the end: the file is already complete
            return part
        raise UserError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if urllib.parse.urlsplit(url).scheme.lower() == "file":
            raise UserError(f"cannot read {url} ({reason}); check the path") from None
        raise UserError(f"cannot download {url} ({reason}); no network? {_resume_hint(part)}") from None
    with response:
        resumed = have and response.status == 206
        if have and not resumed:
            log.info("the server ignored the range request; downloading %s from the start", url)
            have = 0
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        if remaining is not None:
            _check_free(part.parent, remaining, f"the download of {url}")
        bar = tqdm(
            total=None if remaining is None else have + remaining,
            initial=have,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removeprefix(".").removesuffix(".part"),
            disable=progress is False or None,
        )
        try:
            with open(part, "ab" if resumed else "wb") as f, bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OSError) and _no_space(exc):
                raise UserError(
                    f"disk full while downloading into {part}; free some space and rerun to resume"
                ) from None
            raise UserError(f"download of {url} interrupted ({exc}); {_resume_hint(part)}") from None
        if remaining is not None and part.stat().st_size < have + remaining:
            raise UserError(f"download of {url} ended early; {_resume_hint(part)}")
    return part


def _resume_hint(part: Path) -> str:
    if part.is_file() and part.stat().st_size:
        return f"{part.stat().st_size:,} bytes kept in {part}: rerun the same command to resume"
    return "rerun the same command when the network is back"


LAYOUT_FILES = (LABELS_NPY, *(corruption_npy(c) for c in ALL_19))  # what the published folder holds


def _safe_members(tar: tarfile.TarFile, dirname: str) -> list[tarfile.TarInfo]:
    """The archive's entries if they are exactly the published layout's: the folder ``dirname/`` and
    regular files ``dirname/labels.npy`` and ``dirname/<corruption>.npy`` (the 19 names), each once.
    Anything else (other files, sub-folders, links, devices, absolute paths, ``..``) is refused: it
    would end up under a folder labelled as the published data."""
    members, seen = [], set()
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not parts or parts[0] != dirname:
            raise UserError(
                f"unexpected entry {m.name!r} in the archive (expected {dirname}/...): not CIFAR-C"
            )
        if not (m.isfile() or m.isdir()):
            raise UserError(f"archive entry {m.name!r} is not a regular file: refusing to extract it")
        if len(parts) == 1 and m.isdir():
            continue  # the folder itself (created by extracting its files)
        if len(parts) == 2 and parts[1] == MANIFEST:
            raise UserError(f"the archive holds {m.name}: a generated copy, not the published files")
        if len(parts) != 2 or parts[1] not in LAYOUT_FILES or not m.isfile():
            raise UserError(
                f"the archive holds {m.name!r}, which the CIFAR-C layout does not name (only {dirname}/"
                "labels.npy and one <corruption>.npy per CIFAR-C corruption); refusing to place it under "
                f"{dirname}"
            )
        if m.name in seen:
            raise UserError(f"the archive holds {m.name!r} twice; refusing an ambiguous archive")
        seen.add(m.name)
        members.append(m)
    return members


def extract(
    archive_path: Path,
    dirname: str,
    root: Path,
    num_classes: int,
    n_per_severity: int | None = None,
    label: str | None = None,
) -> Path:
    """Extract ``archive_path`` (holding ``dirname/``) to ``root/dirname`` atomically; see the module
    doc. ``n_per_severity``: the images per block the files must hold (None: any); ``label``: how
    messages name the archive (default: its file name)."""
    target = root / dirname
    tmp = Path(tempfile.mkdtemp(prefix=f"{_extract_prefix(dirname)}{os.getpid()}-", dir=root))
    try:
        with _exit_on_termination():
            _extract_into(
                archive_path, label or archive_path.name, dirname, root, tmp, num_classes, n_per_severity
            )
            os.replace(tmp / dirname, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _extract_into(
    archive_path: Path,
    label: str,
    dirname: str,
    root: Path,
    tmp: Path,
    num_classes: int,
    n_per_severity: int | None,
) -> None:
    try:
        with tarfile.open(archive_path) as tar:
            members = _safe_members(tar, dirname)
            _check_free(root, sum(m.size for m in members), f"extracting {archive_path.name}")
            for m in members:
                tar.extract(
                    m,
                    tmp,
                    set_attrs=False,
                    **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}),
                )
    except tarfile.TarError as exc:
        raise UserError(f"the archive {label} is not a readable tar archive ({exc})") from None
    except OSError as exc:
        if _no_space(exc):
            raise DiskFull(f"disk full while extracting into {root}; nothing was kept") from None
        raise
    extracted = tmp / dirname
    # the folder is deleted if a check fails: the messages name the entries of the archive instead
    fix = f"the archive {label} is not the published {dirname}"
    try:
        reader = CifarCReader(extracted, num_classes=num_classes, fix=fix)
    except UserError as exc:
        raise UserError(str(exc).replace(str(extracted), dirname)) from None
    if n_per_severity is not None and reader.n != n_per_severity:
        raise UserError(
            f"{dirname}/labels.npy (in the archive) has {reader.n:,} images per severity block, the "
            f"published files {n_per_severity:,}; {fix}"
        )


def download_cifar_c(
    dataset: str,
    data_root: str | Path | None = None,
    *,
    url: str | None = None,
    md5: str | None = None,
    keep_archive: bool = False,
    progress: bool | None = None,
    timeout: float = 30.0,
    echo=print,
) -> Path:
    """Download, check and extract the published CIFAR-C of ``dataset``; returns ``<root>/CIFAR-*-C``."""
    if dataset not in ARCHIVES:
        raise UserError(f"no published CIFAR-C for {dataset!r}; choose cifar10 or cifar100")
    a = ARCHIVES[dataset]
    url, md5 = check_url(url or a.url), check_md5(md5 or a.md5)  # before anything is downloaded
    root = resolve_data_root(data_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the data root {root} ({exc.strerror})") from None
    if not os.access(root, os.W_OK):
        raise UserError(f"the data root {root} is not writable; pass --data elsewhere")
    target = root / a.dirname
    remove_stale_extractions(root, a.dirname)
    if target.exists():
        try:
            reader = CifarCReader(target, num_classes=DATASETS[dataset])
        except UserError as exc:
            raise UserError(f"{target} exists but is broken ({exc}); move it away and rerun") from None
        if reader.provenance == "generated":
            raise UserError(
                f"{target} holds a generated copy, not the published files; move it away (generated data "
                "belongs in another folder) and rerun"
            )
        echo(f"{target} already holds the published {a.dirname} ({len(reader.corruptions)} corruptions)")
        return target
    part = root / f".{a.dirname}.tar.part"
    echo(f"downloading {url} into {part} (MD5 {md5})")
    fetch(url, part, timeout=timeout, progress=progress)
    actual = md5_file(part)
    if actual != md5:
        part.unlink()
        raise UserError(
            f"the downloaded archive's MD5 is {actual}, expected {md5} (record {a.record}); it was deleted, "
            "rerun to download it again"
        )
    echo(f"MD5 ok; extracting into {target}")
    try:
        path = extract(part, a.dirname, root, DATASETS[dataset], a.n_per_severity, f"downloaded from {url}")
    except DiskFull:
        raise  # the archive is fine: a rerun with space extracts it without downloading again
    except UserError as exc:
        part.unlink(missing_ok=True)  # its content would never pass
        raise UserError(f"{exc}; the downloaded archive was deleted") from None
    if keep_archive:
        kept = part.with_name(f"{a.dirname}.tar")
        os.replace(part, kept)
        echo(f"kept the archive as {kept}")
    else:
        part.unlink()
    return path
