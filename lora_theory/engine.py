"""The engine: one compiled ``lax.scan`` per trajectory, ``vmap`` over seeds and over a grid.

* :func:`train` runs one trajectory from a :class:`~lora_theory.inits.LoRAInit`: the whole loop
  is a ``lax.scan`` over logging chunks, each chunk a ``fori_loop`` of ``log_every`` optimizer
  steps, metrics computed at the end of each chunk inside the compiled program (no host
  round-trip per step).  NaN/Inf in the factors marks the run as diverged with the step.
* :func:`simulate` builds problem, init and trajectory for ``seeds`` seeds x a grid of dynamic
  parameters (alpha, lr, kappa, ...) in **one** ``jax.jit``: ``vmap`` over seeds (one problem
  each) of ``vmap`` over the grid (the problem shared, so its matrices are read once per step for
  the whole grid: one wide matmul, not many thin ones).
"""

from __future__ import annotations

import collections
import functools
import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Float, Int

from .config import DYNAMIC_FIELDS, PROBLEM_FIELDS, ConfigError, RunConfig, validate
from .inits import LoRAInit, initialise
from .metrics import fit_linear_rate, trajectory_metrics
from .models import make_problem
from .optimizers import LoRAFactors, precondition

__all__ = [
    "TrainConfig",
    "Trajectory",
    "train",
    "Batch",
    "simulate",
    "logged_steps",
    "TRACE_COUNTS",
    "seed_mesh",
    "split_run_key",
    "problem_key",
]

#: how many times each compiled entry point has been traced (a test checks one trace per batch).
TRACE_COUNTS: collections.Counter = collections.Counter()


@dataclass(frozen=True)
class TrainConfig:
    """Static settings of a trajectory (changing one recompiles).

    Attributes:
        steps: number of optimizer steps.
        log_every: metrics are logged at steps 0, log_every, 2 log_every, ..., and at ``steps``.
        optimizer: 'gd', 'precgd', or any ``optax.GradientTransformation`` acting on
            :class:`~lora_theory.optimizers.LoRAFactors` (then ``lr`` and ``damping`` are unused:
            they live inside the transformation).
        train_factors: 'both', 'A' or 'B' (the other factor stays at its init).
    """

    steps: int
    log_every: int = 1
    optimizer: str | optax.GradientTransformation = "gd"
    train_factors: str = "both"


class Trajectory(NamedTuple):
    """One trajectory (or a batch of them, with leading axes).

    Attributes:
        steps: the logged step numbers.
        metrics: name -> values at the logged steps (``sv_AB`` has a trailing axis of size r).
        final: the factors after the last step.
        diverged_step: first step whose factors were not finite; -1 if none.
        rate: fitted linear rate rho of the risk (see :func:`~lora_theory.metrics.fit_linear_rate`).
    """

    steps: Int[Array, " n_logs"]
    metrics: dict[str, Array]
    final: LoRAFactors
    diverged_step: Int[Array, ""]
    rate: Float[Array, ""]

    @property
    def diverged(self):
        return self.diverged_step >= 0


def logged_steps(steps: int, log_every: int) -> np.ndarray:
    """The step numbers at which metrics are logged: 0, log_every, ..., and ``steps``."""
    return np.unique(np.append(np.arange(0, steps + 1, log_every), steps))


