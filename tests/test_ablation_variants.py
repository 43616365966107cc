"""Named ablations (``--set variant=...``) set their switch and label the run."""

import pytest

from robustbench_aux.config import resolve_config
from robustbench_aux.errors import UserError
from robustbench_aux.methods import METHODS
from robustbench_aux.metrics import method_label


@pytest.mark.parametrize(
    "variant, key, value",
    [
        ("no_isd", "beta", 0.0),
        ("no_sbn", "selective_bn", False),
        ("no_penalty", "penalty", False),
        ("no_attention", "attention", False),
        ("shared_head", "shared_head", True),
    ],
)
def test_variant_sets_its_switch(variant, key, value):
    cfg = resolve_config(
        methods=METHODS,
        method="auxiliary",
        arch="test_tiny",
        dataset="synthetic10",
        seed=0,
        recipe="reference",
        overrides=[f"variant={variant}"],
    )
    assert getattr(cfg.options, key) == value
    full = resolve_config(
        methods=METHODS,
        method="auxiliary",
        arch="test_tiny",
        dataset="synthetic10",
        seed=0,
        recipe="reference",
    )
    assert getattr(full.options, key) != value
    d = cfg.to_dict()
    assert method_label(d) == f"auxiliary[{variant}]" and method_label(full.to_dict()) == "auxiliary"


def test_unknown_variant():
    with pytest.raises(UserError, match="variant must be one of"):
        resolve_config(
            methods=METHODS,
            method="auxiliary",
            arch="test_tiny",
            dataset="synthetic10",
            seed=0,
            recipe="reference",
            overrides=["variant=no_bn"],
        )
