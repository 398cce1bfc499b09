"""Metrics of a LoRA trajectory: risk, subspace alignment, spectra, balance, fitted linear rate.

Everything here is a pure function of arrays and is evaluated inside the compiled training loop
every ``log_every`` steps.  The alignment metrics work from r x r Gram matrices, never from an SVD
of a d x k matrix.

**No LAPACK inside the loop.**  The small decompositions (r x r symmetric eigenproblems, the R
factor of a thin QR, singular values of an r x r matrix, Cholesky solves for precgd) are written
here in plain ``jax.numpy`` (cyclic Jacobi with a parallel ordering, Householder QR, Cholesky
with substitution), not with ``jnp.linalg``.  Two reasons:

* with jaxlib 0.10.2 on CPU, *batched* LAPACK custom calls (``jnp.linalg.eigh``/``qr``/``svd``/
  ``cholesky`` under ``vmap``) split their batch over XLA's intra-op thread pool and wait for it;
  when two of them run concurrently (independent ops in one program), every pool thread can end
  up waiting and the program never returns (seen at 80+ seeds x 5 alphas on a 2-core machine:
  all threads idle in ``jax::ParallelBatchMap``);
* LAPACK called per 8 x 8 matrix is overhead-bound, while these loops vectorise over the batch
  of runs and fuse with the surrounding arithmetic.

Jacobi is accurate to rounding (it is the most accurate symmetric eigensolver), so the metrics
agree with the LAPACK-based formulas to float64 rounding (``tests/test_metrics.py`` checks them
against NumPy/SciPy).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jaxtyping import Array, Float

__all__ = [
    "sin_largest_angle",
    "top_left_subspace",
    "top_right_subspace",
    "align_A",
    "align_B",
    "product_singular_values",
    "stable_rank",
    "balance",
    "trajectory_metrics",
    "fit_linear_rate",
    "METRIC_NAMES",
    "sym_eigh",
    "small_singular_values",
    "householder_r",
    "spd_solve",
]

METRIC_NAMES = (
    "loss",
    "risk",
    "rel_err",
    "align_A_G",
    "align_B_G",
    "align_A_dW",
    "align_B_dW",
    "norm_A",
    "norm_B",
    "balance",
    "stable_rank_A",
)

# ---------------------------------------------------------------------------------------------
# small dense linear algebra in plain jax.numpy (vmap-friendly, no LAPACK custom calls)
# ---------------------------------------------------------------------------------------------
#
# Each kernel below works on a batch held in the *last* axis (n x n x batch), so that every
# elementwise operation runs over the whole batch with full vector width; the loops over
# rotations / columns are unrolled (n = the LoRA rank is small and static).  ``_batch_last``
# wraps a kernel with ``jax.custom_batching.custom_vmap`` so that ``vmap`` (nested: seeds x
# grid) moves its batch axes to the end instead of tracing the kernel per element.

_MAX_SWEEPS = 40


def _batch_last(kernel):
    """A function of unbatched arrays that, under (nested) ``vmap``, calls ``kernel`` once with
    every batch axis flattened into one trailing axis."""

    def build(n_batch: int):
        @custom_vmap
        def f(*args):
            if n_batch == 0:
                out = kernel(*(a[..., None] for a in args))
                return jax.tree.map(lambda o: o[..., 0], out)
            batch_shape = args[0].shape[args[0].ndim - n_batch :]
            flat = [a.reshape(a.shape[: a.ndim - n_batch] + (-1,)) for a in args]
            out = kernel(*flat)
            return jax.tree.map(lambda o: o.reshape(o.shape[:-1] + batch_shape), out)

        @f.def_vmap
        def rule(axis_size, in_batched, *args):
            moved = [
                jnp.moveaxis(a, 0, -1) if batched else jnp.broadcast_to(a[..., None], a.shape + (axis_size,))
                for a, batched in zip(args, in_batched)
            ]
            out = build(n_batch + 1)(*moved)
            return jax.tree.map(lambda o: jnp.moveaxis(o, -1, 0), out), jax.tree.map(lambda _: True, out)

        return f

    base = build(0)
    return functools.wraps(kernel)(lambda *args: base(*args))


@functools.lru_cache(maxsize=None)
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


def _singular_values_kernel(M):
    n0 = M.shape[1]
    M = _pad_even(M)
    n, batch = M.shape[0], M.shape[-1]
    tol = n * jnp.finfo(M.dtype).eps

    def sweep(carry):
        M, count, _ = carry
        rotated_any = jnp.zeros(batch, bool)
        for p, q, inverse in _tournament(n):
            Mp, Mq = M[:, p], M[:, q]
            alpha, beta, gamma = jnp.sum(Mp * Mp, 0), jnp.sum(Mq * Mq, 0), jnp.sum(Mp * Mq, 0)
            rotate = _significant(alpha, beta, gamma, tol)
            rotated_any = rotated_any | jnp.any(rotate, axis=0)
            c, s = _rotation(alpha, beta, gamma, rotate)
            M = jnp.concatenate([Mp * c - Mq * s, Mp * s + Mq * c], axis=1)[:, inverse]
        return M, count + 1, ~jnp.any(rotated_any)

    M, _, _ = lax.while_loop(lambda c: (c[1] < _MAX_SWEEPS) & ~c[2], sweep, (M, jnp.int32(0), False))
    norms = jnp.sqrt(jnp.sum(M * M, axis=0))[:n0]
    return -jnp.sort(-norms, axis=0)


def _householder_r_kernel(A):
    """Column-oriented Householder: the trailing columns are separate (rows >= j) arrays, so no
    step copies the whole matrix."""
    m, n = A.shape[0], A.shape[1]
    cols = [A[:, c] for c in range(n)]  # the not-yet-final part (rows >= j) of each column
    R = [[None] * n for _ in range(n)]
    for j in range(n):
        x = cols[j]
        alpha = x[0]
        xnorm = jnp.sqrt(jnp.sum(x[1:] ** 2, axis=0))
        beta = jnp.where(alpha >= 0, -1.0, 1.0) * jnp.hypot(alpha, xnorm)
        reflect = xnorm > 0
        tail = x[1:] / jnp.where(reflect, alpha - beta, 1.0)
        tau = jnp.where(reflect, (beta - alpha) / jnp.where(reflect, beta, 1.0), 0.0)
        R[j][j] = jnp.where(reflect, beta, alpha)
        for c in range(j + 1, n):
            y = cols[c]
            w = tau * (y[0] + jnp.sum(tail * y[1:], axis=0))  # tau v^T y, v = (1, tail)
            R[j][c] = y[0] - w
            cols[c] = y[1:] - tail * w
    zero = jnp.zeros_like(R[0][0])
    return jnp.stack([jnp.stack([R[i][c] if c >= i else zero for c in range(n)]) for i in range(n)])


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

    Y = []
    for j in range(n):  # L Y = rhs
        acc = rhs[j]
        for i in range(j):
            acc = acc - L(j, i) * Y[i]
        Y.append(acc / L(j, j))
    X = [None] * n
    for j in reversed(range(n)):  # L^T X = Y
        acc = Y[j]
        for i in range(j + 1, n):
            acc = acc - L(i, j) * X[i]
        X[j] = acc / L(j, j)
    return jnp.stack(X)


@_batch_last
def sym_eigh(M: Float[Array, "n n"]) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    return _eigh_kernel(M)


sym_eigh.__doc__ = """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, by cyclic Jacobi.

