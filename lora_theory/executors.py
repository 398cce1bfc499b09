"""Where a sweep's chunks run: in this process, in a pool of processes, on a cluster.

:func:`~lora_theory.sweep.run_sweep` takes any ``concurrent.futures``-style executor, an object
with ``submit(fn, *args) -> future`` whose future has ``result()``: the standard library's
``ProcessPoolExecutor`` (best made with :func:`process_pool`), submitit's executors (SLURM job
arrays; :func:`submitit_executor`), a Dask ``distributed.Client``, or a two-line adaptor for Ray.
The unit of work is one chunk, :func:`run_chunk`: it takes the chunk's lock, runs it with
:func:`~lora_theory.engine.simulate`, writes it atomically and releases the lock, so every
executor writes the same chunk files and a sweep may be resumed under another executor.

A worker is a fresh process (or a thread of this one): :func:`run_chunk` first gives it the
submitting process's float64 setting and persistent compilation cache folder, as the command
line does at start-up, so every worker reads back the programs another one compiled (one compile
per static configuration, not per worker) and computes the same bits.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import RunConfig

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

__all__ = ["ChunkTask", "run_chunk", "InlineExecutor", "process_pool", "submitit_executor", "EXECUTORS"]

#: the executors ``lora-theory train --executor`` knows by name.
EXECUTORS = ("inline", "processes", "submitit")


@dataclasses.dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to compute one chunk (picklable: plain values only).

    Attributes:
        config, sweep, columns: the job (its config, its grid of dynamic values, the constant
            columns added to its rows).
        seeds: the chunk's seeds; ``pad_to`` pads them (with the last seed, trimmed after) so
            that every chunk of a sweep has one shape and one compiled program.
        path: the chunk file; its lock is ``path`` + ``.lock``.
        mesh: ``"auto"`` or ``None``, as for :func:`~lora_theory.engine.simulate`.
        x64: the submitting process's ``jax_enable_x64``.
        cache_dir: its persistent compilation cache folder, or None for none.
        stale_after: see :func:`lora_theory.locks.is_stale`.
        attempt: a token unique to each submission (Dask, for one, would otherwise hand back
            the result of an earlier, identical call, e.g. an earlier "busy").
    """

    config: RunConfig
    sweep: Mapping[str, Sequence[float]]
    columns: Mapping[str, Any]
    seeds: np.ndarray
    pad_to: int
    path: str
    mesh: Any = "auto"
    x64: bool = True
    cache_dir: str | None = None
    stale_after: float = 600.0
    attempt: str = ""  # unique per submission: an executor that caches results by argument (Dask) reruns it


def _prepare_worker(task: ChunkTask) -> None:
    """Give this worker the submitting process's float64 setting and compilation cache."""
    import jax

    if bool(jax.config.jax_enable_x64) != task.x64:
        jax.config.update("jax_enable_x64", task.x64)
    if task.cache_dir is not None and jax.config.jax_compilation_cache_dir != task.cache_dir:
        from .cache import enable_compilation_cache

        enable_compilation_cache(task.cache_dir)


def run_chunk(task: ChunkTask) -> tuple[str, float]:
    """Compute one chunk and write it atomically, unless it is done or another process has it.

    Args:
        task: the chunk.

    Returns:
        ``(status, seconds)``: ``"computed"`` with simulate's wall time, ``"done"`` (the file
        exists) or ``"busy"`` (another live process holds the chunk's lock), with 0.
    """
    path = Path(task.path)
    if path.exists():
        return "done", 0.0
    from .locks import ChunkLock

    lock = ChunkLock(path.with_name(path.name + ".lock"), stale_after=task.stale_after)
    try:
        got = lock.acquire()
    except FileNotFoundError:  # the chunk folder was removed: the sweep was finished by another process
        return "done", 0.0
    if not got:
        return "busy", 0.0
    try:
        if path.exists():
            return "done", 0.0
        _prepare_worker(task)
        return "computed", _compute(task, path)
    finally:
        lock.release()


def _compute(task: ChunkTask, path: Path) -> float:
    import jax

    from .engine import simulate
    from .results import atomic_write_bytes, batch_to_dataframe

    chunk = np.asarray(task.seeds)
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], task.pad_to - chunk.size)])
    batch = simulate(task.config, seeds=padded, sweep=dict(task.sweep), mesh=task.mesh)
    if chunk.size < padded.size:  # drop the padding runs
        trimmed = jax.tree.map(lambda x: x[: chunk.size], batch.trajectory)
        batch = dataclasses.replace(batch, seeds=chunk, trajectory=trimmed)
    df = batch_to_dataframe(batch, **task.columns)
    buffer = io.BytesIO()
    df.reset_index(drop=True).to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
    return batch.wall_time


