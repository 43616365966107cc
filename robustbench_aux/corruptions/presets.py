"""Parameter presets as data: the CIFAR-10/100-C table and the ImageNet-C / imagecorruptions table.

``PRESETS[preset][corruption]`` is a tuple of five parameter records, one per severity 1..5. Each
record is a plain tuple in the order documented in ``FIELDS`` (the order of the published
tables). ``PRESET_VARIANTS[preset]`` holds the algorithmic differences between the two sources, so that
one implementation serves both: e.g. the CIFAR script upsamples pixelate with a box filter and
imagecorruptions with nearest neighbour.

Sources: ``make_cifar_c.py`` (hendrycks/robustness, ImageNet-C/create_c) for ``cifar``;
``imagecorruptions`` 1.1.2 ``corruptions.py`` for ``imagenet``; ``cifar10_c_bar.csv``
(facebookresearch/augmentation-corruption, ``imagenet_c_bar/``) for ``cifar10-c-bar``, the ten
CIFAR-10-C-bar corruptions (a separate benchmark, never mixed with the 19).
"""

from __future__ import annotations

from types import MappingProxyType

from robustbench_aux.catalog import CBAR_10
from robustbench_aux.errors import UserError, did_you_mean

# What each parameter record holds (units: images in [0, 1] unless said otherwise; px = pixels).
FIELDS: dict[str, tuple[str, ...]] = {
    "gaussian_noise": ("sigma",),
    "shot_noise": ("photons",),
    "impulse_noise": ("amount",),
    "speckle_noise": ("sigma",),
    "gaussian_blur": ("sigma_px",),
    "glass_blur": ("sigma_px", "max_delta_px", "iterations"),
    "defocus_blur": ("radius_px", "alias_blur_sigma_px"),
    "motion_blur": ("radius_px", "sigma_px"),
    "zoom_blur": ("zoom_end", "zoom_step"),
    "snow": ("loc", "scale", "zoom", "threshold", "blur_radius_px", "blur_sigma_px", "blend"),
    "frost": ("image_coef", "frost_coef"),
    "fog": ("strength", "wibble_decay"),
    "brightness": ("value_shift",),
    "contrast": ("factor",),
    "saturate": ("sat_scale", "sat_shift"),
    "spatter": ("loc", "scale", "sigma_px", "threshold", "intensity", "mud"),
    "jpeg_compression": ("quality",),
    "pixelate": ("factor",),
    "elastic_transform": ("alpha", "sigma", "affine"),
}
# CIFAR-10-C-bar: the authors' severity level out of 10; each corruption scales it to its own
# parameters (robustbench_aux/corruptions/cbar.py, docs/corruptions.md)
FIELDS.update({name: ("level",) for name in CBAR_10})

_CIFAR = {
    "gaussian_noise": ((0.04,), (0.06,), (0.08,), (0.09,), (0.10,)),
    "shot_noise": ((500,), (250,), (100,), (75,), (50,)),
    "impulse_noise": ((0.01,), (0.02,), (0.03,), (0.05,), (0.07,)),
    "speckle_noise": ((0.06,), (0.10,), (0.12,), (0.16,), (0.20,)),
    "gaussian_blur": ((0.4,), (0.6,), (0.7,), (0.8,), (1.0,)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": ((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    "snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": ((0.05,), (0.1,), (0.15,), (0.2,), (0.3,)),
    "contrast": ((0.75,), (0.5,), (0.4,), (0.3,), (0.15,)),
    "saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    "spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    "jpeg_compression": ((80,), (65,), (58,), (50,), (40,)),
    "pixelate": ((0.95,), (0.9,), (0.85,), (0.75,), (0.65,)),
    # (alpha, sigma, affine jitter) in px: multiples of the 32-px image size, as in the CIFAR script
    "elastic_transform": tuple(
        (32 * a, 32 * s, 32 * j)
        for a, s, j in (
            (0, 0, 0.08),
            (0.05, 0.2, 0.07),
            (0.08, 0.06, 0.06),
            (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03),
        )
    ),
}

_IMAGENET = {
    "gaussian_noise": ((0.08,), (0.12,), (0.18,), (0.26,), (0.38,)),
    "shot_noise": ((60,), (25,), (12,), (5,), (3,)),
    "impulse_noise": ((0.03,), (0.06,), (0.09,), (0.17,), (0.27,)),
    "speckle_noise": ((0.15,), (0.2,), (0.35,), (0.45,), (0.6,)),
    "gaussian_blur": ((1,), (2,), (3,), (4,), (6,)),
    "glass_blur": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    "defocus_blur": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    "motion_blur": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    "zoom_blur": ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    "snow": (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
        (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55),
    ),
    "frost": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    "fog": ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)),
    "brightness": ((0.1,), (0.2,), (0.3,), (0.4,), (0.5,)),
    "contrast": ((0.4,), (0.3,), (0.2,), (0.1,), (0.05,)),
    "saturate": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    "spatter": (
        (0.65, 0.3, 4, 0.69, 0.6, 0),
        (0.65, 0.3, 3, 0.68, 0.6, 0),
        (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1),
        (0.67, 0.4, 1, 0.65, 1.5, 1),
    ),
    "jpeg_compression": ((25,), (18,), (15,), (10,), (7,)),
    "pixelate": ((0.6,), (0.5,), (0.4,), (0.3,), (0.25,)),
    # imagecorruptions' re-parametrisation: alpha = 250 x c, sigma = 0.01 x image side (px),
    # displacement drawn in +-0.005 x image side, and no affine step.
    "elastic_transform": tuple((250 * a, 0.01, 0.0) for a in (0.05, 0.065, 0.085, 0.1, 0.12)),
}

