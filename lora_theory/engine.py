"""The engine: the package's one training loop, and batched simulation from a :class:`RunConfig`.

* :func:`train` runs one trajectory: ``optimizer`` (any ``optax.GradientTransformation`` over
  :class:`~lora_theory.optimizers.LoRAFactors`) from ``init`` for ``steps`` steps, ``observe``
  evaluated every ``log_every`` steps, all in one ``lax.scan`` (no host round-trip per step).
  NaN/Inf in the factors marks the run as diverged with the step.  It is the only loop: HRP's
  preheat, the claims, the experiments, the notebooks and the benchmarks all call it.
* :func:`simulate` builds problem, init and trajectory for ``seeds`` seeds x a grid of dynamic
  parameters (alpha, lr, kappa, ...) in **one** ``jax.jit``: ``vmap`` over seeds (one problem
  each) of ``vmap`` over the grid (the problem shared, so its matrices are read once per step for
  the whole grid: one wide matmul, not many thin ones).  :func:`build` and :func:`train_batch`
  are its two phases, public for the benchmarks.
"""

from __future__ import annotations

import collections
import functools
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.typing import DTypeLike
from jaxtyping import Array, Bool, Float, Int

from .config import DYNAMIC_FIELDS, ConfigError, RunConfig, validate
from .inits import LoRAInit, get_init
from .memory import check_memory
from .metrics import fit_linear_rate, lora_metrics
from .models import MODELS, make_problem
from .models.linear import LowRank
from .optimizers import LoRAFactors, get_optimizer, optimizer_from_config
from .scaling import lora_scale, scaled_factor_grads

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Trajectory",
    "train",
    "no_metrics",
    "Batch",
    "simulate",
    "build",
    "train_batch",
    "make_grid",
    "seed_array",
    "seed_count",
    "logged_steps",
    "TRACE_COUNTS",
    "seed_mesh",
    "split_run_key",
    "problem_key",
]

#: how many times each compiled entry point has been traced (a test checks one trace per batch).
TRACE_COUNTS: collections.Counter = collections.Counter()


class Trajectory(NamedTuple):
    """One trajectory (or a batch of them, with leading axes).

    Attributes:
        steps: the logged step numbers.
        metrics: what ``observe`` returned at the logged steps, stacked along a leading axis
            (for the default :func:`~lora_theory.metrics.lora_metrics`: name -> values, ``sv_AB``
            with a trailing axis of size r).
        final: the factors after the last step.
        diverged_step: first step whose factors were not finite; -1 if none.
        rate: fitted linear rate rho of ``metrics["risk"]`` (see
            :func:`~lora_theory.metrics.fit_linear_rate`); NaN when ``observe`` logs no risk.
    """

    steps: Int[Array, " n_logs"]
    metrics: Any
    final: LoRAFactors
    diverged_step: Int[Array, ""]
    rate: Float[Array, ""]

    @property
    def diverged(self) -> Bool[Array, "*batch"]:
        return self.diverged_step >= 0


def logged_steps(steps: int, log_every: int) -> np.ndarray:
    """The step numbers at which metrics are logged: 0, log_every, ..., and ``steps``."""
    return np.unique(np.append(np.arange(0, steps + 1, log_every), steps))


def no_metrics(problem: Any, objective: Any, factors: LoRAFactors) -> dict:
    """An ``observe`` that logs nothing (e.g. HRP's preheat, or timing the bare loop)."""
    del problem, objective, factors
    return {}


Observe = Callable[[Any, Any, LoRAFactors], Any]

#: the training loop's carry: (factors, optimizer state, first diverged step or -1)
_Carry = tuple[LoRAFactors, Any, Array]


