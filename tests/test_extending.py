"""A user's own init and optimizer, without editing the package: the docs' code, run as it stands.

The code block of the documentation page "Your own init and optimizer" (docs/usage/extending.md)
is extracted and executed; then
its results are checked: the hand-written spectral init with ``optax.sgd`` gives the same
trajectories as the built-in ``spectral`` with ``gd`` (through ``simulate`` and through the CLI's
``main``), and ``lt.train`` on the objects themselves gives seed 0's run.
"""

import os
import re
from pathlib import Path

import jax
import numpy as np
import optax
import pandas as pd
import pytest

import lora_theory as lt
from lora_theory import inits, optimizers
from lora_theory.cli import main

README = Path(__file__).resolve().parent.parent / "docs" / "usage" / "extending.md"


def readme_snippet() -> str:
    text = README.read_text()
    section = text[text.index("# Your own init and optimizer") :]
    return re.search(r"```python\n(.*?)\n```", section, re.S).group(1)


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """The namespace of the docs' block, run in a temporary folder; the registries restored after."""
    saved = dict(inits._INITS), dict(optimizers._OPTIMIZERS)
    folder = tmp_path_factory.mktemp("readme")
    cwd = Path.cwd()
    namespace: dict = {}
    try:
        os.chdir(folder)
        exec(compile(readme_snippet(), str(README), "exec"), namespace)
        namespace["folder"] = folder
        yield namespace
    finally:
        os.chdir(cwd)
        for registry, before in zip((inits._INITS, optimizers._OPTIMIZERS), saved, strict=True):
            registry.clear()
            registry.update(before)


def test_custom_init_and_optimizer_equal_the_builtins_through_simulate(readme):
    mine, ours = readme["mine"], readme["ours"]
    assert mine.trajectory.metrics["risk"].shape == (3, 2, 11)
    for name in ("risk", "align_A_G", "sv_AB", "loss"):
        np.testing.assert_array_equal(mine.trajectory.metrics[name], ours.trajectory.metrics[name])
    np.testing.assert_array_equal(mine.trajectory.final.A, ours.trajectory.final.A)
    # the results name the registered components
    df = mine.to_dataframe()
    assert set(df["init"]) == {"my_spectral"} and set(df["optimizer"]) == {"my_sgd"}
    assert sorted(set(df["gamma"])) == [0.5, 1.0]
    # and gamma did reach the custom init: the two grid points differ
    assert not np.allclose(mine.trajectory.metrics["risk"][:, 0], mine.trajectory.metrics["risk"][:, 1])


def test_train_on_the_objects_equals_the_registered_run(readme):
    traj, mine = readme["traj"], readme["mine"]
    np.testing.assert_allclose(traj.metrics["risk"], mine.trajectory.metrics["risk"][0, 1], rtol=1e-10, atol=1e-300)
    final = mine.trajectory.final
    product = final.A[0, 1] @ final.B[0, 1]
    np.testing.assert_allclose(traj.final.A @ traj.final.B, product, atol=1e-10 * np.abs(product).max())


def test_registered_init_and_optimizer_through_the_cli_main(readme):
    folder = readme["folder"]
    flags = readme["flags"]
    assert main(["train", "--init", "spectral", "--optimizer", "gd", *flags, "--out", str(folder / "builtin")]) == 0
    mine = pd.read_parquet(folder / "results" / "mine" / "train.parquet")
    builtin = pd.read_parquet(folder / "builtin" / "train.parquet")
    assert set(mine["init"]) == {"my_spectral"} and set(mine["optimizer"]) == {"my_sgd"}
    assert len(mine) == len(builtin) == 3 * 11
    for column in ("seed", "step", "risk", "align_A_G", "sv_1", "rate"):
        np.testing.assert_array_equal(mine[column].to_numpy(), builtin[column].to_numpy())


def test_registered_names_are_valid_everywhere_and_unknown_ones_list_them(readme, capsys):
    config = readme["config"]
    lt.validate(config)
    with pytest.raises(lt.ConfigError, match="oracle, my_spectral"):
        lt.validate(config.replace(init="nope"))
    with pytest.raises(lt.ConfigError, match="gd, precgd, my_sgd"):
        lt.validate(config.replace(optimizer="nope"))
    # every dispatch site agrees: the same error from the registries themselves
    with pytest.raises(lt.ConfigError, match="init='nope' is invalid: must be one of random"):
        lt.initialise(None, "nope", rank=2, key=jax.random.key(0))
    with pytest.raises(lt.ConfigError, match="optimizer='nope' is invalid: must be one of gd, precgd"):
        lt.optimizer_from_config("nope", lr=0.1)
    assert main(["train", "--init", "nope", "--quiet"]) == 2
    assert "my_spectral" in capsys.readouterr().err
    # the registered optimizer can preheat HRP too
    lt.validate(config.replace(init="hrp", preheat_optimizer="my_sgd"))
    main(["list"])
    out = capsys.readouterr().out
    assert "my_spectral(gamma)" in out and "my_sgd(lr)" in out


def test_initialise_dispatches_to_the_registered_init(readme):
    problem = lt.make_problem(readme["config"], key=lt.problem_key(0))
    mine = lt.initialise(problem, "my_spectral", rank=4, key=jax.random.key(1), gamma=2.0, alpha=0.3)
    ours = lt.initialise(problem, "spectral", rank=4, key=jax.random.key(1), gamma=2.0)
    np.testing.assert_array_equal(mine.A @ mine.B, ours.A @ ours.B)
    assert mine.offset is None and mine.with_offset().offset.left.shape == (20, 0)


def test_registration_is_checked():
    with pytest.raises(ValueError, match="built-in"):
        lt.register_init("spectral", lambda problem, rank, *, key: None)
    with pytest.raises(ValueError, match="built-in"):
        lt.register_optimizer("gd", lambda lr: None)
    with pytest.raises(ValueError, match="not a RunConfig field"):
        lt.register_init("bad_param", lambda problem, rank, *, key, beta: None, params=("beta",))
    with pytest.raises(ValueError, match="lr, damping"):
        lt.register_optimizer("bad_param", lambda momentum: None, params=("momentum",))
    assert "bad_param" not in lt.INITS and "bad_param" not in lt.OPTIMIZERS


def test_lr_ratio_needs_an_optimizer_that_declares_it(readme):
    """LoRA+ reaches a registered optimizer only if it declares lr_ratio; scale_factors gives it one."""
    config = readme["config"]
    with pytest.raises(lt.ConfigError, match="lr_ratio=2.0 is invalid: optimizer 'my_sgd' does not declare lr_ratio"):
        lt.validate(config.replace(lr_ratio=2.0))
    lt.register_optimizer(
        "my_sgd_plus",
        lambda lr, lr_ratio: optax.chain(optax.sgd(lr), lt.scale_factors(1.0, lr_ratio)),
        params=("lr", "lr_ratio"),
    )
    plus = config.replace(init="spectral", optimizer="my_sgd_plus", steps=20)
    mine = lt.simulate(plus, seeds=2, sweep={"lr_ratio": [1.0, 3.0]})
    ours = lt.simulate(plus.replace(optimizer="gd"), seeds=2, sweep={"lr_ratio": [1.0, 3.0]})
    risk = np.asarray(mine.trajectory.metrics["risk"])
    np.testing.assert_allclose(risk, ours.trajectory.metrics["risk"], rtol=1e-10)
    assert not np.allclose(risk[:, 0], risk[:, 1])  # the ratio reached the registered optimizer
