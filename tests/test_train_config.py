"""Config and recipes: shipped recipes resolve, unknown keys are errors naming the key, overrides."""

from __future__ import annotations

import pytest

from robustbench_aux.config import (
    TrainConfig,
    load_recipe,
    recipe_names,
    resolve_config,
    resolved_channels_last,
    resolved_sbn_passes,
)
from robustbench_aux.errors import UserError
from robustbench_aux.methods import METHODS


def resolve(method="auxiliary", recipe="reference", overrides=None, epochs=None):
    return resolve_config(
        methods=METHODS,
        method=method,
        arch="resnet18",
        dataset="cifar100",
        seed=0,
        recipe=recipe,
        overrides=overrides,
        epochs=epochs,
    )


def test_shipped_recipes_resolve_for_every_method():
    assert {"reference", "paper", "smoke", "cpu_demo"} <= set(recipe_names())
    for recipe in recipe_names():
        for method in METHODS.names():
            cfg = resolve(method, recipe)
            assert cfg.method == method and cfg.train.epochs >= 1


def test_reference_recipe_is_the_reference_protocol():
    cfg = resolve("auxiliary", "reference")
    t, o = cfg.train, cfg.options
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay, t.nesterov) == (
        210,
        128,
        0.1,
        0.9,
        5e-4,
        False,
    )
    assert t.milestones == (60, 140, 180) and t.lr_decay == 0.1 and t.normalization == "reference"
    assert (o.alpha, o.beta, o.temperature, o.penalty_start_epoch, o.penalty_weight) == (
        0.05,
        0.05,
        1.0,
        180,
        1.0,
    )
    assert o.corruptions == ("blur", "noise", "contrast", "rotation")
    assert o.distill_direction == "primary_to_aux" and o.selective_bn and o.attention and not o.paired_views
    assert cfg.model.stem_relu is False


def test_paper_recipe_extends_reference_and_is_labelled_unverified():
    data = load_recipe("paper")
    assert data["status"] == "unverified"
    cfg = resolve("auxiliary", "paper")
    assert cfg.train.epochs == 300 and cfg.options.penalty_start_epoch == 257
    assert cfg.options.alpha == 0.05  # inherited from reference


def test_unknown_keys_are_errors_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "reference"\n[train]\nlearning_rate = 0.1\n')
    with pytest.raises(UserError, match="unknown key 'learning_rate'.*\\[train\\]"):
        resolve(recipe=str(bad))
    bad.write_text("[method.auxiliary]\nalpah = 0.1\n")
    with pytest.raises(UserError, match="unknown key 'alpah'.*did you mean 'alpha'"):
        resolve(recipe=str(bad))
    bad.write_text("[method.auxilary]\n")
    with pytest.raises(UserError, match="auxilary.*did you mean 'auxiliary'"):
        resolve(recipe=str(bad))
    bad.write_text("epocs = 3\n")
    with pytest.raises(UserError, match="unknown key 'epocs'"):
        resolve(recipe=str(bad))
    with pytest.raises(UserError, match="unknown key 'lrr'"):
        resolve(overrides=["lrr=0.1"])
    with pytest.raises(UserError, match="unknown recipe 'refrence'.*did you mean 'reference'"):
        resolve(recipe="refrence")


def test_type_errors_name_the_key(tmp_path):
    with pytest.raises(UserError, match="train.epochs must be an integer"):
        resolve(overrides=["epochs=many"])
    with pytest.raises(UserError, match="method.selective_bn must be true or false"):
        resolve(overrides=["selective_bn=maybe"])
    with pytest.raises(UserError, match="distill_direction"):
        resolve(overrides=["distill_direction=sideways"])
    with pytest.raises(UserError, match="key=value"):
        resolve(overrides=["lr"])


def test_overrides_bare_and_dotted_and_typed():
    cfg = resolve(
        overrides=[
            "lr=0.05",
            "train.batch_size=64",
            "beta=0",
            "milestones=[2, 4]",
            "corruptions=noise,blur",
            "model.stem_relu=true",
        ]
    )
    assert cfg.train.lr == 0.05 and cfg.train.batch_size == 64 and cfg.options.beta == 0.0
    assert cfg.train.milestones == (2, 4) and cfg.options.corruptions == ("noise", "blur")
    assert cfg.model.stem_relu is True
    pc = resolve("per_corruption", overrides=["corruption=cifar_c:fog@3"])
    assert pc.options.corruption == "cifar_c:fog@3"
    with pytest.raises(UserError, match="unknown CIFAR-C corruption"):
        resolve("per_corruption", overrides=["corruption=cifar_c:smog@3"])


def test_epochs_flag_rescales_the_schedule_but_set_epochs_does_not():
    short = resolve(epochs=21)
    assert short.train.epochs == 21 and short.train.milestones == (6, 14, 18)
    assert short.options.penalty_start_epoch == 18
    plain_set = resolve(overrides=["epochs=21"])
    assert plain_set.train.milestones == (60, 140, 180)
    explicit = resolve(epochs=21, overrides=["milestones=[5]"])  # an explicit --set wins over the rescaling
    assert explicit.train.milestones == (5,) and explicit.options.penalty_start_epoch == 18