def train(
    problem: Any,
    init: LoRAInit,
    optimizer: optax.GradientTransformation,
    *,
    steps: int,
    log_every: int = 1,
    observe: Observe = lora_metrics,
    scale: Float[Array, ""] | float | None = None,
) -> Trajectory:
    """Train the LoRA factors from ``init`` on ``problem``: the package's one training loop.

    Each step: (grad_A, grad_B) of the training loss at W0 + offset + A B (the problem's closed
    form, ``problem.objective(init.offset).factor_grads``), then
    ``updates, state = optimizer.update(grads, state, factors)`` and ``factors + updates``.
    Pure, and jit/vmap-able; ``steps``, ``log_every``, ``optimizer``'s structure and ``observe``
    are static (the optimizer may close over traced scalars such as a swept learning rate).

    With ``scale`` s (PEFT's ``lora`` / ``rslora`` scaling, :mod:`lora_theory.scaling`) the model
    is W0 + s (A B + offset): the gradients are :func:`~lora_theory.scaling.scaled_factor_grads`
    and ``observe`` sees the model's factors (s A, B) and offset (s offset), so its risk, loss and
    product are the model's.  ``None`` (the default) applies no factor at all.

    Args:
        problem: the problem (e.g. a :class:`~lora_theory.models.linear.LinearProblem`).
        init: the initial factors and offset (:class:`~lora_theory.inits.LoRAInit`).
        optimizer: an ``optax.GradientTransformation`` over ``LoRAFactors``, e.g.
            :func:`~lora_theory.optimizers.gd`, :func:`~lora_theory.optimizers.precgd`, or
            ``optax.chain(lt.scale_by_lora_preconditioner(1e-3), optax.adam(1e-2))``.  Constraints
            are transformations too: :func:`~lora_theory.optimizers.freeze_factors`,
            :func:`~lora_theory.optimizers.project_A` (LoRA-SB); see
            :func:`~lora_theory.optimizers.optimizer_from_config`.
        steps: number of optimizer steps.
        log_every: ``observe`` runs at steps 0, log_every, 2 log_every, ..., and ``steps``.
        observe: ``observe(problem, objective, factors) -> pytree`` (``objective`` is the training
            loss on top of W0 + offset, with ``.loss`` and ``.offset``); default the SPEC's metric
            set, :func:`~lora_theory.metrics.lora_metrics`.
        scale: the branch's scale s (a scalar, may be traced), or ``None`` for none.

    Returns:
        A :class:`Trajectory`; ``metrics`` is ``observe``'s pytree with a leading axis of logged
        steps.

    Examples:
        >>> problem = lt.make_problem(lt.RunConfig(d=6, k=5, r_star=2, n_samples=40), key=jax.random.key(0))
        >>> init = lt.initialise(problem, "spectral", rank=2, key=jax.random.key(1))
        >>> from lora_theory.metrics import risk  # log the risk alone (default: lora_metrics' dict)
        >>> trajectory = lt.train(problem, init, lt.precgd(0.5), steps=20, log_every=5, observe=risk)
        >>> trajectory.steps.tolist()
        [0, 5, 10, 15, 20]
        >>> bool(trajectory.metrics[-1] < 1e-3 * trajectory.metrics[0]), int(trajectory.diverged_step)
        (True, -1)
    """
    init = init.with_offset()
    assert init.offset is not None  # with_offset() fills it
    if scale is None:
        objective = problem.objective(init.offset)
        factor_grads = objective.factor_grads
        inner_observe = observe
    else:
        objective = problem.objective(LowRank(scale * init.offset.left, init.offset.right))

        def factor_grads(A: Array, B: Array) -> tuple[Array, Array]:
            return scaled_factor_grads(objective, scale, A, B)

        def inner_observe(problem: Any, objective: Any, factors: LoRAFactors) -> Any:
            return observe(problem, objective, LoRAFactors(scale * factors.A, factors.B))

    def step(t: Array, carry: _Carry) -> _Carry:
        factors, opt_state, diverged_step = carry
        grads = LoRAFactors(*factor_grads(factors.A, factors.B))
        updates, opt_state = optimizer.update(grads, opt_state, factors)
        new = optax.apply_updates(factors, updates)
        bad = ~jnp.isfinite(jnp.sum(new.A) + jnp.sum(new.B))
        diverged_step = jnp.where((diverged_step < 0) & bad, t + 1, diverged_step)
        return new, opt_state, diverged_step

    def chunk(carry: _Carry, bounds: tuple[Array, Array]) -> tuple[_Carry, Any]:
        # observe at step `start`, then steps start .. end - 1.  The first of those steps is
        # written out of the loop, beside the observation: both read the same factors, so XLA
        # computes their common products (Sigma_hat A, A^T G, B B^T: the loss) once.  The last
        # chunk has no step (start == end); its peeled step is computed and discarded.
        start, end = bounds
        metrics = inner_observe(problem, objective, carry[0])
        peeled = step(start, carry)
        carry = jax.tree.map(lambda new, old: jnp.where(end > start, new, old), peeled, carry)
        carry = lax.fori_loop(start + 1, end, step, carry)
        return carry, metrics

    factors = init.factors
    carry = (factors, optimizer.init(factors), jnp.asarray(-1, jnp.int32))
    logged = logged_steps(steps, log_every)
    starts = jnp.asarray(logged, jnp.int32)
    ends = jnp.asarray(np.append(logged[1:], steps), jnp.int32)
    carry, metrics = lax.scan(chunk, carry, (starts, ends))
    final, _, diverged_step = carry
    risk = metrics.get("risk") if isinstance(metrics, Mapping) else None
    rate = fit_linear_rate(starts, risk) if risk is not None else jnp.asarray(jnp.nan, factors.A.dtype)
    return Trajectory(starts, metrics, final, diverged_step, rate)


