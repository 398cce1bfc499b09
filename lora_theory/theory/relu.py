"""The prediction for the ReLU model (claim 7): LoRA-One Thm 4.2's linear rate of precgd.

Statement (LoRA-One, Zhang, Liu, Chen, ICML 2025, Section 4, Thm 4.2): in the nonlinear model
y = ReLU((W0 + dW)^T x), x ~ N(0, I_d), with LoRA rank r = r_star, spectral init with gamma = 2
(A_0 B_0 = 2 G_r, since G is about dW / 2 for ReLU), preconditioned GD without damping
(lam = 0) and step size eta in (c, 1), under Assumption 4.1 (the shift dW small against the
pretrained W0) and N large enough,

    ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*},

with rho a small constant and lambda*_{r*} = s_{r*} the smallest non-zero singular value of dW:
a linear rate that does not depend on kappa.  The measurement is
:func:`lora_theory.claims.claim7.measure_claim7`.
"""

from __future__ import annotations

import math

__all__ = ["relu_precgd_rate_bound", "relu_test_loss_bound"]


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



def relu_test_loss_bound(risk: float, noise: float = 0.0, k: int = 1):
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
