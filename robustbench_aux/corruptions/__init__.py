"""The 19 CIFAR-C / ImageNet-C corruptions: parameter presets as data, batched torch implementations
on any device, an imagecorruptions compatibility layer, and CIFAR-C generation.

>>> from robustbench_aux.corruptions import corrupt_batch, select_corruptions
>>> y = corrupt_batch(x_uint8_bchw, "fog", 3, preset="cifar", generator=torch.Generator().manual_seed(0))
>>> select_corruptions(tags="benchmark")          # the 15
"""

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CATEGORY, EXTRA_4, SEVERITIES
from robustbench_aux.corruptions.engine import CORRUPTIONS, corrupt_batch, select_corruptions
from robustbench_aux.corruptions.presets import FIELDS, PRESET_VARIANTS, PRESETS

__all__ = [
    "ALL_19",
    "BENCHMARK_15",
    "CATEGORY",
    "CORRUPTIONS",
    "EXTRA_4",
    "FIELDS",
    "PRESETS",
    "SEVERITIES",
    "PRESET_VARIANTS",
    "corrupt_batch",
    "generate_cifar_c",
    "select_corruptions",
]


def __getattr__(name):
    if name == "generate_cifar_c":  # imported lazily: generation pulls in the dataset layer
        from robustbench_aux.corruptions.generate import generate_cifar_c

        return generate_cifar_c
    raise AttributeError(name)