def train(problem, init: LoRAInit, config: TrainConfig, lr=0.0, damping=0.0) -> Trajectory:
    """Train the LoRA factors from ``init`` on ``problem``; pure and jit/vmap-able (config static).

    Each step: (grad_A, grad_B) of the training loss at W0 + offset + A B; for ``lora_sb`` grad_A
    is projected onto span(A_basis) and B is frozen; the update is GD, preconditioned GD (LoRA-One
    Algorithm 1), or the given optax transformation; frozen factors are left untouched.

    Args:
        problem: the problem (e.g. a :class:`~lora_theory.problems.LinearProblem`).
        init: the initial factors, offset and (lora_sb) basis.
        config: static :class:`TrainConfig`.
        lr: eta (may be traced); unused with an optax optimizer.
        damping: lam of precgd (may be traced).

    Returns:
        A :class:`Trajectory`.
    """
    objective = problem.objective(init.offset)
    basis = init.A_basis
    train_A = config.train_factors in ("both", "A")
    train_B = config.train_factors in ("both", "B") and basis is None
    dtype = init.A.dtype
    lr = jnp.asarray(lr, dtype)
    damping = jnp.asarray(damping, dtype)
    use_optax = not isinstance(config.optimizer, str)

    def step(t, carry):
        factors, opt_state, diverged_step = carry
        grad_A, grad_B = objective.factor_grads(factors.A, factors.B)
        if basis is not None:
            grad_A = basis @ (basis.T @ grad_A)
        grads = LoRAFactors(grad_A, grad_B)
        if use_optax:
            delta, opt_state = config.optimizer.update(grads, opt_state, factors)
        elif config.optimizer == "precgd":
            pre_A, pre_B = precondition(factors.A, factors.B, grad_A, grad_B, damping)
            delta = LoRAFactors(-lr * pre_A, -lr * pre_B)
        else:
            delta = LoRAFactors(-lr * grad_A, -lr * grad_B)
        new = LoRAFactors(
            factors.A + delta.A if train_A else factors.A,
            factors.B + delta.B if train_B else factors.B,
        )
        bad = ~jnp.isfinite(jnp.sum(new.A) + jnp.sum(new.B))
        diverged_step = jnp.where((diverged_step < 0) & bad, t + 1, diverged_step)
        return new, opt_state, diverged_step

    def measure(factors):
        return trajectory_metrics(problem, objective, factors.A, factors.B)

    def chunk(carry, bounds):
        # steps bounds[0] .. bounds[1] - 1, then the metrics: one call site each for the step and
        # the metrics in the compiled program (the first chunk is empty: metrics at step 0).
        carry = lax.fori_loop(bounds[0], bounds[1], step, carry)
        return carry, measure(carry[0])

    factors = init.factors
    opt_state = config.optimizer.init(factors) if use_optax else ()
    carry = (factors, opt_state, jnp.asarray(-1, jnp.int32))
    logged = logged_steps(config.steps, config.log_every)
    ends = jnp.asarray(logged, jnp.int32)
    starts = jnp.asarray(np.concatenate([[0], logged[:-1]]), jnp.int32)
    carry, metrics = lax.scan(chunk, carry, (starts, ends))
    steps = ends
    final, _, diverged_step = carry
    rate = fit_linear_rate(steps, metrics["risk"])
    return Trajectory(steps, metrics, final, diverged_step, rate)


# ---------------------------------------------------------------------------------------------
# batched simulation from a RunConfig
# ---------------------------------------------------------------------------------------------


def _init_from_config(problem, config: RunConfig, values: Mapping[str, Any], key) -> LoRAInit:
    return initialise(
        problem,
        config.init,
        rank=config.rank,
        key=key,
        alpha=values["alpha"],
        gamma=values["gamma"],
        variant=config.resolved_variant,
        s=values["s"],
        preheat_rank=config.resolved_preheat_rank,
        preheat_steps=config.preheat_steps,
        preheat_optimizer=config.preheat_optimizer,
        preheat_lr=values["preheat_lr"],
        preheat_damping=values["preheat_damping"],
        preheat_train_factors=config.resolved_preheat_train_factors,
    )


def _train_config(config: RunConfig) -> TrainConfig:
    return TrainConfig(config.steps, config.log_every, config.optimizer, config.train_factors)


def split_run_key(key: jax.Array) -> jax.Array:
    """The two keys of a run made from ``key``: ``[problem key, init key]``.

    Every seed's run uses ``split_run_key(jax.random.key(seed))``: the problem from the first key,
    the init from the second (the same for every grid point), so a run can be redone alone.
    """
    return jax.random.split(key)


def problem_key(seed: int) -> jax.Array:
    """The key :func:`simulate` builds seed ``seed``'s problem from."""
    return split_run_key(jax.random.key(seed))[0]


