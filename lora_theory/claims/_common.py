"""What the claims' experiments share: seeds and keys, the seed x grid map, the risk observable
(:func:`lora_theory.metrics.risk`, re-exported).

The experiments train with the package's one loop, :func:`~lora_theory.engine.train`, and a
claim-specific ``observe(problem, objective, factors)`` that logs only what the claim needs (the
engine's full metric set, :func:`~lora_theory.metrics.lora_metrics`, compiles several times
slower); a test checks that these observables equal the corresponding metrics of
:func:`~lora_theory.engine.simulate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..metrics import risk  # the observe of ||A B + offset - dW||_F^2 / 2, shared with lora_metrics

__all__ = [
    "DTYPE",
    "seed_keys",
    "seed_list",
    "f64",
    "grid_map",
    "risk",
]

DTYPE = jnp.float64


def seed_keys(seeds: Sequence[int]) -> Array:
    """``jax.random.key(seed)`` for each seed, stacked (one run key per seed)."""
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds), jnp.uint32))


def seed_list(params: Mapping[str, Any]) -> list[int]:
    """The seeds of a claim's parameters: ``first_seed`` (default 0) and the ``seeds`` after it."""
    return list(range(int(params.get("first_seed", 0)), int(params.get("first_seed", 0)) + int(params["seeds"])))


def f64(value: Any) -> Array:
    """``value`` as a float64 array (a traced argument of a compiled experiment)."""
    return jnp.asarray(value, DTYPE)


def grid_map(run: Callable[[Array, Array], Any], keys: Array, grid: Array) -> Any:
    """``run(key, value)`` for every seed key x grid value; outputs with leading axes (seeds, grid).

    ``vmap`` over the seeds of ``vmap`` over the grid: what depends on the key alone (e.g. the
    problem, when the grid does not change it) is computed once per seed and shared by the grid
    points, so training reads its matrices once per step for the whole grid.
    """
    return jax.vmap(lambda key: jax.vmap(lambda value: run(key, value))(grid))(keys)
