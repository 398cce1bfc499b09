"""HRP's predictions (claim 6): asymmetric LoRA with a frozen factor, in population mode.

Sources: HRP (Chen et al., arXiv 2502.07739) and the classical results it rests on (Eckart-Young,
Ky Fan); a bound derived in this suite says so and gives the derivation.  Notation (the SPEC's):
the target M (= dW in population mode); the frozen factor's side has dimension n (n = d when A,
d x r, is frozen).

Everything here is pure; array arguments may be traced (jit/vmap), scalar arguments may be Python
numbers.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = [
    "frozen_orthonormal_factor_rate",
    "projection_limit",
    "random_frozen_factor_loss",
    "eckart_young_loss",
    "hrp_loss_bound",
]

Scalar = Float[Array, ""] | float


def frozen_orthonormal_factor_rate(eta: Scalar, scale_sq: Scalar) -> Float[Array, "..."]:
    """Rate of GD on B alone when the frozen A has A^T A = c^2 I: (1 - eta c^2)^2 per step.

    Population mode, asymmetric LoRA (only B trains), HRP's "wise" init A = c U_r.  The loss
    ||A B - M||_F^2 / 2 is a quadratic in B with Hessian A^T A (x) I = c^2 I, so
    B_t - B_* = (1 - eta c^2)^t (B_0 - B_*) and the excess loss contracts by (1 - eta c^2)^2
    (exact, every step: the exponential convergence HRP states).

    Args:
        eta: step size.
        scale_sq: c^2.

    Returns:
        The excess loss's per-step contraction factor.
    """
    return (1.0 - jnp.asarray(eta) * jnp.asarray(scale_sq)) ** 2


def projection_limit(A: Float[Array, "n r"], M: Float[Array, "n m"]) -> Float[Array, "n m"]:
    """The limit of asymmetric LoRA with A frozen: P_A M, P_A = A (A^T A)^{-1} A^T.

    HRP (population mode, dB/dt = A^T (M - A B) in this suite's orientation): the loss is convex
    in B and minimised by B_* = A^+ M, so A B_t -> P_A M, the projection of M onto span(A) (on the
    left: the frozen factor is A, d x r, so n = d).  Computed from a thin QR, no inverse.

    Args:
        A: the frozen factor (full column rank).
        M: the target.

    Returns:
        P_A M.
    """
    Q, _ = jnp.linalg.qr(A)
    return Q @ (Q.T @ M)


def random_frozen_factor_loss(M_fro_sq: Scalar, r: int, n: int) -> Float[Array, "..."]:
    """Expected final loss with a Gaussian frozen factor: (1 - r/n) ||M||_F^2 / 2.

    HRP's "random init gives a random low-rank result": span(A) of a Gaussian n x r A is a
    Haar-random r-dimensional subspace, so E[P_A] = (r/n) I and
    E ||(I - P_A) M||_F^2 = ||M||_F^2 - tr(E[P_A] M M^T) = (1 - r/n) ||M||_F^2.

    Args:
        M_fro_sq: ||M||_F^2.
        r: LoRA rank.
        n: dimension of the frozen factor's side (d when A is frozen).

    Returns:
        (1 - r/n) ||M||_F^2 / 2.
    """
    return 0.5 * (1.0 - r / n) * jnp.asarray(M_fro_sq)


def eckart_young_loss(singular_values: Float[Array, " m"], r: int) -> Float[Array, ""]:
    """The optimum of rank-r fitting: min_{rank <= r} ||X - M||_F^2 / 2 = sum_{i > r} s_i^2 / 2.

    Eckart-Young-Mirsky; the limit of HRP's "wise" init (A frozen along M's top-r left singular
    vectors) and of classic LoRA from a small init.

    Args:
        singular_values: s_1 >= s_2 >= ... of M.
        r: LoRA rank.

    Returns:
        sum_{i > r} s_i^2 / 2.
    """
    return 0.5 * jnp.sum(singular_values[r:] ** 2)


def hrp_loss_bound(singular_values: Float[Array, " m"], r: int, p: int, n: int) -> Float[Array, ""]:
    """Bound on HRP's expected final loss: min{(1 - r/n) ||M||^2, sum_{i>r} s_i^2 + (1 - p/n) sum_{i<=r} s_i^2} / 2.

    Derived in this suite from Ky Fan's inequality (not quoted from the HRP paper).  Setting:
    population mode, asymmetric LoRA; the rank-p preheat with a Gaussian frozen A_p runs to its
    limit P_p M (P_p the projection onto span(A_p), a Haar-random p-dim subspace, E[P_p] = (p/n) I);
    HRP freezes A along the top-r left singular vectors U of P_p M (span U within span A_p, so
    P_U M = P_U P_p M), and training B ends at the loss ||M||^2 / 2 - ||P_U P_p M||^2 / 2 with
    ||P_U P_p M||^2 = sum_{i<=r} sigma_i(P_p M)^2.  Ky Fan: sum_{i<=r} sigma_i(X)^2 >= ||Q X V||^2
    for any rank-r orthonormal Q (left) or V (right).  Three lines:

    1. right V = V_r (M's top-r right singular vectors): sum_{i<=r} sigma_i(P_p M)^2
       >= ||P_p M V_r||^2 = ||P_p U_r S_r||^2, whose expectation is (p/n) sum_{i<=r} s_i^2;
    2. left Q = a Haar-random r-dim subspace of span(A_p) (Haar in R^n too): the expectation of
       ||Q P_p M||^2 = ||Q M||^2 is (r/n) ||M||^2;
    3. so 2 E[loss] <= ||M||^2 - max{(p/n) sum_{i<=r} s_i^2, (r/n) ||M||^2}, which is the min above.

    Args:
        singular_values: s_1 >= s_2 >= ... of M (all of them).
        r: LoRA rank.
        p: preheat rank (r <= p <= n).
        n: dimension of the frozen factor's side.

    Returns:
        The bound on E[final loss].
    """
    sq = singular_values**2
    total = jnp.sum(sq)
    head = jnp.sum(sq[:r])
    return 0.5 * jnp.minimum((1.0 - r / n) * total, (total - head) + (1.0 - p / n) * head)
