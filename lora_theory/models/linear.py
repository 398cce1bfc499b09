"""Matrix-sensing problems: the linear model (finite N), population mode, and their objectives.

Notation (LoRA-One / the SPEC): pretrained weight ``W0`` (d x k), downstream shift ``dW`` of rank
``r_star``, LoRA update ``A B`` with ``A`` (d x r) on the input side and ``B`` (r x k) on the output
side.  PEFT and PyTorch write ``W + B A`` with ``B`` on the output side: the roles are swapped there.

The linear loss depends on the data only through the sufficient statistics

    Sigma_hat = X^T X / N,   G = X^T (Y - X W0) / N = -grad_W L(W0),   L(W0) = ||X W0 - Y||_F^2 / (2N),

so that, writing ``D`` for the total update on top of ``W0``,

    L(W0 + D) = L(W0) - <G, D> + <D, Sigma_hat D> / 2,       grad_W L(W0 + D) = -G + Sigma_hat D.

A training step costs O(d^2 r + d k r) and never touches ``X``.  Population mode is the same with
``Sigma_hat = I`` and ``G = dW`` (stored as ``sigma_hat=None``, so no d x d matmul is done).

**Where dW lives** (``target_subspace``, :data:`TARGET_SUBSPACES`): ``random`` draws dW's singular
vectors U, V Haar-distributed (independent of W0); ``top`` / ``bottom`` take them from W0's top /
bottom r_star singular subspaces (W0 = U_0 S_0 V_0^T, thin, m = min(d, k) components), tilted by
``target_angle`` theta towards a random direction orthogonal to them (:func:`tilt_subspace`):
U = cos(theta) U_0[:, pick] + sin(theta) Q_U, so every principal angle between span(U) and the
chosen W0 subspace is theta (0: inside it; pi/2: orthogonal to it).  The singular values are
unchanged.  The problem also holds W0's top-r_star left singular vectors (``W0_left``) for the
``align_A_W0`` metric.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, overload

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike
from jaxtyping import Array, Float

__all__ = [
    "TARGET_SUBSPACES",
    "tilt_subspace",
    "LowRank",
    "LinearProblem",
    "LinearObjective",
    "target_spectrum",
    "haar_orthonormal",
    "sample_linear_data",
    "make_linear_problem",
    "make_population_problem",
    "top_singular_subspaces",
]


#: where dW's singular subspaces lie (``RunConfig.target_subspace``).
TARGET_SUBSPACES = ("random", "top", "bottom")


class LowRank(NamedTuple):
    """A d x k matrix held as ``left @ right`` (left: d x r, right: r x k)."""

    left: Float[Array, "d r"]
    right: Float[Array, "r k"]

    def dense(self) -> Float[Array, "d k"]:
        return self.left @ self.right

    @classmethod
    def zeros(cls, d: int, k: int, r: int, dtype: DTypeLike) -> LowRank:
        return cls(jnp.zeros((d, r), dtype), jnp.zeros((r, k), dtype))


def target_spectrum(
    r_star: int, kappa: Float[Array, ""] | float, target_scale: Float[Array, ""] | float, dtype: DTypeLike
) -> Float[Array, " r_star"]:
    """Singular values of ``dW``: geometric from 1 down to 1/kappa, times ``target_scale``.

    s_i = target_scale * kappa^{-(i-1)/(r_star-1)}, i = 1..r_star (s = [target_scale] if r_star = 1),
    so that kappa = s_1 / s_{r_star}.
    """
    if r_star == 1:
        return jnp.full((1,), target_scale, dtype)
    exponents = jnp.arange(r_star, dtype=dtype) / (r_star - 1)
    return jnp.asarray(target_scale, dtype) * jnp.asarray(kappa, dtype) ** (-exponents)


def haar_orthonormal(key: jax.Array, n: int, m: int, dtype: DTypeLike) -> Float[Array, "n m"]:
    """An n x m matrix with orthonormal columns, Haar-distributed (QR of a Gaussian, signs fixed)."""
    return _orthonormal_columns(jax.random.normal(key, (n, m), dtype))


def _orthonormal_columns(Z: Float[Array, "n m"]) -> Float[Array, "n m"]:
    q, r = jnp.linalg.qr(Z)
    return q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0).astype(Z.dtype)


def tilt_subspace(base: Float[Array, "n m"], angle: Float[Array, ""] | float, key: jax.Array) -> Float[Array, "n m"]:
    """cos(theta) base + sin(theta) Q: orthonormal columns at principal angles theta from span(base).

    Q is Haar-distributed among the n x m matrices with orthonormal columns orthogonal to
    span(base) (a Gaussian projected off span(base) twice, then a sign-fixed QR), so the result
    has orthonormal columns and all its principal angles to span(base) equal theta.  Needs
    n >= 2m.  theta = 0 returns ``base`` itself.

    Args:
        base: n x m orthonormal columns (e.g. W0's top-r_star left singular vectors).
        angle: theta in [0, pi/2] (may be traced).
        key: a ``jax.random.key`` for Q.

    Returns:
        n x m orthonormal columns.
    """
    Z = jax.random.normal(key, base.shape, base.dtype)
    for _ in range(2):  # "twice is enough": the second pass removes the first's rounding
        Z = Z - base @ (base.T @ Z)
    theta = jnp.asarray(angle, base.dtype)
    return jnp.cos(theta) * base + jnp.sin(theta) * _orthonormal_columns(Z)


def top_singular_subspaces(
    M: Float[Array, "d k"], r: int
) -> tuple[Float[Array, "d r"], Float[Array, " r"], Float[Array, "k r"]]:
    """Top-r left singular vectors, singular values and right singular vectors of M."""
    U, s, Vt = jnp.linalg.svd(M, full_matrices=False)
    return U[:, :r], s[:r], Vt[:r].T


class LinearObjective(NamedTuple):
    """The loss of the linear model as a function of the LoRA factors, with a fixed low-rank offset.

    The total update is ``D = A B + offset.left @ offset.right``;  ``sigma_offset_left`` caches
    ``Sigma_hat @ offset.left`` and ``loss_at_offset`` caches ``L(W0 + offset)``, so a gradient
    costs O(d^2 r + d k r).
    """

    G: Float[Array, "d k"]
    sigma_hat: Float[Array, "d d"] | None
    offset: LowRank
    sigma_offset_left: Float[Array, "d r"]
    loss_at_offset: Float[Array, ""]

    def sigma_times(self, M: Float[Array, "d m"]) -> Float[Array, "d m"]:
        return M if self.sigma_hat is None else self.sigma_hat @ M

    def loss(self, A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, ""]:
        """L(W0 + offset + A B) = L(W0 + offset) - <G_off, A B> + <A B, Sigma A B>/2.

        G_off = G - Sigma offset is the negative gradient at W0 + offset.
        """
        sigma_A = self.sigma_times(A)
        AtG = A.T @ self.G - (sigma_A.T @ self.offset.left) @ self.offset.right
        quad = jnp.sum((A.T @ sigma_A) * (B @ B.T))
        return self.loss_at_offset - jnp.sum(AtG * B) + 0.5 * quad

    def factor_grads(
        self, A: Float[Array, "d r"], B: Float[Array, "r k"]
    ) -> tuple[Float[Array, "d r"], Float[Array, "r k"]]:
        """(grad_A L, grad_B L) = (grad_W L B^T, A^T grad_W L), grad_W L = -G + Sigma (A B + offset)."""
        sigma_A = self.sigma_times(A)
        L, R = self.offset
        SL = self.sigma_offset_left
        grad_A = -self.G @ B.T + sigma_A @ (B @ B.T) + SL @ (R @ B.T)
        grad_B = -A.T @ self.G + (A.T @ sigma_A) @ B + (A.T @ SL) @ R
        return grad_A, grad_B


class LinearProblem(NamedTuple):
    """One instance of the linear (finite N) or population matrix-sensing problem.

    Fields are arrays only, so a batch of problems is a ``LinearProblem`` with leading axes and
    ``jax.vmap`` works over it.  ``sigma_hat is None`` means population mode (Sigma = I).

    Attributes:
        W0: pretrained weight, d x k, N(0, 1) entries.
        dW: downstream shift U diag(s) V^T, rank r_star.
        G: one-step full gradient -grad_W L(W0) (= Sigma_hat dW + X^T E / N; = dW in population mode).
        sigma_hat: X^T X / N, or None in population mode.
        loss_W0: L(W0).
        G_left, G_right: top-r_star left / right singular vectors of G (for align_*_G).
        dW_left, dW_right: the U and V of dW (for align_*_dW).
        dW_singular_values: s_1 >= ... >= s_{r_star}.
        W0_left: top-r_star left singular vectors of W0 (for align_A_W0); ``None`` for a problem
            built by hand without them (the metric is then NaN).
    """

    W0: Float[Array, "d k"]
    dW: Float[Array, "d k"]
    G: Float[Array, "d k"]
    sigma_hat: Float[Array, "d d"] | None
    loss_W0: Float[Array, ""]
    G_left: Float[Array, "d r_star"]
    G_right: Float[Array, "k r_star"]
    dW_left: Float[Array, "d r_star"]
    dW_right: Float[Array, "k r_star"]
    dW_singular_values: Float[Array, " r_star"]
    W0_left: Float[Array, "d r_star"] | None = None

    @property
    def is_population(self) -> bool:
        return self.sigma_hat is None

    def objective(self, offset: LowRank) -> LinearObjective:
        """The training loss as a function of (A, B) on top of W0 + offset."""
        sigma = (lambda M: M) if self.sigma_hat is None else (lambda M: self.sigma_hat @ M)
        SL = sigma(offset.left)
        # L(W0 + O) = L(W0) - <G, O> + <O, Sigma O>/2 with O = left @ right.
        GO = jnp.sum((offset.left.T @ self.G) * offset.right)
        OSO = jnp.sum((offset.left.T @ SL) * (offset.right @ offset.right.T))
        return LinearObjective(self.G, self.sigma_hat, offset, SL, self.loss_W0 - GO + 0.5 * OSO)

    def extra_metrics(self, A: Float[Array, "d r"], B: Float[Array, "r k"], offset: LowRank) -> dict[str, Array]:
        """Model-specific metrics logged beside the common ones (none for the linear model)."""
        return {}


def sample_linear_data(
    key: jax.Array, W_star: Float[Array, "d k"], n_samples: int, noise: Float[Array, ""] | float
) -> tuple[Float[Array, "N d"], Float[Array, "N k"]]:
    """Draw X (N x d, N(0, I_d) rows) and Y = X W_star + noise * E, E with N(0, 1) entries."""
    d, k = W_star.shape
    key_x, key_e = jax.random.split(key)
    X = jax.random.normal(key_x, (n_samples, d), W_star.dtype)
    E = jax.random.normal(key_e, (n_samples, k), W_star.dtype)
    return X, X @ W_star + jnp.asarray(noise, W_star.dtype) * E


def _draw_weights(
    key: jax.Array,
    d: int,
    k: int,
    r_star: int,
    singular_values: Float[Array, " r_star"],
    dtype: DTypeLike,
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> tuple[Array, Array, Array, Array, Array, Array]:
    """(W0, U, s, V, dW = U diag(s) V^T, W0's top-r_star left singular vectors).

    W0 has N(0, 1) entries; U, V as ``target_subspace`` says (see the module docstring).  The
    ``random`` draw is the same, key for key, as before target subspaces existed.
    """
    key_w0, key_u, key_v = jax.random.split(key, 3)
    W0 = jax.random.normal(key_w0, (d, k), dtype)
    s = jnp.asarray(singular_values, dtype)
    if target_subspace == "random":
        U = haar_orthonormal(key_u, d, r_star, dtype)
        V = haar_orthonormal(key_v, k, r_star, dtype)
        W0_left = top_singular_subspaces(W0, r_star)[0]
    elif target_subspace in ("top", "bottom"):
        U0, _, V0t = jnp.linalg.svd(W0, full_matrices=False)
        m = min(d, k)
        pick = slice(0, r_star) if target_subspace == "top" else slice(m - r_star, m)
        U = tilt_subspace(U0[:, pick], target_angle, key_u)
        V = tilt_subspace(V0t[pick].T, target_angle, key_v)
        W0_left = U0[:, :r_star]
    else:
        raise ValueError(f"target_subspace must be one of {', '.join(TARGET_SUBSPACES)}, got {target_subspace!r}")
    return W0, U, s, V, (U * s) @ V.T, W0_left


@overload
def make_linear_problem(
    d: int,
    k: int,
    r_star: int,
    n_samples: int,
    singular_values: Float[Array, " r_star"],
    noise: Float[Array, ""] | float = 0.0,
    *,
    key: jax.Array,
    dtype: DTypeLike = jnp.float64,
    return_data: Literal[False] = False,
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> LinearProblem: ...


@overload
def make_linear_problem(
    d: int,
    k: int,
    r_star: int,
    n_samples: int,
    singular_values: Float[Array, " r_star"],
    noise: Float[Array, ""] | float = 0.0,
    *,
    key: jax.Array,
    dtype: DTypeLike = jnp.float64,
    return_data: Literal[True],
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> tuple[LinearProblem, tuple[Float[Array, "N d"], Float[Array, "N k"]]]: ...


def make_linear_problem(
    d: int,
    k: int,
    r_star: int,
    n_samples: int,
    singular_values: Float[Array, " r_star"],
    noise: Float[Array, ""] | float = 0.0,
    *,
    key: jax.Array,
    dtype: DTypeLike = jnp.float64,
    return_data: bool = False,
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> LinearProblem | tuple[LinearProblem, tuple[Float[Array, "N d"], Float[Array, "N k"]]]:
    """The linear model y = (W0 + dW)^T x + eps with N samples, reduced to sufficient statistics.

    Args:
        d: input dimension.
        k: output dimension.
        r_star: rank of dW.
        n_samples: N.
        singular_values: s_1..s_{r_star} of dW (e.g. from :func:`target_spectrum`).
        noise: standard deviation of eps.
        key: a ``jax.random.key``; the weights use one split, the data another, so the same key
            gives the same W0 and dW as :func:`make_population_problem`.
        dtype: float64 (default, for theory checks) or float32.
        return_data: also return (X, Y), for tests that compare with the X-based loss.
        target_subspace: ``random``, ``top`` or ``bottom`` (see the module docstring).
        target_angle: the tilt theta away from W0's subspace (``top`` / ``bottom`` only).

    Returns:
        A :class:`LinearProblem` (and ``(X, Y)`` if ``return_data``).
    """
    key_weights, key_data = jax.random.split(key)
    W0, U, s, V, dW, W0_left = _draw_weights(
        key_weights, d, k, r_star, singular_values, dtype, target_subspace, target_angle
    )
    X, Y = sample_linear_data(key_data, W0 + dW, n_samples, noise)
    residual = Y - X @ W0
    sigma_hat = X.T @ X / n_samples
    G = X.T @ residual / n_samples
    loss_W0 = 0.5 * jnp.sum(residual**2) / n_samples
    G_left, _, G_right = top_singular_subspaces(G, r_star)
    problem = LinearProblem(W0, dW, G, sigma_hat, loss_W0, G_left, G_right, U, V, s, W0_left)
    return (problem, (X, Y)) if return_data else problem


def make_population_problem(
    d: int,
    k: int,
    r_star: int,
    singular_values: Float[Array, " r_star"],
    *,
    key: jax.Array,
    dtype: DTypeLike = jnp.float64,
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> LinearProblem:
    """Population mode (N -> infinity, Sigma = I): L(A, B) = ||A B - dW||_F^2 / 2 and G = dW.

    This is HRP's setting, with M = W_target - W_init = dW (HRP writes the product B A^T).
    ``target_subspace`` and ``target_angle`` as in :func:`make_linear_problem`.
    """
    key_weights, _ = jax.random.split(key)
    W0, U, s, V, dW, W0_left = _draw_weights(
        key_weights, d, k, r_star, singular_values, dtype, target_subspace, target_angle
    )
    loss_W0 = 0.5 * jnp.sum(dW**2)
    G_left, _, G_right = top_singular_subspaces(dW, r_star)
    return LinearProblem(W0, dW, dW, None, loss_W0, G_left, G_right, U, V, s, W0_left)
