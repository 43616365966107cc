"""The batched AugMix posterize/solarize equal torchvision's per-image ops."""

import torch
import torchvision.transforms.functional as TF

from robustbench_aux.methods.augmix_ops import apply_op


def test_posterize_and_solarize_match_torchvision_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    level = 0.1 + 9.9 * torch.rand(16, generator=g)
    bits = (4 - (level * 4 / 10).long()).clamp(1, 8)
    threshold = 256 - (level * 256 / 10).long()
    post = apply_op("posterize", x, level, g)
    sol = apply_op("solarize", x, level, g)
    for i in range(16):
        assert torch.equal(post[i], TF.posterize(x[i], int(bits[i])))
        assert torch.equal(sol[i], TF.solarize(x[i], float(threshold[i])))