class InlineExecutor:
    """Runs each submitted call at once, in this process (the default of ``run_sweep``)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Call ``fn(*args)`` now; return a finished future holding its result or its exception."""
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # noqa: BLE001 - delivered through the future, as a pool would
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            future.set_exception(error)
        return future


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes started with 'spawn' (JAX is not fork-safe).

    Each worker is a fresh Python process with its own JAX runtime; it inherits this process's
    environment (``XLA_FLAGS``, ``JAX_PLATFORMS``, ``JAX_COMPILATION_CACHE_DIR``), and
    :func:`run_chunk` gives it this process's float64 setting and compilation cache.

    Args:
        workers: the number of processes.

    Returns:
        The executor (use it as a context manager, or call ``shutdown()``).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=int(workers), mp_context=multiprocessing.get_context("spawn"))


def _import_submitit() -> Any:
    """Import submitit without its logging set-up in this process.

    At import, submitit calls ``logging.config.dictConfig``, which closes every logging handler
    the process has already configured (absl's, through optax; a user's own) and binds its own
    to the ``sys.stdout`` / ``sys.stderr`` of that moment.  ``SUBMITIT_LOG_LEVEL=NOCONFIG`` skips
    that; it is set only around the import, so the jobs (new processes) log as usual, into
    their own log files.  Here submitit's warnings reach the root logger.
    """
    import os
    import sys

    if "submitit" in sys.modules:
        return sys.modules["submitit"]
    before = os.environ.get("SUBMITIT_LOG_LEVEL")
    if before is None:
        os.environ["SUBMITIT_LOG_LEVEL"] = "NOCONFIG"
    try:
        import submitit
    finally:
        if before is None:
            os.environ.pop("SUBMITIT_LOG_LEVEL", None)
    return submitit


def submitit_executor(
    folder: str | Path, *, cluster: str | None = None, parameters: Mapping[str, Any] | None = None
) -> Any:
    """A submitit ``AutoExecutor``: SLURM where ``sbatch`` exists, else local processes.

    ``run_sweep`` submits a round's chunks inside its ``batch()`` context, so on SLURM they are
    one job array.

    Args:
        folder: where submitit keeps each job's pickles and logs.
        cluster: ``None`` (submitit chooses), ``"slurm"``, ``"local"`` or ``"debug"``.
        parameters: passed to ``update_parameters`` (e.g. ``slurm_partition``, ``timeout_min``,
            ``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``slurm_array_parallelism``).

    Returns:
        The executor.

    Raises:
        ConfigError: when submitit is not installed.
    """
    from .config import ConfigError

    try:
        submitit = _import_submitit()
    except ImportError:
        raise ConfigError(
            "executor='submitit' is invalid: submitit is not installed (pip install 'lora_theory[cluster]')"
        ) from None
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except (RuntimeError, ValueError) as error:  # e.g. cluster="slurm" where there is no srun
        raise ConfigError(f"submitit_cluster={cluster!r} is invalid: {' '.join(str(error).split())}") from None
    if parameters:
        try:
            executor.update_parameters(**dict(parameters))
        except (NameError, ValueError, TypeError) as error:  # submitit's answer to an unknown or mistyped option
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"submitit_option={dict(parameters)!r} is invalid: {first}") from None
    return executor


def wait_all(
    futures: Sequence[Any], on_done: Callable[[int, Any], object] | None = None
) -> list[tuple[Any, BaseException | None]]:
    """Wait for every future; ``(result, None)`` or ``(None, error)`` for each, in order.

    ``concurrent.futures`` futures are collected as they finish (``on_done(i, result)`` is
    called for each, e.g. to advance a progress bar); any other kind (submitit's jobs, Dask's
    futures) in order, through ``result()``.
    """
    import concurrent.futures as cf

    outcomes: list[tuple[Any, BaseException | None]] = [(None, None)] * len(futures)

    def collect(i: int, future: Any) -> None:
        try:
            outcomes[i] = (future.result(), None)
        except Exception as error:  # noqa: BLE001 - reported by the caller, per chunk
            outcomes[i] = (None, error)
        if on_done is not None:
            on_done(i, outcomes[i][0])

    if futures and all(isinstance(f, cf.Future) for f in futures):
        index = {id(f): i for i, f in enumerate(futures)}
        for future in cf.as_completed(futures):
            collect(index[id(future)], future)
    else:
        for i, future in enumerate(futures):
            collect(i, future)
    return outcomes
