"""The nonlinear (ReLU-type) matrix-sensing model of LoRA-One Section 4, with finite N.

Model (the SPEC's notation): x ~ N(0, I_d), y = sigma((W0 + dW)^T x) + eps elementwise, with
eps ~ N(0, noise^2 I_k) (``noise = 0`` is the SPEC's and the paper's noiseless model; label noise
is supported as an option).  Data X (N x d), Y = sigma(X (W0 + dW)) + E (N x k).  The training
loss of the LoRA factors, on top of a fixed low-rank ``offset`` (zero except for the inits that
keep the model unchanged at step 0), is

    L(A, B) = ||sigma(X (W0 + offset + A B)) - Y||_F^2 / (2N).

Writing P = X (W0 + offset + A B) (N x k, the pre-activations) and
R = (sigma(P) - Y) * sigma'(P) / N (elementwise), the chain rule gives

    grad_W L = X^T R,   grad_A L = X^T (R B^T),   grad_B L = (X A)^T R,

and the one-step full gradient is G = -grad_W L(W0) = X^T [(Y - sigma(X W0)) * sigma'(X W0)] / N.
For ReLU and small dW, sigma(x^T (w0 + dw)) - sigma(x^T w0) ~ 1{x^T w0 > 0} x^T dw and
E[x x^T 1{x^T w0 > 0}] = I / 2 (x -> -x symmetry), so G ~ dW / 2: LoRA-One's Thm 4.2 therefore
uses spectral init with gamma = 2.

There are no sufficient statistics here, so a step touches X.  The factored form above keeps it
at O(N r (d + k)) per step (X A, then (X A) B, then X^T (R B^T)): the N x k matrix X (W0 + offset)
is computed once per trajectory, and the d x k gradient X^T R is never formed in the loop.

Activations (``ACTIVATIONS``): ``relu`` (default), ``leaky_relu`` (slope ``leaky_slope``, which
may be a traced scalar so a sweep over it is one compiled program), ``tanh``, ``gelu`` (the exact
erf form z Phi(z), not the tanh approximation) and ``identity`` (which reproduces the linear model
of :func:`~lora_theory.models.linear.make_linear_problem` exactly: same key, same W0, dW, X, Y).

**Subgradient convention at 0.**  ReLU is not differentiable at 0; this module uses
sigma'(0) = 0 for ``relu`` (the convention of ``jax.nn.relu`` and of PyTorch) and, consistently,
sigma'(0) = leaky_slope for ``leaky_relu`` (the left derivative).  Both are valid subgradients.
With Gaussian data a pre-activation is exactly 0 with probability 0, so this matters only for
constructed inputs; a test pins it down.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import DTypeLike
from jaxtyping import Array, Float

from .linear import LowRank, _draw_weights, top_singular_subspaces

__all__ = [
    "ACTIVATIONS",
    "activate",
    "activation_derivative",
    "NonlinearObjective",
    "NonlinearProblem",
    "sample_nonlinear_data",
    "make_nonlinear_problem",
]

#: the activations of the nonlinear model (``RunConfig.activation``).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "gelu", "identity")

_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid activations: {', '.join(ACTIVATIONS)}")


def activate(z: Float[Array, ...], activation: str, leaky_slope: Float[Array, ""] | float = 0.01) -> Float[Array, ...]:
    """sigma(z), elementwise.

    relu: max(z, 0); leaky_relu: z if z > 0 else leaky_slope z; tanh; gelu: z Phi(z) (exact, erf
    form); identity: z.

    Args:
        z: pre-activations, any shape.
        activation: one of ``ACTIVATIONS`` (static).
        leaky_slope: slope of ``leaky_relu`` on the negative side (may be traced).

    Returns:
        sigma(z), same shape and dtype.
    """
    _check_activation(activation)
    if activation == "relu":
        return jnp.where(z > 0, z, jnp.zeros_like(z))
    if activation == "leaky_relu":
        return jnp.where(z > 0, z, jnp.asarray(leaky_slope, z.dtype) * z)
    if activation == "tanh":
        return jnp.tanh(z)
    if activation == "gelu":
        return z * 0.5 * (1.0 + lax.erf(z * _INV_SQRT_2))
    return z


def activation_derivative(
    z: Float[Array, ...], activation: str, leaky_slope: Float[Array, ""] | float = 0.01
) -> Float[Array, ...]:
    """sigma'(z), elementwise, with the subgradient convention sigma'(0) = 0 for ReLU.

    relu: 1{z > 0} (so sigma'(0) = 0); leaky_relu: 1 if z > 0 else leaky_slope (so sigma'(0) =
    leaky_slope); tanh: 1 - tanh(z)^2; gelu: Phi(z) + z phi(z); identity: 1.

    Args:
        z: pre-activations, any shape.
        activation: one of ``ACTIVATIONS`` (static).
        leaky_slope: slope of ``leaky_relu`` on the negative side (may be traced).

    Returns:
        sigma'(z), same shape and dtype.
    """
    _check_activation(activation)
    one = jnp.ones_like(z)
    if activation == "relu":
        return jnp.where(z > 0, one, jnp.zeros_like(z))
    if activation == "leaky_relu":
        return jnp.where(z > 0, one, jnp.asarray(leaky_slope, z.dtype) * one)
    if activation == "tanh":
        return 1.0 - jnp.tanh(z) ** 2
    if activation == "gelu":
        return 0.5 * (1.0 + lax.erf(z * _INV_SQRT_2)) + z * _INV_SQRT_2PI * jnp.exp(-0.5 * z**2)
    return one


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["X", "Y", "pre_offset", "offset", "leaky_slope"],
    meta_fields=["activation"],
)
@dataclasses.dataclass(frozen=True)
class NonlinearObjective:
    """The nonlinear model's training loss as a function of (A, B), on top of W0 + offset.

    Attributes:
        X, Y: the training data (N x d, N x k).
        pre_offset: X (W0 + offset), N x k, computed once per trajectory.
        offset: the fixed low-rank offset.
        leaky_slope: slope of ``leaky_relu`` (a scalar array; unused by the other activations).
        activation: one of ``ACTIVATIONS`` (static).
    """

    X: Float[Array, "N d"]
    Y: Float[Array, "N k"]
    pre_offset: Float[Array, "N k"]
    offset: LowRank
    leaky_slope: Float[Array, ""]
    activation: str

    def loss(self, A: Float[Array, "d r"], B: Float[Array, "r k"]) -> Float[Array, ""]:
        """L(A, B) = ||sigma(X (W0 + offset) + (X A) B) - Y||_F^2 / (2N)."""
        pre = self.pre_offset + (self.X @ A) @ B
        residual = activate(pre, self.activation, self.leaky_slope) - self.Y
        return 0.5 * jnp.sum(residual**2) / self.X.shape[0]

    def factor_grads(
        self, A: Float[Array, "d r"], B: Float[Array, "r k"]
    ) -> tuple[Float[Array, "d r"], Float[Array, "r k"]]:
        """(grad_A L, grad_B L) = (X^T (R B^T), (X A)^T R), R = (sigma(P) - Y) * sigma'(P) / N.

        P = X (W0 + offset + A B) are the pre-activations; cost O(N r (d + k)).
        """
        XA = self.X @ A
        pre = self.pre_offset + XA @ B
        R = (activate(pre, self.activation, self.leaky_slope) - self.Y) * activation_derivative(
            pre, self.activation, self.leaky_slope
        )
        R = R / self.X.shape[0]
        return self.X.T @ (R @ B.T), XA.T @ R


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "W0",
        "dW",
        "G",
        "loss_W0",
        "G_left",
        "G_right",
        "dW_left",
        "dW_right",
        "dW_singular_values",
        "W0_left",
        "X",
        "Y",
        "X_test",
        "Y_test",
        "pre_test_W0",
        "leaky_slope",
    ],
    meta_fields=["activation"],
)
@dataclasses.dataclass(frozen=True)
class NonlinearProblem:
    """One instance of the nonlinear model y = sigma((W0 + dW)^T x) + eps, with N samples.

    A pytree (the activation is static metadata, every other field an array), so a batch of
    problems is a ``NonlinearProblem`` with leading axes and ``jax.vmap`` works over it.  It has
    the members the engine, the inits and the metrics use (``W0, dW, G, G_left, G_right,
    dW_left, dW_right, dW_singular_values, loss_W0, objective, extra_metrics``), like
    :class:`~lora_theory.models.linear.LinearProblem`.

    Attributes:
        W0: pretrained weight, d x k, N(0, 1) entries.
        dW: downstream shift U diag(s) V^T, rank r_star.
        G: one-step full gradient -grad_W L(W0) = X^T [(Y - sigma(X W0)) * sigma'(X W0)] / N
            (about dW / 2 for ReLU and a small shift).
        loss_W0: L(W0) = ||sigma(X W0) - Y||_F^2 / (2N).
        G_left, G_right: top-r_star left / right singular vectors of G (for align_*_G).
        dW_left, dW_right: the U and V of dW (for align_*_dW).
        dW_singular_values: s_1 >= ... >= s_{r_star}.
        X, Y: training data, N x d and N x k.
        X_test, Y_test: a fresh sample of the same distribution (for ``test_loss``).
        pre_test_W0: X_test W0 (N_test x k), cached so a logged ``test_loss`` costs
            O(N_test r (d + k)), not O(N_test d k).
        leaky_slope: slope of ``leaky_relu`` (scalar array, may be traced).
        W0_left: top-r_star left singular vectors of W0 (for align_A_W0; ``None``: NaN).
        activation: one of ``ACTIVATIONS`` (static).
    """

    W0: Float[Array, "d k"]
    dW: Float[Array, "d k"]
    G: Float[Array, "d k"]
    loss_W0: Float[Array, ""]
    G_left: Float[Array, "d r_star"]
    G_right: Float[Array, "k r_star"]
    dW_left: Float[Array, "d r_star"]
    dW_right: Float[Array, "k r_star"]
    dW_singular_values: Float[Array, " r_star"]
    X: Float[Array, "N d"]
    Y: Float[Array, "N k"]
    X_test: Float[Array, "N_test d"]
    Y_test: Float[Array, "N_test k"]
    pre_test_W0: Float[Array, "N_test k"]
    leaky_slope: Float[Array, ""]
    W0_left: Float[Array, "d r_star"] | None = None
    activation: str = "relu"

    def objective(self, offset: LowRank) -> NonlinearObjective:
        """The training loss as a function of (A, B) on top of W0 + offset (X (W0 + offset) cached)."""
        pre_offset = self.X @ self.W0 + (self.X @ offset.left) @ offset.right
        return NonlinearObjective(self.X, self.Y, pre_offset, offset, self.leaky_slope, self.activation)

    def test_loss(self, D: LowRank | Float[Array, "d k"]) -> Float[Array, ""]:
        """||sigma(X_test (W0 + D)) - Y_test||_F^2 / (2 N_test): the generalisation error of W0 + D.

        ``D`` is a dense d x k update or a :class:`LowRank` (then X_test D is formed factor by factor).
        """
        if isinstance(D, LowRank):
            pre = self.pre_test_W0 + (self.X_test @ D.left) @ D.right
        else:
            pre = self.pre_test_W0 + self.X_test @ D
        residual = activate(pre, self.activation, self.leaky_slope) - self.Y_test
        return 0.5 * jnp.sum(residual**2) / self.X_test.shape[0]

    def extra_metrics(self, A: Float[Array, "d r"], B: Float[Array, "r k"], offset: LowRank) -> dict[str, Array]:
        """``test_loss``: the loss of W0 + offset + A B on the fresh sample (X_test, Y_test)."""
        D = LowRank(jnp.concatenate([A, offset.left], axis=1), jnp.concatenate([B, offset.right], axis=0))
        return {"test_loss": self.test_loss(D)}


def sample_nonlinear_data(
    key: jax.Array,
    W_star: Float[Array, "d k"],
    n_samples: int,
    noise: Float[Array, ""] | float,
    activation: str,
    leaky_slope: Float[Array, ""] | float = 0.01,
) -> tuple[Float[Array, "N d"], Float[Array, "N k"]]:
    """Draw X (N x d, N(0, I_d) rows) and Y = sigma(X W_star) + noise * E, E with N(0, 1) entries.

    Uses the key exactly as :func:`~lora_theory.models.linear.sample_linear_data` does, so with the
    identity activation both return the same (X, Y).
    """
    d, k = W_star.shape
    key_x, key_e = jax.random.split(key)
    X = jax.random.normal(key_x, (n_samples, d), W_star.dtype)
    E = jax.random.normal(key_e, (n_samples, k), W_star.dtype)
    Y = activate(X @ W_star, activation, leaky_slope) + jnp.asarray(noise, W_star.dtype) * E
    return X, Y


def make_nonlinear_problem(
    d: int,
    k: int,
    r_star: int,
    n_samples: int,
    singular_values: Float[Array, " r_star"],
    noise: Float[Array, ""] | float = 0.0,
    *,
    activation: str = "relu",
    leaky_slope: Float[Array, ""] | float = 0.01,
    n_test: int | None = None,
    key: jax.Array,
    dtype: DTypeLike = jnp.float64,
    target_subspace: str = "random",
    target_angle: Float[Array, ""] | float = 0.0,
) -> NonlinearProblem:
    """The nonlinear model y = sigma((W0 + dW)^T x) + eps with N training and N_test test samples.

    G = -grad_W L(W0) = X^T [(Y - sigma(X W0)) * sigma'(X W0)] / N.

    Args:
        d: input dimension.
        k: output dimension.
        r_star: rank of dW.
        n_samples: N.
        singular_values: s_1..s_{r_star} of dW (e.g. from :func:`~lora_theory.models.linear.target_spectrum`).
        noise: standard deviation of eps (0: the paper's noiseless model).
        activation: one of ``ACTIVATIONS``.
        leaky_slope: negative-side slope of ``leaky_relu`` (may be traced).
        n_test: size of the fresh test sample (default N).
        key: a ``jax.random.key``, split as in :func:`~lora_theory.models.linear.make_linear_problem`
            (same key: same W0, dW, X and, for the identity activation, the same Y); the test
            sample comes from ``fold_in(data key, 1)``.
        dtype: float64 (default, for theory checks) or float32.
        target_subspace: where dW's singular subspaces lie, as in
            :func:`~lora_theory.models.linear.make_linear_problem`.
        target_angle: their tilt, as there.

    Returns:
        A :class:`NonlinearProblem`.
    """
    _check_activation(activation)
    n_test = n_samples if n_test is None else n_test
    slope = jnp.asarray(leaky_slope, dtype)
    key_weights, key_data = jax.random.split(key)
    W0, U, s, V, dW, W0_left = _draw_weights(
        key_weights, d, k, r_star, singular_values, dtype, target_subspace, target_angle
    )
    W_star = W0 + dW
    X, Y = sample_nonlinear_data(key_data, W_star, n_samples, noise, activation, slope)
    X_test, Y_test = sample_nonlinear_data(jax.random.fold_in(key_data, 1), W_star, n_test, noise, activation, slope)
    pre = X @ W0
    residual = Y - activate(pre, activation, slope)
    G = X.T @ (residual * activation_derivative(pre, activation, slope)) / n_samples
    loss_W0 = 0.5 * jnp.sum(residual**2) / n_samples
    G_left, _, G_right = top_singular_subspaces(G, r_star)
    return NonlinearProblem(
        W0, dW, G, loss_W0, G_left, G_right, U, V, s, X, Y, X_test, Y_test, X_test @ W0, slope, W0_left, activation
    )
