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
]


@pytest.mark.parametrize("changes,parameter", CASES)
def test_bad_input_names_the_parameter(changes, parameter):
    before = lt.TRACE_COUNTS["simulate"]
    with pytest.raises(lt.ConfigError, match=parameter):
        lt.simulate(BASE.replace(**changes), seeds=1)
    assert lt.TRACE_COUNTS["simulate"] == before  # nothing was traced


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(lt.ConfigError, match="random, spectral, lora_one"):
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
        "kappa", "target_scale", "noise", "leaky_slope", "alpha", "gamma", "s", "lr", "damping", "preheat_lr",
        "preheat_damping",
    }
    assert lt.PROBLEM_FIELDS == ("kappa", "target_scale", "noise", "leaky_slope")
    assert all(lt.config.field_type(n) is float for n in lt.DYNAMIC_FIELDS)
    for model in lt.MODELS.values():  # a model reads only fields that may change a problem
        assert all(specs[n].problem for n in model.fields)
    for init in lt.INITS.values():
        assert all(n in specs for n in init.params)
