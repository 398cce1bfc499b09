"""The hand-written kernels of lora_theory._linalg against NumPy / SciPy.

Odd and even sizes, repeated eigenvalues (ties), the zero matrix, rank-deficient matrices, and
nested vmap (the engine's seeds x grid batching), for both kernels and both sides of each
size dispatch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from lora_theory import _linalg


def _psd(key, n, rank):
    X = jax.random.normal(key, (n, rank), jnp.float64)
    return X @ X.T


def _check_eigh(M, w, V):
    M, w, V = map(np.asarray, (M, w, V))
    scale = max(np.abs(M).max(), 1e-300)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(M), atol=1e-13 * scale)
    assert np.all(np.diff(w) >= -1e-13 * scale)  # ascending
    np.testing.assert_allclose(V.T @ V, np.eye(M.shape[0]), atol=1e-13)
    np.testing.assert_allclose(V @ np.diag(w) @ V.T, M, atol=1e-13 * scale)


@given(n=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8]), rank=st.sampled_from([0, 1, 2, 8]), seed=st.integers(0, 1000))
def test_jacobi_eigh_matches_numpy_including_rank_deficient_and_zero(n, rank, seed):
    M = _psd(jax.random.key(seed), n, min(rank, n)) if rank else jnp.zeros((n, n), jnp.float64)
    _check_eigh(M, *_linalg.jacobi_eigh(M))


@pytest.mark.parametrize("n", [3, 4, 6])
def test_jacobi_eigh_ties_and_indefinite(n):
    Q = np.linalg.qr(np.asarray(jax.random.normal(jax.random.key(n), (n, n), jnp.float64)))[0]
    w = np.array([2.0, 2.0, -1.0, 5.0, 5.0, 0.0][:n])
    M = jnp.asarray(Q @ np.diag(w) @ Q.T)
    _check_eigh(M, *_linalg.jacobi_eigh(M))
    _check_eigh(jnp.eye(n, dtype=jnp.float64), *_linalg.jacobi_eigh(jnp.eye(n, dtype=jnp.float64)))


@pytest.mark.parametrize("n", [4, 8])  # both sides of the dispatch (Jacobi up to JACOBI_MAX_N)
def test_eigh_dispatch_under_nested_vmap_equals_one_by_one(n):
    keys = jax.random.split(jax.random.key(0), 6).reshape(2, 3)
    Ms = jax.vmap(jax.vmap(lambda k: _psd(k, n, 3)))(keys)
    w, V = jax.jit(jax.vmap(jax.vmap(_linalg.eigh)))(Ms)
    for i in range(2):
        for j in range(3):
            _check_eigh(Ms[i, j], w[i, j], V[i, j])
            w1, _ = _linalg.eigh(Ms[i, j])
            np.testing.assert_allclose(w[i, j], w1, atol=1e-13 * float(jnp.abs(Ms[i, j]).max()))


@given(n=st.sampled_from([1, 2, 3, 5, 8, 13]), m=st.sampled_from([1, 4]), seed=st.integers(0, 1000))
def test_spd_solve_matches_scipy(n, m, seed):
    kM, kR = jax.random.split(jax.random.key(seed))
    M = _psd(kM, n, n + 2) + 1e-3 * jnp.eye(n, dtype=jnp.float64)
    rhs = jax.random.normal(kR, (n, m), jnp.float64)
    expected = scipy.linalg.cho_solve(scipy.linalg.cho_factor(np.asarray(M)), np.asarray(rhs))
    for solve in (_linalg.cholesky_solve, _linalg.spd_solve):
        np.testing.assert_allclose(solve(M, rhs), expected, rtol=1e-9, atol=1e-12)


def test_spd_solve_nested_vmap_and_singular_gives_nan():
    keys = jax.random.split(jax.random.key(1), 4).reshape(2, 2)
    Ms = jax.vmap(jax.vmap(lambda k: _psd(k, 5, 7)))(keys)
    rhs = jnp.ones((5, 3), jnp.float64)
    X = jax.vmap(jax.vmap(_linalg.cholesky_solve, in_axes=(0, None)), in_axes=(0, None))(Ms, rhs)
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(Ms[i, j] @ X[i, j], rhs, atol=1e-9)
    singular = _psd(jax.random.key(2), 5, 2)  # rank 2 < 5: a zero pivot
    assert not bool(jnp.all(jnp.isfinite(_linalg.cholesky_solve(singular, rhs))))
