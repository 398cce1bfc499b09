"""Metrics of a LoRA trajectory: risk, subspace alignment, spectra, balance, fitted linear rate.

Everything here is a pure function of arrays.  :func:`lora_metrics` is the default ``observe`` of
:func:`~lora_theory.engine.train`: the SPEC's full metric set, evaluated inside the compiled loop
at every logged step.  The alignments work from r x r Gram matrices and thin residuals, never
from an SVD of a d x k matrix; the small decompositions go to whichever of LAPACK and the
hand-written kernels of :mod:`lora_theory._linalg` is faster at their size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ._linalg import eigh

if TYPE_CHECKING:
    from .optimizers import LoRAFactors

__all__ = [
    "sin_largest_angle",
    "top_left_subspace",
    "top_right_subspace",
    "align_A",
    "align_B",
    "align_A_many",
    "span_contains",
    "product_singular_values",
    "stable_rank",
    "balance",
    "lora_metrics",
    "risk",
    "fit_linear_rate",
    "METRIC_NAMES",
]

METRIC_NAMES = (
    "loss",
    "risk",
    "rel_err",
    "align_A_G",
    "align_B_G",
    "align_A_dW",
    "align_B_dW",
    "align_A_W0",
    "norm_A",
    "norm_B",
    "balance",
    "stable_rank_A",
)

# ---------------------------------------------------------------------------------------------
# subspaces and angles
# ---------------------------------------------------------------------------------------------


def _largest_eigenvalue(gram: Float[Array, "m m"]) -> Float[Array, ""]:
    return eigh(gram)[0][-1]


def sin_largest_angle(U: Float[Array, "n p"], V: Float[Array, "n q"]) -> Float[Array, ""]:
    """sin of the largest principal angle between span(V) and span(U): ||(I - U U^T) V||_2.

    Both arguments must have orthonormal columns.  This is ||U_perp^T V||_2, the quantity of
    LoRA-One Thm 3.2.  It is computed from the residual directly (not as sqrt(1 - cos^2)), so it
    is accurate down to rounding, e.g. ~1e-16 in float64 for identical subspaces.

    Examples:
        >>> U = jnp.eye(4)[:, :2]  # span(e1, e2)
        >>> V = jnp.array([[1.0, 0.0], [0.0, np.cos(0.3)], [0.0, np.sin(0.3)], [0.0, 0.0]])  # e2 tilted by 0.3 rad
        >>> round(float(lt.sin_largest_angle(U, V)), 6), round(float(np.sin(0.3)), 6)
        (0.29552, 0.29552)
        >>> float(lt.sin_largest_angle(U, jnp.eye(4)[:, 2:]))  # orthogonal subspaces
        1.0
    """
    residual = V - U @ (U.T @ V)
    return jnp.sqrt(jnp.maximum(_largest_eigenvalue(residual.T @ residual), 0.0))


def _top_eigenvectors(w: Float[Array, " r"], V: Float[Array, "r r"], m: int) -> Float[Array, "r m"]:
    """The eigenvectors of the min(m, r) largest eigenvalues (w ascending, as from eigh)."""
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


def _sin_from_gram(gram: Float[Array, "m m"]) -> Float[Array, ""]:
    return jnp.sqrt(jnp.maximum(_largest_eigenvalue(gram), 0.0))


def top_left_subspace(A: Float[Array, "d r"], m: int) -> Float[Array, "d m"]:
    """Orthonormal basis of the top-m left singular subspace of A (d x r, r >= m).

    From the r x r Gram matrix: A^T A = V S^2 V^T; the top-m left singular vectors are A V_m / s
    (NaN columns where s = 0: the subspace is then undefined).
    """
    AV = A @ _top_eigenvectors(*eigh(A.T @ A), m)
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
    AV = A @ _top_eigenvectors(*eigh(A.T @ A), reference_left.shape[1])
    return _sin_from_gram(_angle_gram(AV, reference_left))


def align_A_many(A: Float[Array, "d r"], references: Sequence[Float[Array, "d m"]]) -> Float[Array, " n"]:
    """:func:`align_A` against each of ``references`` (d x m each, the same m), sharing one
    eigendecomposition of A^T A and one batched call for the n angle matrices.

    Returns:
        n sines, in the order of ``references``.
    """
    AV = A @ _top_eigenvectors(*eigh(A.T @ A), references[0].shape[1])
    grams = jnp.stack([_angle_gram(AV, reference) for reference in references])
    return jax.vmap(_sin_from_gram)(grams)


def span_contains(A: Float[Array, "d r"], reference: Float[Array, "d m"], *, rtol: float = 1e-10) -> Float[Array, ""]:
    """||(I - P_A) U_ref||_2: sin of the largest angle between span(reference) and its projection
    on span(A), the whole column space of A (not its top-m part, so ties among A's singular values
    do not matter; a rank-deficient A uses its range).

    0 when span(A) contains span(reference) (e.g. PiSSA's A_0 and a target inside W0's top
    subspace), 1 when some reference direction is orthogonal to span(A) (or A = 0).  From the
    r x r Gram matrix: A's range is A V_i / s_i over the eigenvalues s_i^2 > rtol s_1^2.

    Args:
        A: d x r.
        reference: d x m orthonormal columns (e.g. ``problem.dW_left``).
        rtol: eigenvalues of A^T A below rtol times the largest count as zero.

    Returns:
        sin of the largest principal angle, in [0, 1].
    """
    w, V = eigh(A.T @ A)
    keep = w > rtol * jnp.maximum(w[-1], jnp.finfo(A.dtype).tiny)
    basis = (A @ V) * jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, w, 1.0)), 0.0)
    residual = reference - basis @ (basis.T @ reference)
    return _sin_from_gram(residual.T @ residual)


def align_B(B: Float[Array, "r k"], reference_right: Float[Array, "k m"]) -> Float[Array, ""]:
    """||V_{ref,perp}^T V_{B,m}||_2 for the right singular subspace of B (NaN when B has rank < m, e.g. B = 0)."""
    return align_A(B.T, reference_right)


def product_singular_values(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, " r"]:
    """The r singular values of A B (descending), from thin QRs: A = Q_A R_A, B^T = Q_B R_B,
    sv(A B) = sv(R_A R_B^T).

    Householder R factors (LAPACK) and the SVD of the r x r product: accurate to rounding relative
    to ||A|| ||B||, tiny singular values included (unlike square roots of Gram eigenvalues).
    """
    R_A = jnp.linalg.qr(A, mode="r")
    R_B = jnp.linalg.qr(B.T, mode="r")
    return jnp.linalg.svd(R_A @ R_B.T, compute_uv=False)


def stable_rank(A: Float[Array, "d r"]) -> Float[Array, ""]:
    """||A||_F^2 / ||A||_2^2 (from the r x r Gram matrix)."""
    eig = eigh(A.T @ A)[0]
    return jnp.sum(eig) / eig[-1]


def balance(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, ""]:
    """||A^T A - B B^T||_F, conserved by gradient flow on the factors."""
    return jnp.linalg.norm(A.T @ A - B @ B.T)


def risk(problem: Any, objective: Any, factors: LoRAFactors) -> Float[Array, ""]:
    """||A B + offset - dW||_F^2 / 2, the excess risk of the total update; also an ``observe``.

    The offset is the init's (``objective.offset``: -A_0 B_0 for lora_ga and lora_one
    'orthonormal'); a rank-0 offset (the inits without one) costs nothing.
    """
    A, B = factors
    offset = objective.offset
    D = A @ B
    if offset.left.shape[1]:
        D = D + offset.left @ offset.right
    return 0.5 * jnp.sum((D - problem.dW) ** 2)


def lora_metrics(problem: Any, objective: Any, factors: LoRAFactors) -> dict[str, Array]:
    """The SPEC's metric set at one step: the default ``observe`` of :func:`~lora_theory.engine.train`.

    ``risk = ||D - dW||_F^2 / 2`` and ``rel_err = ||D - dW||_F / ||dW||_F`` use the total update
    D = A B + offset (for the offset inits, lora_ga and lora_one 'orthonormal', the model is
    W0 + A B - A_0 B_0).  ``sv_AB`` are the singular values of the LoRA product A B itself.

    The small decompositions are shared and batched: one eigendecomposition call for the two r x r
    Gram matrices (A^T A serves both A-alignments and the stable rank, B B^T both B-alignments),
    one for the four r_star x r_star angle matrices.  The alignments are NaN while a factor has
    rank below r_star (e.g. B_0 = 0 for ``random``): its top subspace is undefined there.

    ``align_A_W0`` is the same angle against W0's top-r_star left singular subspace
    (``problem.W0_left``): PiSSA's premise is that the useful directions are W0's top ones.

    Args:
        problem: the problem (its ``dW``, ``G_left``, ``G_right``, ``dW_left``, ``dW_right``).
        objective: ``problem.objective(offset)``, the training loss on top of W0 + offset.
        factors: the current :class:`~lora_theory.optimizers.LoRAFactors` (A, B).

    Returns:
        name -> value: ``loss, risk, rel_err, align_A_G, align_B_G, align_A_dW, align_B_dW,
        align_A_W0, norm_A, norm_B, balance, stable_rank_A`` (scalars), ``sv_AB`` (r values) and the
        problem's ``extra_metrics`` (e.g. ``test_loss`` of the nonlinear model).
    """
    A, B = factors
    excess = risk(problem, objective, factors)
    gram_A = A.T @ A
    gram_B = B @ B.T
    w, V = jax.vmap(eigh)(jnp.stack([gram_A, gram_B]))
    AV = A @ _top_eigenvectors(w[0], V[0], problem.G_left.shape[1])
    BV = B.T @ _top_eigenvectors(w[1], V[1], problem.G_right.shape[1])
    angles = jax.vmap(lambda g: eigh(g)[0][-1])(
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
        "risk": excess,
        "rel_err": jnp.sqrt(2.0 * excess) / jnp.linalg.norm(problem.dW_singular_values),
        "align_A_G": sines[0],
        "align_B_G": sines[1],
        "align_A_dW": sines[2],
        "align_B_dW": sines[3],
        "align_A_W0": _align_A_W0(problem, A, w[0], V[0]),
        "norm_A": jnp.sqrt(jnp.trace(gram_A)),
        "norm_B": jnp.sqrt(jnp.trace(gram_B)),
        "balance": jnp.linalg.norm(gram_A - gram_B),
        "stable_rank_A": jnp.sum(w[0]) / w[0, -1],
        "sv_AB": product_singular_values(A, B),
    }
    metrics.update(problem.extra_metrics(A, B, objective.offset))
    return metrics


def _align_A_W0(
    problem: Any, A: Float[Array, "d r"], w: Float[Array, " r"], V: Float[Array, "r r"]
) -> Float[Array, ""]:
    """sin of the largest angle between A's top-r_star left subspace and W0's (NaN without W0_left).

    Its own eigendecomposition call, apart from the batched four of :func:`lora_metrics`, so that
    adding it left the other metrics' values unchanged, bit for bit.
    """
    W0_left = getattr(problem, "W0_left", None)
    if W0_left is None:
        return jnp.asarray(jnp.nan, A.dtype)
    AV = A @ _top_eigenvectors(w, V, W0_left.shape[1])
    return _sin_from_gram(_angle_gram(AV, W0_left))


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

    Examples:
        >>> steps = jnp.arange(0.0, 201.0, 10.0)
        >>> round(float(lt.fit_linear_rate(steps, 0.9**steps)), 6)  # risk_t = 0.9^t
        0.9
        >>> float(lt.fit_linear_rate(steps[:3], 0.9 ** steps[:3]))  # too few points in the linear phase
        nan
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
