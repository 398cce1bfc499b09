"""Optimizers for the LoRA factors: GD and preconditioned GD (ScaledGD / Riemannian preconditioning).

Two forms of the same math:

* pure functions of arrays (:func:`gd_update`, :func:`precgd_update`, :func:`precondition`), which
  the engine uses with the learning rate and damping as traced (vmappable) scalars;
* optax ``GradientTransformation``s (:func:`scale_by_lora_preconditioner`, :func:`gd`,
  :func:`precgd`, :func:`freeze_factors`), so the preconditioner composes with any optax optimizer,
  e.g. ``optax.chain(scale_by_lora_preconditioner(1e-3), optax.adam(1e-2))`` (a preconditioned Adam
  in the spirit of Scaled-AdamW).

Both act on a :class:`LoRAFactors` pytree.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from ._linalg import spd_solve

__all__ = [
    "LoRAFactors",
    "OPTIMIZERS",
    "TRAIN_FACTORS",
    "precondition",
    "project_A",
    "optimizer_from_config",
    "gd_update",
    "precgd_update",
    "scale_by_lora_preconditioner",
    "freeze_factors",
    "gd",
    "precgd",
]

TRAIN_FACTORS = ("both", "A", "B")


class LoRAFactors(NamedTuple):
    """The trainable LoRA factors: W = W0 + A B, A (d x r) input side, B (r x k) output side."""

    A: Float[Array, "d r"]
    B: Float[Array, "r k"]


def precondition(
    A: Float[Array, "d r"],
    B: Float[Array, "r k"],
    grad_A: Float[Array, "d r"],
    grad_B: Float[Array, "r k"],
    damping: Float[Array, ""] | float,
    *,
    solve=spd_solve,
) -> tuple[Float[Array, "d r"], Float[Array, "r k"]]:
    """Riemannian / ScaledGD preconditioning of the factor gradients.

    Returns (grad_A (B B^T + lam I)^{-1},  (A^T A + lam I)^{-1} grad_B), computed with Cholesky
    solves, never an explicit inverse.  With lam = 0 (the theory's choice) a rank-deficient factor
    makes the solve singular and the result NaN: the engine then marks the run as diverged.

    Args:
        A, B: the factors; grad_A, grad_B: the gradients to precondition; damping: lam.
        solve: ``(M, rhs) -> M^{-1} rhs`` for symmetric positive definite M; the default
            (:func:`lora_theory._linalg.spd_solve`) is an unrolled Cholesky for r <= 12, where it
            beats LAPACK, and LAPACK's above (HRP's preheat runs at ranks up to d).
    """
    eye = jnp.eye(A.shape[1], dtype=A.dtype)
    lam = jnp.asarray(damping, A.dtype)
    pre_A = solve(B @ B.T + lam * eye, grad_A.T).T
    pre_B = solve(A.T @ A + lam * eye, grad_B)
    return pre_A, pre_B


def gd_update(factors: LoRAFactors, grads: LoRAFactors, lr) -> LoRAFactors:
    """A <- A - eta grad_A L,  B <- B - eta grad_B L."""
    return LoRAFactors(factors.A - lr * grads.A, factors.B - lr * grads.B)


def precgd_update(factors: LoRAFactors, grads: LoRAFactors, lr, damping, *, solve=spd_solve) -> LoRAFactors:
    """A <- A - eta grad_A L (B B^T + lam I)^{-1},  B <- B - eta (A^T A + lam I)^{-1} grad_B L.

    LoRA-One's preconditioned GD (Algorithm 1; its toy code uses lam = 1e-3, its theory lam = 0).
    ``solve`` as in :func:`precondition`.
    """
    pre_A, pre_B = precondition(factors.A, factors.B, grads.A, grads.B, damping, solve=solve)
    return LoRAFactors(factors.A - lr * pre_A, factors.B - lr * pre_B)


# ---------------------------------------------------------------------------------------------
# optax forms
# ---------------------------------------------------------------------------------------------


def scale_by_lora_preconditioner(damping: float = 0.0) -> optax.GradientTransformation:
    """optax transformation: updates (gA, gB) -> (gA (B B^T + lam I)^{-1}, (A^T A + lam I)^{-1} gB).

    Needs ``params`` (a :class:`LoRAFactors`) in ``update``.  Chain it before any optax optimizer.
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("scale_by_lora_preconditioner needs params=LoRAFactors(A, B) in update()")
        pre_A, pre_B = precondition(params.A, params.B, updates.A, updates.B, damping)
        return LoRAFactors(pre_A, pre_B), state

    return optax.GradientTransformation(init_fn, update_fn)