def _index_tree(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _simulate_local(config: RunConfig, swept: tuple[str, ...], keys, grid: dict[str, Array]) -> Trajectory:
    """Every run of ``keys`` x ``grid`` on this device; leading axes (seed, grid point).

    Two phases, so that no LAPACK call is ever batched (see :mod:`lora_theory.metrics` for the
    jaxlib 0.10 deadlock this avoids, and for why batched 8 x 8 LAPACK calls are slow anyway):

    1. construction: the problems (Haar QR, SVD of G) and the inits (SVD of G, HRP's QR/SVD) are
       built one run at a time with ``lax.map`` -- a one-off cost, linear in the number of runs;
    2. training: ``vmap`` over seeds (on CPU in cache-sized chunks, see :data:`CPU_CHUNK_BYTES`)
       of ``vmap`` over the grid, pure ``jax.numpy`` (the precgd
       solves and the metrics' small decompositions are written without LAPACK), with the
       problem shared across the grid so its matrices are read once per step for the whole grid.

    A seed's problem and init keys come from :func:`split_run_key` (the init key is the same for
    every grid point), so a run does not depend on the batch it is in.
    """
    n_seeds = keys.shape[0]
    n_grid = grid[_INDEX].shape[0]
    base = config.dynamic_values()
    train_config = _train_config(config)
    split = jax.vmap(split_run_key)(keys)
    key_problem, key_init = split[:, 0], split[:, 1]
    seed_of = jnp.repeat(jnp.arange(n_seeds), n_grid)
    point_of = jnp.tile(jnp.arange(n_grid), n_seeds)

    def values_at(g):
        return {**base, **{n: v[g] for n, v in grid.items() if n != _INDEX}}

    def unflatten(tree):
        return jax.tree.map(lambda x: x.reshape((n_seeds, n_grid) + x.shape[1:]), tree)

    def run(problem, init, g):
        values = values_at(g)
        return train(problem, init, train_config, values["lr"], values["damping"])

    if any(name in PROBLEM_FIELDS for name in swept):  # one problem per run

        def build(index):
            s, g = index
            values = values_at(g)
            problem = make_problem(config, values, key=key_problem[s])
            return problem, _init_from_config(problem, config, values, key_init[s])

        problems, inits = lax.map(build, (seed_of, point_of))
        chunk = _cpu_chunk(n_seeds * n_grid, problems)
        return unflatten(_map_in_chunks(run, (problems, inits, point_of), chunk))

    problems = lax.map(lambda key: make_problem(config, base, key=key), key_problem)

    def build_init(index):
        s, g = index
        return _init_from_config(_index_tree(problems, s), config, values_at(g), key_init[s])

    inits = unflatten(lax.map(build_init, (seed_of, point_of)))
    points = jnp.arange(n_grid)
    per_grid = jax.vmap(run, in_axes=(None, 0, 0))
    chunk = _cpu_chunk(n_seeds, problems)
    return _map_in_chunks(lambda p, i: per_grid(p, i, points), (problems, inits), chunk)


#: On CPU, seeds are trained in chunks whose problems hold about this many bytes in all: ``vmap``
#: within a chunk, ``lax.map`` (sequential) over chunks, so a chunk's Sigma_hat and G (or X) stay in
#: cache for all of its steps instead of every step streaming every seed's matrices from memory
#: (measured in benchmarks/NOTES.md: about 2x at d = 256).  Other backends vmap over all seeds.
CPU_CHUNK_BYTES = 4 * 2**20


def _cpu_chunk(n: int, problems) -> int:
    """Runs per chunk: about CPU_CHUNK_BYTES of problems (at least 1).

    The largest divisor of ``n`` that fits, when it is at least half that size; otherwise (e.g. a
    prime ``n``) the full size, and ``lax.map`` runs the remainder as one more, smaller chunk.
    """
    if jax.default_backend() != "cpu":
        return n
    per_problem = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(problems)) // max(n, 1)
    target = min(n, max(1, CPU_CHUNK_BYTES // max(per_problem, 1)))
    divisor = max(b for b in range(1, target + 1) if n % b == 0)
    return divisor if 2 * divisor >= target else target


def _map_in_chunks(fn, args, chunk: int):
    """``jax.vmap(fn)(*args)``, evaluated ``chunk`` runs at a time (a remainder as a last chunk)."""
    n = jax.tree.leaves(args)[0].shape[0]
    if chunk >= n:
        return jax.vmap(fn)(*args)
    return lax.map(lambda a: fn(*a), args, batch_size=chunk)


@functools.partial(jax.jit, static_argnums=(0, 1, 4))
def _simulate_compiled(config: RunConfig, swept: tuple[str, ...], keys, grid, mesh):
    TRACE_COUNTS["simulate"] += 1
    if mesh is None:
        return _simulate_local(config, swept, keys, grid)
    from jax.sharding import PartitionSpec

    sharded = jax.shard_map(
        lambda k, g: _simulate_local(config, swept, k, g),
        mesh=mesh,
        in_specs=(PartitionSpec(_RUN_AXIS), PartitionSpec()),
        out_specs=PartitionSpec(_RUN_AXIS),
        check_vma=False,
    )
    return sharded(keys, grid)


_RUN_AXIS = "seeds"


def seed_mesh(devices: Sequence[Any] | None = None):
    """A 1-D ``jax.sharding.Mesh`` named ``'seeds'`` over ``devices`` (default: every visible device).

    :func:`simulate` splits its seeds across this mesh (each device builds and trains its own
    slice; nothing is communicated until the results are gathered).  With ``jax.distributed``
    initialised, ``jax.devices()`` spans every host, so the same call shards over all of them.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.sharding.Mesh(np.asarray(devices), (_RUN_AXIS,))


@dataclass
class Batch:
    """The result of :func:`simulate`: trajectories with leading axes (seed, grid point).

    Attributes:
        config: the base configuration.
        seeds: the seed of each row (run ``i`` used ``jax.random.key(seeds[i])``).
        grid: swept field -> values, one per grid point (cartesian product, flattened).
        trajectory: a :class:`Trajectory` whose arrays have shape (n_seeds, n_grid, ...).
        wall_time: seconds, compile included.
    """

    config: RunConfig
    seeds: np.ndarray
    grid: dict[str, np.ndarray]
    trajectory: Trajectory
    wall_time: float

    def problem(self, i: int, point: int = 0):
        """The problem run ``i`` (row ``i``, seed ``seeds[i]``) trained on, rebuilt from its key.

        ``point`` selects the grid point when a problem field (kappa, noise, ...) is swept;
        otherwise every grid point of a seed shares one problem.
        """
        values = {n: v[point] for n, v in self.grid.items()}
        return make_problem(self.config, values, key=problem_key(int(self.seeds[i])))

    def to_dataframe(self):
        """Tidy long format: one row per run and logged step (see :mod:`lora_theory.results`)."""
        from .results import batch_to_dataframe

        return batch_to_dataframe(self)


_INDEX = "grid_index"


def _grid_product(sweep: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    names = list(sweep)
    points = list(itertools.product(*(list(sweep[n]) for n in names))) or [()]
    return {n: np.asarray([p[i] for p in points], dtype=np.float64) for i, n in enumerate(names)}


def simulate(
    config: RunConfig,
    *,
    seeds: int | Sequence[int] = 1,
    seed: int = 0,
    sweep: Mapping[str, Sequence[float]] | None = None,
    mesh: Any = "auto",
) -> Batch:
    """Run ``config`` for several seeds and a grid of dynamic parameters in one compiled program.

    Args:
        config: the configuration (validated here, before anything compiles).
        seeds: a number of seeds (``seed, seed+1, ...``) or an explicit list of seeds.  Run with
            seed ``s`` uses ``jax.random.key(s)``, so any run of a batch can be reproduced alone.
        seed: the first seed when ``seeds`` is a number.
        sweep: dynamic field -> values (see ``DYNAMIC_FIELDS``); the grid is their cartesian
            product.  Static fields (init, d, optimizer, ...) need one ``simulate`` call each.
        mesh: how to split the seeds across devices: ``"auto"`` (default) shards over every
            visible device when there are several (:func:`seed_mesh`), a ``jax.sharding.Mesh``
            with one axis named ``'seeds'``, or ``None`` for one device.  The seeds are padded
            to a multiple of the device count (the padding runs are dropped); results are equal
            to the single-device ones.

    Returns:
        A :class:`Batch` with arrays of shape (n_seeds, n_grid, ...).
    """
    sweep = dict(sweep or {})
    for name in sweep:
        if name not in DYNAMIC_FIELDS:
            raise ConfigError(
                f"sweep over {name!r} is not possible in one compiled program; dynamic fields: "
                f"{', '.join(DYNAMIC_FIELDS)} (loop over simulate() calls for the others)"
            )
    validate(config, sweep)
    seed_list = np.arange(seed, seed + seeds) if isinstance(seeds, int) else np.asarray(list(seeds))
    if seed_list.size < 1:
        raise ConfigError(f"seeds={seeds!r} is invalid: must be at least one seed")
    grid = _grid_product(sweep)
    dtype = config.jnp_dtype
    if isinstance(mesh, str):
        if mesh != "auto":
            raise ConfigError(f"mesh={mesh!r} is invalid: must be 'auto', None or a jax.sharding.Mesh")
        mesh = seed_mesh() if jax.device_count() > 1 else None
    n_pad = 0
    if mesh is not None:
        n_pad = -seed_list.size % mesh.size
    padded = np.concatenate([seed_list, np.repeat(seed_list[-1:], n_pad)])
    keys = jax.vmap(jax.random.key)(jnp.asarray(padded, jnp.uint32))
    n_grid = len(next(iter(grid.values()))) if grid else 1
    grid_arrays = {n: jnp.asarray(v, dtype) for n, v in grid.items()}
    grid_arrays[_INDEX] = jnp.arange(n_grid, dtype=jnp.int32)
    start = time.perf_counter()
    trajectory = _simulate_compiled(config, tuple(grid), keys, grid_arrays, mesh)
    trajectory = jax.block_until_ready(trajectory)
    if n_pad:
        trajectory = jax.tree.map(lambda x: x[: seed_list.size], trajectory)
    wall = time.perf_counter() - start
    return Batch(config, seed_list, grid, trajectory, wall)