REFERENCE_POINTS = (60, 140, 180)  # the reference's milestones; its penalty starts at the last


@pytest.mark.parametrize("epochs", [1, 2, 3, 10, 21, 210])
def test_epochs_flag_keeps_every_schedule_point_inside_the_run(epochs):
    """--epochs E: the milestones stay strictly increasing and inside the run (0 < m < E), the penalty
    starts inside it with the last milestone, and config.json's schedule_scaling says how. The old
    rounding gave [0, 1, 1] at E = 1: lr 0.01 from the first step, the penalty never on."""
    cfg = resolve(epochs=epochs)
    m, start = cfg.train.milestones, cfg.options.penalty_start_epoch
    assert len(m) == 3 and 0 < m[0] and all(a < b for a, b in zip(m, m[1:])) and m[-1] < epochs
    assert 0 < start < epochs and start == m[-1]
    exact = [p * epochs / 210 for p in REFERENCE_POINTS]
    assert all(abs(a - b) <= 0.5 for a, b in zip(m, exact))  # proportional, to the nearest epoch at most
    assert cfg.schedule_scaling["from_epochs"] == 210 and cfg.schedule_scaling["to_epochs"] == epochs
    if epochs == 210:  # exactly the reference, as integers
        assert m == REFERENCE_POINTS and start == 180 and all(type(v) is int for v in (*m, start))
    if epochs <= 3:  # no whole-epoch schedule fits: exact fractions, applied per step
        assert m == pytest.approx(exact) and "fractions" in cfg.schedule_scaling["points"]
    if epochs in (10, 21):
        assert m == {10: (3, 7, 9), 21: (6, 14, 18)}[epochs] and "whole" in cfg.schedule_scaling["points"]


def test_short_schedule_acts_per_step():
    """At E = 1 of the reference (391 steps), the lr falls at the steps where the scaled milestones
    lie and the penalty switches on inside the epoch; at E = 210 every change is at an epoch start."""
    from robustbench_aux.engine.setup import lr_at_step, step_position
    from robustbench_aux.methods import build_method

    cfg = resolve(epochs=1)
    lrs = [lr_at_step(cfg.train, 0, s, 391) for s in range(391)]
    changes = [s for s in range(1, 391) if lrs[s] != lrs[s - 1]]
    assert changes == [112, 261, 336]  # the first steps at or after 60/210, 140/210, 180/210 of the epoch
    assert lrs[0] == 0.1 and lrs[-1] == pytest.approx(1e-4)
    aux = build_method("auxiliary", cfg.options, crop_padding=4, flip=True)
    gammas = [aux.gamma(step_position(0, s, 391)) for s in range(391)]
    assert gammas.index(1.0) == 336 and set(gammas[336:]) == {1.0}
    ref = resolve()
    assert [lr_at_step(ref.train, e, s, 391) for e, s in ((59, 390), (60, 0), (139, 390), (140, 0))] == [
        pytest.approx(v) for v in (0.1, 0.01, 0.01, 0.001)
    ]
    aux = build_method("auxiliary", ref.options, crop_padding=4, flip=True)
    assert aux.gamma(step_position(179, 390, 391)) == 0.0 and aux.gamma(step_position(180, 0, 391)) == 1.0


def test_epoch_points_are_validated_and_keep_whole_numbers():
    assert resolve(overrides=["milestones=[2.0, 4.5]"]).train.milestones == (2, 4.5)
    with pytest.raises(UserError, match="milestones"):
        resolve(overrides=["milestones=[nan]"])
    with pytest.raises(UserError, match="penalty_start_epoch"):
        resolve(overrides=["penalty_start_epoch=-1"])


def test_recipe_extends_chain_and_cycles(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(f'extends = "{b}"\n[train]\nlr = 0.2\n')
    b.write_text('extends = "smoke"\n[train]\nlr = 0.3\nepochs = 5\n')
    cfg = resolve(recipe=str(a))
    assert cfg.train.lr == 0.2 and cfg.train.epochs == 5 and cfg.train.n_train == 512
    b.write_text(f'extends = "{a}"\n')
    with pytest.raises(UserError, match="extends itself"):
        resolve(recipe=str(a))


def test_config_dict_is_json_ready():
    import json

    d = resolve().to_dict()
    assert json.loads(json.dumps(d))["options"]["alpha"] == 0.05


@pytest.mark.parametrize(
    ("value", "cuda", "cpu"), [("auto", "on", "off"), ("on", "on", "on"), ("off", "off", "off")]
)
def test_channels_last_auto_is_on_for_cuda_only(value, cuda, cpu):
    t = TrainConfig(channels_last=value)
    assert (resolved_channels_last(t, "cuda"), resolved_channels_last(t, "cpu")) == (cuda, cpu)


@pytest.mark.parametrize(
    ("value", "cuda", "cpu"),
    [("auto", "single", "per_view"), ("single", "single", "single"), ("per_view", "per_view", "per_view")],
)
def test_sbn_passes_auto_is_single_on_cuda_per_view_elsewhere(value, cuda, cpu):
    t = TrainConfig(sbn_passes=value)
    assert (resolved_sbn_passes(t, "cuda"), resolved_sbn_passes(t, "cpu")) == (cuda, cpu)
