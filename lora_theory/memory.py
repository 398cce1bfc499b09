"""A run's peak memory, estimated before anything compiles, and the check against the machine.

:func:`estimate_peak_bytes` adds up what :func:`~lora_theory.engine.simulate` holds at once: the
problems (every seed's, or every run's when a problem field is swept), the construction's
transient data (one problem's X, Y at a time, under ``lax.map``), the factors and optimizer
states of every run, the training's transient d x k products (one CPU chunk of runs at a time,
every run elsewhere), the logged metrics and the results table built from them.  It is an
estimate (XLA's buffers are not modelled one by one), meant to turn an out-of-memory crash after
tracing (``RESOURCE_EXHAUSTED ... 2720104005472 bytes``) into a message before it, naming the
estimate and what lowers it.  :func:`check_memory` raises when the estimate exceeds the
available memory (``MemAvailable`` of ``/proc/meminfo`` on the CPU, the device's
``bytes_limit`` elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import jax

from .config import ConfigError, RunConfig

__all__ = ["MemoryEstimate", "estimate_peak_bytes", "available_bytes", "check_memory", "check_results_memory"]

#: scalar metrics logged per step by the default observe (lora_metrics), plus r singular values.
_SCALAR_METRICS = 13
#: columns of the results table besides the metrics (configuration, seed, step, rate, ...).
_TABLE_COLUMNS = 25
#: copies of the results table alive while it is built and written (pandas, Arrow).
_TABLE_COPIES = 3
#: copies of the problems XLA holds at once (the construction's output and the training's
#: chunked slices of it), and the compiler's own memory: both calibrated on three runs
#: (linear d = 256 x 50 seeds and d = 512 x 20, ReLU d = 100 x 20), whose measured peak RSS
#: increase the estimate then exceeds by 1.2-1.4x.
_PROBLEM_COPIES = 2
_COMPILER_BYTES = 300 * 2**20


class MemoryEstimate(NamedTuple):
    """Bytes, by part; ``total`` is their sum."""

    problems: int
    training: int
    logged: int

    @property
    def total(self) -> int:
        return self.problems + self.training + self.logged

    def describe(self) -> str:
        gib = 2.0**30
        return (
            f"about {self.total / gib:.1f} GiB at its peak (problems {self.problems / gib:.1f}, "
            f"training {self.training / gib:.1f}, logged metrics and results {self.logged / gib:.1f})"
        )


def _problem_bytes(config: RunConfig, itemsize: int) -> tuple[int, int]:
    """(bytes one problem holds, bytes its construction needs on top, transiently)."""
    d, k, n, r_star = config.d, config.k, config.n_samples, config.r_star
    held = 3 * d * k + 2 * (d + k) * r_star + d * r_star  # W0, dW, G and the singular subspaces
    if config.model == "linear":
        held += d * d  # Sigma_hat
        transient = n * (d + 2 * k)  # X, Y, E
    elif config.model == "population":
        transient = 0
    else:  # a data model (relu): X, Y, X_test, Y_test and X_test W0 are kept
        held += 2 * n * (d + k) + n * k
        transient = n * (d + 2 * k)
    return held * itemsize, transient * itemsize


def estimate_peak_bytes(
    config: RunConfig, n_seeds: int, n_grid: int = 1, *, per_run_problems: bool = False
) -> MemoryEstimate:
    """The peak memory of ``simulate(config, seeds=n_seeds, sweep=<n_grid points>)``, estimated.

    Args:
        config: the configuration (its d, k, N, r, steps, log_every, dtype, model).
        n_seeds: seeds in this call (a sweep's ``chunk_seeds``).
        n_grid: grid points.
        per_run_problems: a problem field is swept, so every run has its own problem.

    Returns:
        A :class:`MemoryEstimate`.
    """
    from .engine import CPU_CHUNK_BYTES, logged_steps

    itemsize = 8 if config.dtype == "float64" else 4
    runs = n_seeds * n_grid
    problem, construction = _problem_bytes(config, itemsize)
    n_problems = runs if per_run_problems else n_seeds
    d, k, r = config.d, config.k, config.rank
    factors = 8 * (d + k) * r * itemsize  # A, B, offset, grads, updates, optimizer state, final
    if jax.default_backend() == "cpu":  # seeds train in cache-sized chunks (engine._cpu_chunk)
        chunk_runs = min(runs, max(1, CPU_CHUNK_BYTES // max(problem, 1)) * (1 if per_run_problems else n_grid))
    else:
        chunk_runs = runs
    transient = chunk_runs * 2 * d * k * itemsize  # the risk's A B - dW and its square, per run
    n_logs = len(logged_steps(config.steps, config.log_every))
    metrics = runs * n_logs * (_SCALAR_METRICS + r) * itemsize
    table = runs * n_logs * (_SCALAR_METRICS + r + _TABLE_COLUMNS) * 8 * _TABLE_COPIES
    return MemoryEstimate(
        _PROBLEM_COPIES * n_problems * problem + construction,
        runs * factors + transient + _COMPILER_BYTES,
        metrics + table,
    )


def available_bytes() -> int | None:
    """Memory available to this process: ``MemAvailable`` on a CPU backend (Linux), the first
    device's ``bytes_limit`` otherwise; ``None`` when unknown (then nothing is checked)."""
    if jax.default_backend() != "cpu":
        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("bytes_limit")
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    config: RunConfig, n_seeds: int, n_grid: int = 1, *, per_run_problems: bool = False, copies: int = 1
) -> MemoryEstimate:
    """Raise :class:`~lora_theory.config.ConfigError` when the estimated peak exceeds what is available.

    The message names the estimate, its parts and what lowers it: fewer seeds at once
    (``chunk_seeds`` / ``--chunk-seeds``), fewer logged steps (``log_every`` / ``--log-every``),
    ``dtype='float32'`` (half of everything), or a smaller d, k, N (and fewer ``--workers``
    when ``copies`` > 1).

    Args:
        config: as for :func:`estimate_peak_bytes`.
        n_seeds: as for :func:`estimate_peak_bytes`.
        n_grid: as for :func:`estimate_peak_bytes`.
        per_run_problems: as for :func:`estimate_peak_bytes`.
        copies: how many such calls run at once on this machine (a process pool's workers).

    Returns:
        The estimate of one call.
    """
    estimate = estimate_peak_bytes(config, n_seeds, n_grid, per_run_problems=per_run_problems)
    available = available_bytes()
    if available is not None and estimate.total * copies > available:
        at_once = f"{copies} workers at once, each with " if copies > 1 else ""
        raise ConfigError(
            f"memory: {at_once}{n_seeds} seed(s) x {n_grid} grid point(s) of this configuration need "
            f"{estimate.describe()}{' each' if copies > 1 else ''}, but {available / 2.0**30:.1f} GiB are "
            "available; lower it with fewer seeds at once (--chunk-seeds / chunk_seeds), fewer logged steps "
            f"(--log-every), --dtype float32 (half of everything){', fewer --workers' if copies > 1 else ''}, "
            "or a smaller d, k or n_samples"
        )
    return estimate