# ---------------------------------------------------------------------------------------------
# batched simulation from a RunConfig
# ---------------------------------------------------------------------------------------------


def _init_from_config(problem: Any, config: RunConfig, values: Mapping[str, Any], key: jax.Array) -> LoRAInit:
    """The registered init ``config.init`` with the fields it declares (dynamic ones from ``values``)."""
    spec = get_init(config.init)
    return spec(problem, config.rank, key=key, **spec.arguments(config, values))


def _train_from_config(
    problem: Any, init: LoRAInit, config: RunConfig, values: Mapping[str, Any], observe: Observe = lora_metrics
) -> Trajectory:
    optimizer = optimizer_from_config(
        config.optimizer,
        lr=values["lr"],
        damping=values["damping"],
        lr_ratio=values["lr_ratio"],
        train_factors=config.train_factors,
        A_basis=init.A_basis,
    )
    scale = lora_scale(config.scaling, values["lora_alpha"], config.rank)
    return train(problem, init, optimizer, steps=config.steps, log_every=config.log_every, observe=observe, scale=scale)


def split_run_key(key: jax.Array) -> jax.Array:
    """The two keys of a run made from ``key``: ``[problem key, init key]``.

    Every seed's run uses ``split_run_key(jax.random.key(seed))``: the problem from the first key,
    the init from the second (the same for every grid point), so a run can be redone alone.
    """
    return jax.random.split(key)


def problem_key(seed: int | jax.Array) -> jax.Array:
    """The key :func:`simulate` builds seed ``seed``'s problem from."""
    return split_run_key(jax.random.key(seed))[0]


def _index_tree(tree: Any, i: int | Array) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def _values_at(config: RunConfig, grid: Mapping[str, Array], g: int | Array) -> dict[str, Any]:
    return {**config.dynamic_values(), **{n: v[g] for n, v in grid.items() if n != _INDEX}}


def _per_run_problems(config: RunConfig, swept: Sequence[str]) -> bool:
    """Whether a swept field changes the problem: one the config's model declares it reads."""
    return any(name in MODELS[config.model].fields for name in swept)


#: how :func:`build` maps over the runs: ``"vmap"`` (batched; safe since jax 0.11.2) or
#: ``"map"`` (``lax.map``, one run at a time).  See benchmarks/NOTES.md for the measurement.
CONSTRUCTION = "map"


