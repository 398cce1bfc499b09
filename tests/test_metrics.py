"""Metrics: alignment against scipy, spectra, and the linear-rate fit."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import lora_theory as lt


@given(
    n=st.sampled_from([6, 10, 25]),
    p=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 10_000),
)
def test_alignment_agrees_with_scipy_subspace_angles(n, p, seed):
    kU, kA, kmix = jax.random.split(jax.random.key(seed), 3)
    U = lt.haar_orthonormal(kU, n, p, jnp.float64)
    r = p + 2
    A = jax.random.normal(kA, (n, r), jnp.float64)
    ours = float(lt.align_A(A, U))
    # reference: top-p left singular subspace of A, then scipy's largest principal angle
    left = np.linalg.svd(np.asarray(A), full_matrices=False)[0][:, :p]
    angles = scipy.linalg.subspace_angles(np.asarray(U), left)
    assert abs(ours - np.sin(angles.max())) < 1e-9
    # a subspace is aligned with itself, and B-alignment is the same with transposes
    assert float(lt.sin_largest_angle(U, U)) < 1e-12
    assert abs(float(lt.align_B(A.T, U)) - ours) < 1e-12


def test_product_singular_values_stable_rank_balance():
    kA, kB = jax.random.split(jax.random.key(0))
    A = jax.random.normal(kA, (30, 4), jnp.float64)
    B = jax.random.normal(kB, (4, 20), jnp.float64)
    np.testing.assert_allclose(
        lt.product_singular_values(A, B), np.linalg.svd(np.asarray(A @ B), compute_uv=False)[:4], rtol=1e-10
    )
    s = np.linalg.svd(np.asarray(A), compute_uv=False)
    np.testing.assert_allclose(lt.stable_rank(A), np.sum(s**2) / s[0] ** 2, rtol=1e-12)
    np.testing.assert_allclose(lt.balance(A, B), np.linalg.norm(A.T @ A - B @ B.T), rtol=1e-12)


def test_fit_linear_rate_recovers_a_geometric_decay():
    steps = jnp.arange(0, 400, 5)
    plateau = jnp.where(steps < 100, 1.0, 0.9 ** (steps - 100).astype(jnp.float64))
    risk = jnp.maximum(plateau, 1e-20)  # plateau, then linear, then a floor
    rate = float(lt.fit_linear_rate(steps, risk))
    assert abs(rate - 0.9) < 1e-10


def test_fit_linear_rate_is_nan_without_a_linear_phase():
    steps = jnp.arange(10)
    assert np.isnan(float(lt.fit_linear_rate(steps, jnp.ones(10, jnp.float64))))


@settings(max_examples=6)
@given(
    n=st.sampled_from([8, 12]),
    p=st.sampled_from([1, 2]),
    extra=st.sampled_from([0, 3]),
    seed=st.integers(0, 10_000),
)
def test_span_contains_against_scipy_and_when_A_contains_the_reference(n, p, extra, seed):
    """||(I - P_A) U||_2 over A's whole range: 0 if span(A) contains span(U), scipy's angle otherwise,
    a rank-deficient A by its range, and 1 for A = 0."""
    kU, kA, kmix = jax.random.split(jax.random.key(seed), 3)
    U = lt.haar_orthonormal(kU, n, p, jnp.float64)
    r = p + extra + 1
    A = jax.random.normal(kA, (n, r), jnp.float64)
    angles = scipy.linalg.subspace_angles(np.asarray(U), np.asarray(A))
    assert abs(float(lt.metrics.span_contains(A, U)) - np.sin(angles.max())) < 1e-9
    inside = jnp.concatenate([U, A[:, : r - p]], axis=1) @ jax.random.normal(kmix, (r, r), jnp.float64)
    assert float(lt.metrics.span_contains(inside, U)) < 1e-7
    deficient = jnp.concatenate([inside, inside[:, :1] * 2.0], axis=1)  # a repeated direction
    assert float(lt.metrics.span_contains(deficient, U)) < 1e-7
    assert abs(float(lt.metrics.span_contains(jnp.zeros((n, r)), U)) - 1.0) < 1e-12
    refs = (U, lt.haar_orthonormal(kmix, n, p, jnp.float64))
    many = lt.metrics.align_A_many(A, refs)
    np.testing.assert_allclose(many, [lt.align_A(A, ref) for ref in refs], atol=1e-12)
