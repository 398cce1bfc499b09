"""What the claims' experiments share: seeds and keys, the build-then-train grid map, the loop.

The experiments use small compiled loops built from the suite's own pieces
(:meth:`LinearProblem.objective`, :func:`~lora_theory.optimizers.precondition`,
:func:`~lora_theory.inits.initialise`, :mod:`lora_theory.metrics`) rather than
:func:`~lora_theory.engine.simulate`, because they log per step only what the claim needs (the
engine's full metric set compiles several times slower); a test checks that their trajectories
equal :func:`~lora_theory.engine.train`'s.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from ..optimizers import LoRAFactors, precondition

__all__ = [
    "DTYPE",
    "LAPACK_NOTE",
    "seed_keys",
    "seed_list",
    "f64",
    "grid_map",
    "make_step",
    "factor_trajectory",
]

DTYPE = jnp.float64


def seed_keys(seeds: Sequence[int]):
    """``jax.random.key(seed)`` for each seed, stacked (one run key per seed)."""
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds), jnp.uint32))


def seed_list(params) -> list[int]:
    """The seeds of a claim's parameters: ``first_seed`` (default 0) and the ``seeds`` after it."""
    return list(range(int(params.get("first_seed", 0)), int(params.get("first_seed", 0)) + int(params["seeds"])))


def f64(value) -> Array:
    """``value`` as a float64 array (a traced argument of a compiled experiment)."""
    return jnp.asarray(value, DTYPE)


def grid_map(build, train, keys, grid):
    """Run ``train(build(key, value))`` for every (seed key, grid value); outputs (seeds, grid, ...).

    ``build`` (problem and init: QR, SVD, ...) runs under ``lax.map``, so every LAPACK call has
    batch size 1 (see :data:`LAPACK_NOTE`); ``train`` (gd or precgd steps and the metrics: no
    LAPACK call) is vmapped over the built pytrees.
    """
    n_seeds, n_grid = keys.shape[0], grid.shape[0]
    seed_index = jnp.repeat(jnp.arange(n_seeds), n_grid)
    grid_index = jnp.tile(jnp.arange(n_grid), n_seeds)
    built = lax.map(lambda ij: build(keys[ij[0]], grid[ij[1]]), (seed_index, grid_index))
    out = jax.vmap(train)(built)
    return jax.tree.map(lambda x: x.reshape((n_seeds, n_grid) + x.shape[1:]), out)


#: Why the claims build problems (and run the loops that call LAPACK) under ``lax.map`` rather
#: than ``vmap``: with jaxlib 0.10.2 on CPU, a compiled program with *batched* LAPACK calls (QR,
#: Cholesky, SVD under vmap) sometimes never returns: the calling thread waits in the LAPACK
#: kernels' parallel batch map while every pool thread is idle (a native stack shows
#: ``jax::ParallelBatchMap`` in ``lapack_dgeqrf_ffi``).  Seen with 8+ seeds in claim 6, and with
#: ``simulate`` itself; ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` does not always avoid it.
#: Under ``lax.map`` every LAPACK call has batch size 1 and never hung here.  The training loops
#: have no LAPACK call (precgd's solves, :func:`lora_theory.optimizers.precondition`, and the
#: alignment metrics are plain jnp, :mod:`lora_theory.metrics`) and stay vectorised.
LAPACK_NOTE = None


# ---------------------------------------------------------------------------------------------
# the training loop (the engine's step, logging only what a claim needs)
# ---------------------------------------------------------------------------------------------


def make_step(objective, *, optimizer: str, train_factors: str, basis, lr, damping):
    """One optimizer step, the same arithmetic as :func:`lora_theory.engine.train`'s step."""
    train_A = train_factors in ("both", "A")
    train_B = train_factors in ("both", "B") and basis is None

    def step(factors: LoRAFactors) -> LoRAFactors:
        grad_A, grad_B = objective.factor_grads(factors.A, factors.B)
        if basis is not None:
            grad_A = basis @ (basis.T @ grad_A)
        if optimizer == "precgd":
            grad_A, grad_B = precondition(factors.A, factors.B, grad_A, grad_B, damping)
        elif optimizer != "gd":
            raise ValueError(f"optimizer must be 'gd' or 'precgd', got {optimizer!r}")
        return LoRAFactors(
            factors.A + (-lr) * grad_A if train_A else factors.A,
            factors.B + (-lr) * grad_B if train_B else factors.B,
        )

    return step


def factor_trajectory(
    objective,
    factors: LoRAFactors,
    *,
    steps: int,
    observe: Callable[[LoRAFactors], Any],
    log_every: int = 1,
    optimizer: str = "gd",
    lr=0.0,
    damping=0.0,
    train_factors: str = "both",
    basis: Float[Array, "d r"] | None = None,
):
    """Train the factors and return (final factors, ``observe`` at steps 0, log_every, ..., steps).

    The step is :func:`lora_theory.engine.train`'s (same gradients, lora_sb projection onto
    ``basis``, preconditioner, frozen factors); only the logging differs: ``observe(factors)``
    returns whatever pytree a claim needs, stacked along a leading axis of length
    ``steps // log_every + 1``.  Pure; jit/vmap-able (``steps``, ``log_every``, ``optimizer``,
    ``train_factors`` static).

    Args:
        objective: ``problem.objective(offset)``.
        factors: (A_0, B_0).
        steps: number of steps, a multiple of ``log_every``.
        observe: the per-log measurement.
        log_every: logging stride.
        optimizer: 'gd' or 'precgd'.
        lr: eta.
        damping: lam of precgd.
        train_factors: 'both', 'A' or 'B'.
        basis: lora_sb's fixed left basis (A's gradient projected onto it, B frozen), or None.

    Returns:
        (final factors, history).
    """
    if steps % log_every:
        raise ValueError(f"steps={steps} must be a multiple of log_every={log_every}")
    dtype = factors.A.dtype
    step = make_step(
        objective,
        optimizer=optimizer,
        train_factors=train_factors,
        basis=basis,
        lr=jnp.asarray(lr, dtype),
        damping=jnp.asarray(damping, dtype),
    )

    def chunk(f, _):
        f = lax.fori_loop(0, log_every, lambda _, g: step(g), f)
        return f, observe(f)

    first = observe(factors)
    final, history = lax.scan(chunk, factors, None, length=steps // log_every)
    history = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, history)
    return final, history
