"""Frost textures: the six images shipped inside the installed ``imagecorruptions`` package.

Read from disk once per process and cached (imagecorruptions itself re-reads a texture on every
call, a fifth of its run time at 32x32). Both references draw one of the first five.
"""

from __future__ import annotations

import importlib.util
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from robustbench_aux.errors import UserError

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
N_USED = 5  # np.random.randint(5) in both references


def frost_dir() -> Path:
    """The ``frost/`` folder of the installed imagecorruptions package (found without importing it)."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the frost corruption needs the textures of the imagecorruptions package; "
            "pip install imagecorruptions==1.1.2"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "frost"


@lru_cache(maxsize=8)
def _read_bgr(index: int) -> np.ndarray:
    import cv2

    path = frost_dir() / FROST_FILES[index]
    img = cv2.imread(str(path))
    if img is None:
        raise UserError(f"cannot read frost texture {path}; reinstall imagecorruptions==1.1.2")
    return img


@lru_cache(maxsize=16)
def frost_textures(variant: str, h: int, w: int) -> tuple[np.ndarray, ...]:
    """The five textures as uint8 RGB (Ht, Wt, 3), prepared as the reference of ``variant`` does.

    ``cifar``: cv2.resize by 0.2 (bilinear). ``imagenet``: scaled up only if smaller than the image,
    then by 1.1 with bicubic interpolation (imagecorruptions' frost).
    """
    import cv2

    out = []
    for i in range(N_USED):
        tex = _read_bgr(i)
        if variant == "cifar":
            tex = cv2.resize(tex, (0, 0), fx=0.2, fy=0.2)
        else:
            th, tw = tex.shape[:2]
            scale = 1.0
            if th < h or tw < w:
                scale = max(h / th if th < h else 0.0, w / tw if tw < w else 0.0)
            scale *= 1.1
            size = (int(math.ceil(tw * scale)), int(math.ceil(th * scale)))
            tex = cv2.resize(tex, dsize=size, interpolation=cv2.INTER_CUBIC)
        if tex.shape[0] <= h or tex.shape[1] <= w:
            raise UserError(
                f"frost textures ({tex.shape[0]}x{tex.shape[1]} px after the {variant} scaling) are too "
                f"small for {h}x{w} images; use preset='imagenet' for images larger than 32x32"
            )
        out.append(np.ascontiguousarray(tex[..., ::-1]))  # BGR -> RGB
    return tuple(out)
