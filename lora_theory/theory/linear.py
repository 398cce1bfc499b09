"""The predictions of LoRA-One's linear-model theorems, as plain functions of the problem's parameters.

Each function states the formula, the assumptions under which it is the prediction, and where it
comes from: a theorem of LoRA-One (Zhang, Liu, Chen, ICML 2025, arXiv 2502.01235; theorem numbers
of the ICML version) or a derivation made in this suite (then the docstring says so and gives it).
Where the paper states only an order (O(.), "<~"), the prediction is the exponent or slope of the
law, and :mod:`lora_theory.claims` fits that across a sweep.  HRP's predictions are in
:mod:`lora_theory.theory.hrp`, the ReLU model's (Thm 4.2) in :mod:`lora_theory.theory.relu`.

Notation (the SPEC's): W = W0 + A B, A (d x r), B (r x k); dW of rank r_star with singular values
s_1 >= ... >= s_{r*}; G = -grad_W L(W0) the one-step full gradient; Sigma_hat = X^T X / N.

Everything here is pure; array arguments may be traced (jit/vmap), scalar arguments may be Python
numbers.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = [
    "alignment_time_bound",
    "escape_time_slope",
    "THM32_THETA_EXPONENT",
    "THM32_D_EXPONENT",
    "thm32_alpha_max",
    "thm32_theta",
    "thm32_alpha_exponent",
    "power_iteration_alpha_exponent",
    "spectral_init_error_bound",
    "finite_sample_error_law",
    "FINITE_SAMPLE_EXPONENT",
    "thm33_premise_eps",
    "thm33_conclusion",
    "sample_size_exponent",
    "SAMPLE_SIZE_EXPONENT_LAW",
    "SAMPLE_SIZE_EXPONENT_SUFFICIENT",
    "precgd_rate",
    "precgd_rate_linearised",
    "precgd_linearised_risk",
    "gd_rate",
    "GD_RATE_KAPPA_EXPONENT",
    "linear_test_loss",
]

Scalar = Float[Array, ""] | float

#: exponent of the sqrt(d/N) law of Thm 3.3: the initial error of spectral init ~ N^{-1/2}.
FINITE_SAMPLE_EXPONENT = -0.5
#: exponent of N*/d in kappa under the suite's sqrt(d/N) law (see :func:`sample_size_exponent`).
SAMPLE_SIZE_EXPONENT_LAW = 2.0
#: exponent of N/d in kappa that Eq. (8)'s sufficient eps = c / kappa^3 allows (N ~ 1 / eps^2).
SAMPLE_SIZE_EXPONENT_SUFFICIENT = 6.0
#: Thm 3.2's alpha condition alpha = O(theta^{a kappa_G} d^{-b kappa_G} kappa_G^{-1/2} ||G||_op^{1/2}):
#: a and b as THEOREMS.md reads them from the parse of the paper ("confirm before using them as
#: numbers"); see :func:`thm32_alpha_max`.
THM32_THETA_EXPONENT = 1.5
THM32_D_EXPONENT = 0.75
#: exponent of gd's law: 1 - rate ~ kappa^{-1} (App. C.2; see :func:`gd_rate`).
GD_RATE_KAPPA_EXPONENT = -1.0


def alignment_time_bound(
    d: int | Float[ArrayLike, ...],
    theta: Float[ArrayLike, ...],
    eta: Float[ArrayLike, ...],
    lambda_rstar: Float[ArrayLike, ...],
) -> Float[Array, ...]:
    """Thm 3.2's alignment time: t* = ln(sqrt(d) / theta) / ln(1 + eta lambda_{r*}(G)).

    LoRA-One Thm 3.2 (linear model, ``random`` init with small alpha, r >= 2 r_star, GD with step
    eta): within t* <~ ln(sqrt(d)/theta) / ln(1 + eta lambda_{r*}(G)) steps the top-r_star left
    singular subspace of A_t is theta-aligned with G's, ||U_{G,perp}^T U_{A_t,r*}||_2 <= theta.
    Here lambda_{r*}(G) is the r_star-th singular value of G.  The paper's "<~" hides a constant:
    the power-iteration picture behind it (A_t's component along u_i grows like (1 + eta s_i)^t,
    the rest stays O(alpha sqrt(d))) gives t* = [ln(sqrt(d)/theta) + ln C] / ln(1 + eta
    lambda_{r*}), so the measurable law is that t* grows with slope 1 against this expression.

    Args:
        d: input dimension.
        theta: alignment level (sine of the largest principal angle), 0 < theta < 1.
        eta: GD step size.
        lambda_rstar: lambda_{r*}(G), the r_star-th singular value of G.

    The arguments may be arrays of any broadcastable shapes (claim 2 passes grids of them).

    Returns:
        t* in steps (not rounded).
    """
    d = jnp.asarray(d, jnp.float64)
    return jnp.log(jnp.sqrt(d) / theta) / jnp.log1p(eta * lambda_rstar)


def escape_time_slope(eta: Scalar, lambda_rstar: Scalar) -> Float[Array, ...]:
    """Slope of the convergence time against ln(1 / alpha^2): 1 / (2 ln(1 + eta lambda_{r*}(G))).

    The "double-edged sword" of LoRA-One Sec. 3 (smaller alpha aligns better but converges later),
    made quantitative in this suite by the same power-iteration picture as Thm 3.2: from A_0 with
    N(0, alpha^2) entries and B_0 = 0, both factors grow like alpha (1 + eta lambda_{r*})^t along
    the slowest of G's top r_star directions, so A_t B_t reaches the size of dW after
    t = ln(1/alpha^2) / (2 ln(1 + eta lambda_{r*})) + O(1) steps.  The time to reach a fixed
    relative risk therefore grows with slope 1 / (2 ln(1 + eta lambda_{r*})) in ln(1/alpha^2).

    Args:
        eta: GD step size.
        lambda_rstar: r_star-th singular value of G.

    Returns:
        Steps per unit of ln(1/alpha^2).
    """
    return 0.5 / jnp.log1p(eta * lambda_rstar)


def thm32_alpha_max(
    theta: Scalar,
    d: int | Scalar,
    kappa_G: Scalar,
    G_op: Scalar,
    *,
    constant: Scalar = 1.0,
    theta_exponent: Scalar = THM32_THETA_EXPONENT,
    d_exponent: Scalar = THM32_D_EXPONENT,
) -> Float[Array, ...]:
    """Thm 3.2's alpha condition, read with its O(.) constant: the largest init scale for level theta.

    LoRA-One Thm 3.2 (linear model, r >= 2 r_star, GD from A_0 ~ N(0, alpha^2), B_0 = 0): for any
    theta in (0, 1), if alpha = O(theta^{(3/2) kappa_G} d^{-(3/4) kappa_G} kappa_G^{-1/2}
    ||G||_op^{1/2}), then ||U_{r*,perp}(G)^T U_{r*}(A_t*)||_op <~ theta at some
    t* <~ :func:`alignment_time_bound`.  kappa_G = lambda_1(G) / lambda_{r*}(G) is the condition
    number of G's top-r_star part.  The exponents 3/2 and 3/4 are THEOREMS.md's reading of the
    paper's parse (:data:`THM32_THETA_EXPONENT`, :data:`THM32_D_EXPONENT`); the O(.)'s constant
    is not named, so it is an argument (**the suite's reading: 1**).

    Args:
        theta: alignment level in (0, 1).
        d: input dimension.
        kappa_G: lambda_1(G) / lambda_{r*}(G).
        G_op: ||G||_op = lambda_1(G).
        constant: the O(.)'s constant.
        theta_exponent: the exponent a of theta^{a kappa_G} d^{-b kappa_G}.
        d_exponent: the exponent b.

    Returns:
        constant theta^{a kappa_G} d^{-b kappa_G} kappa_G^{-1/2} ||G||_op^{1/2}.
    """
    kappa_G = jnp.asarray(kappa_G, jnp.float64)
    d = jnp.asarray(d, jnp.float64)
    return (
        constant
        * jnp.asarray(theta, jnp.float64) ** (theta_exponent * kappa_G)
        * d ** (-d_exponent * kappa_G)
        * kappa_G**-0.5
        * jnp.sqrt(jnp.asarray(G_op, jnp.float64))
    )


def thm32_theta(
    alpha: Scalar,
    d: int | Scalar,
    kappa_G: Scalar,
    G_op: Scalar,
    *,
    constant: Scalar = 1.0,
    theta_exponent: Scalar = THM32_THETA_EXPONENT,
    d_exponent: Scalar = THM32_D_EXPONENT,
) -> Float[Array, ...]:
    """The alignment level Thm 3.2 guarantees from init scale alpha: :func:`thm32_alpha_max` inverted.

    theta(alpha) = (alpha / (constant d^{-b kappa_G} kappa_G^{-1/2} ||G||_op^{1/2}))^{1 / (a kappa_G)},
    the smallest theta whose alpha condition alpha holds (with the O(.)'s constant ``constant``).
    The theorem then says min_t ||U_{r*,perp}(G)^T U_{r*}(A_t)||_op <~ theta(alpha); it says
    nothing where theta(alpha) >= 1 (theta must lie in (0, 1)).  So log theta(alpha) is linear in
    log alpha^2 with slope :func:`thm32_alpha_exponent`.

    Args:
        alpha: init scale (standard deviation of A_0's entries).
        d: as in :func:`thm32_alpha_max`.
        kappa_G: as there.
        G_op: as there.
        constant: as there.
        theta_exponent: as there.
        d_exponent: as there.

    Returns:
        theta(alpha).
    """
    kappa_G = jnp.asarray(kappa_G, jnp.float64)
    scale = thm32_alpha_max(
        1.0, d, kappa_G, G_op, constant=constant, theta_exponent=theta_exponent, d_exponent=d_exponent
    )
    return (jnp.asarray(alpha, jnp.float64) / scale) ** (1.0 / (theta_exponent * kappa_G))


def thm32_alpha_exponent(kappa_G: Scalar, theta_exponent: Scalar = THM32_THETA_EXPONENT) -> Float[Array, ...]:
    """Slope of log theta(alpha) against log alpha^2 in Thm 3.2's alpha condition: 1 / (3 kappa_G).

    From alpha ~ theta^{(3/2) kappa_G} (:func:`thm32_theta`): theta ~ alpha^{2/(3 kappa_G)} =
    (alpha^2)^{1/(3 kappa_G)}.  The condition is sufficient, so the measured minimum of the
    alignment over t may fall faster with alpha: the theorem bounds the slope from below
    (asymptotically, as alpha -> 0), it does not predict it.

    Args:
        kappa_G: lambda_1(G) / lambda_{r*}(G).
        theta_exponent: a of theta^{a kappa_G} (3/2, :data:`THM32_THETA_EXPONENT`).

    Returns:
        1 / (2 a kappa_G).
    """
    return 1.0 / (2.0 * theta_exponent * jnp.asarray(kappa_G, jnp.float64))


def power_iteration_alpha_exponent(eta: Scalar, s_1: Scalar, s_rstar: Scalar) -> Float[Array, ...]:
    """This suite's law for min_t align_A_G against alpha^2: slope 1 / (2 k + 1), k = ln(1+eta s_1)/ln(1+eta s_r*).

    Derived in this suite (not in the paper), from the power-iteration picture behind Thm 3.2.
    From A_0 ~ N(0, alpha^2), B_0 = 0, GD is at first linear: A's component along G's i-th left
    singular vector grows like a_i(t) = alpha (1 + eta s_i)^t (s_i = lambda_i(G)), while its
    component outside G's column space stays O(alpha sqrt(d)): the sine of the angle falls like
    sqrt(d) alpha / a_{r*}(t).  The nonlinear term -eta Sigma_hat A B B^T of the gradient has a
    component outside col(G) of order sqrt(d/N) (Sigma_hat does not preserve col(G)); summed
    over the steps it tilts the top direction by about a_1(t)^2 (the run ends aligned with dW,
    at an angle ~ sqrt(d/N) from G).  With a_1 = alpha (a_{r*} / alpha)^k the alignment is about
    sqrt(d)/x + c alpha^2 x^{2k} (x = a_{r*}/alpha), whose minimum over x (over t) is
    proportional to (alpha^2)^{1/(2k+1)}.  For small eta, k ~ kappa_G; at kappa_G = 1 the slope
    1/3 equals Thm 3.2's 1/(3 kappa_G) (:func:`thm32_alpha_exponent`), above 1 it is larger.

    Args:
        eta: GD step size.
        s_1: lambda_1(G).
        s_rstar: lambda_{r*}(G).

    Returns:
        1 / (2 k + 1).
    """
    k = jnp.log1p(eta * jnp.asarray(s_1, jnp.float64)) / jnp.log1p(eta * jnp.asarray(s_rstar, jnp.float64))
    return 1.0 / (2.0 * k + 1.0)


def spectral_init_error_bound(sigma_hat: Float[Array, "d d"], dW: Float[Array, "d k"]) -> Float[Array, ""]:
    """Thm 3.3's bound: ||A_0 B_0 - dW||_op <= ||Sigma_hat - I||_op ||dW||_op.

    LoRA-One Thm 3.3 (noiseless linear model, spectral init with gamma = 1 and r >= r_star): then
    A_0 B_0 = G = Sigma_hat dW exactly, so A_0 B_0 - dW = (Sigma_hat - I) dW and the operator
    norm is sub-multiplicative.  It holds on every instance (not only with high probability).

    Args:
        sigma_hat: X^T X / N.
        dW: the downstream shift.

    Returns:
        ||Sigma_hat - I||_op ||dW||_op.
    """
    eye = jnp.eye(sigma_hat.shape[0], dtype=sigma_hat.dtype)
    return jnp.linalg.norm(sigma_hat - eye, ord=2) * jnp.linalg.norm(dW, ord=2)


def finite_sample_error_law(d: int | Scalar, n_samples: int | Scalar) -> Float[Array, ...]:
    """The sqrt(d / N) law of Thm 3.3: ||A_0 B_0 - dW||_op / ||dW||_op = O(sqrt(d / N)).

    With Gaussian x, ||Sigma_hat - I||_op ~ 2 sqrt(d/N) + d/N (Bai-Yin), so the initial error of
    spectral init falls like N^{-1/2} (slope :data:`FINITE_SAMPLE_EXPONENT` = -1/2 on log-log) once
    N >> d.  The constant is not predicted; the exponent is.

    Args:
        d: input dimension.
        n_samples: N.

    Returns:
        sqrt(d / N).
    """
    return jnp.sqrt(jnp.asarray(d, jnp.float64) / jnp.asarray(n_samples, jnp.float64))


def thm33_premise_eps(kappa: Scalar) -> Float[Array, ...]:
    """Thm 3.3's premise on Sigma_hat, the suite's reading: ||Sigma_hat - I||_op <= 1 / (2 kappa).

    LoRA-One Eq. (8) and Thm 3.3 (noiseless linear model, spectral init with gamma = 1): with
    probability >= 1 - 2C exp(-eps^2 N), ||Sigma_hat - I_d||_op <= eps := min{1/(2 kappa),
    c / kappa^3}, and then the conclusion of :func:`thm33_conclusion` holds.  The constant c is
    not named in the main text, so the c / kappa^3 branch cannot be evaluated: **the suite's
    reading uses the 1/(2 kappa) branch** (the weaker premise; with c <= kappa^2 / 2 the
    theorem's eps is smaller still, so every instance inside the theorem's premise is inside
    this one).  Instances with a measured ||Sigma_hat - I||_op above it are outside the
    hypotheses and get no verdict.

    Args:
        kappa: condition number of dW, s_1 / s_{r*}.

    Returns:
        1 / (2 kappa).
    """
    return 0.5 / jnp.asarray(kappa, jnp.float64)


def thm33_conclusion(dW_singular_values: Float[Array, "... r_star"]) -> Float[Array, ...]:
    """Thm 3.3's conclusion, as a bound: ||A_0 B_0 - dW||_op <= lambda*_{r*} / 2.

    LoRA-One Thm 3.3: inside the premise (:func:`thm33_premise_eps`), ||A_0 B_0 - dW||_op <=
    eps ||dW||_op <= lambda*_{r*} / 2, i.e. a relative operator error <= 1 / (2 kappa).  In the
    noiseless model with r >= r_star the first inequality is an identity of linear algebra
    (A_0 B_0 - dW = (Sigma_hat - I) dW): the content is this bound and the sample size that
    makes it hold (:func:`sample_size_exponent`).

    Args:
        dW_singular_values: s_1 >= ... >= s_{r*} of dW (last axis).

    Returns:
        s_{r*} / 2.
    """
    return 0.5 * jnp.asarray(dW_singular_values)[..., -1]


def sample_size_exponent(reading: str = "law") -> float:
    """Exponent p of the sample size N*/d ~ kappa^p at which Thm 3.3's conclusion holds.

    * ``"law"`` (the suite's reading, the verdict): the relative error of spectral init is
      about C sqrt(d/N) (:func:`finite_sample_error_law`), so it drops below 1/(2 kappa) at
      N/d ~ 4 C^2 kappa^2: p = 2 (:data:`SAMPLE_SIZE_EXPONENT_LAW`).
    * ``"sufficient"`` (LoRA-One Eq. (8) read literally): the probability 1 - 2C exp(-eps^2 N)
      with eps = c / kappa^3 asks for N ~ 1 / eps^2 ~ kappa^6 (d hidden in C): p = 6
      (:data:`SAMPLE_SIZE_EXPONENT_SUFFICIENT`).  A sufficient condition, not a prediction of
      the needed N: reported beside the measured exponent, with no verdict.

    Args:
        reading: ``"law"`` or ``"sufficient"``.

    Returns:
        The exponent.
    """
    if reading == "law":
        return SAMPLE_SIZE_EXPONENT_LAW
    if reading == "sufficient":
        return SAMPLE_SIZE_EXPONENT_SUFFICIENT
    raise ValueError(f"reading must be 'law' or 'sufficient', got {reading!r}")


def precgd_rate(eta: Scalar) -> Float[Array, ...]:
    """Per-step rate of the risk under precgd near the optimum: (1 - eta)^2, for any kappa.

    ScaledGD's law (Tong, Ma, Chi 2021; LoRA-One App. C.3 uses it), in population mode with
    r = r_star, lam = 0 and 0 < eta <= 2/3.  Derivation (this suite's, first order in the error
    E = A B - dW): the update is A' B' = A B - eta (E P_B + P_A E) + O(E^2) with P_A, P_B the
    projections onto col(A), row(B).  On the tangent space E = P_A E + E P_B - P_A E P_B, the
    block P_A E P_B is multiplied by 1 - 2 eta and the blocks P_A E P_B^perp, P_A^perp E P_B by
    1 - eta, whatever the singular values of dW: ||E|| contracts by max(|1 - 2 eta|, 1 - eta)
    = 1 - eta and the risk ||E||^2 / 2 by (1 - eta)^2.  With finite N the rate also depends on
    Sigma_hat (not on kappa).

    Args:
        eta: step size.

    Returns:
        The risk's per-step contraction factor.
    """
    return (1.0 - jnp.asarray(eta)) ** 2


def _precgd_linearisation(sigma_hat: ArrayLike, U: ArrayLike) -> tuple[Array, Array, Array, Array, Array]:
    """The two blocks of precgd's linearisation at the optimum (see :func:`precgd_rate_linearised`).

    Returns (lift, mu, W, nu, Q): lift = I + c P_U (c = sqrt(2) - 1, so lift^2 = I + P_U); mu, W
    the eigenpairs of K = lift Sigma_hat lift (the column block); nu, Q those of U^T Sigma_hat U
    (the row block).
    """
    sigma_hat = jnp.asarray(sigma_hat)
    U = jnp.asarray(U, sigma_hat.dtype)
    lift = jnp.eye(sigma_hat.shape[0], dtype=sigma_hat.dtype) + (jnp.sqrt(2.0) - 1.0) * (U @ U.T)
    mu, W = jnp.linalg.eigh(lift @ sigma_hat @ lift)
    nu, Q = jnp.linalg.eigh(U.T @ sigma_hat @ U)
    return lift, mu, W, nu, Q


def precgd_rate_linearised(
    eta: Scalar, sigma_hat: Float[Array, "d d"], U: Float[Array, "d r_star"]
) -> Float[Array, ""]:
    """Per-instance asymptotic rate of the risk under precgd (lam = 0, r = r_star) at finite N.

    This suite's derivation (LoRA-One App. C.3 is not available; its population value is
    :func:`precgd_rate`).  Noiseless labels: grad_W L = Sigma_hat E with E = A B - dW, so
    grad_A = Sigma_hat E B^T and grad_B = A^T Sigma_hat E.  Linearising precgd at a factorisation
    A* B* = dW (the finite-N minimiser is dW itself when Sigma_hat > 0, i.e. N >= d; the gradient
    vanishes there, so only its derivative enters):

        E' = E - eta (Sigma_hat E P_V + P_U Sigma_hat E) + O(E^2),

    P_U, P_V the projections onto dW's column and row spaces, for any A*, B* (the preconditioner
    turns B*^T (B* B*^T)^{-1} B* into P_V whatever the balance).  The map leaves the tangent space
    T = {P_U X + Y P_V} invariant and splits it into two blocks: the r_star columns E V (V: dW's
    right singular vectors) are each multiplied by I - eta (I + P_U) Sigma_hat (d x d), and the
    rows U^T E (I - P_V) by I - eta U^T Sigma_hat U (r_star x r_star).  (I + P_U) Sigma_hat is
    similar to the symmetric K = (I + c P_U) Sigma_hat (I + c P_U), c = sqrt(2) - 1, so its
    eigenvalues mu are real.  The error's contraction factor is the spectral radius
    rho = max |1 - eta mu| over eig(K) and eig(U^T Sigma_hat U), the risk's rho^2: the rate of
    the slowest mode.  It depends on Sigma_hat and dW's column space only, never on dW's singular
    values (kappa).  With Sigma_hat = I it is max(|1 - 2 eta|, 1 - eta)^2 = :func:`precgd_rate`.

    A rate fitted over a finite window of steps is at most this value and may lie below it: the
    modes near the slowest one (Sigma_hat's lower spectral edge holds several eigenvalues within a
    few percent of each other) decay at nearly the same rate and are not resolved; see
    :func:`precgd_linearised_risk` for the whole curve.

    Args:
        eta: step size.
        sigma_hat: X^T X / N.
        U: orthonormal basis of dW's column space (d x r_star).

    Returns:
        rho^2, the asymptotic per-step factor of the risk.
    """
    _, mu, _, nu, _ = _precgd_linearisation(sigma_hat, U)
    eta = jnp.asarray(eta, mu.dtype)
    return jnp.max(jnp.abs(1.0 - eta * jnp.concatenate([mu, nu]))) ** 2


def precgd_linearised_risk(
    eta: Scalar,
    sigma_hat: Float[Array, "d d"],
    U: Float[Array, "d r_star"],
    V: Float[Array, "k r_star"],
    error0: Float[Array, "d k"],
    steps: int,
) -> Float[Array, " steps_plus_1"]:
    """The risk ||E_t||_F^2 / 2 of precgd's linearisation at the optimum, iterated exactly from E_0.

    This suite's (see :func:`precgd_rate_linearised` for the map).  In closed form, from the
    eigendecompositions: the column block X_t = E_t V obeys X_{t+1} = (I - eta (I + P_U)
    Sigma_hat) X_t, i.e. X_t = L W (1 - eta mu)^t W^T L^{-1} X_0 with L = I + c P_U and K = L
    Sigma_hat L = W diag(mu) W^T; the row block Z_t = U^T E_t (I - P_V) obeys Z_t = Q (1 - eta
    nu)^t Q^T Z_0 with U^T Sigma_hat U = Q diag(nu) Q^T.  The two blocks are orthogonal, so the
    risk is (||X_t||^2 + ||Z_t||^2) / 2.  The component of E_0 off the tangent space
    (P_U^perp E_0 P_V^perp) is dropped: it is second order near the optimum, and zero for
    spectral init in the noiseless model, where E_0 = (Sigma_hat - I) dW.

    With the same rate estimator applied to this curve and to a run, the estimator's own error
    (the unresolved modes near the slowest one) is the same on both, so this is the prediction
    of a *fitted* rate, and rho^2 - (its fitted rate) measures that error.

    Args:
        eta: step size.
        sigma_hat: X^T X / N.
        U: orthonormal basis of dW's column space (d x r_star).
        V: orthonormal basis of dW's row space (k x r_star).
        error0: E_0 = A_0 B_0 - dW.
        steps: number of steps (static).

    Returns:
        The risk at steps 0 .. steps.
    """
    lift, mu, W, nu, Q = _precgd_linearisation(sigma_hat, U)
    dtype = mu.dtype
    U, V, error0 = (jnp.asarray(a, dtype) for a in (U, V, error0))
    eta = jnp.asarray(eta, dtype)
    c = jnp.sqrt(2.0) - 1.0
    lift_inv = jnp.eye(U.shape[0], dtype=dtype) - (c / (1.0 + c)) * (U @ U.T)

    def powers(base: Array) -> Array:  # base^t for t = 0 .. steps, shape (steps + 1, n); negative bases too
        repeated = jnp.broadcast_to(base, (steps,) + base.shape)
        return jnp.concatenate([jnp.ones((1,) + base.shape, dtype), jnp.cumprod(repeated, axis=0)])

    X0 = W.T @ (lift_inv @ (error0 @ V))  # (d, r_star) in K's eigenbasis
    Z0 = Q.T @ (U.T @ error0 - (U.T @ error0 @ V) @ V.T)  # (r_star, k)
    X = jnp.einsum("ij,tj,jk->tik", lift @ W, powers(1.0 - eta * mu), X0)
    Z = jnp.einsum("ij,tj,jk->tik", Q, powers(1.0 - eta * nu), Z0)
    return 0.5 * (jnp.sum(X**2, axis=(1, 2)) + jnp.sum(Z**2, axis=(1, 2)))


def gd_rate(eta: Scalar, s_rstar: Scalar) -> Float[Array, ...]:
    """Per-step rate of the risk under plain GD near a balanced optimum: (1 - eta s_{r*})^2.

    LoRA-One App. C.2 (GD from spectral init converges linearly at a kappa-dependent rate).
    Derivation (this suite's, population mode, r = r_star, at the balanced optimum A = U S^{1/2},
    B = S^{1/2} V^T): A' B' = A B - eta (E B^T B + A A^T E) + O(E^2), so u_i^T E v_j contracts by
    1 - eta (s_i + s_j) and the off-span blocks P_A^perp E v_j by 1 - eta s_j.  The slowest is
    1 - eta s_{r*}; with eta <~ 1 / s_1 for stability, 1 - rate ~ 2 eta s_1 / kappa: the law
    1 - rate ~ kappa^{-1} (:data:`GD_RATE_KAPPA_EXPONENT`).

    Args:
        eta: step size.
        s_rstar: smallest nonzero singular value of dW.

    Returns:
        The risk's per-step contraction factor.
    """
    return (1.0 - jnp.asarray(eta) * jnp.asarray(s_rstar)) ** 2


def linear_test_loss(risk: Scalar, noise: Scalar = 0.0, k: int | Scalar = 1) -> Float[Array, ...]:
    """The expected test loss of W0 + D in the linear model: risk + noise^2 k / 2 (claim 8).

    LoRA-One Sec. 2 ("Optimization and Generalization"): for a fresh (x, y) with x ~ N(0, I_d)
    and y = (W0 + dW)^T x, E||y - (W0 + D)^T x||^2 = E||(D - dW)^T x||^2 = ||D - dW||_F^2 (as
    E[x x^T] = I), an equality.  In this suite's units (losses ||.||^2 / 2, per sample) the test
    loss E||y - (W0 + D)^T x||^2 / 2 equals the risk ||D - dW||_F^2 / 2, where D = A B + offset is
    the total update.  With label noise y = (W0 + dW)^T x + eps, eps ~ N(0, noise^2 I_k)
    independent of x (an extension of this suite, not the paper's setting), the cross term has
    mean 0 and E||eps||^2 / 2 = noise^2 k / 2 is added.

    Args:
        risk: ||D - dW||_F^2 / 2.
        noise: standard deviation of the label noise (0: the paper's noiseless model).
        k: output dimension.

    Returns:
        risk + noise^2 k / 2.
    """
    return jnp.asarray(risk) + 0.5 * jnp.asarray(noise) ** 2 * jnp.asarray(k)
