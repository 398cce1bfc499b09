"""Optimizers: the preconditioner against the explicit-inverse formula, optax path against plain path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import linear_problem, relative_error

import lora_theory as lt


def test_precgd_lambda_zero_equals_explicit_inverse_for_square_invertible_factors():
    kA, kB, kgA, kgB = jax.random.split(jax.random.key(0), 4)
    r = 5
    A = jax.random.normal(kA, (r, r), jnp.float64)
    B = jax.random.normal(kB, (r, r), jnp.float64)
    gA = jax.random.normal(kgA, (r, r), jnp.float64)
    gB = jax.random.normal(kgB, (r, r), jnp.float64)
    new = lt.precgd_update(lt.LoRAFactors(A, B), lt.LoRAFactors(gA, gB), 0.3, 0.0)
    expected_A = A - 0.3 * gA @ jnp.linalg.inv(B @ B.T)
    expected_B = B - 0.3 * jnp.linalg.inv(A.T @ A) @ gB
    assert relative_error(new.A, expected_A) < 1e-10
    assert relative_error(new.B, expected_B) < 1e-10


def test_damping_enters_as_lambda_identity():
    kA, kB, kg = jax.random.split(jax.random.key(1), 3)
    A = jax.random.normal(kA, (8, 3), jnp.float64)
    B = jax.random.normal(kB, (3, 6), jnp.float64)
    gA = jax.random.normal(kg, (8, 3), jnp.float64)
    pre_A, _ = lt.precondition(A, B, gA, B, 0.7)
    assert relative_error(pre_A, gA @ jnp.linalg.inv(B @ B.T + 0.7 * jnp.eye(3))) < 1e-12


@pytest.mark.parametrize(
    "name,damping,train_factors",
    [("gd", 0.0, "both"), ("precgd", 1e-3, "both"), ("precgd", 1e-3, "B"), ("gd", 0.0, "A")],
)
def test_train_equals_an_eager_loop_of_the_pure_updates(name, damping, train_factors):
    """lt.train (optax transformations, one lax.scan) against a Python loop of gd_update / precgd_update."""
    problem = linear_problem(d=12, k=10, noise=0.1)
    init = lt.initialise(problem, "spectral", rank=3, key=jax.random.key(0))
    opt = lt.optimizer_from_config(name, lr=0.05, damping=damping, train_factors=train_factors)
    traj = lt.train(problem, init, opt, steps=30, log_every=5)
    objective = problem.objective(init.offset)
    factors, risks = init.factors, []
    for t in range(31):
        if t % 5 == 0:
            risks.append(0.5 * float(jnp.sum((factors.A @ factors.B - problem.dW) ** 2)))
        if t == 30:
            break
        grads = lt.LoRAFactors(*objective.factor_grads(*factors))
        new = lt.gd_update(factors, grads, 0.05) if name == "gd" else lt.precgd_update(factors, grads, 0.05, damping)
        factors = lt.LoRAFactors(
            new.A if train_factors in ("both", "A") else factors.A,
            new.B if train_factors in ("both", "B") else factors.B,
        )
    assert relative_error(traj.final.A, factors.A) < 1e-12
    assert relative_error(traj.final.B, factors.B) < 1e-12
    np.testing.assert_allclose(traj.metrics["risk"], risks, rtol=1e-10)


def test_preconditioner_composes_with_adam():
    import optax

    problem = linear_problem(d=12, k=10, noise=0.0)
    init = lt.initialise(problem, "spectral", rank=2, key=jax.random.key(0))
    opt = optax.chain(lt.scale_by_lora_preconditioner(1e-3), optax.adam(1e-2))
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int and float
        traj = lt.train(problem, init, opt, steps=200, log_every=50)
    risk = traj.metrics["risk"]
    assert bool(jnp.all(jnp.isfinite(risk))) and float(risk[-1]) < float(risk[0])


def test_freeze_factors():
    upd = lt.LoRAFactors(jnp.ones((3, 2)), jnp.ones((2, 4)))
    out, _ = lt.freeze_factors("B").update(upd, lt.freeze_factors("B").init(upd))
    assert float(jnp.sum(out.A)) == 0.0 and float(jnp.sum(out.B)) == 8.0
