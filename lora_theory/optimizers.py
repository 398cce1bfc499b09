"""Optimizers for the LoRA factors: GD and preconditioned GD (ScaledGD / Riemannian preconditioning).

Two forms of the same math:

* pure functions of arrays (:func:`gd_update`, :func:`precgd_update`, :func:`precondition`), which
  the engine uses with the learning rate and damping as traced (vmappable) scalars;
* optax ``GradientTransformation``s (:func:`scale_by_lora_preconditioner`, :func:`gd`,
  :func:`precgd`, :func:`freeze_factors`), so the preconditioner composes with any optax optimizer,
  e.g. ``optax.chain(scale_by_lora_preconditioner(1e-3), optax.adam(1e-2))`` (a preconditioned Adam
  in the spirit of Scaled-AdamW).

Both act on a :class:`LoRAFactors` pytree.  For a network with adapters on several layers,
:func:`layerwise` applies a transformation to each layer's factors, :func:`maybe` switches a part of
a chain on or off with a traced flag (so gd, precgd, Adam and a preconditioned Adam are one
program under ``vmap``), and :func:`standard_promotion` lets optax's Adam run under strict dtype
promotion.

**LoRA+** (Hayou, Ghosh, Yu, "LoRA+: Efficient Low Rank Adaptation of Large Models", ICML 2024):
B's learning rate is ``lr_ratio`` times A's (B is the zero-initialised output-side factor in this
suite's W0 + A B as in PEFT's W0 + B A).  ``gd``, ``precgd``, their pure forms and
:func:`scale_factors` take ``lr_ratio``; 1 (the default) is the plain optimizer, bit for bit.

The names a :class:`~lora_theory.config.RunConfig` gives (``optimizer``, ``preheat_optimizer``,
``--optimizer``) are the registry :data:`OPTIMIZERS`: name -> :class:`OptimizerSpec` (a builder of
a transformation from the declared hyper-parameters, ``lr`` and/or ``damping``).
:func:`register_optimizer` adds one (any optax transformation, without editing the package);
:func:`optimizer_from_config` is the one dispatch site, so an unknown name fails the same way
everywhere (and :func:`~lora_theory.config.validate` rejects it before anything compiles).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float

from ._linalg import spd_solve
from .config import invalid

#: a hyper-parameter: a Python number or a scalar array (may be traced: a swept learning rate)
Scalar = Float[Array, ""] | float

__all__ = [
    "LoRAFactors",
    "OPTIMIZERS",
    "OPTIMIZER_PARAMS",
    "OptimizerSpec",
    "register_optimizer",
    "get_optimizer",
    "TRAIN_FACTORS",
    "precondition",
    "project_A",
    "optimizer_from_config",
    "gd_update",
    "precgd_update",
    "scale_by_lora_preconditioner",
    "freeze_factors",
    "scale_factors",
    "gd",
    "precgd",
    "layerwise",
    "maybe",
    "standard_promotion",
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
    solve: Callable[[Array, Array], Array] = spd_solve,
) -> tuple[Float[Array, "d r"], Float[Array, "r k"]]:
    """Riemannian / ScaledGD preconditioning of the factor gradients.

    Returns (grad_A (B B^T + lam I)^{-1},  (A^T A + lam I)^{-1} grad_B), computed with Cholesky
    solves, never an explicit inverse.  With lam = 0 (the theory's choice) a rank-deficient factor
    makes the solve singular and the result NaN: the engine then marks the run as diverged.

    Args:
        A: the input-side factor.
        B: the output-side factor.
        grad_A: the gradient to precondition on A's side.
        grad_B: the gradient to precondition on B's side.
        damping: lam.
        solve: ``(M, rhs) -> M^{-1} rhs`` for symmetric positive definite M; the default
            (:func:`lora_theory._linalg.spd_solve`) is an unrolled Cholesky for r <= 10, where it
            beats LAPACK, and LAPACK's above (HRP's preheat runs at ranks up to d).
    """
    eye = jnp.eye(A.shape[1], dtype=A.dtype)
    lam = jnp.asarray(damping, A.dtype)
    pre_A = solve(B @ B.T + lam * eye, grad_A.T).T
    pre_B = solve(A.T @ A + lam * eye, grad_B)
    return pre_A, pre_B


def gd_update(factors: LoRAFactors, grads: LoRAFactors, lr: Scalar, lr_ratio: Scalar = 1.0) -> LoRAFactors:
    """A <- A - eta grad_A L,  B <- B - lr_ratio eta grad_B L (LoRA+ when lr_ratio != 1)."""
    return LoRAFactors(factors.A - lr * grads.A, factors.B - (lr * lr_ratio) * grads.B)


def precgd_update(
    factors: LoRAFactors,
    grads: LoRAFactors,
    lr: Scalar,
    damping: Scalar,
    lr_ratio: Scalar = 1.0,
    *,
    solve: Callable[[Array, Array], Array] = spd_solve,
) -> LoRAFactors:
    """A <- A - eta grad_A L (B B^T + lam I)^{-1},  B <- B - lr_ratio eta (A^T A + lam I)^{-1} grad_B L.

    LoRA-One's preconditioned GD (Algorithm 1; its toy code uses lam = 1e-3, its theory lam = 0),
    with LoRA+'s ratio on B's step.  ``solve`` as in :func:`precondition`.
    """
    pre_A, pre_B = precondition(factors.A, factors.B, grads.A, grads.B, damping, solve=solve)
    return LoRAFactors(factors.A - lr * pre_A, factors.B - (lr * lr_ratio) * pre_B)


# ---------------------------------------------------------------------------------------------
# optax forms
# ---------------------------------------------------------------------------------------------


def scale_by_lora_preconditioner(damping: float = 0.0) -> optax.GradientTransformation:
    """optax transformation: updates (gA, gB) -> (gA (B B^T + lam I)^{-1}, (A^T A + lam I)^{-1} gB).

    Needs ``params`` (a :class:`LoRAFactors`) in ``update``.  Chain it before any optax optimizer.
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
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

    def init_fn(params: optax.Params) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        A = updates.A if train_factors in ("both", "A") else jnp.zeros_like(updates.A)
        B = updates.B if train_factors in ("both", "B") else jnp.zeros_like(updates.B)
        return LoRAFactors(A, B), state

    return optax.GradientTransformation(init_fn, update_fn)