def _map_runs(fn: Callable[[Any], Any], xs: Any) -> Any:
    return jax.vmap(fn)(xs) if CONSTRUCTION == "vmap" else lax.map(fn, xs)


def build(
    config: RunConfig, keys: jax.Array, grid: Mapping[str, Array], *, swept: Sequence[str] = ()
) -> tuple[Any, LoRAInit]:
    """Phase 1 of :func:`simulate`: the problems and inits of every run of ``keys`` x ``grid``.

    Seed ``s`` builds its problem from ``split_run_key(keys[s])[0]`` and its inits from
    ``[1]`` (the same init key for every grid point), so a run does not depend on its batch.

    Args:
        config: the base configuration (static).
        keys: one ``jax.random.key`` per seed, shape (n_seeds,).
        grid: swept field -> values (one per grid point) and ``"grid_index"`` -> arange(n_grid).
        swept: the swept field names; when one changes the problem (one of the fields the
            config's model reads, ``MODELS[config.model].fields``), every run gets its own problem.

    Returns:
        ``(problems, inits)``: problems with a leading seed axis (and a grid axis when a problem
        field is swept), inits with leading (seed, grid point) axes.
    """
    n_seeds = keys.shape[0]
    n_grid = grid[_INDEX].shape[0]
    split = jax.vmap(split_run_key)(keys)
    key_problem, key_init = split[:, 0], split[:, 1]
    seed_of = jnp.repeat(jnp.arange(n_seeds), n_grid)
    point_of = jnp.tile(jnp.arange(n_grid), n_seeds)

    def unflatten(tree: Any) -> Any:
        return jax.tree.map(lambda x: x.reshape((n_seeds, n_grid) + x.shape[1:]), tree)

    if _per_run_problems(config, swept):

        def build_run(index: tuple[Array, Array]) -> tuple[Any, LoRAInit]:
            s, g = index
            values = _values_at(config, grid, g)
            problem = make_problem(config, values, key=key_problem[s])
            return problem, _init_from_config(problem, config, values, key_init[s])

        return unflatten(_map_runs(build_run, (seed_of, point_of)))

    base = config.dynamic_values()
    problems = _map_runs(lambda key: make_problem(config, base, key=key), key_problem)

    def build_init(index: tuple[Array, Array]) -> LoRAInit:
        s, g = index
        return _init_from_config(_index_tree(problems, s), config, _values_at(config, grid, g), key_init[s])

    return problems, unflatten(_map_runs(build_init, (seed_of, point_of)))


def train_batch(
    config: RunConfig,
    problems: Any,
    inits: LoRAInit,
    grid: Mapping[str, Array],
    *,
    swept: Sequence[str] = (),
    chunk: int | None = None,
    observe: Observe = lora_metrics,
) -> Trajectory:
    """Phase 2 of :func:`simulate`: train every run built by :func:`build`; leading axes (seed, grid point).

    ``vmap`` over seeds (on CPU in cache-sized chunks, see :data:`CPU_CHUNK_BYTES`) of ``vmap``
    over the grid, with the problem shared across the grid (unless a problem field is swept), so
    its matrices are read once per step for the whole grid.  ``chunk`` overrides the number of
    seeds (runs, when a problem field is swept) vmapped at once; ``None`` chooses it.  ``observe``
    as in :func:`train`.
    """
    n_seeds = jax.tree.leaves(inits)[0].shape[0]
    n_grid = grid[_INDEX].shape[0]

    def run(problem: Any, init: LoRAInit, g: Array) -> Trajectory:
        return _train_from_config(problem, init, config, _values_at(config, grid, g), observe)

    if _per_run_problems(config, swept):
        flat = jax.tree.map(lambda x: x.reshape((n_seeds * n_grid,) + x.shape[2:]), (problems, inits))
        points = jnp.tile(jnp.arange(n_grid), n_seeds)
        chunk = chunk or _cpu_chunk(n_seeds * n_grid, flat[0])
        out = _map_in_chunks(run, (*flat, points), chunk)
        return jax.tree.map(lambda x: x.reshape((n_seeds, n_grid) + x.shape[1:]), out)
    points = jnp.arange(n_grid)
    per_grid = jax.vmap(run, in_axes=(None, 0, 0))
    chunk = chunk or _cpu_chunk(n_seeds, problems)
    return _map_in_chunks(lambda p, i: per_grid(p, i, points), (problems, inits), chunk)


