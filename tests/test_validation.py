"""Bad input: a clear error naming the parameter, raised before anything compiles."""

import math

import pytest

import lora_theory as lt

BASE = lt.RunConfig(d=10, k=8, r_star=2, rank=4, n_samples=50, steps=5, log_every=1)

CASES = [
    (dict(rank=0), "rank"),
    (dict(rank=9), "rank"),
    (dict(r_star=9), "r_star"),
    (dict(r_star=0), "r_star"),
    (dict(n_samples=0), "n_samples"),
    (dict(alpha=-1.0), "alpha"),
    (dict(alpha=math.nan), "alpha"),
    (dict(alpha=math.inf), "alpha"),
    (dict(lr=-0.1), "lr"),
    (dict(lr=math.inf), "lr"),
    (dict(damping=-1e-3), "damping"),
    (dict(damping=math.nan), "damping"),
    (dict(kappa=0.5), "kappa"),
    (dict(kappa=math.inf), "kappa"),
    (dict(init="kaiming"), "init"),
    (dict(optimizer="adam"), "optimizer"),
    (dict(model="cnn"), "model"),
    (dict(train_factors="C"), "train_factors"),
    (dict(dtype="float16"), "dtype"),
    (dict(init="hrp", preheat_rank=2), "preheat_rank"),
    (dict(init="lora_ga", rank=5), "rank"),
    (dict(init="lora_one", variant="bogus"), "variant"),
    (dict(singular_values=(3.0, 2.0, 1.0)), "singular_values"),
    (dict(model="population", noise=0.1), "noise"),
    (dict(noise=-0.1), "noise"),
    (dict(log_every=0), "log_every"),
    (dict(steps=-1), "steps"),
    (dict(init="lora_sb", train_factors="B"), "train_factors"),
    # the practical inits, scaling, LoRA+ and target subspaces (issue 13)
    (dict(lr_ratio=0.0), "lr_ratio"),
    (dict(lr_ratio=math.inf), "lr_ratio"),
    (dict(lr_ratio=math.nan), "lr_ratio"),
    (dict(scaling="peft"), "scaling"),
    (dict(scaling="lora", lora_alpha=0.0), "lora_alpha"),
    (dict(target_subspace="middle"), "target_subspace"),
    (dict(target_subspace="top", target_angle=2.0), "target_angle"),
    (dict(target_angle=0.3), "target_angle"),  # a tilt needs W0's subspace to tilt from
    (dict(target_subspace="bottom", target_angle=0.3, r_star=5), "target_angle"),  # 2 r_star > min(d, k)
    (dict(model="population", target_subspace="top", target_angle=math.inf), "target_angle"),
    (dict(init="orthogonal", rank=3), "rank"),
    (dict(init="olora", variant="lq"), "variant"),
]


@pytest.mark.parametrize("changes,parameter", CASES)
def test_bad_input_names_the_parameter(changes, parameter):
    before = lt.TRACE_COUNTS["simulate"]
    with pytest.raises(lt.ConfigError, match=parameter):
        lt.simulate(BASE.replace(**changes), seeds=1)
    assert lt.TRACE_COUNTS["simulate"] == before  # nothing was traced


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(lt.ConfigError, match="random, random_b, spectral, lora_one"):
        lt.validate(BASE.replace(init="nope"))
    with pytest.raises(lt.ConfigError, match="gd, precgd"):
        lt.validate(BASE.replace(optimizer="sgd"))


def test_bad_sweep_values_and_static_sweeps_are_rejected():
    with pytest.raises(lt.ConfigError, match="alpha"):
        lt.simulate(BASE, sweep={"alpha": [0.1, -1.0]})
    with pytest.raises(lt.ConfigError, match="rank"):
        lt.simulate(BASE, sweep={"rank": [2, 4]})
    with pytest.raises(lt.ConfigError, match="seeds"):
        lt.simulate(BASE, seeds=0)


def _out_of_range(name, spec):
    low = spec.low(BASE) if callable(spec.low) else spec.low
    if lt.config.field_type(name) is int:
        return low - 1
    return low if spec.strict else low - 0.5