def scale_factors(step_A: Scalar, step_B: Scalar) -> optax.GradientTransformation:
    """optax transformation: updates (u_A, u_B) -> (step_A u_A, step_B u_B), a step size per factor.

    ``optax.scale(step)`` is ``scale_factors(step, step)``; LoRA+ is ``step_B = lr_ratio step_A``.
    Both step sizes may be traced.  To give any optax optimizer LoRA+'s ratio, chain it after the
    optimizer: ``optax.chain(optax.adam(lr), scale_factors(1.0, lr_ratio))``.
    """

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        return LoRAFactors(step_A * updates.A, step_B * updates.B), state

    return optax.GradientTransformation(optax.init_empty_state, update_fn)


def gd(lr: float, lr_ratio: float = 1.0) -> optax.GradientTransformation:
    """Plain gradient descent on the factors as an optax transformation (B's lr: lr_ratio x lr).

    Examples:
        >>> factors = lt.LoRAFactors(A=jnp.ones((3, 1)), B=jnp.ones((1, 2)))
        >>> grads = lt.LoRAFactors(A=jnp.ones((3, 1)), B=2.0 * jnp.ones((1, 2)))
        >>> optimizer = lt.gd(0.1, lr_ratio=4.0)  # LoRA+: B steps 4 times further
        >>> updates, state = optimizer.update(grads, optimizer.init(factors), factors)
        >>> updates.A.ravel().tolist(), updates.B.ravel().tolist()  # -lr grad_A, -lr_ratio lr grad_B
        ([-0.1, -0.1, -0.1], [-0.8, -0.8])
    """
    return scale_factors(-lr, -lr * lr_ratio)


def precgd(lr: float, damping: float = 0.0, lr_ratio: float = 1.0) -> optax.GradientTransformation:
    """Preconditioned GD as an optax transformation (same trajectory as :func:`precgd_update`)."""
    return optax.chain(scale_by_lora_preconditioner(damping), scale_factors(-lr, -lr * lr_ratio))