Parallel (round-robin) ordering; a pair is rotated only while ``|a_pq| > n eps sqrt(|a_pp a_qq|)``
(the relative criterion: high relative accuracy for positive semidefinite matrices), and the
sweeps stop when none is (or after 40).  A converged matrix is thus never rotated again, so a
run's result does not depend on the other runs of a vmapped batch.  Same conventions as
``jnp.linalg.eigh``: ``M = V diag(w) V^T``, w ascending.
"""


@_batch_last
def small_singular_values(M: Float[Array, "n n"]) -> Float[Array, " n"]:
    return _singular_values_kernel(M)


small_singular_values.__doc__ = """Singular values (descending) of a small square matrix, by one-sided Jacobi (Hestenes).

Rotates pairs of columns until they are orthogonal to rounding (``|m_p . m_q| <= n eps ||m_p||
||m_q||``); the singular values are then the column norms, accurate to rounding relative to ||M||
(tiny ones included, unlike square roots of Gram eigenvalues).
"""


@_batch_last
def householder_r(A: Float[Array, "m n"]) -> Float[Array, "n n"]:
    return _householder_r_kernel(A)


householder_r.__doc__ = """The R factor (n x n, upper triangular) of a thin Householder QR of A (m >= n).

LAPACK's conventions (``dgeqrf``): R_jj = -sign(x_j) ||x||, no reflection when the part below the
diagonal is already zero.  Only orthogonal transformations touch A, so R is accurate to rounding
relative to ||A||, also when A is rank deficient.
"""


@_batch_last
def spd_solve(M: Float[Array, "n n"], rhs: Float[Array, "n m"]) -> Float[Array, "n m"]:
    return _spd_solve_kernel(M, rhs)


spd_solve.__doc__ = """Solve M X = rhs for a small symmetric positive definite M: Cholesky, two substitutions.

