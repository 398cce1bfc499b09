"""The linear model: sufficient statistics against the raw data, closed-form gradients against autodiff."""

import jax
import jax.numpy as jnp
import pytest
from helpers import linear_problem, population_problem, relative_error

import lora_theory as lt


def _factors(d, k, r, seed):
    kA, kB, kL, kR = jax.random.split(jax.random.key(seed), 4)
    A = jax.random.normal(kA, (d, r), jnp.float64)
    B = jax.random.normal(kB, (r, k), jnp.float64)
    offset = lt.LowRank(jax.random.normal(kL, (d, r), jnp.float64), jax.random.normal(kR, (r, k), jnp.float64))
    return A, B, offset


@pytest.mark.parametrize("with_offset", [False, True])
def test_sufficient_statistics_match_raw_data(with_offset):
    """Loss and gradients from (Sigma_hat, G, L(W0)) equal those from X, Y to 1e-10 relative."""
    problem, (X, Y) = linear_problem(d=15, k=9, r_star=3, n=300, noise=0.3, return_data=True)
    A, B, offset = _factors(15, 9, 4, 1)
    if not with_offset:
        offset = lt.LowRank.zeros(15, 9, 4, jnp.float64)

    def raw_loss(A, B):
        W = problem.W0 + A @ B + offset.dense()
        return 0.5 * jnp.sum((X @ W - Y) ** 2) / X.shape[0]

    objective = problem.objective(offset)
    assert relative_error(objective.loss(A, B), raw_loss(A, B)) < 1e-10
    grad_A, grad_B = objective.factor_grads(A, B)
    raw_A, raw_B = jax.grad(raw_loss, argnums=(0, 1))(A, B)
    assert relative_error(grad_A, raw_A) < 1e-10
    assert relative_error(grad_B, raw_B) < 1e-10
    # G is the one-step full gradient -grad_W L(W0) = X^T (Y - X W0) / N
    G_raw = -jax.grad(lambda W: 0.5 * jnp.sum((X @ W - Y) ** 2) / X.shape[0])(problem.W0)
    assert relative_error(problem.G, G_raw) < 1e-10


@pytest.mark.parametrize("make", [linear_problem, population_problem])
def test_closed_form_gradients_equal_autodiff(make):
    problem = make()
    d, k = problem.W0.shape
    A, B, offset = _factors(d, k, 3, 2)
    objective = problem.objective(offset)
    grad_A, grad_B = objective.factor_grads(A, B)
    auto_A, auto_B = jax.grad(objective.loss, argnums=(0, 1))(A, B)
    assert relative_error(grad_A, auto_A) < 1e-12
    assert relative_error(grad_B, auto_B) < 1e-12


def test_population_loss_is_half_squared_distance_to_dW():
    problem = population_problem()
    A, B, offset = _factors(12, 10, 3, 3)
    loss = problem.objective(offset).loss(A, B)
    expected = 0.5 * jnp.sum((A @ B + offset.dense() - problem.dW) ** 2)
    assert relative_error(loss, expected) < 1e-12


def test_target_spectrum_and_dW():
    s = lt.target_spectrum(4, 1000.0, 2.0, jnp.float64)
    assert jnp.allclose(s[0] / s[-1], 1000.0) and jnp.allclose(s[0], 2.0)
    problem = population_problem(d=20, k=15, r_star=4, kappa=10.0)
    sv = jnp.linalg.svd(problem.dW, compute_uv=False)
    assert jnp.allclose(sv[:4], problem.dW_singular_values) and jnp.all(sv[4:] < 1e-12)
    assert jnp.allclose(problem.dW_left.T @ problem.dW_left, jnp.eye(4), atol=1e-12)


def test_same_key_same_weights_in_linear_and_population():
    lin = linear_problem(seed=5)
    pop = population_problem(seed=5)
    assert jnp.array_equal(lin.W0, pop.W0) and jnp.array_equal(lin.dW, pop.dW)