def project_A(basis: Float[Array, "d r"]) -> optax.GradientTransformation:
    """optax transformation: A's update u -> basis basis^T u (B's update unchanged).

    LoRA-SB's parametrisation W = W0 + U_r R V_r^T as factors A = U_r R, B = V_r^T: A moves only
    inside span(U_r) (``basis`` = U_r, orthonormal columns).  Chain it *after* the optimizer
    (``optax.chain(opt, project_A(basis), freeze_factors('A'))``), so that an elementwise
    optimizer (Adam) cannot leave the span; for gd and precgd the order does not matter
    (the projection acts on the left, the preconditioner on the right).
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        del params
        return LoRAFactors(basis @ (basis.T @ updates.A), updates.B), state

    return optax.GradientTransformation(init_fn, update_fn)


def layerwise(transformation: optax.GradientTransformation) -> optax.GradientTransformation:
    """optax transformation: ``transformation`` applied to each layer of a tuple of :class:`LoRAFactors`.

    For a network with adapters on several layers (F8's two-layer network): each layer gets its own
    state, and a transformation that reads ``params`` (:func:`scale_by_lora_preconditioner`) sees
    that layer's (A, B), so the preconditioner is (B_l B_l^T + lam I)^{-1} per layer l.

    Args:
        transformation: a transformation over one layer's ``LoRAFactors``.

    Returns:
        A transformation over a tuple of ``LoRAFactors`` (one per layer).
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        return tuple(transformation.init(layer) for layer in params)

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        layers = params if params is not None else (None,) * len(updates)
        out = [transformation.update(u, s, p) for u, s, p in zip(updates, state, layers, strict=True)]
        return tuple(u for u, _ in out), tuple(s for _, s in out)

    return optax.GradientTransformation(init_fn, update_fn)


def maybe(transformation: optax.GradientTransformation, on: bool | Bool[Array, ""]) -> optax.GradientTransformation:
    """optax transformation: ``transformation`` where ``on`` is true, the identity elsewhere.

    ``on`` may be a traced boolean, so methods that differ only in which parts of a chain they use
    (gd, precgd, Adam, preconditioned Adam) are one compiled program under ``vmap`` over methods.
    Both branches are computed and one is selected (``jnp.where``), also for the state: a switched-off
    part's state does not change.

    Args:
        transformation: any optax transformation.
        on: bool or boolean scalar array.
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        return transformation.init(params)

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        new_updates, new_state = transformation.update(updates, state, params)
        pick = functools.partial(jnp.where, jnp.asarray(on))
        return jax.tree.map(pick, new_updates, updates), jax.tree.map(pick, new_state, state)

    return optax.GradientTransformation(init_fn, update_fn)


def standard_promotion(transformation: optax.GradientTransformation) -> optax.GradientTransformation:
    """``transformation`` with its ``init`` and ``update`` traced under JAX's standard dtype promotion.

    optax's Adam raises its decay rates (Python floats) to the int32 step count, which strict
    promotion (``jax_numpy_dtype_promotion="strict"``, the tests' setting) rejects; this scopes the
    standard rule to that transformation only, so the code around it stays strict.
    """

    def init_fn(params: optax.Params) -> optax.OptState:
        with jax.numpy_dtype_promotion("standard"):
            return transformation.init(params)

    def update_fn(
        updates: optax.Updates, state: optax.OptState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.OptState]:
        with jax.numpy_dtype_promotion("standard"):
            return transformation.update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# the registry: the names a RunConfig (and the CLI) can give
# ---------------------------------------------------------------------------------------------

#: the hyper-parameters a registered optimizer may declare: the config's ``lr``, ``damping`` and
#: ``lr_ratio`` (for HRP's preheat, ``preheat_lr`` and ``preheat_damping``; its ratio is 1).
#: All may be traced.
OPTIMIZER_PARAMS = ("lr", "damping", "lr_ratio")


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer (an entry of :data:`OPTIMIZERS`).

    Attributes:
        name: its name: ``RunConfig.optimizer`` (and ``preheat_optimizer``), ``--optimizer``, the
            results' ``optimizer`` column.
        builder: ``builder(**params) -> optax.GradientTransformation`` over :class:`LoRAFactors`.
        params: the hyper-parameters ``builder`` takes, from :data:`OPTIMIZER_PARAMS`; their values
            may be traced, so a sweep over ``lr`` (or ``lr_ratio``) is one compiled program.
    """

    name: str
    builder: Callable[..., optax.GradientTransformation]
    params: tuple[str, ...] = ("lr",)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.builder) or ""

    def __call__(self, **values: Any) -> optax.GradientTransformation:
        """The transformation for these hyper-parameter values (the undeclared ones are ignored)."""
        return self.builder(**{name: values[name] for name in self.params})


_OPTIMIZERS: dict[str, OptimizerSpec] = {}
_BUILTIN: set[str] = set()

#: optimizer name -> :class:`OptimizerSpec` (the CLI's and RunConfig's names), read-only and live.
#: A user can also pass any ``optax.GradientTransformation`` over LoRAFactors to ``train``.
OPTIMIZERS: Mapping[str, OptimizerSpec] = types.MappingProxyType(_OPTIMIZERS)


def _constant(transformation: optax.GradientTransformation) -> Callable[[], optax.GradientTransformation]:
    def builder() -> optax.GradientTransformation:
        return transformation

    builder.__doc__ = f"the fixed transformation {transformation!r}"
    return builder


def register_optimizer(
    name: str,
    builder: Callable[..., optax.GradientTransformation] | optax.GradientTransformation,
    *,
    params: tuple[str, ...] = ("lr",),
    replace: bool = False,
) -> OptimizerSpec:
    """Register an optimizer under ``name``: then ``RunConfig(optimizer=name)`` (and
    ``preheat_optimizer=name``), ``--optimizer name``, :func:`optimizer_from_config`,
    :func:`~lora_theory.engine.simulate` and ``lora-theory list`` know it.

    Args:
        name: the optimizer's name (the config, the CLI and the results' ``optimizer`` column).
        builder: ``builder(**params) -> optax.GradientTransformation`` over :class:`LoRAFactors`
            (e.g. ``lambda lr: optax.sgd(lr, momentum=0.9)``), or a ready transformation (then
            ``params`` is ``()``: the config's ``lr`` does not reach it, and cannot be swept).
        params: the hyper-parameters ``builder`` takes, from :data:`OPTIMIZER_PARAMS`.
        replace: allow replacing a built-in optimizer (a user's own name may be registered again).

    Returns:
        The :class:`OptimizerSpec` (also callable: ``spec(lr=..., damping=...)``).

    :func:`optimizer_from_config` adds the constraints (frozen factors, lora_sb's projection), so a
    builder returns only the update rule.  Why a name and not the object in the RunConfig: see
    :class:`~lora_theory.config.RunConfig`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"optimizer name must be a non-empty string, got {name!r}")
    if name in _BUILTIN and not replace:
        raise ValueError(f"{name!r} is a built-in optimizer; pass replace=True to replace it")
    if isinstance(builder, optax.GradientTransformation):
        builder, params = _constant(builder), ()
    elif not callable(builder):
        raise TypeError(f"optimizer {name!r}: builder must be callable or an optax.GradientTransformation")
    params = tuple(params)
    for param in params:
        if param not in OPTIMIZER_PARAMS:
            raise ValueError(f"optimizer {name!r}: parameter {param!r} is not one of {', '.join(OPTIMIZER_PARAMS)}")
    spec = OptimizerSpec(name, builder, params)
    _OPTIMIZERS[name] = spec
    return spec


def get_optimizer(optimizer: str | OptimizerSpec) -> OptimizerSpec:
    """The :class:`OptimizerSpec` named ``optimizer`` (an ``OptimizerSpec`` is returned as is).

    Raises:
        ConfigError: (a ``ValueError``) for an unknown name, listing the valid ones; the same
            message as :func:`~lora_theory.config.validate`'s.
    """
    if isinstance(optimizer, OptimizerSpec):
        return optimizer
    if optimizer not in _OPTIMIZERS:
        raise invalid("optimizer", optimizer, f"must be one of {', '.join(_OPTIMIZERS)}")
    return _OPTIMIZERS[optimizer]


register_optimizer("gd", gd, params=("lr", "lr_ratio"))
register_optimizer("precgd", precgd, params=("lr", "damping", "lr_ratio"))
_BUILTIN.update(_OPTIMIZERS)


def optimizer_from_config(
    name: str | OptimizerSpec,
    *,
    lr: Scalar,
    damping: Scalar = 0.0,
    lr_ratio: Scalar = 1.0,
    train_factors: str = "both",
    A_basis: Float[Array, "d r"] | None = None,
) -> optax.GradientTransformation:
    """The optimizer a :class:`~lora_theory.config.RunConfig` names, with its constraints.

    ``get_optimizer(name)(lr=lr, damping=damping, lr_ratio=lr_ratio)`` (the registry: every
    config-driven run, HRP's preheat included, dispatches here; an optimizer gets the parameters
    it declares), followed by :func:`project_A` when the init fixes A's span (``A_basis``,
    LoRA-SB: B is then frozen too) and :func:`freeze_factors` when only one factor trains.
    ``lr``, ``damping`` and ``lr_ratio`` may be traced (a grid over them is one ``vmap``).
    :func:`~lora_theory.config.validate` rejects ``lr_ratio != 1`` for an optimizer that does
    not declare it.
    """
    parts = [get_optimizer(name)(lr=lr, damping=damping, lr_ratio=lr_ratio)]
    if A_basis is not None:
        parts.append(project_A(A_basis))
        train_factors = "A" if train_factors in ("both", "A") else "none"
    if train_factors != "both":
        parts.append(freeze_factors(train_factors))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)
