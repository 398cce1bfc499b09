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
    "cholesky_small",
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

_MAX_SWEEPS = 40


@functools.lru_cache(maxsize=None)
def _tournament(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round-robin pairings of n (even) indices: (p, q, inverse permutation) per round.

    Every round pairs all n indices into n/2 disjoint pairs (p < q), so the n/2 rotations of a
    round commute and are applied at once; n - 1 rounds visit every pair once (one sweep).
    """
    players = list(range(n))
    ps, qs = [], []
    for _ in range(n - 1):
        pairs = [(players[i], players[n - 1 - i]) for i in range(n // 2)]
        ps.append([min(a, b) for a, b in pairs])
        qs.append([max(a, b) for a, b in pairs])
        players = [players[0], players[-1], *players[1:-1]]
    p, q = np.asarray(ps, np.int32), np.asarray(qs, np.int32)
    inverse = np.argsort(np.concatenate([p, q], axis=1), axis=1).astype(np.int32)
    return p, q, inverse


def _rotation(app, aqq, apq, active):
    """(c, s) of the Jacobi rotation that zeroes apq (Golub & Van Loan, sym.schur2)."""
    nonzero = (apq != 0) & active
    safe = jnp.where(nonzero, apq, 1.0)
    tau = (aqq - app) / (2.0 * safe)
    t = jnp.where(tau >= 0, 1.0, -1.0) / (jnp.abs(tau) + jnp.sqrt(1.0 + tau * tau))
    c = 1.0 / jnp.sqrt(1.0 + t * t)
    return jnp.where(nonzero, c, 1.0), jnp.where(nonzero, t * c, 0.0)


def _rotate_rows(M, p, q, inverse, c, s):
    Mp, Mq = M[p, :], M[q, :]
    return jnp.concatenate([c[:, None] * Mp - s[:, None] * Mq, s[:, None] * Mp + c[:, None] * Mq])[inverse]


def _rotate_cols(M, p, q, inverse, c, s):
    Mp, Mq = M[:, p], M[:, q]
    return jnp.concatenate([Mp * c - Mq * s, Mp * s + Mq * c], axis=1)[:, inverse]


def _pad_even(M):
    n = M.shape[-1]
    if n % 2 == 0:
        return M, n
    return jnp.pad(M, ((0, 1), (0, 1))), n


def sym_eigh(M: Float[Array, "n n"]) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, by cyclic Jacobi.

    Parallel (round-robin) ordering, sweeps until every off-diagonal entry satisfies
    ``|a_pq| <= eps sqrt(|a_pp a_qq|)`` (the relative criterion, which gives high relative
    accuracy for positive semidefinite matrices) or 40 sweeps.  A converged matrix is never
    rotated again, so a run's result does not depend on the other runs of a vmapped batch.
    Same conventions as ``jnp.linalg.eigh``: ``M = V diag(w) V^T``, w ascending.
    """
    n0 = M.shape[-1]
    if n0 == 1:
        return M[0], jnp.ones_like(M)
    M, n0 = _pad_even(M)
    n = M.shape[-1]
    p_tab, q_tab, inv_tab = (jnp.asarray(x) for x in _tournament(n))
    eps = jnp.finfo(M.dtype).eps
    off = ~np.eye(n, dtype=bool)

    def converged(M):
        d = jnp.abs(jnp.diagonal(M))
        return jnp.all(jnp.where(off, jnp.abs(M) <= eps * jnp.sqrt(d[:, None] * d[None, :]), True))

    def round_(k, carry):
        M, V, active = carry
        p, q, inv = p_tab[k], q_tab[k], inv_tab[k]
        c, s = _rotation(M[p, p], M[q, q], M[p, q], active)
        M = _rotate_cols(_rotate_rows(M, p, q, inv, c, s), p, q, inv, c, s)
        return M, _rotate_cols(V, p, q, inv, c, s), active

    def sweep(carry):
        M, V, count, done = carry
        M, V, _ = lax.fori_loop(0, n - 1, round_, (M, V, ~done))
        return M, V, count + 1, converged(M)

    V = jnp.eye(n, dtype=M.dtype)
    M, V, _, _ = lax.while_loop(
        lambda c: (c[2] < _MAX_SWEEPS) & ~c[3], sweep, (M, V, jnp.int32(0), converged(M))
    )
    w = jnp.diagonal(M)[:n0]
    V = V[:n0, :n0]
    order = jnp.argsort(w, stable=True)
    return w[order], V[:, order]


def small_singular_values(M: Float[Array, "n n"]) -> Float[Array, " n"]:
    """Singular values (descending) of a small square matrix, by one-sided Jacobi (Hestenes).

    Rotates pairs of columns until they are orthogonal to rounding (``|m_p . m_q| <= eps
    ||m_p|| ||m_q||``); the singular values are then the column norms, accurate to rounding
    relative to ||M|| (tiny ones included, unlike a square root of Gram eigenvalues).
    """
    n0 = M.shape[-1]
    if n0 == 1:
        return jnp.abs(M[0])
    M, n0 = _pad_even(M)
    n = M.shape[-1]
    p_tab, q_tab, inv_tab = (jnp.asarray(x) for x in _tournament(n))
    eps = jnp.finfo(M.dtype).eps
    off = ~np.eye(n, dtype=bool)

    def converged(M):
        gram = M.T @ M
        d = jnp.diagonal(gram)
        return jnp.all(jnp.where(off, jnp.abs(gram) <= eps * jnp.sqrt(d[:, None] * d[None, :]), True))

    def round_(k, carry):
        M, active = carry
        p, q, inv = p_tab[k], q_tab[k], inv_tab[k]
        Mp, Mq = M[:, p], M[:, q]
        c, s = _rotation(jnp.sum(Mp * Mp, 0), jnp.sum(Mq * Mq, 0), jnp.sum(Mp * Mq, 0), active)
        return jnp.concatenate([Mp * c - Mq * s, Mp * s + Mq * c], axis=1)[:, inv], active

    def sweep(carry):
        M, count, done = carry
        M, _ = lax.fori_loop(0, n - 1, round_, (M, ~done))
        return M, count + 1, converged(M)

    M, _, _ = lax.while_loop(lambda c: (c[1] < _MAX_SWEEPS) & ~c[2], sweep, (M, jnp.int32(0), converged(M)))
    norms = jnp.sqrt(jnp.sum(M * M, axis=0))[:n0]
    return -jnp.sort(-norms)


def householder_r(A: Float[Array, "m n"]) -> Float[Array, "n n"]:
    """The R factor (n x n, upper triangular) of a thin Householder QR of A (m >= n).

    LAPACK's conventions (``dgeqrf``): R_jj = -sign(x_j) ||x||, no reflection when the part
    below the diagonal is already zero.  Only orthogonal transformations touch A, so R is
    accurate to rounding relative to ||A|| even when A is rank deficient.
    """
    m, n = A.shape
    rows = jnp.arange(m)[:, None]
    R = A
    for j in range(n):  # n = r is small and static
        x = R[:, j : j + 1]
        below = rows > j
        alpha = R[j, j]
        xnorm = jnp.sqrt(jnp.sum(jnp.where(below, x, 0.0) ** 2))
        norm = jnp.sqrt(alpha * alpha + xnorm * xnorm)
        beta = jnp.where(alpha >= 0, -norm, norm)
        reflect = xnorm > 0
        denom = jnp.where(reflect, alpha - beta, 1.0)
        v = jnp.where(below, x / denom, jnp.where(rows == j, 1.0, 0.0))
        tau = jnp.where(reflect, (beta - alpha) / jnp.where(reflect, beta, 1.0), 0.0)
        R = R - tau * v * (v.T @ R)
        column = jnp.where(rows == j, jnp.where(reflect, beta, alpha), jnp.where(below, 0.0, x))
        R = R.at[:, j : j + 1].set(column)
    return jnp.triu(R[:n])


def cholesky_small(M: Float[Array, "n n"]) -> Float[Array, "n n"]:
    """Lower Cholesky factor of a small symmetric positive definite matrix (NaN if it is not).

    Right-looking, one column per step.  A zero or negative pivot gives NaN or Inf entries (as a
    failed ``jnp.linalg.cholesky`` does), which the engine reports as divergence.
    """
    n = M.shape[-1]
    idx = jnp.arange(n)

    def column(j, carry):
        L, S = carry  # S: the trailing Schur complement (rows/cols >= j meaningful)
        pivot = jnp.sqrt(S[j, j])
        col = jnp.where(idx > j, S[:, j] / pivot, jnp.where(idx == j, pivot, 0.0))
        L = L.at[:, j].set(col)
        S = S - jnp.outer(col, col) * ((idx[:, None] > j) & (idx[None, :] > j))
        return L, S

    L, _ = lax.fori_loop(0, n, column, (jnp.zeros_like(M), M))
    return L


def spd_solve(M: Float[Array, "n n"], rhs: Float[Array, "n m"]) -> Float[Array, "n m"]:
    """Solve M X = rhs for symmetric positive definite M: Cholesky, then two substitutions.

    Plain ``jax.numpy`` (no LAPACK, see the module docstring); NaN if M is singular or not
    positive definite.  Never forms an inverse.
    """
    n = M.shape[-1]
    L = cholesky_small(M)
    idx = jnp.arange(n)

    def forward(j, Y):  # L Y = rhs
        row = (rhs[j] - L[j] @ jnp.where((idx < j)[:, None], Y, 0.0)) / L[j, j]
        return Y.at[j].set(row)

    def backward(i, X):  # L^T X = Y
        j = n - 1 - i
        row = (X[j] - L[:, j] @ jnp.where((idx > j)[:, None], X, 0.0)) / L[j, j]
        return X.at[j].set(row)

    Y = lax.fori_loop(0, n, forward, jnp.zeros_like(rhs))
    return lax.fori_loop(0, n, backward, Y)


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


def _gram_top(gram: Float[Array, "r r"], m: int):
    """Eigenvalues (descending) and the top-min(m, r) eigenvectors of an r x r Gram matrix."""
    w, V = sym_eigh(gram)
    m = min(m, gram.shape[-1])
    return w[::-1], V[:, ::-1][:, :m]


def _align_from_basis(AV: Float[Array, "d m"], reference: Float[Array, "d p"]) -> Float[Array, ""]:
    """sin of the largest angle between span(AV) (orthogonal, not normalised, columns) and the reference.

    The columns of AV = A V_m are orthogonal with norms s_1..s_m (A's top singular values), so
    the orthonormal basis is AV / s; the residual (I - U U^T) AV is formed directly (accurate
    for tiny angles) and normalised on the m x m level.  A zero column (the factor has rank
    < m, e.g. B_0 = 0) makes the subspace undefined: NaN.
    """
    residual = AV - reference @ (reference.T @ AV)
    inv_norms = 1.0 / jnp.sqrt(jnp.sum(AV * AV, axis=0))
    gram = (residual.T @ residual) * inv_norms[:, None] * inv_norms[None, :]
    return jnp.sqrt(jnp.maximum(_largest_eigenvalue(gram), 0.0))


def top_left_subspace(A: Float[Array, "d r"], m: int) -> Float[Array, "d m"]:
    """Orthonormal basis of the top-m left singular subspace of A (d x r, r >= m).

    From the r x r Gram matrix: A^T A = V S^2 V^T; the top-m left singular vectors are A V_m / s_m
    (NaN columns where s = 0: the subspace is then undefined).
    """
    _, V = _gram_top(A.T @ A, m)
    AV = A @ V
    return AV / jnp.sqrt(jnp.sum(AV * AV, axis=0))


def top_right_subspace(B: Float[Array, "r k"], m: int) -> Float[Array, "k m"]:
    """Orthonormal basis (k x m) of the top-m right singular subspace of B (r x k)."""
    return top_left_subspace(B.T, m)


def align_A(A: Float[Array, "d r"], reference_left: Float[Array, "d m"]) -> Float[Array, ""]:
    """||U_{ref,perp}^T U_{A,m}||_2: sin of the largest angle between A's top-m left subspace and the reference's.

    m = min(reference columns, r).  NaN when A has rank < m (the subspace is undefined).
    """
    _, V = _gram_top(A.T @ A, reference_left.shape[1])
    return _align_from_basis(A @ V, reference_left)


def align_B(B: Float[Array, "r k"], reference_right: Float[Array, "k m"]) -> Float[Array, ""]:
    """||V_{ref,perp}^T V_{B,m}||_2 for the right singular subspace of B (NaN when B has rank < m, e.g. B = 0)."""
    return align_A(B.T, reference_right)


def product_singular_values(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, " r"]:
    """The r singular values of A B, from thin QRs: A = Q_A R_A, B^T = Q_B R_B, sv(A B) = sv(R_A R_B^T).

    Householder R factors and a one-sided Jacobi SVD of the r x r product: accurate to rounding
    relative to ||A|| ||B||, tiny singular values included.
    """
    return small_singular_values(householder_r(A) @ householder_r(B.T).T)


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

    The decompositions are shared: one r x r eigenproblem per factor serves both alignments
    (against G and against dW) and the stable rank.  The alignments are NaN while a factor has
    rank below r_star (e.g. B_0 = 0 for ``random``), where its top subspace is undefined.
    """
    D = A @ B + objective.offset.dense()
    err = D - problem.dW
    risk = 0.5 * jnp.sum(err**2)
    gram_A = A.T @ A
    gram_B = B @ B.T
    m = problem.G_left.shape[1]
    eig_A, V_A = _gram_top(gram_A, m)
    _, V_B = _gram_top(gram_B, problem.G_right.shape[1])
    AV = A @ V_A
    BV = B.T @ V_B
    metrics = {
        "loss": objective.loss(A, B),
        "risk": risk,
        "rel_err": jnp.sqrt(2.0 * risk) / jnp.linalg.norm(problem.dW),
        "align_A_G": _align_from_basis(AV, problem.G_left),
        "align_B_G": _align_from_basis(BV, problem.G_right),
        "align_A_dW": _align_from_basis(AV, problem.dW_left),
        "align_B_dW": _align_from_basis(BV, problem.dW_right),
        "norm_A": jnp.linalg.norm(A),
        "norm_B": jnp.linalg.norm(B),
        "balance": jnp.linalg.norm(gram_A - gram_B),
        "stable_rank_A": jnp.sum(eig_A) / eig_A[0],
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