def _simulate_local(
    config: RunConfig, swept: tuple[str, ...], keys: jax.Array, grid: dict[str, Array], observe: Observe
) -> Trajectory:
    """Every run of ``keys`` x ``grid`` on this device: :func:`build`, then :func:`train_batch`."""
    problems, inits = build(config, keys, grid, swept=swept)
    return train_batch(config, problems, inits, grid, swept=swept, observe=observe)


#: On CPU, seeds are trained in chunks whose problems hold about this many bytes in all: ``vmap``
#: within a chunk, ``lax.map`` (sequential) over chunks, so a chunk's Sigma_hat and G (or X) stay in
#: cache for all of its steps instead of every step streaming every seed's matrices from memory
#: (measured in benchmarks/NOTES.md: about 2x at d = 256).  Other backends vmap over all seeds.
CPU_CHUNK_BYTES = 4 * 2**20


def _cpu_chunk(n: int, problems: Any) -> int:
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


def _map_in_chunks(fn: Callable[..., Any], args: tuple[Any, ...], chunk: int) -> Any:
    """``jax.vmap(fn)(*args)``, evaluated ``chunk`` runs at a time (a remainder as a last chunk)."""
    n = jax.tree.leaves(args)[0].shape[0]
    if chunk >= n:
        return jax.vmap(fn)(*args)
    return lax.map(lambda a: fn(*a), args, batch_size=chunk)


def _components(config: RunConfig) -> tuple:
    """The registry entries ``config`` names: part of the compiled program's cache key, so that
    re-registering a name with a new function compiles afresh instead of reusing the old program."""
    init = get_init(config.init)
    parts = [MODELS[config.model], init, get_optimizer(config.optimizer)]
    if "preheat_optimizer" in init.params:
        parts.append(get_optimizer(config.preheat_optimizer))
    return tuple(parts)


@functools.partial(jax.jit, static_argnums=(0, 1, 4, 5, 6))
def _simulate_compiled(
    config: RunConfig,
    swept: tuple[str, ...],
    keys: jax.Array,
    grid: dict[str, Array],
    mesh: Any,
    observe: Observe = lora_metrics,
    components: tuple = (),
) -> Trajectory:
    del components  # only a cache key: the traced code looks the same entries up by name
    TRACE_COUNTS["simulate"] += 1
    if mesh is None:
        return _simulate_local(config, swept, keys, grid, observe)
    from jax.sharding import PartitionSpec

    sharded = jax.shard_map(
        lambda k, g: _simulate_local(config, swept, k, g, observe),
        mesh=mesh,
        in_specs=(PartitionSpec(_RUN_AXIS), PartitionSpec()),
        out_specs=PartitionSpec(_RUN_AXIS),
        check_vma=False,
    )
    return sharded(keys, grid)


_RUN_AXIS = "seeds"


def seed_mesh(devices: Sequence[Any] | None = None) -> jax.sharding.Mesh:
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

    def problem(self, i: int, point: int = 0) -> Any:
        """The problem run ``i`` (row ``i``, seed ``seeds[i]``) trained on, rebuilt from its key.

        ``point`` selects the grid point when a problem field (kappa, noise, ...) is swept;
        otherwise every grid point of a seed shares one problem.
        """
        values = {n: v[point] for n, v in self.grid.items()}
        return make_problem(self.config, values, key=problem_key(int(self.seeds[i])))

    def to_dataframe(self) -> pd.DataFrame:
        """Tidy long format: one row per run and logged step (see :mod:`lora_theory.results`)."""
        from .results import batch_to_dataframe

        return batch_to_dataframe(self)