def _table_bytes_per_run(config: RunConfig) -> int:
    from .engine import logged_steps

    n_logs = len(logged_steps(config.steps, config.log_every))
    return n_logs * (_SCALAR_METRICS + config.rank + _TABLE_COLUMNS) * 8 * _TABLE_COPIES


def check_results_memory(jobs: Sequence[tuple[RunConfig, int]], n_seeds: int) -> int:
    """Raise :class:`~lora_theory.config.ConfigError` when a sweep's whole results table would not fit.

    Chunks bound the memory of the training, not that of the table the sweep ends with (every
    chunk's rows, concatenated and written by one process), which this checks.

    Args:
        jobs: ``(config, n_grid)`` for each job of the sweep.
        n_seeds: seeds per job.

    Returns:
        The estimated bytes.
    """
    jobs = list(jobs)
    total = sum(n_seeds * n_grid * _table_bytes_per_run(config) for config, n_grid in jobs)
    available = available_bytes()
    if available is not None and total > available:
        runs = sum(n_seeds * n_grid for _, n_grid in jobs)
        raise ConfigError(
            f"memory: the results table of {runs} runs needs about {total / 2.0**30:.1f} GiB, but "
            f"{available / 2.0**30:.1f} GiB are available; lower it with fewer seeds (--seeds) or grid points, "
            "or fewer logged steps (--log-every); chunks (--chunk-seeds) bound the training's memory, not the table's"
        )
    return total
