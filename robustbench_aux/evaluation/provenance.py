"""Provenance of an evaluation: code version, file and weight digests, CIFAR-C manifest checks."""

from __future__ import annotations

import hashlib

import torch

from robustbench_aux.cifar_c_layout import LABELS_NPY, corruption_npy
from robustbench_aux.datasets import CifarCReader
from robustbench_aux.errors import UserError
from robustbench_aux.infra.hashing import sha256_file


def model_digest(model: torch.nn.Module) -> str:
    """A sha256 over the model's parameters and buffers (names, shapes, bytes): identifies the weights."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        flat = t.detach().cpu().contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _expected_sha(entry) -> str | None:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        return entry.get("sha256")
    return None


def manifest_files(reader: CifarCReader) -> dict[str, dict]:
    """The manifest's per-file records as ``{corruption: {"sha256": ..., "preset": ...}}``."""
    files = reader.manifest.get("files", {}) or {}
    out = {}
    for key, entry in files.items():
        name = key[:-4] if key.endswith(".npy") else key
        out[name] = entry if isinstance(entry, dict) else {"sha256": _expected_sha(entry)}
    return out


def check_presets(reader: CifarCReader, corruptions) -> str | None:
    """The one preset of the files used; a UserError naming the files if the manifest mixes presets."""
    files = manifest_files(reader)
    presets = {c: files.get(c, {}).get("preset") or reader.preset for c in corruptions}
    distinct = sorted({p for p in presets.values() if p})
    if len(distinct) > 1:
        listing = "; ".join(f"{p}: {', '.join(c for c, q in presets.items() if q == p)}" for p in distinct)
        raise UserError(
            f"{reader.directory} mixes corruption presets ({listing}); regenerate it with one --preset "
            "or evaluate the corruptions of each preset separately (--corruption-names)"
        )
    return distinct[0] if distinct else reader.preset


def verify_checksums(reader: CifarCReader, corruptions) -> dict[str, str]:
    """Check each used file against the manifest's sha256 (where it lists one); returns the digests.

    A mismatch is a UserError naming the file, raised before any evaluation work starts.
    """
    files = manifest_files(reader)
    checked = {}
    for c in list(corruptions) + ["labels"]:
        expected = _expected_sha(files.get(c))
        if not expected:
            continue
        path = reader.directory / (LABELS_NPY if c == "labels" else corruption_npy(c))
        actual = sha256_file(path)
        if actual != expected:
            raise UserError(
                f"{path} does not match its manifest checksum (sha256 {actual[:12]}… != {expected[:12]}…): "
                f"the file is corrupted or was replaced; {reader.fix}"
            )
        checked[c] = actual
    return checked
