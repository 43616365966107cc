"""A test-only, per-image numpy port of the CIFAR-10-C-bar corruptions, and the fidelity measure.

Written from the algorithm descriptions of the authors' ``corrupt.py`` (Mintun et al., NeurIPS
2021; facebookresearch/augmentation-corruption, ``imagenet_c_bar/``), deliberately in their style:
one 32x32 image at a time, pixel kernels as Python loops, and the library calls they make
(``scipy.fftpack.ifft2``, ``scipy.ndimage.rotate`` / ``zoom``, ``skimage.draw.line_aa``). It shares
no code with the batched torch implementation (``robustbench_aux/corruptions/cbar.py``), which is
compared with it cell by cell here and in ``tests/test_cbar_fidelity.py``.

``sample(name, level, rng)`` draws one image's parameters from a ``numpy.random.RandomState`` in the
authors' order; ``corrupt(image, name, level, params)`` applies them; ``to_draws`` stacks many
images' parameters into the batched implementation's ``draws`` dict.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage
from scipy.fftpack import ifft2

from robustbench_aux.corruptions import PRESETS, corrupt_batch
from robustbench_aux.corruptions.engine import corrupt_float

SIZE = 32
PRESET = "cifar10-c-bar"


def fp(level: float, maxval: float) -> float:
    return float(level) * maxval / 10.0


# ---------------------------------------------------------------- sampling (authors' order)


def sample(name: str, level: float, rng: np.random.RandomState) -> dict:
    if name in ("blue_noise_sample", "brownish_noise"):
        k = 1 if name == "blue_noise_sample" else 3
        return {"phases": [rng.uniform(0, 2 * np.pi, size=(SIZE, SIZE // 2)) for _ in range(k)]}
    if name == "checkerboard_cutout":
        angle = rng.uniform(0, 2 * np.pi)
        scale = max(rng.uniform(0.1, 0.25) * SIZE, 1)
        g = int(4 * SIZE // scale)
        return {"angle": angle, "scale": scale, "grid": rng.uniform(size=(g, g))}
    if name == "inverse_sparkles":
        centre = rng.uniform(0.25, 0.75, size=2) * SIZE
        rays = rng.randint(50, 200)
        return {"centre": centre, "rays": rays, "normals": rng.randn(rays)}
    if name == "sparkles":
        centres = rng.uniform(0, SIZE, size=(5, 2))
        nrays = rng.randint(50, 200, size=5)
        return {"centres": centres, "rays": nrays, "normals": [rng.randn(n) for n in nrays]}
    if name == "lines":
        n = int(fp(level, 1.0) * SIZE)
        return {
            "angle": rng.uniform(0, 2 * np.pi),
            "variation": rng.uniform(0.1, 1.0),
            "lines": rng.uniform(size=(n, 3)),
        }
    if name == "pinch_and_twirl":
        return {"signs": np.array([rng.choice([1, -1]) for _ in range(9)]).reshape(3, 3)}
    if name == "ripple":
        return {
            "wavelengths": rng.uniform(0.1, 0.3, size=2) * SIZE,
            "phases": rng.uniform(0, 2 * np.pi, size=2),
        }
    if name == "transverse_chromatic_abberation":
        return {"permutation": rng.permutation(3)}
    if name == "circular_motion_blur":
        return {}
    raise KeyError(name)


# ---------------------------------------------------------------- per-image corruptions


def _spectral(phases: np.ndarray, brown: bool) -> np.ndarray:
    centre = SIZE / 2
    power = np.array([[np.linalg.norm(np.array([x, y]) - centre) for x in range(SIZE)] for y in range(SIZE)])
    if brown:
        power = 1 / (power**2 + 1)
    full = np.concatenate((phases, phases[::-1, ::-1]), axis=1)
    spectrum = power * (np.cos(full) + np.sin(full) * 1j)
    spectrum = np.roll(np.roll(spectrum, SIZE // 2, axis=0), SIZE // 2, axis=1)
    noise = np.real(ifft2(spectrum))
    return noise / np.std(noise)


def _bilinear(image: np.ndarray, point) -> np.ndarray:
    """Bilinear read at (row, col); every tap outside the image is 0."""
    r0, c0 = int(np.floor(point[0])), int(np.floor(point[1]))

    def tap(r, c):
        if 0 <= r < image.shape[0] and 0 <= c < image.shape[1]:
            return image[r, c, :].astype(np.float64)
        return np.zeros(3)

    fr, fc = point[0] - r0, point[1] - c0
    top = tap(r0, c0) * (1 - fc) + tap(r0, c0 + 1) * fc
    bottom = tap(r0 + 1, c0) * (1 - fc) + tap(r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def _star(point, centre, lengths, exponent) -> float:
    rays = len(lengths)
    dp = np.asarray(point, dtype=np.float64) - centre
    dist = np.linalg.norm(dp)
    d = (math.atan2(dp[1], dp[0]) + np.pi) / (2 * np.pi) * rays
    i = int(d)
    f = d - i
    length = lengths[i % rays] + f * (lengths[(i + 1) % rays] - lengths[i % rays])
    g = (length**2 / (dist**2 + 1e-4)) ** exponent
    return float(np.clip((1 - (f - 0.5) ** 2) * g, 0, 1))


def corrupt(image: np.ndarray, name: str, level: float, prm: dict) -> np.ndarray:
    """One uint8 (32, 32, 3) image corrupted with the parameters ``prm``; uint8 back."""
    img = image.astype(np.float64)
    if name == "blue_noise_sample":
        mask = _spectral(prm["phases"][0], brown=False) > fp(level, 3.0) - 2.5
        return np.clip(image * mask[:, :, None], 0, 255).astype(np.uint8)
    if name == "brownish_noise":
        noise = np.stack([_spectral(p, brown=True) for p in prm["phases"]], axis=2)
        return np.clip(img + fp(level, 64) * noise, 0, 255).astype(np.uint8)
    if name == "checkerboard_cutout":
        a, s, grid = prm["angle"], prm["scale"], prm["grid"] < fp(level, 1.0)
        out = image.copy()
        for y in range(SIZE):
            for x in range(SIZE):
                nx = (np.cos(a) * y + np.sin(a) * x) / s
                ny = (-np.sin(a) * y + np.cos(a) * x) / s
                if int(nx % 2) == int(ny % 2) and grid[int(nx), int(ny)]:
                    out[y, x, :] = 128
        return out
    if name == "inverse_sparkles":
        lengths = 8 + 0.25 * 8 * prm["normals"]
        exponent = fp(level, 65) / 50.0
        out = np.empty_like(img)
        for y in range(SIZE):
            for x in range(SIZE):
                f = _star((y, x), prm["centre"], lengths, exponent)
                out[y, x] = 255 + f * (image[y, x].astype(np.float32) - 255)
        return np.clip(out, 0, 255).astype(np.uint8)
    if name == "sparkles":
        radius = fp(level, 0.1) * SIZE
        cur = img
        for centre, normals in zip(prm["centres"], prm["normals"]):
            lengths = np.maximum(1, radius + 0.25 * radius * normals)
            nxt = np.empty_like(cur)
            for y in range(SIZE):
                for x in range(SIZE):
                    value = cur[y, x].astype(np.float32)
                    nxt[y, x] = value + _star((y, x), centre, lengths, 1.0) * (255 - value)
            cur = nxt
        return np.clip(cur, 0, 255).astype(np.uint8)
    if name == "lines":
        from skimage.draw import line_aa

        out = image.copy()
        for ux, uy, ua in prm["lines"]:
            x, y = SIZE * ux, SIZE * uy
            a = prm["angle"] + 2 * np.pi * prm["variation"] * (ua - 0.5)
            s, c = np.sin(a) * SIZE, np.cos(a) * SIZE
            rr, cc, val = line_aa(int(x - c), int(y - s), int(x + c), int(y + s))
            keep = (rr >= 0) & (cc >= 0) & (rr < SIZE) & (cc < SIZE)
            rr, cc, val = rr[keep], cc[keep], val[keep]
            out[rr, cc, :] = (1.0 - val[:, None]) * out[rr, cc, :].astype(np.float32) + val[:, None] * 128
        return out
    if name == "pinch_and_twirl":
        amount = fp(level, 0.4) + 0.1
        out = img.astype(np.float32)
        cell, radius = SIZE // 3, SIZE // 3 / 2
        for i in range(3):
            for j in range(3):
                angle = prm["signs"][i, j] * fp(level, np.pi / 2)
                centre = np.array([j * cell + radius, i * cell + radius])
                block = np.empty((cell, cell, 3))
                for y in range(j * cell, (j + 1) * cell):
                    for x in range(i * cell, (i + 1) * cell):
                        pt = np.array([y, x], dtype=np.float64)
                        dy, dx = pt - centre
                        dist = np.linalg.norm(pt - centre)
                        if not (dist > radius or np.round(dist, 3) == 0.0):
                            d = dist / radius
                            t = np.sin(np.pi * 0.5 * d) ** (-amount)
                            dy, dx = dy * t, dx * t
                            tw = angle * (1 - d) ** 2
                            pt = centre + np.array(
                                [dy * np.cos(tw) - dx * np.sin(tw), dy * np.sin(tw) + dx * np.cos(tw)]
                            )
                        block[y - j * cell, x - i * cell] = _bilinear(out, pt)
                out[j * cell : (j + 1) * cell, i * cell : (i + 1) * cell] = block
        return np.clip(out, 0, 255).astype(np.uint8)
    if name == "ripple":
        amp = fp(level, 0.025) * SIZE
        out = np.empty_like(img)
        for y in range(SIZE):
            for x in range(SIZE):
                pt = np.array([y, x]) + amp * np.sin(
                    2 * np.pi * np.array([y, x]) / prm["wavelengths"] + prm["phases"]
                )
                out[y, x] = _bilinear(image, pt)
        return np.clip(out, 0, 255).astype(np.uint8)
    if name == "transverse_chromatic_abberation":
        s = fp(level, 0.5)
        scales = np.array([1.0, 1.0 + s / 2, 1.0 + s])[prm["permutation"]]
        out = image.copy()
        for c in range(3):
            zoomed = ndimage.zoom(image[:, :, c], scales[c], prefilter=False)
            edge = (zoomed.shape[0] - SIZE) // 2
            out[:, :, c] = zoomed[edge : edge + SIZE, edge : edge + SIZE]
        return out
    if name == "circular_motion_blur":
        amount = fp(level, 15)
        x = image.astype(np.float32) / 255
        acc, total = np.zeros_like(x), 0.0
        for i in range(21):
            t = 2 * i / 20 - 1
            acc += math.exp(-2 * t * t) * ndimage.rotate(x, t * amount, reshape=False)
            total += math.exp(-2 * t * t)
        return np.clip(acc / total * 255, 0, 255).astype(np.uint8)
    raise KeyError(name)


# ---------------------------------------------------------------- batching the port's draws


def _pad(rows: list[np.ndarray], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def to_draws(name: str, params: list[dict]) -> dict | None:
    """The batched implementation's ``draws`` dict for the port's per-image parameters."""
    if name == "circular_motion_blur":
        return None
    if name in ("blue_noise_sample", "brownish_noise"):
        return {"phases": np.stack([np.stack(p["phases"]) for p in params])}
    if name == "checkerboard_cutout":
        grids = np.zeros((len(params), 40, 40))
        for i, p in enumerate(params):
            g = p["grid"].shape[0]
            grids[i, :g, :g] = p["grid"]
        return {
            "angle": np.array([p["angle"] for p in params]),
            "scale": np.array([p["scale"] for p in params]),
            "grid": grids,
        }
    if name == "inverse_sparkles":
        return {
            "centre": np.stack([p["centre"] for p in params]),
            "rays": np.array([p["rays"] for p in params]),
            "normals": _pad([p["normals"] for p in params], 199),
        }
    if name == "sparkles":
        return {
            "centres": np.stack([p["centres"] for p in params]),
            "rays": np.stack([p["rays"] for p in params]),
            "normals": np.stack([_pad(p["normals"], 199) for p in params]),
        }
    if name == "lines":
        return {
            "angle": np.array([p["angle"] for p in params]),
            "variation": np.array([p["variation"] for p in params]),
            "lines": np.stack([p["lines"] for p in params]),
        }
    return {k: np.stack([p[k] for p in params]) for k in params[0]}


# ---------------------------------------------------------------- fidelity measure


def port_batch(images: np.ndarray, name: str, severity: int, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """The port over uint8 (N, 32, 32, 3) images, image i drawn from RandomState(seed·100003 + i)."""
    level = PRESETS[PRESET][name][severity - 1][0]
    out, params = np.empty_like(images), []
    for i, img in enumerate(images):
        prm = sample(name, level, np.random.RandomState(seed * 100_003 + i))
        params.append(prm)
        out[i] = corrupt(img, name, level, prm)
    return out, params


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def ours_injected(images: np.ndarray, name: str, severity: int, params: list[dict]) -> np.ndarray:
    draws = to_draws(name, params)
    x = _nchw(images).float() / 255
    out = corrupt_float(x, name, severity, PRESET, draws=draws)
    return out.clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def ours_sampled(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return (
        corrupt_batch(_nchw(images), name, severity, preset=PRESET, generator=g).permute(0, 2, 3, 1).numpy()
    )


def _stats(out: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    d = out.astype(np.float64) - clean
    return float(d.mean()), float(d.std())


def measure(images: np.ndarray, name: str, severity: int, seed: int = 0) -> dict:
    """One cell: the port vs ours with the port's draws (value by value) and vs ours with our own
    sampler (the mean and std of corrupted − clean, relative to the port's std)."""
    ref, params = port_batch(images, name, severity, seed)
    injected = ours_injected(images, name, severity, params)
    signed = injected.astype(np.int16) - ref.astype(np.int16)
    own = ours_sampled(images, name, severity, seed)
    clean = images.astype(np.float64)
    (m_ref, s_ref), (m_own, s_own) = _stats(ref, clean), _stats(own, clean)
    scale = max(s_ref, 1e-9)
    return {
        "corruption": name,
        "severity": severity,
        "n": len(images),
        "agree_1": float((np.abs(signed) <= 1).mean() * 100),
        "mean_abs": float(np.abs(signed).mean()),
        "mean_signed": float(signed.mean()),
        "max_abs": int(np.abs(signed).max()),
        "mean_gap": abs(m_own - m_ref) / scale,
        "std_gap": abs(s_own - s_ref) / scale,
        "ref_change": float(np.abs(ref.astype(np.float64) - clean).mean()),
    }
