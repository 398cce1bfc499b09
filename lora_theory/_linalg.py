"""Small dense linear algebra that beats ``jnp.linalg`` at LoRA's sizes (private).

Two hand-written kernels survive, each because it measurably beats the LAPACK call of
``jnp.linalg`` / ``jax.scipy.linalg`` on this stack (jax 0.12, 2-core x86 CPU, float64, a vmapped
batch of 500 runs; ``benchmarks/kernels.py`` prints the table, ``benchmarks/NOTES.md`` has it):

* :func:`jacobi_eigh`, cyclic Jacobi with a parallel ordering: for n <= 6 (the r_star x r_star
  angle matrices of the alignment metrics) 0.3-2.3 us per matrix against LAPACK's 0.5-3.2 us;
  from n = 8 LAPACK wins (4.9 against 7.9 us), so :func:`eigh` dispatches on n;
* :func:`cholesky_solve`, Cholesky and two substitutions unrolled in n: for the r x r solves of
  precgd (r <= 8: 0.2-1.1 us against LAPACK's 0.6-1.8 us); at n = 12 LAPACK wins (3.2 against
  3.6 us), so :func:`spd_solve` dispatches on n (unrolled up to n = 10).

Both vectorise over a vmapped batch: :func:`_batch_last` moves every batch axis to the end, so each
elementwise operation runs over the whole batch at full vector width, where LAPACK is called once
per matrix.  The Householder QR and one-sided Jacobi SVD kernels of earlier versions lost to
LAPACK on this stack (28 against 3.3 us for the R factor of a 100 x 8 matrix) and were removed.

(History: they were first written to keep LAPACK out of vmapped code, because jaxlib 0.10.0-0.11.0
could deadlock on batched CPU LAPACK calls; the project now requires jax >= 0.11.2.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.scipy.linalg import cho_factor, cho_solve
from jaxtyping import Array, Float

__all__ = ["eigh", "spd_solve", "jacobi_eigh", "cholesky_solve", "JACOBI_MAX_N", "UNROLLED_SOLVE_MAX_N"]

#: largest n for which :func:`eigh` uses Jacobi (measured crossover: LAPACK wins from n = 8).
JACOBI_MAX_N = 6
#: largest n for which :func:`spd_solve` uses the unrolled Cholesky (it wins at 8, LAPACK at 12).
UNROLLED_SOLVE_MAX_N = 10

_MAX_SWEEPS = 40


def _batch_last(kernel):
    """A function of unbatched arrays that, under (nested) ``vmap``, calls ``kernel`` once with
    every batch axis flattened into one trailing axis.

    The kernel is called through ``jax.jit``, so it is traced once per shape and dtype instead of
    at every call site and vmap level: an unrolled Jacobi sweep takes about 0.1 s to trace, and
    the default metrics traced it 16 times per program, now 9 (the flattened batch grows at each
    vmap level, so each level is one shape).  XLA inlines jit's call: the results are bit for bit
    those of the direct call (``tests/test_practical.py``'s references)."""
    traced = jax.jit(kernel)

    def build(n_batch: int):
        @custom_vmap
        def f(*args):
            if n_batch == 0:
                out = traced(*(a[..., None] for a in args))
                return jax.tree.map(lambda o: o[..., 0], out)
            batch_shape = args[0].shape[args[0].ndim - n_batch :]
            flat = [a.reshape(a.shape[: a.ndim - n_batch] + (-1,)) for a in args]
            out = traced(*flat)
            return jax.tree.map(lambda o: o.reshape(o.shape[:-1] + batch_shape), out)

        @f.def_vmap
        def rule(axis_size, in_batched, *args):
            moved = [
                jnp.moveaxis(a, 0, -1) if batched else jnp.broadcast_to(a[..., None], a.shape + (axis_size,))
                for a, batched in zip(args, in_batched, strict=True)
            ]
            out = build(n_batch + 1)(*moved)
            return jax.tree.map(lambda o: jnp.moveaxis(o, -1, 0), out), jax.tree.map(lambda _: True, out)

        return f

    base = build(0)
    return functools.wraps(kernel)(lambda *args: base(*args))


@functools.cache
def _tournament(n: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """Round-robin pairings of n (even) indices: (p, q, inverse permutation) per round.

    Every round pairs all n indices into n/2 disjoint pairs (p < q), so the n/2 rotations of a
    round commute and are applied at once; n - 1 rounds visit every pair once (one sweep).
    """
    players = list(range(n))
    rounds = []
    for _ in range(n - 1):
        pairs = [(players[i], players[n - 1 - i]) for i in range(n // 2)]
        p = np.asarray([min(a, b) for a, b in pairs])
        q = np.asarray([max(a, b) for a, b in pairs])
        rounds.append((p, q, np.argsort(np.concatenate([p, q]))))
        players = [players[0], players[-1], *players[1:-1]]
    return tuple(rounds)


def _rotation(app, aqq, apq, active):
    """(c, s) of the Jacobi rotation that zeroes apq (Golub & Van Loan, sym.schur2); identity
    where apq = 0 or the entry is not active."""
    nonzero = (apq != 0) & active
    tau = (aqq - app) / (2.0 * jnp.where(nonzero, apq, 1.0))
    t = jnp.where(tau >= 0, 1.0, -1.0) / (jnp.abs(tau) + jnp.sqrt(1.0 + tau * tau))
    c = 1.0 / jnp.sqrt(1.0 + t * t)
    return jnp.where(nonzero, c, 1.0), jnp.where(nonzero, t * c, 0.0)


def _rotate_cols(M, p, q, inverse, c, s):
    """M J for the round's rotations (columns p, q of an n x n x batch array)."""
    Mp, Mq = M[:, p], M[:, q]
    return jnp.concatenate([Mp * c - Mq * s, Mp * s + Mq * c], axis=1)[:, inverse]


def _pad_even(M):
    if M.shape[0] % 2 == 0:
        return M
    return jnp.pad(M, ((0, 1), (0, 1), (0, 0)))


def _significant(app, aqq, apq, tol):
    """Rotate (p, q) only where |a_pq| > tol sqrt(|a_pp a_qq|): the relative criterion of
    Demmel & Veselic, which gives high relative accuracy for positive semidefinite matrices."""
    return jnp.abs(apq) > tol * jnp.sqrt(jnp.abs(app * aqq))


def _eigh_kernel(M):
    n0 = M.shape[0]
    M = _pad_even(M)
    n, batch = M.shape[0], M.shape[-1]
    tol = n * jnp.finfo(M.dtype).eps
    idx = np.arange(n)

    def sweep(carry):
        M, V, count, _ = carry
        rotated_any = jnp.zeros(batch, bool)
        for p, q, inverse in _tournament(n):
            app, aqq, apq = M[p, p], M[q, q], M[p, q]
            rotate = _significant(app, aqq, apq, tol)
            rotated_any = rotated_any | jnp.any(rotate, axis=0)
            c, s = _rotation(app, aqq, apq, rotate)
            Mp, Mq = M[p], M[q]
            M = jnp.concatenate([c[:, None] * Mp - s[:, None] * Mq, s[:, None] * Mp + c[:, None] * Mq])[inverse]
            M = _rotate_cols(M, p, q, inverse, c, s)
            # zero in exact arithmetic: set it (as Jacobi codes do), so the sweeps converge
            M = M.at[p, q].set(jnp.where(rotate, 0.0, M[p, q])).at[q, p].set(jnp.where(rotate, 0.0, M[q, p]))
            V = _rotate_cols(V, p, q, inverse, c, s)
        return M, V, count + 1, ~jnp.any(rotated_any)

    V = jnp.broadcast_to(jnp.eye(n, dtype=M.dtype)[:, :, None], (n, n, batch))
    M, V, _, _ = lax.while_loop(lambda c: (c[2] < _MAX_SWEEPS) & ~c[3], sweep, (M, V, jnp.int32(0), False))
    w = M[idx[:n0], idx[:n0]]
    V = V[:n0, :n0]
    order = jnp.argsort(w, axis=0, stable=True)
    return jnp.take_along_axis(w, order, axis=0), jnp.take_along_axis(V, order[None], axis=1)


def _spd_solve_kernel(M, rhs):
    n = M.shape[0]
    S = M
    cols = []
    for j in range(n):  # right-looking Cholesky, L column by column
        col = S[j:, j] / jnp.sqrt(S[j, j])
        cols.append(col)
        if j + 1 < n:
            S = S.at[j + 1 :, j + 1 :].add(-col[1:, None] * col[None, 1:])

    def L(i, j):  # entry (i, j) of the factor, i >= j
        return cols[j][i - j]

    Y: list[Array] = []
    for j in range(n):  # L Y = rhs
        acc = rhs[j]
        for i in range(j):
            acc = acc - L(j, i) * Y[i]
        Y.append(acc / L(j, j))
    X: dict[int, Array] = {}
    for j in reversed(range(n)):  # L^T X = Y
        acc = Y[j]
        for i in range(j + 1, n):
            acc = acc - L(i, j) * X[i]
        X[j] = acc / L(j, j)
    return jnp.stack([X[j] for j in range(n)])


@_batch_last
def jacobi_eigh(M: Float[Array, "n n"]) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    return _eigh_kernel(M)


jacobi_eigh.__doc__ = """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, by cyclic Jacobi.

Parallel (round-robin) ordering; a pair is rotated only while ``|a_pq| > n eps sqrt(|a_pp a_qq|)``
(the relative criterion: high relative accuracy for positive semidefinite matrices), and the
sweeps stop when none is (or after 40).  A converged matrix is thus never rotated again, so a
run's result does not depend on the other runs of a vmapped batch.  Same conventions as
``jnp.linalg.eigh``: ``M = V diag(w) V^T``, w ascending.
"""


@_batch_last
def cholesky_solve(M: Float[Array, "n n"], rhs: Float[Array, "n m"]) -> Float[Array, "n m"]:
    return _spd_solve_kernel(M, rhs)


cholesky_solve.__doc__ = """Solve M X = rhs for a small symmetric positive definite M: Cholesky, two substitutions.

Never forms an inverse.  A zero or negative pivot (M singular or not positive definite) gives
NaN or Inf, as a failed ``jnp.linalg.cholesky`` does; the engine reports it as divergence.
"""


def eigh(M: Float[Array, "n n"]) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix: M = V diag(w) V^T.

    Jacobi (:func:`jacobi_eigh`) for n <= ``JACOBI_MAX_N``, ``jnp.linalg.eigh`` above (the faster
    of the two at each size on this stack).  Same conventions as ``jnp.linalg.eigh``.
    """
    if M.shape[-1] <= JACOBI_MAX_N:
        return jacobi_eigh(M)
    return jnp.linalg.eigh(M, symmetrize_input=False)


def spd_solve(M: Float[Array, "n n"], rhs: Float[Array, "n m"]) -> Float[Array, "n m"]:
    """Solve M X = rhs for symmetric positive definite M by Cholesky (never an inverse).

    Unrolled (:func:`cholesky_solve`) for n <= ``UNROLLED_SOLVE_MAX_N``, LAPACK's
    ``cho_factor``/``cho_solve`` above.  A singular or indefinite M gives NaN or Inf in both (the
    engine reports it as divergence).
    """
    if M.shape[-1] <= UNROLLED_SOLVE_MAX_N:
        return cholesky_solve(M, rhs)
    return cho_solve(cho_factor(M), rhs)