RANGED = [name for name, spec in lt.FIELD_SPECS.items() if spec.low is not None]
CHOICES = [name for name, spec in lt.FIELD_SPECS.items() if spec.choices is not None]


@pytest.mark.parametrize("name", RANGED)
def test_every_declared_range_is_checked(name):
    """The checks are generated from the field metadata: below its range, every field is rejected."""
    base = BASE.replace(init="hrp") if lt.FIELD_SPECS[name].only_if_read else BASE
    with pytest.raises(lt.ConfigError, match=f"^{name}="):
        lt.validate(base.replace(**{name: _out_of_range(name, lt.FIELD_SPECS[name])}))
    if lt.config.field_type(name) is float:
        with pytest.raises(lt.ConfigError, match=f"^{name}="):
            lt.validate(base.replace(**{name: math.nan}))


@pytest.mark.parametrize("name", CHOICES)
def test_every_declared_choice_is_checked_and_listed(name):
    base = BASE.replace(init="hrp") if lt.FIELD_SPECS[name].only_if_read else BASE
    valid = ", ".join(lt.FIELD_SPECS[name].valid_choices())
    with pytest.raises(lt.ConfigError, match=f"^{name}='nope' is invalid: must be one of {valid}$"):
        lt.validate(base.replace(**{name: "nope"}))


def test_preheat_fields_are_checked_only_for_the_inits_that_read_them():
    assert lt.validate(BASE.replace(preheat_rank=2, preheat_steps=-1, preheat_optimizer="nope"))
    with pytest.raises(lt.ConfigError, match="preheat_steps"):
        lt.validate(BASE.replace(init="hrp", preheat_steps=-1))


def test_derived_field_lists():
    specs = lt.FIELD_SPECS
    assert lt.DYNAMIC_FIELDS == tuple(n for n, s in specs.items() if s.dynamic)
    assert set(lt.DYNAMIC_FIELDS) == {
        "kappa",
        "target_scale",
        "noise",
        "leaky_slope",
        "alpha",
        "gamma",
        "s",
        "lr",
        "damping",
        "preheat_lr",
        "preheat_damping",
        "target_angle",
        "lora_alpha",
        "lr_ratio",
    }
    assert lt.PROBLEM_FIELDS == ("kappa", "target_scale", "noise", "leaky_slope", "target_angle")
    assert all(lt.config.field_type(n) is float for n in lt.DYNAMIC_FIELDS)
    for model in lt.MODELS.values():  # a model reads only fields that may change a problem
        assert all(specs[n].problem for n in model.fields)
    for init in lt.INITS.values():
        assert all(n in specs for n in init.params)


def test_the_new_fields_accept_their_valid_values_and_their_messages_say_why():
    for changes in (
        dict(scaling="rslora", lora_alpha=16.0),
        dict(lr_ratio=16.0),
        dict(target_subspace="top"),
        dict(target_subspace="bottom", target_angle=math.pi / 2),
        dict(init="orthogonal"),
        dict(init="pissa", scaling="lora"),
        dict(init="olora", variant="qr"),
    ):
        assert lt.validate(BASE.replace(**changes))
    with pytest.raises(
        lt.ConfigError, match=r"target_angle=2.0 is invalid: must be a finite number in \[0.0, 1.5708\]"
    ):
        lt.validate(BASE.replace(target_subspace="top", target_angle=2.0))
    with pytest.raises(lt.ConfigError, match="needs target_subspace 'top' or 'bottom'"):
        lt.validate(BASE.replace(target_angle=0.1))
    with pytest.raises(lt.ConfigError, match="lr_ratio=0.0 is invalid: must be a finite number > 0"):
        lt.validate(BASE.replace(lr_ratio=0.0))
    with pytest.raises(lt.ConfigError, match="target_angle"):  # each swept value is checked
        lt.simulate(BASE.replace(target_subspace="top"), sweep={"target_angle": [0.0, 3.0]})
