"""Test helper: an evidence folder's per-image correctness, read with numpy alone (no suite code),
so tests recompute the report's paired tests from the committed files independently."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def packed_blocks(folder: Path) -> dict[str, np.ndarray]:
    """Per-image correctness of every block of an evidence folder (``eval/per_image.npz``: the block
    names, their image counts and the bit-packed correctness, block after block)."""
    with np.load(Path(folder) / "eval" / "per_image.npz", allow_pickle=False) as z:
        names, n, bits = list(z["blocks"]), z["n"], z["correct"]
    starts = np.concatenate([[0], np.cumsum((n + 7) // 8)])
    return {
        str(name): np.unpackbits(bits[starts[i] : starts[i + 1]], count=int(n[i])).astype(bool)
        for i, name in enumerate(names)
    }