Never forms an inverse.  A zero or negative pivot (M singular or not positive definite) gives
NaN or Inf, as a failed ``jnp.linalg.cholesky`` does; the engine reports it as divergence.
"""


# ---------------------------------------------------------------------------------------------
# subspaces and angles
# ---------------------------------------------------------------------------------------------


def _largest_eigenvalue(gram: Float[Array, "m m"]) -> Float[Array, ""]:
    return sym_eigh(gram)[0][-1]


def sin_largest_angle(U: Float[Array, "n p"], V: Float[Array, "n q"]) -> Float[Array, ""]:
    """sin of the largest principal angle between span(V) and span(U): ||(I - U U^T) V||_2.

    Both arguments must have orthonormal columns.  This is ||U_perp^T V||_2, the quantity of
    LoRA-One Thm 3.2.  It is computed from the residual directly (not as sqrt(1 - cos^2)), so it
    is accurate down to rounding, e.g. ~1e-16 in float64 for identical subspaces.
    """
    residual = V - U @ (U.T @ V)
    return jnp.sqrt(jnp.maximum(_largest_eigenvalue(residual.T @ residual), 0.0))


def _top_eigenvectors(w: Float[Array, " r"], V: Float[Array, "r r"], m: int) -> Float[Array, "r m"]:
    """The eigenvectors of the min(m, r) largest eigenvalues (w ascending, as from sym_eigh)."""
    return V[:, ::-1][:, : min(m, V.shape[-1])]


def _angle_gram(AV: Float[Array, "d m"], reference: Float[Array, "d p"]) -> Float[Array, "m m"]:
    """P^T (I - U U^T) P for P = AV / s, the orthonormal basis of span(AV).

    The columns of AV = A V_m are orthogonal with norms s_1..s_m (A's top singular values).  The
    residual (I - U U^T) AV is formed directly (accurate for tiny angles) and normalised on the
    m x m level; its largest eigenvalue is sin^2 of the largest principal angle.  A zero column
    (the factor has rank < m, e.g. B_0 = 0) makes the subspace undefined: NaN.
    """
    residual = AV - reference @ (reference.T @ AV)
    inv_norms = 1.0 / jnp.sqrt(jnp.sum(AV * AV, axis=0))
    return (residual.T @ residual) * inv_norms[:, None] * inv_norms[None, :]


def _sin_from_gram(gram):
    return jnp.sqrt(jnp.maximum(_largest_eigenvalue(gram), 0.0))


def top_left_subspace(A: Float[Array, "d r"], m: int) -> Float[Array, "d m"]:
    """Orthonormal basis of the top-m left singular subspace of A (d x r, r >= m).

    From the r x r Gram matrix: A^T A = V S^2 V^T; the top-m left singular vectors are A V_m / s
    (NaN columns where s = 0: the subspace is then undefined).
    """
    AV = A @ _top_eigenvectors(*sym_eigh(A.T @ A), m)
    return AV / jnp.sqrt(jnp.sum(AV * AV, axis=0))


def top_right_subspace(B: Float[Array, "r k"], m: int) -> Float[Array, "k m"]:
    """Orthonormal basis (k x m) of the top-m right singular subspace of B (r x k)."""
    return top_left_subspace(B.T, m)


def align_A(A: Float[Array, "d r"], reference_left: Float[Array, "d m"]) -> Float[Array, ""]:
    """||U_{ref,perp}^T U_{A,m}||_2: sin of the largest angle between A's top-m left subspace and the reference's.

    LoRA-One Thm 3.2's alignment (its eq. for ||U_{G,perp}^T U_{A_t}||).  m = min(reference
    columns, r).  NaN when A has rank < m (its top subspace is undefined).  When A's m-th and
    (m+1)-th singular values are equal (e.g. ``lora_ga`` or ``lora_one`` orthonormal at step 0,
    where all r are equal and r > m) "the top-m subspace" is not unique and the value depends on
    which m of the tied directions the eigensolver returns: read it only once the spectrum has
    separated.

    Args:
        A: the d x r factor.
        reference_left: d x m orthonormal columns (e.g. ``problem.G_left``).

    Returns:
        sin of the largest principal angle, in [0, 1].
    """
    AV = A @ _top_eigenvectors(*sym_eigh(A.T @ A), reference_left.shape[1])
    return _sin_from_gram(_angle_gram(AV, reference_left))


def align_B(B: Float[Array, "r k"], reference_right: Float[Array, "k m"]) -> Float[Array, ""]:
    """||V_{ref,perp}^T V_{B,m}||_2 for the right singular subspace of B (NaN when B has rank < m, e.g. B = 0)."""
    return align_A(B.T, reference_right)


def _pad_rows(M, rows):
    return M if M.shape[0] == rows else jnp.pad(M, ((0, rows - M.shape[0]), (0, 0)))


def product_singular_values(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, " r"]:
    """The r singular values of A B, from thin QRs: A = Q_A R_A, B^T = Q_B R_B, sv(A B) = sv(R_A R_B^T).

    Householder R factors (one call for both factors: zero rows do not change an R factor) and a
    one-sided Jacobi SVD of the r x r product: accurate to rounding relative to ||A|| ||B||, tiny
    singular values included.
    """
    rows = max(A.shape[0], B.shape[1])
    R = jax.vmap(householder_r)(jnp.stack([_pad_rows(A, rows), _pad_rows(B.T, rows)]))
    return small_singular_values(R[0] @ R[1].T)


def stable_rank(A: Float[Array, "d r"]) -> Float[Array, ""]:
    """||A||_F^2 / ||A||_2^2 (from the r x r Gram matrix)."""
    eig = sym_eigh(A.T @ A)[0]
    return jnp.sum(eig) / eig[-1]


def balance(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, ""]:
    """||A^T A - B B^T||_F, conserved by gradient flow on the factors."""
    return jnp.linalg.norm(A.T @ A - B @ B.T)


def trajectory_metrics(problem, objective, A, B) -> dict[str, Array]:
    """All logged metrics of the SPEC at one step.

    ``risk = ||D - dW||_F^2 / 2`` and ``rel_err = ||D - dW||_F / ||dW||_F`` use the total update
    D = A B + offset (for the offset inits, lora_ga and lora_one 'orthonormal', the model is
    W0 + A B - A_0 B_0).  ``sv_AB`` are the singular values of the LoRA product A B itself.

    The small decompositions are shared and batched: one Jacobi call for the two r x r Gram
    matrices (A^T A serves both A-alignments and the stable rank, B B^T both B-alignments), one
    for the four m x m angle matrices, one Householder call for both R factors.  The alignments
    are NaN while a factor has rank below r_star (e.g. B_0 = 0 for ``random``): its top subspace
    is undefined there.
    """
    D = A @ B + objective.offset.dense()
    err = D - problem.dW
    risk = 0.5 * jnp.sum(err**2)
    gram_A = A.T @ A
    gram_B = B @ B.T
    w, V = jax.vmap(sym_eigh)(jnp.stack([gram_A, gram_B]))
    AV = A @ _top_eigenvectors(w[0], V[0], problem.G_left.shape[1])
    BV = B.T @ _top_eigenvectors(w[1], V[1], problem.G_right.shape[1])
    angles = jax.vmap(lambda g: sym_eigh(g)[0][-1])(
        jnp.stack(
            [
                _angle_gram(AV, problem.G_left),
                _angle_gram(BV, problem.G_right),
                _angle_gram(AV, problem.dW_left),
                _angle_gram(BV, problem.dW_right),
            ]
        )
    )
    sines = jnp.sqrt(jnp.maximum(angles, 0.0))
    metrics = {
        "loss": objective.loss(A, B),
        "risk": risk,
        "rel_err": jnp.sqrt(2.0 * risk) / jnp.linalg.norm(problem.dW),
        "align_A_G": sines[0],
        "align_B_G": sines[1],
        "align_A_dW": sines[2],
        "align_B_dW": sines[3],
        "norm_A": jnp.linalg.norm(A),
        "norm_B": jnp.linalg.norm(B),
        "balance": jnp.linalg.norm(gram_A - gram_B),
        "stable_rank_A": jnp.sum(w[0]) / w[0, -1],
        "sv_AB": product_singular_values(A, B),
    }
    metrics.update(problem.extra_metrics(A, B, objective.offset))
    return metrics


def fit_linear_rate(
    steps: Float[Array, " n"],
    risk: Float[Array, " n"],
    *,
    start_fraction: float = 0.1,
    floor_factor: float = 1e3,
    tail_fraction: float = 0.5,
) -> Float[Array, ""]:
    """Per-step linear rate rho = exp(slope of log risk) over the linear phase of one trajectory.

    The linear phase is the set of logged points with
    ``risk <= start_fraction * max(risk)`` (past the initial plateau) and
    ``risk >= max(floor_factor * min(risk), max(risk) * 1e4 eps^2)`` (above the final plateau and
    the rounding floor of the dtype).  The asymptotic rate is what the theorems state, so the fit
    uses the last ``tail_fraction`` of those points (at least 3).  A least-squares slope of
    log(risk) against the step gives log(rho); NaN if fewer than 3 points qualify.

    Args:
        steps: logged step numbers.
        risk: excess risk at those steps.

    Returns:
        rho, with risk_t ~ rho^t in the linear phase.
    """
    dtype = risk.dtype
    finite = jnp.isfinite(risk) & (risk > 0)
    safe = jnp.where(finite, risk, 1.0)
    r_max = jnp.max(jnp.where(finite, risk, 0.0))
    r_min = jnp.min(jnp.where(finite, risk, jnp.inf))
    eps = jnp.finfo(dtype).eps
    lower = jnp.maximum(floor_factor * r_min, r_max * 1e4 * eps**2)
    window = finite & (safe <= start_fraction * r_max) & (safe >= lower)
    # keep the last tail_fraction of the window (the asymptotic regime)
    count = jnp.cumsum(window[::-1])[::-1]  # number of window points at or after i
    n_window = jnp.sum(window).astype(dtype)
    n_keep = jnp.maximum(jnp.ceil(tail_fraction * n_window), 3.0).astype(count.dtype)
    mask = window & (count <= n_keep)
    w = mask.astype(dtype)
    n = jnp.sum(w)
    x = steps.astype(dtype)
    y = jnp.log(safe)
    x_mean = jnp.sum(w * x) / jnp.maximum(n, 1.0)
    y_mean = jnp.sum(w * y) / jnp.maximum(n, 1.0)
    sxx = jnp.sum(w * (x - x_mean) ** 2)
    sxy = jnp.sum(w * (x - x_mean) * (y - y_mean))
    slope = sxy / jnp.where(sxx > 0, sxx, 1.0)
    return jnp.where(n >= 3, jnp.exp(slope), jnp.nan)
