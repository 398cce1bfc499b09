"""The prediction for the ReLU model (claim 7): LoRA-One Thm 4.2's linear rate of precgd.

Statement (LoRA-One, Zhang, Liu, Chen, ICML 2025, Section 4, Thm 4.2): in the nonlinear model
y = ReLU((W0 + dW)^T x), x ~ N(0, I_d), with LoRA rank r = r_star, spectral init with gamma = 2
(A_0 B_0 = 2 G_r, since G is about dW / 2 for ReLU), preconditioned GD without damping
(lam = 0) and step size eta in (c, 1), under Assumption 4.1 (the shift dW small against the
pretrained W0) and N large enough,

    ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*},

with rho a small constant and lambda*_{r*} = s_{r*} the smallest non-zero singular value of dW:
a linear rate that does not depend on kappa.  Its premises, as the suite reads them, are
:data:`THM42_RHO` (rho <= 1/20 at step 0), :func:`assumption41_shift_bound` (Assumption 4.1 (ii))
and :func:`thm42_sample_eps` (the sample-size condition); the bound itself is
:func:`relu_precgd_error_bound`.  The suite's own population law for the rate, which the
theorem's 1 - eta/4 bounds, is :func:`relu_precgd_population_rate`.  The measurement is
:mod:`lora_theory.claims.claim7`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "THM42_RHO",
    "relu_precgd_rate_bound",
    "relu_precgd_error_bound",
    "relu_precgd_population_rate",
    "assumption41_shift_bound",
    "thm42_sample_eps",
    "relu_test_loss_bound",
]

#: Thm 4.2's premise on the initial error: ||A_0 B_0 - dW||_F <= rho lambda*_{r*} with rho <= 1/20.
THM42_RHO = 1.0 / 20.0


def relu_precgd_rate_bound(eta: float) -> float:
    """LoRA-One Thm 4.2's per-step contraction factor of the error: 1 - eta/4.

    ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*} for the ReLU model with r = r_star,
    spectral init (gamma = 2), precgd without damping, eta in (c, 1), Assumption 4.1 (dW small
    against W0).  The bound does not depend on kappa.  It is a rate for the *error*
    ||A B - dW||_F; the risk ||A B - dW||_F^2 / 2 contracts at its square, (1 - eta/4)^2.

    Args:
        eta: the step size of precgd (the theorem asks eta in (c, 1)).

    Returns:
        1 - eta / 4.
    """
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
        raise ValueError(f"eta={eta!r} is invalid: must be a finite number > 0")
    return 1.0 - eta / 4.0


def relu_precgd_error_bound(
    steps: ArrayLike, rate: ArrayLike, rho: ArrayLike, lambda_rstar: ArrayLike
) -> np.ndarray | float:
    """Thm 4.2's bound on the error at step t: ||A_t B_t - dW||_F <= rate^t rho lambda*_{r*}.

    LoRA-One Thm 4.2 with rate = 1 - eta/4 (:func:`relu_precgd_rate_bound`) and rho <= 1/20
    (:data:`THM42_RHO`): the **absolute** bound uses rho = 1/20, the relative one the measured
    rho_0 = ||A_0 B_0 - dW||_F / lambda*_{r*} (then the bound at t = 0 is the initial error
    itself).  Works elementwise on arrays (broadcasting).

    Args:
        steps: the step numbers t.
        rate: the per-step contraction factor of the error (the theorem's 1 - eta/4).
        rho: the constant rho of the bound.
        lambda_rstar: the smallest non-zero singular value of dW.

    Returns:
        rate^t rho lambda*_{r*}.
    """
    return np.power(rate, np.asarray(steps, np.float64)) * np.asarray(rho) * np.asarray(lambda_rstar)


def relu_precgd_population_rate(eta: float) -> float:
    """The per-step error rate of precgd near the optimum of the ReLU model as N/d -> infinity: 1 - eta/2.

    The suite's derivation (not a statement of the paper; Thm 4.2's 1 - eta/4 bounds it).  Near
    W* = W0 + dW the training loss is, to second order in D - dW,
    sum_m (d_m - dw_m)^T S_m (d_m - dw_m) / 2 per output column m, with the Gauss-Newton matrix
    S_m = (1/N) sum_i 1{x_i^T w*_m > 0} x_i x_i^T (ReLU' = 1{. > 0}, noiseless labels: the
    residual vanishes at W*, so that is the whole Hessian).  For x ~ N(0, I_d) its expectation is
    E[1{x^T w > 0} x x^T] = I/2 for every w != 0 (the symmetry x -> -x splits E[x x^T] = I in two
    equal halves).  So the population loss near W* is ||D - dW||_F^2 / 4: the linear model's
    with a curvature 1/2.  precgd (ScaledGD, lam = 0, r = r*) on ||A B - M||_F^2 / 2 maps the
    error E = A B - M to E - eta (P_U E + E P_V) to first order: the tangent components
    P_U E P_V_perp and P_U_perp E P_V contract by 1 - eta, the core P_U E P_V by 1 - 2 eta.  With
    the curvature 1/2 they become 1 - eta/2 and 1 - eta: the slowest, the asymptotic rate of
    ||A_t B_t - dW||_F, is 1 - eta/2 (for eta <= 4/3, where |1 - eta| <= 1 - eta/2).  At finite
    N the S_m scatter around I/2 by O(sqrt(d/N)), the fitted rate is off (slower, mostly) and the
    gap closes as N/d grows: claim 7 extrapolates it to d/N = 0.

    Args:
        eta: the step size of precgd, in (0, 4/3] (the theorem's range is (c, 1)).

    Returns:
        1 - eta / 2.
    """
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and 0 < eta <= 4.0 / 3.0):
        raise ValueError(f"eta={eta!r} is invalid: must be a finite number in (0, 4/3]")
    return 1.0 - eta / 2.0


def assumption41_shift_bound(kappa: ArrayLike, r_star: int) -> np.ndarray | float:
    """Assumption 4.1 (ii), the suite's reading: max{lambda*_{r*}, ||dW_m||} / ||w_m||_2 <= 1 / (kappa r*).

    LoRA-One Assumption 4.1 (ii) asks the ratio to be O(1 / (kappa r*)) for every column m of W0
    (w_m) and of dW (dW_m): the shift is small against the pretrained weights by a factor
    kappa r*.  The constant of the O(.) is not named; **the suite reads it as 1**.

    Args:
        kappa: condition number of dW.
        r_star: rank of dW.

    Returns:
        1 / (kappa r_star).
    """
    return 1.0 / (np.asarray(kappa, np.float64) * r_star)


def thm42_sample_eps(kappa: ArrayLike, r_star: int, d: int) -> np.ndarray | float:
    """Thm 4.2's sample-size condition, the suite's reading: eps = 1 / (r* kappa sqrt(d)).

    LoRA-One Thm 4.2 asks eps = O(1 / (r* kappa sqrt(d))) and holds with probability
    >= 1 - 2C d k exp(-eps^2 N).  Neither the constant nor the sample quantity that eps bounds is
    in the main text (Thm D.10 is not available); **the suite reads the constant as 1** and
    compares eps with the Eq. (8)-type quantity ||Sigma_hat - I||_op, Sigma_hat = X^T X / N.

    Args:
        kappa: condition number of dW.
        r_star: rank of dW.
        d: input dimension.

    Returns:
        1 / (r_star kappa sqrt(d)).
    """
    return 1.0 / (r_star * np.asarray(kappa, np.float64) * math.sqrt(d))


def relu_test_loss_bound(risk: float, noise: float = 0.0, k: int = 1) -> float:
    """The bound on the expected test loss of W0 + D in the ReLU model: risk + noise^2 k / 2 (claim 8).

    LoRA-One Sec. 2 ("Optimization and Generalization"): for a fresh (x, y) with x ~ N(0, I_d)
    and y = ReLU((W0 + dW)^T x), E||y - ReLU((W0 + D)^T x)||^2 <= E||(D - dW)^T x||^2 =
    ||D - dW||_F^2, since ReLU is 1-Lipschitz coordinate by coordinate.  In this suite's units
    (losses ||.||^2 / 2) the test loss is at most the risk ||D - dW||_F^2 / 2, D = A B + offset.
    With label noise eps ~ N(0, noise^2 I_k) independent of x (an extension of this suite) the
    bound gains noise^2 k / 2.  Works elementwise on arrays too.

    Args:
        risk: ||D - dW||_F^2 / 2.
        noise: standard deviation of the label noise (0: the paper's noiseless model).
        k: output dimension.

    Returns:
        risk + noise^2 k / 2.
    """
    return risk + 0.5 * noise**2 * k
