"""HRP's predictions (claim 6): asymmetric LoRA with a frozen factor, in population mode.

Sources: HRP (Chen et al., arXiv 2502.07739) and the classical results it rests on (Eckart-Young,
Ky Fan); a bound derived in this suite says so and gives the derivation.  Notation (the SPEC's):
the target M (= dW in population mode); the frozen factor's side has dimension n (n = d when A,
d x r, is frozen).

Classic LoRA (both factors train) from the wise init is :func:`classic_wise_init_rate`.

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
    "classic_wise_init_rate",
]

Scalar = Float[Array, ""] | float


def frozen_orthonormal_factor_rate(eta: Scalar, scale_sq: Scalar) -> Float[Array, ...]:
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


def random_frozen_factor_loss(M_fro_sq: Scalar, r: int, n: int) -> Float[Array, ...]:
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


def classic_wise_init_rate(
    eta: Scalar, c_sq: Scalar, s: Float[Array, ...] | float, *, order: int = 1
) -> Float[Array, ...]:
    """Per-mode rate of classic LoRA (GD on both factors) from HRP's wise init A_0 = c U_r, B_0 = 0.

    Population mode, L = ||A B - M||_F^2 / 2 with M = U diag(s) V^T.  Derived in this suite (HRP's
    H2 states exponential convergence, no rate): from A_0 = c U_r (M's top-r left singular
    vectors), B_0 = 0 the gradients stay in the span, A_t = U_r diag(a_t), B_t = diag(b_t) V_r^T,
    and each mode i is scalar GD on (a b - s_i)^2 / 2 from (a, b) = (c, 0).  Its residual
    e = a b - s obeys e' = e (1 - eta (a^2 + b^2) + eta^2 e a b) exactly, so near the limit
    (a* b* = s) e^2 contracts by (1 - eta lambda)^2 per step, lambda = a*^2 + b*^2 =
    sqrt(D^2 + 4 s^2) with D = a*^2 - b*^2, the limit's imbalance.  D:

    * ``order=0`` (gradient flow): a^2 - b^2 is conserved, D = c^2;
    * ``order=1`` (GD to first order in eta): exactly a'^2 - b'^2 = (a^2 - b^2)(1 - eta^2 e^2), so
      D = c^2 prod_t (1 - eta^2 e_t^2) ~ c^2 exp(-eta J), where eta sum_t e_t^2 -> J = the
      integral of e^2 along the flow (de/dtau = -e sqrt(c^4 + 4 (a b)^2)):
      J = integral_0^s (s - w) / sqrt(c^4 + 4 w^2) dw = (s/2) asinh(2 s / c^2) - (sqrt(c^4 + 4 s^2) - c^2) / 4.

    The remainder is O(eta^2): at c^2 = 1, eta = 0.1 it is at most 3e-4 in the rate for s <= 1
    (order 0 is off by up to 3e-3).  Valid while 0 < eta lambda < 1 (no oscillation).

    Args:
        eta: step size.
        c_sq: c^2 (= alpha^2 d for the oracle 'directions' init).
        s: the mode's singular value(s) s_i > 0.
        order: 0 (gradient-flow balance) or 1 (first-order GD correction).

    Returns:
        The per-step contraction factor (1 - eta lambda)^2 of (u_i^T A_t B_t v_i - s_i)^2, per mode.
    """
    eta, c_sq, s = jnp.asarray(eta), jnp.asarray(c_sq), jnp.asarray(s)
    if order == 0:
        D = c_sq
    elif order == 1:
        J = 0.5 * s * jnp.arcsinh(2.0 * s / c_sq) - 0.25 * (jnp.sqrt(c_sq**2 + 4.0 * s**2) - c_sq)
        D = c_sq * jnp.exp(-eta * J)
    else:
        raise ValueError(f"order must be 0 or 1, got {order!r}")
    return (1.0 - eta * jnp.sqrt(D**2 + 4.0 * s**2)) ** 2
