"""Metrics of a LoRA trajectory: risk, subspace alignment, spectra, balance, fitted linear rate.

Everything here is a pure function of arrays and is evaluated inside the compiled training loop
every ``log_every`` steps.  The alignment metrics work from r x r Gram matrices and thin QR
factorisations, never from an SVD of a d x k matrix.
"""

from __future__ import annotations

import jax.numpy as jnp
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


def sin_largest_angle(U: Float[Array, "n p"], V: Float[Array, "n q"]) -> Float[Array, ""]:
    """sin of the largest principal angle between span(V) and span(U): ||(I - U U^T) V||_2.

    Both arguments must have orthonormal columns.  This is ||U_perp^T V||_2, the quantity of
    LoRA-One Thm 3.2.  It is computed from the residual directly (not as sqrt(1 - cos^2)), so it
    is accurate down to rounding, e.g. ~1e-16 in float64 for identical subspaces.
    """
    residual = V - U @ (U.T @ V)
    gram = residual.T @ residual
    return jnp.sqrt(jnp.maximum(jnp.linalg.eigvalsh(gram)[-1], 0.0))


def top_left_subspace(A: Float[Array, "d r"], m: int) -> Float[Array, "d m"]:
    """Orthonormal basis of the top-m left singular subspace of A (d x r, r >= m).

    From the r x r Gram matrix: A^T A = V S^2 V^T; the top-m left singular vectors span A V_m,
    which a thin QR orthonormalises (no division by singular values).
    """
    _, V = jnp.linalg.eigh(A.T @ A)
    Q, _ = jnp.linalg.qr(A @ V[:, ::-1][:, :m])
    return Q


def top_right_subspace(B: Float[Array, "r k"], m: int) -> Float[Array, "k m"]:
    """Orthonormal basis (k x m) of the top-m right singular subspace of B (r x k)."""
    return top_left_subspace(B.T, m)


def align_A(A: Float[Array, "d r"], reference_left: Float[Array, "d m"]) -> Float[Array, ""]:
    """||U_{ref,perp}^T U_{A,m}||_2: sin of the largest angle between A's top-m left subspace and the reference's."""
    return sin_largest_angle(reference_left, top_left_subspace(A, reference_left.shape[1]))


def align_B(B: Float[Array, "r k"], reference_right: Float[Array, "k m"]) -> Float[Array, ""]:
    """||V_{ref,perp}^T V_{B,m}||_2 for the right singular subspace of B."""
    return sin_largest_angle(reference_right, top_right_subspace(B, reference_right.shape[1]))


def product_singular_values(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, " r"]:
    """The r singular values of A B, from thin QRs: A = Q_A R_A, B^T = Q_B R_B, sv(A B) = sv(R_A R_B^T)."""
    _, R_A = jnp.linalg.qr(A)
    _, R_B = jnp.linalg.qr(B.T)
    return jnp.linalg.svd(R_A @ R_B.T, compute_uv=False)


def stable_rank(A: Float[Array, "d r"]) -> Float[Array, ""]:
    """||A||_F^2 / ||A||_2^2 (from the r x r Gram matrix)."""
    eig = jnp.linalg.eigvalsh(A.T @ A)
    return jnp.sum(eig) / eig[-1]


def balance(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, ""]:
    """||A^T A - B B^T||_F, conserved by gradient flow on the factors."""
    return jnp.linalg.norm(A.T @ A - B @ B.T)


def trajectory_metrics(problem, objective, A, B) -> dict[str, Array]:
    """All logged metrics of the SPEC at one step.

    ``risk = ||D - dW||_F^2 / 2`` and ``rel_err = ||D - dW||_F / ||dW||_F`` use the total update
    D = A B + offset (for the offset inits, lora_ga and lora_one 'orthonormal', the model is
    W0 + A B - A_0 B_0).  ``sv_AB`` are the singular values of the LoRA product A B itself.
    """
    D = A @ B + objective.offset.dense()
    err = D - problem.dW
    risk = 0.5 * jnp.sum(err**2)
    metrics = {
        "loss": objective.loss(A, B),
        "risk": risk,
        "rel_err": jnp.sqrt(2.0 * risk) / jnp.linalg.norm(problem.dW),
        "align_A_G": align_A(A, problem.G_left),
        "align_B_G": align_B(B, problem.G_right),
        "align_A_dW": align_A(A, problem.dW_left),
        "align_B_dW": align_B(B, problem.dW_right),
        "norm_A": jnp.linalg.norm(A),
        "norm_B": jnp.linalg.norm(B),
        "balance": balance(A, B),
        "stable_rank_A": stable_rank(A),
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