def freeze_factors(train_factors: str) -> optax.GradientTransformation:
    """optax transformation that zeroes the updates of the factors that do not train.

    ``train_factors``: 'both' (classic LoRA), 'B' (asymmetric LoRA, A frozen, as in HRP's analysis),
    'A', or 'none' (nothing trains).
    """
    if train_factors not in (*TRAIN_FACTORS, "none"):
        raise ValueError(f"train_factors must be one of {TRAIN_FACTORS}, got {train_factors!r}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        A = updates.A if train_factors in ("both", "A") else jnp.zeros_like(updates.A)
        B = updates.B if train_factors in ("both", "B") else jnp.zeros_like(updates.B)
        return LoRAFactors(A, B), state

    return optax.GradientTransformation(init_fn, update_fn)


def gd(lr: float) -> optax.GradientTransformation:
    """Plain gradient descent on the factors as an optax transformation."""
    return optax.scale(-lr)


def precgd(lr: float, damping: float = 0.0) -> optax.GradientTransformation:
    """Preconditioned GD as an optax transformation (same trajectory as :func:`precgd_update`)."""
    return optax.chain(scale_by_lora_preconditioner(damping), optax.scale(-lr))


def project_A(basis: Float[Array, "d r"]) -> optax.GradientTransformation:
    """optax transformation: A's update u -> basis basis^T u (B's update unchanged).

    LoRA-SB's parametrisation W = W0 + U_r R V_r^T as factors A = U_r R, B = V_r^T: A moves only
    inside span(U_r) (``basis`` = U_r, orthonormal columns).  Chain it *after* the optimizer
    (``optax.chain(opt, project_A(basis), freeze_factors('A'))``), so that an elementwise
    optimizer (Adam) cannot leave the span; for gd and precgd the order does not matter
    (the projection acts on the left, the preconditioner on the right).
    """

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        return LoRAFactors(basis @ (basis.T @ updates.A), updates.B), state

    return optax.GradientTransformation(init_fn, update_fn)


#: optimizer name -> builder(lr, damping) -> GradientTransformation (the CLI's and RunConfig's
#: names; a user can pass any ``optax.GradientTransformation`` over LoRAFactors to ``train``).
OPTIMIZERS = {
    "gd": lambda lr, damping: gd(lr),
    "precgd": lambda lr, damping: precgd(lr, damping),
}


def optimizer_from_config(
    name: str, *, lr, damping=0.0, train_factors: str = "both", A_basis=None
) -> optax.GradientTransformation:
    """The optimizer a :class:`~lora_theory.config.RunConfig` names, with its constraints.

    ``OPTIMIZERS[name](lr, damping)``, followed by :func:`project_A` when the init fixes A's span
    (``A_basis``, LoRA-SB: B is then frozen too) and :func:`freeze_factors` when only one factor
    trains.  ``lr`` and ``damping`` may be traced (a grid over them is one ``vmap``).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")
    parts = [OPTIMIZERS[name](lr, damping)]
    if A_basis is not None:
        parts.append(project_A(A_basis))
        train_factors = "A" if train_factors in ("both", "A") else "none"
    if train_factors != "both":
        parts.append(freeze_factors(train_factors))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)