_INDEX = "grid_index"


def _grid_product(sweep: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    names = list(sweep)
    points = list(itertools.product(*(list(sweep[n]) for n in names))) or [()]
    return {n: np.asarray([p[i] for p in points], dtype=np.float64) for i, n in enumerate(names)}


def make_grid(sweep: Mapping[str, Sequence[float]] | None, dtype: DTypeLike = jnp.float64) -> dict[str, Array]:
    """The grid arrays :func:`build` and :func:`train_batch` take: the cartesian product of
    ``sweep`` flattened (field -> one value per grid point) and ``"grid_index"`` -> arange(n_grid)."""
    grid = _grid_product(dict(sweep or {}))
    n_grid = len(next(iter(grid.values()))) if grid else 1
    arrays = {n: jnp.asarray(v, dtype) for n, v in grid.items()}
    arrays[_INDEX] = jnp.arange(n_grid, dtype=jnp.int32)
    return arrays


#: ``jax.random.key`` takes a 32-bit unsigned seed: every seed is below this.
SEED_LIMIT = 2**32

#: The seeds of a batch: a number of them (``seed, seed + 1, ...``) or the seeds themselves.
Seeds = int | Sequence[int] | np.ndarray


def seed_count(seeds: Seeds, seed: int = 0) -> int:
    """The number of seeds of a batch, checked before any array of them is built (see :func:`seed_array`).

    Raises:
        ConfigError: naming ``seeds`` or ``seed``, for no seed, a negative one, or one of 2**32 or more.
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds, seed = int(seeds), int(seed)
        if seeds < 1:
            raise ConfigError(f"seeds={seeds!r} is invalid: must be at least one seed")
        if seed < 0:
            raise ConfigError(f"seed={seed} is invalid: seeds must be >= 0 (jax.random.key takes an unsigned seed)")
        if seed >= SEED_LIMIT:
            raise ConfigError(
                f"seed={seed} is invalid: seeds must be < 2**32 (jax.random.key takes a 32-bit unsigned seed)"
            )
        if seed + seeds > SEED_LIMIT:
            raise ConfigError(
                f"seeds={seeds} is invalid: seed + seeds must be at most 2**32 = {SEED_LIMIT} (the last seed, "
                f"{seed + seeds - 1}, does not fit jax.random.key's 32-bit unsigned seed)"
            )
        return seeds
    return len(seed_array(seeds, seed))


def seed_array(seeds: Seeds, seed: int = 0) -> np.ndarray:
    """The seeds of a batch: ``seed, seed + 1, ...`` (``seeds`` of them) or the explicit list.

    Raises:
        ConfigError: for no seed at all, a negative one, one of 2**32 or more (``jax.random.key``
            takes a 32-bit unsigned seed) or one that is not an integer, naming ``seeds`` or ``seed``.
    """
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_count(seeds, seed)
        return np.arange(int(seed), int(seed) + int(seeds))
    # a bool is not iterable: list() raises TypeError for it, as it always has
    values = list(seeds)  # type: ignore[arg-type]
    seed_list = np.asarray(values)
    if seed_list.size < 1:
        raise ConfigError(f"seeds={seeds!r} is invalid: must be at least one seed")
    if not np.issubdtype(seed_list.dtype, np.integer):
        raise ConfigError(f"seeds={values!r} is invalid: seeds must be integers")
    if np.any(seed_list < 0):
        raise ConfigError(
            f"seed={int(seed_list.min())} is invalid: seeds must be >= 0 (jax.random.key takes an unsigned seed)"
        )
    if np.any(seed_list >= SEED_LIMIT):
        raise ConfigError(
            f"seed={int(seed_list.max())} is invalid: seeds must be < 2**32 (jax.random.key takes a 32-bit unsigned seed)"
        )
    return seed_list


def simulate(
    config: RunConfig,
    *,
    seeds: Seeds = 1,
    seed: int = 0,
    sweep: Mapping[str, Sequence[float]] | None = None,
    mesh: Any = "auto",
    observe: Observe = lora_metrics,
) -> Batch:
    """Run ``config`` for several seeds and a grid of dynamic parameters in one compiled program.

    Args:
        config: the configuration (validated here, before anything compiles).
        seeds: a number of seeds (``seed, seed+1, ...``) or an explicit list of seeds.  Run with
            seed ``s`` uses ``jax.random.key(s)``, so any run of a batch can be reproduced alone.
        seed: the first seed when ``seeds`` is a number.
        sweep: dynamic field -> values (see ``DYNAMIC_FIELDS``, the fields whose metadata says
            ``dynamic``); the grid is their cartesian product.  Static fields (init, d,
            optimizer, ...) need one ``simulate`` call each.  ``config.init`` and
            ``config.optimizer`` may name a user's registered init or optimizer
            (:func:`~lora_theory.inits.register_init`,
            :func:`~lora_theory.optimizers.register_optimizer`); their declared dynamic fields
            sweep like the built-ins'.
        mesh: how to split the seeds across devices: ``"auto"`` (default) shards over every
            visible device when there are several (:func:`seed_mesh`), a ``jax.sharding.Mesh``
            with one axis named ``'seeds'``, or ``None`` for one device.  The seeds are padded
            to a multiple of the device count (the padding runs are dropped); results are equal
            to the single-device ones.
        observe: what to log, as in :func:`train` (a hashable function: it is part of the
            compiled program's cache key).  ``Batch.to_dataframe`` expects the default's
            dict of named values.

    Returns:
        A :class:`Batch` with arrays of shape (n_seeds, n_grid, ...).

    Examples:
        >>> config = lt.RunConfig(d=6, k=5, r_star=2, rank=2, n_samples=40, init="spectral",
        ...                       optimizer="precgd", steps=20, log_every=5)
        >>> batch = lt.simulate(config, seeds=2, sweep={"lr": [0.25, 0.5]})
        >>> batch.seeds.tolist(), batch.grid["lr"].tolist()
        ([0, 1], [0.25, 0.5])
        >>> batch.trajectory.metrics["risk"].shape  # (seeds, grid points, logged steps)
        (2, 2, 5)
        >>> len(batch.to_dataframe())  # one row per run and logged step
        20
    """
    sweep = dict(sweep or {})
    for name in sweep:
        if name not in DYNAMIC_FIELDS:
            raise ConfigError(
                f"sweep over {name!r} is not possible in one compiled program; dynamic fields: "
                f"{', '.join(DYNAMIC_FIELDS)} (loop over simulate() calls for the others)"
            )
    validate(config, sweep)
    n_seeds = seed_count(seeds, seed)
    grid = _grid_product(sweep)
    grid_arrays = make_grid(sweep, config.jnp_dtype)
    n_grid = grid_arrays[_INDEX].shape[0]
    check_memory(config, n_seeds, n_grid, per_run_problems=_per_run_problems(config, tuple(grid)))
    seed_list = seed_array(seeds, seed)
    if isinstance(mesh, str):
        if mesh != "auto":
            raise ConfigError(f"mesh={mesh!r} is invalid: must be 'auto', None or a jax.sharding.Mesh")
        mesh = seed_mesh() if jax.device_count() > 1 else None
    n_pad = 0
    if mesh is not None:
        n_pad = -seed_list.size % mesh.size
    padded = np.concatenate([seed_list, np.repeat(seed_list[-1:], n_pad)])
    keys = jax.vmap(jax.random.key)(jnp.asarray(padded, jnp.uint32))
    start = time.perf_counter()
    trajectory = _simulate_compiled(config, tuple(grid), keys, grid_arrays, mesh, observe, _components(config))
    trajectory = jax.block_until_ready(trajectory)
    if n_pad:
        trajectory = jax.tree.map(lambda x: x[: seed_list.size], trajectory)
    wall = time.perf_counter() - start
    return Batch(config, seed_list, grid, trajectory, wall)
