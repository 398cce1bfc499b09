"""Shared machinery of the figure experiments: config overrides, batched runs, per-seed problems, I/O.

Every experiment module (``experiments/f*.py``) has a frozen config dataclass with ``quick()`` and
``full()`` presets, ``run(config, out_dir, progress) -> DataFrame`` (computes through the engine and
writes ``{out_dir}/{NAME}.parquet`` + ``.json``) and ``plot(df, metadata, figures_dir)`` (draws from
saved results only).

**One compile per static config.**  :func:`simulate_chunked` hands a figure's jobs to
:func:`lora_theory.sweep.run_sweep`: each job (one static :class:`~lora_theory.RunConfig`) runs all
its seeds (in chunks of equal, padded size, for the progress bar and resumability) and its whole
sweep grid in one compiled :func:`lora_theory.simulate` program; the first chunks of a figure's
jobs run in two threads, so their compilations overlap.  The swept fields' values in the
config are reset to their defaults first (the grid overrides them anyway), so two jobs that differ
only in swept values share a compiled program, also across figures.  Per-seed problem quantities
(:func:`per_seed`) are mapped over seeds with ``lax.map``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory.engine import problem_key
from lora_theory.sweep import progress_bar

__all__ = [
    "OverrideError",
    "apply_overrides",
    "config_fields",
    "progress_bar",
    "simulate_chunked",
    "canonical_config",
    "CHUNK_SEEDS",
    "per_seed",
    "problem_key",
    "save",
    "last_step",
    "tail_rate",
    "first_step_at_or_below",
]


class OverrideError(ValueError):
    """A ``--set key=value`` override that does not name a field of the config, or a bad value."""


def config_fields(config_type) -> dict[str, Any]:
    """Field name -> resolved type of a config dataclass."""
    hints = typing.get_type_hints(config_type)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_type)}


def _parse(text: str, kind, name: str):
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or (origin is not None and type(None) in args):
        inner = [a for a in args if a is not type(None)]
        if text.strip().lower() in ("none", "null", ""):
            return None
        return _parse(text, inner[0], name)
    if origin is tuple:
        element = args[0] if args else str
        return tuple(_parse(v, element, name) for v in text.split(",") if v.strip())
    if kind is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise OverrideError(f"{name}={text!r}: expected a boolean (true/false)")
    if kind is int:
        try:
            value = float(text)
        except ValueError:
            raise OverrideError(f"{name}={text!r}: expected an integer") from None
        if not value.is_integer():
            raise OverrideError(f"{name}={text!r}: expected an integer")
        return int(value)
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise OverrideError(f"{name}={text!r}: expected a number") from None
    return text


def apply_overrides(config, overrides: Iterable[str] | Mapping[str, str]):
    """Return ``config`` with ``key=value`` overrides applied, each parsed to its field's type.

    Tuples take comma-separated values (``alpha2s=1,0.01``).  An unknown key raises
    :class:`OverrideError` listing the valid keys.
    """
    if not isinstance(overrides, Mapping):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise OverrideError(f"--set {item!r}: expected key=value")
            key, value = item.split("=", 1)
            pairs[key.strip()] = value.strip()
        overrides = pairs
    fields = config_fields(type(config))
    changes = {}
    for key, text in overrides.items():
        if key not in fields:
            raise OverrideError(
                f"unknown key {key!r} for {type(config).__name__}; valid keys: {', '.join(sorted(fields))}"
            )
        changes[key] = _parse(str(text), fields[key], key)
    return dataclasses.replace(config, **changes)


#: seeds per engine call (a progress-bar tick) unless told otherwise.
CHUNK_SEEDS = 10
#: threads compiling a figure's jobs at once (XLA compilation, single-threaded, dominates quick runs).
WORKERS = max(1, min(2, os.cpu_count() or 1))

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(lt.RunConfig)}


def canonical_config(config: lt.RunConfig, sweep: Mapping[str, Sequence[float]]) -> lt.RunConfig:
    """``config`` with its swept fields at their defaults: the same program for the same static fields."""
    changes = {name: _DEFAULTS[name] for name in sweep}
    if "lr" in sweep and config.preheat_lr is None and "preheat_lr" not in sweep:
        changes["preheat_lr"] = config.lr  # keep the resolved preheat lr (it defaults to lr)
    return config.replace(**changes)


def simulate_chunked(
    jobs: Sequence[tuple[Mapping[str, Any], lt.RunConfig, Mapping[str, Sequence[float]]]],
    seeds: int,
    *,
    desc: str,
    progress: bool,
    out_dir,
    chunk_seeds: int | None = None,
) -> tuple[pd.DataFrame, float]:
    """Run every job ``(constant columns, config, sweep)`` for seeds ``0 .. seeds-1``, batched.

    One :func:`lora_theory.simulate` call per job and chunk of ``chunk_seeds`` seeds (default:
    :data:`CHUNK_SEEDS`) covers the job's whole grid; every chunk has the same shapes, so each
    distinct static config compiles once.  Chunks are written under ``{out_dir}/{desc}.chunks/``
    while running (a killed run resumes) and removed at the end; nothing else is written.

    Returns:
        (tidy DataFrame of every run with the constant columns added, total wall time in s).
    """
    from lora_theory.sweep import run_sweep

    jobs = [(columns, canonical_config(config, sweep), sweep) for columns, config, sweep in jobs]
    chunk_seeds = chunk_seeds or min(seeds, CHUNK_SEEDS)
    df, sidecar = run_sweep(
        jobs,
        out_dir=out_dir,
        name=desc,
        seeds=seeds,
        chunk_seeds=chunk_seeds,
        progress=progress,
        write=False,
        workers=WORKERS,
    )
    return df, float(sidecar["wall_time_s"])


_PER_SEED_CACHE: dict = {}


def _per_seed_program(config: lt.RunConfig, quantities: Callable, dynamic):
    """The jitted ``keys -> lax.map(quantities o make_problem)``, shared by every call with the same
    problem fields and the same ``quantities`` code and captured values (so one compile serves
    several figures); a fresh one when something is not hashable."""
    # the fields the config's model declares it reads (its registry entry): make_problem reads no others
    fields = lt.MODELS[config.model].fields
    problem_config = lt.RunConfig(model=config.model, **{name: getattr(config, name) for name in fields})

    def compute(keys):
        return jax.lax.map(lambda key: quantities(lt.make_problem(problem_config, dynamic, key=key)), keys)

    try:
        cells = tuple(c.cell_contents for c in (quantities.__closure__ or ()))
        key = (
            problem_config,
            quantities.__code__,
            cells,
            quantities.__defaults__,
            tuple(sorted((dynamic or {}).items())),
        )
        hash(key)
    except (TypeError, AttributeError, ValueError):
        return jax.jit(compute)
    if key not in _PER_SEED_CACHE:
        _PER_SEED_CACHE[key] = jax.jit(compute)
    return _PER_SEED_CACHE[key]


def per_seed(config: lt.RunConfig, seeds: Sequence[int], quantities: Callable, dynamic=None) -> dict[str, np.ndarray]:
    """Evaluate ``quantities(problem) -> dict of arrays`` on the problem of each seed.

    The problems are those :func:`lora_theory.simulate` trains on (same keys); mapped over the
    seeds with ``lax.map``.  ``quantities`` should read the config's values through its closure
    as plain numbers (not the RunConfig), so that figures with the same problem share a compile.
    """
    compute = _per_seed_program(config, quantities, dynamic)
    keys = jax.vmap(problem_key)(jnp.asarray(np.asarray(seeds), jnp.uint32))
    return {name: np.asarray(value) for name, value in compute(keys).items()}


def save(df: pd.DataFrame, out_dir, name: str, config, wall_time: float, **extra) -> pd.DataFrame:
    """Write ``df`` and a sidecar (the experiment's config, wall time, extras) atomically."""
    metadata = {
        "experiment": name,
        "config": dataclasses.asdict(config),
        "wall_time_s": wall_time,
        **extra,
    }
    lt.write_results(df, out_dir, name, metadata)
    return df


def last_step(df: pd.DataFrame) -> pd.DataFrame:
    """The rows at each run's last logged step."""
    return df[df["step"] == df["step"].max()]


def tail_rate(
    steps,
    risk,
    *,
    floor: float = 1e-24,
    tail_fraction: float = 0.3,
    plateau_factor: float = 1e3,
    rounding: float = 1e-20,
) -> float:
    """Asymptotic per-step rate of a logged risk sequence: exp(slope of log risk) over its tail.

    The usable points are those before the risk first drops below ``floor * risk[0]`` (the
    rounding floor) or, for a run that has converged to rounding (its smallest risk below
    ``rounding * risk[0]``), below ``plateau_factor`` times that smallest risk: its final plateau
    may sit above ``floor * risk[0]`` (precgd from a small random init at kappa = 1000 plateaus
    near 1e-24), and a fit there would measure rounding noise.  A run still converging keeps
    every point down to its last.  The fit uses the last ``tail_fraction`` of the usable points
    (at least 3), where the slowest mode dominates, i.e. the rate the theorems state.  NaN if
    fewer than 3 usable points.
    """
    steps = np.asarray(steps, np.float64)
    risk = np.asarray(risk, np.float64)
    if risk.size < 3 or not np.isfinite(risk).all() or risk[0] <= 0:
        return math.nan
    lowest = risk.min()
    plateau = plateau_factor * lowest if lowest <= rounding * risk[0] else 0.0
    below = np.nonzero(risk <= max(floor * risk[0], plateau))[0]
    usable = int(below[0]) if below.size else risk.size
    start = min(int(usable * (1.0 - tail_fraction)), usable - 3)
    if start < 0:
        return math.nan
    x, y = steps[start:usable], np.log(risk[start:usable])
    slope = np.polyfit(x, y, 1)[0]
    return float(np.exp(slope))


def first_step_at_or_below(steps, values, level: float) -> float:
    """The first logged step where ``values <= level`` (NaN if never)."""
    hit = np.nonzero(np.asarray(values) <= level)[0]
    return float(np.asarray(steps)[hit[0]]) if hit.size else math.nan
