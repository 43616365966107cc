"""Download the published CIFAR-10-C / CIFAR-100-C archives (Zenodo) into ``<root>/CIFAR-*-C/``.

- resumable: the archive is written to ``<root>/.<name>.tar.part``; a rerun asks the server for the
  rest (HTTP ``Range``) and starts over only if the server ignores the range;
- checked: the finished archive's MD5 must match (a mismatch deletes it: it would never pass);
- atomic: the archive is extracted into a temporary folder beside the target, validated as a CIFAR-C
  directory, and only then renamed to ``<root>/CIFAR-*-C``; a bad archive, a full disk or a kill
  leaves no half-extracted target;
- the URL and MD5 can be overridden (a mirror, or a local server in tests).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from robustbench_aux.datasets.cifar_c import MANIFEST, CifarCReader
from robustbench_aux.datasets.loading import DATASETS, resolve_data_root
from robustbench_aux.errors import UserError

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


def _safe_members(tar: tarfile.TarFile, dirname: str) -> list[tarfile.TarInfo]:
    """Regular files and folders under ``dirname/`` only (no links, devices, absolute paths or ..)."""
    members = []
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not parts or parts[0] != dirname:
            raise UserError(
                f"unexpected entry {m.name!r} in the archive (expected {dirname}/...): not CIFAR-C"
            )
        if not (m.isfile() or m.isdir()):
            raise UserError(f"archive entry {m.name!r} is not a regular file: refusing to extract it")
        members.append(m)
    return members


def extract(archive_path: Path, dirname: str, root: Path, num_classes: int) -> Path:
    """Extract ``archive_path`` (holding ``dirname/``) to ``root/dirname`` atomically; see the module doc."""
    target = root / dirname
    tmp = Path(tempfile.mkdtemp(prefix=f".{dirname}.extract-", dir=root))
    try:
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
            raise UserError(f"{archive_path} is not a readable tar archive ({exc})") from None
        except OSError as exc:
            if _no_space(exc):
                raise UserError(f"disk full while extracting into {root}; nothing was kept") from None
            raise
        extracted = tmp / dirname
        if (extracted / MANIFEST).is_file():
            raise UserError(
                f"{archive_path} holds a manifest.json: a generated copy, not the published files"
            )
        CifarCReader(extracted, num_classes=num_classes)  # validates every file before it is used
        os.replace(extracted, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


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
    url, md5 = url or a.url, (md5 or a.md5).lower()
    root = resolve_data_root(data_root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the data root {root} ({exc.strerror})") from None
    if not os.access(root, os.W_OK):
        raise UserError(f"the data root {root} is not writable; pass --data elsewhere")
    target = root / a.dirname
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
    path = extract(part, a.dirname, root, DATASETS[dataset])
    if keep_archive:
        kept = part.with_name(f"{a.dirname}.tar")
        os.replace(part, kept)
        echo(f"kept the archive as {kept}")
    else:
        part.unlink()
    return path