# CIFAR-10-C-bar (Mintun et al., NeurIPS 2021): the levels of the authors' cifar10_c_bar.csv, severities
# 1..5 in its column order. Applied to CIFAR-100 too (same 32x32 size): that is this suite's choice,
# not a published CIFAR-100-C-bar.
_CIFAR10_C_BAR = {
    name: tuple((float(v),) for v in levels)
    for name, levels in {
        "blue_noise_sample": (0.7, 1.4, 2.1, 3.5, 4.2),
        "brownish_noise": (2.5, 4.0, 5.5, 6.5, 7.0),
        "checkerboard_cutout": (1.0, 2.0, 3.0, 4.0, 5.0),
        "circular_motion_blur": (2.8, 3.6, 4.4, 5.2, 6.0),
        "inverse_sparkles": (1.0, 1.5, 2.5, 4.5, 5.0),
        "lines": (0.5, 1.0, 1.5, 2.0, 2.5),
        "pinch_and_twirl": (5.5, 6.0, 6.5, 8.5, 10.0),
        "ripple": (5.5, 6.0, 6.5, 7.5, 8.0),
        "sparkles": (0.7, 3.5, 5.6, 6.3, 7.0),
        "transverse_chromatic_abberation": (1.0, 2.0, 5.0, 9.0, 10.0),
    }.items()
}
CBAR_PRESET = "cifar10-c-bar"

# Algorithm variants. Keys:
#   zoom_crop        "center": the CIFAR script trims the zoomed image symmetrically;
#                    "topleft": imagecorruptions keeps the top-left corner (and snow keeps the
#                    oversized layer through its motion blur, cropping afterwards).
#   motion_quantize  "png_floor": the CIFAR script reads ImageMagick's result back through an 8-bit
#                    PNG, which truncates its 16-bit quantum (floor(q / 257)); the motion-blurred
#                    image and snow's blurred layer both take this step. "none": imagecorruptions'
#                    numpy blur stays float (the image is truncated at the end, snow's layer rounded).
#   motion_break     True: imagecorruptions stops adding kernel taps once a shift leaves the image.
#   snow_quantize    True: the CIFAR script stores the snow layer as an 8-bit PNG (truncated) before blurring.
#   frost_scale      "cifar": textures scaled by 0.2 (cv2 INTER_LINEAR); "imagenet": by 1.1 (INTER_CUBIC)
#                    after fitting to the image size.
#   pixelate_up      "box" (CIFAR script) or "nearest" (imagecorruptions).
#   elastic          "affine+displace" (CIFAR script) or "displace" (imagecorruptions).
#   fixed_size       side length the preset is calibrated for (None: any size >= min_size).
#   benchmark        which benchmark the preset generates: cifar-c (the 19) or cifar-c-bar (the ten).
PRESET_VARIANTS = {
    "cifar": {
        "zoom_crop": "center",
        "motion_quantize": "png_floor",
        "motion_break": False,
        "snow_quantize": True,
        "frost_scale": "cifar",
        "pixelate_up": "box",
        "elastic": "affine+displace",
        "fixed_size": 32,
        "min_size": 32,
        "benchmark": "cifar-c",
    },
    "imagenet": {
        "zoom_crop": "topleft",
        "motion_quantize": "none",
        "motion_break": True,
        "snow_quantize": False,
        "frost_scale": "imagenet",
        "pixelate_up": "nearest",
        "elastic": "displace",
        "fixed_size": None,
        "min_size": 32,
        "benchmark": "cifar-c",
    },
    CBAR_PRESET: {"fixed_size": 32, "min_size": 32, "benchmark": "cifar-c-bar"},
}

PRESETS = MappingProxyType(
    {
        "cifar": MappingProxyType(_CIFAR),
        "imagenet": MappingProxyType(_IMAGENET),
        CBAR_PRESET: MappingProxyType(_CIFAR10_C_BAR),
    }
)
# the presets of each benchmark
CIFAR_C_PRESETS = ("cifar", "imagenet")


def check_preset(preset: str) -> str:
    """Return ``preset`` if known, else raise a UserError listing the known presets."""
    if preset not in PRESETS:
        hint = did_you_mean(str(preset), PRESETS, cutoff=0.4)
        raise UserError(f"unknown corruption preset {preset!r}{hint} (known: {', '.join(PRESETS)})")
    return preset
