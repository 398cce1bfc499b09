"""Long sweeps in chunks: each chunk written atomically, resumable, on any executor.

A sweep is ``configs x seeds x grid``.  :func:`run_sweep` cuts the seeds into chunks of
``chunk_seeds`` (a chunk = one slice of seeds of one config, all of its grid points: one
:func:`~lora_theory.engine.simulate` call), and writes each finished chunk to
``{out_dir}/{name}.chunks/{fingerprint}/`` with an atomic rename.  Re-running the same command
after Ctrl-C or a kill skips the chunks already on disk; when all are there they are concatenated
in a fixed order into ``{name}.parquet`` (+ ``.json`` sidecar) and the chunk folder is removed.
The result is the same file, byte for byte, as an uninterrupted run's.

The fingerprint hashes everything that determines the numbers (each config, the sweep, the seed
list, the chunk size, the constant columns), so a changed command never reuses stale chunks.
Every chunk has the same shapes (the last one is padded with repeats of its last seed, then
trimmed), so a config compiles once for all its chunks.

**Executors.** The chunks run through any ``concurrent.futures``-style executor
(``submit(fn, *args) -> future``; see :mod:`lora_theory.executors`): this process by default, a
process pool, SLURM job arrays through submitit, Dask, Ray.  The chunk files do not depend on
the executor, so a sweep started under one resumes under another, and the file is the same.

**Several processes on one folder.** Each chunk has a lock file while it is computed
(:mod:`lora_theory.locks`: it names its holder; a dead holder's lock is taken over), so two
``run_sweep`` calls on the same folder share the chunks instead of computing each twice; the
one that finds every chunk done writes the results (under a lock of its own), and the other
returns what it wrote.  A lock only saves work: the files stay right without it, because each
write is an atomic rename of identical bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from .config import ConfigError, RunConfig, validate
from .engine import Seeds, _per_run_problems, seed_array, seed_count
from .executors import ChunkTask, InlineExecutor, run_chunk, wait_all
from .locks import STALE_AFTER_S, ChunkLock
from .memory import check_memory, check_results_memory
from .results import ResultsError, read_results, write_results

__all__ = ["SweepJob", "SweepError", "run_sweep", "sweep_fingerprint", "progress_bar", "POLL_S"]

#: seconds between looks at chunks another process is computing.
POLL_S = 0.25


class SweepError(RuntimeError):
    """Some chunks of a sweep failed in their workers (the others are saved: re-run to redo them)."""


#: one job of a sweep: (constant columns added to its rows, config, sweep of dynamic fields).
SweepJob = tuple[Mapping[str, Any], RunConfig, Mapping[str, Sequence[float]]]


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "run") -> Any:
    """A tqdm bar on stderr (done / total, rate, ETA); silent when disabled or not a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or not sys.stderr.isatty(), leave=False)


def grid_size(sweep: Mapping[str, Sequence[float]]) -> int:
    """The number of grid points of a sweep (the cartesian product of its value lists; 1 if empty)."""
    return int(np.prod([len(v) for v in sweep.values()])) if sweep else 1


def sweep_fingerprint(jobs: Sequence[SweepJob], seeds: Sequence[int] | np.ndarray, chunk_seeds: int) -> str:
    """A short hash of everything that determines a sweep's results."""
    payload = {
        "jobs": [
            {
                "columns": dict(columns),
                "config": config.to_dict(),
                "sweep": {k: list(map(float, v)) for k, v in sweep.items()},
            }
            for columns, config, sweep in jobs
        ],
        "seeds": [int(s) for s in seeds],
        "chunk_seeds": int(chunk_seeds),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _chunks(seeds: np.ndarray, chunk_seeds: int) -> list[np.ndarray]:
    return [seeds[i : i + chunk_seeds] for i in range(0, seeds.size, chunk_seeds)]


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What tells one version of a file from the next (an atomic replace makes a new inode)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _submit_round(executor: Any, tasks: Sequence[ChunkTask]) -> list[Any]:
    """Submit one round of chunks; a submitit executor gets them in one job array (its ``batch()``)."""
    is_submitit = type(executor).__module__.split(".")[0] == "submitit"
    context = executor.batch() if is_submitit else contextlib.nullcontext()
    with context:
        futures = [executor.submit(run_chunk, task) for task in tasks]
    return futures


def run_sweep(
    jobs: Sequence[SweepJob] | RunConfig,
    *,
    out_dir: str | os.PathLike,
    name: str,
    seeds: Seeds = 1,
    seed: int = 0,
    sweep: Mapping[str, Sequence[float]] | None = None,
    chunk_seeds: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    mesh: Any = "auto",
    log: Callable[[str], object] | None = None,
    write: bool = True,
    workers: int = 1,
    executor: Any = None,
    stale_after: float = STALE_AFTER_S,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run a sweep chunk by chunk, resuming from the chunks already written.

    Args:
        jobs: ``[(columns, config, sweep), ...]`` (one compiled program per config), or a single
            :class:`~lora_theory.config.RunConfig` (then ``sweep`` is its grid).
        out_dir: the results go to ``{out_dir}/{name}.parquet`` and ``{name}.json``.
        name: the results' file name, without its suffix.
        seeds: number of seeds starting at ``seed``, or an explicit list.
        seed: the first seed, when ``seeds`` is a number.
        chunk_seeds: seeds per chunk (default: all seeds in one chunk).
        metadata: extra entries for the JSON sidecar.
        progress: show a progress bar (chunks as runs done, runs/s, ETA) when stderr is a TTY.
        mesh: ``"auto"`` or ``None``, passed to :func:`~lora_theory.engine.simulate` (device
            sharding); in this process, a ``jax.sharding.Mesh`` too.
        log: optional ``print``-like callable for one-line status messages (e.g. resuming).
        write: write ``{name}.parquet`` / ``.json`` (default).  ``False`` returns the DataFrame
            without writing it, for a caller that adds columns and saves the result itself
            (the chunk folder is still used while running, and removed at the end).
        workers: in this process (no ``executor``), with more than one, the first pending chunk
            of each job runs in a pool of this many threads, so that the jobs' XLA compilations
            (which release the GIL and dominate short sweeps) overlap.
        executor: where the chunks run: any object with ``submit(fn, *args) -> future`` (see
            :mod:`lora_theory.executors`: :func:`~lora_theory.executors.process_pool`,
            :func:`~lora_theory.executors.submitit_executor`, a Dask ``Client``); ``None`` for
            this process.  The first pending chunk of each job with no chunk done yet runs
            first, alone, so that its program is compiled once into the shared compilation cache
            (not once per worker); then all the others.
            Workers must be able to import the package (and any init or optimizer the configs
            name that is registered at run time, e.g. from the module that defines it), and
            see ``out_dir`` (a shared file system, on a cluster).
        stale_after: seconds without a heartbeat after which another machine's lock on a chunk
            is taken over (a lock of a dead process on this machine is taken over at once).

    Returns:
        (the tidy DataFrame, the sidecar's metadata).

    Raises:
        ConfigError: a bad configuration or an estimated peak memory above what is available,
            before anything compiles (with an executor the memory is checked by each worker,
            on its own machine).
        SweepError: when chunks failed in their workers; the others are kept, and running the
            same sweep again computes only the missing ones.
    """
    if isinstance(jobs, RunConfig):
        jobs = [({}, jobs, dict(sweep or {}))]
    jobs = list(jobs)
    for _, config, job_sweep in jobs:  # every error before anything compiles
        validate(config, job_sweep)
    n_seeds = seed_count(seeds, seed)
    chunk_seeds = int(n_seeds if chunk_seeds is None else chunk_seeds)
    if chunk_seeds < 1:
        raise ConfigError(f"chunk_seeds={chunk_seeds} is invalid: must be at least 1")
    if executor is not None and not (mesh is None or isinstance(mesh, str)):
        raise ConfigError("mesh is invalid with an executor: a Mesh cannot be sent to workers (pass 'auto' or None)")
    if executor is None:
        for _, config, job_sweep in jobs:
            check_memory(
                config,
                min(chunk_seeds, n_seeds),
                grid_size(job_sweep),
                per_run_problems=_per_run_problems(config, tuple(job_sweep)),
            )
    check_results_memory([(config, grid_size(job_sweep)) for _, config, job_sweep in jobs], n_seeds)
    seed_list = seed_array(seeds, seed)
    fingerprint = sweep_fingerprint(jobs, seed_list, chunk_seeds)
    out_dir = Path(out_dir)
    chunk_dir = out_dir / f"{name}.chunks" / fingerprint
    chunks = _chunks(seed_list, chunk_seeds)
    plan = [(j, c) for j in range(len(jobs)) for c in range(len(chunks))]
    paths = {(j, c): chunk_dir / f"job{j:03d}-chunk{c:05d}.parquet" for j, c in plan}
    results_before = _identity(out_dir / f"{name}.parquet")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    done = [key for key in plan if paths[key].exists()]
    if done and log is not None:
        log(f"resuming {name}: {len(done)}/{len(plan)} chunks already done in {chunk_dir}")

    x64, cache_dir = bool(jax.config.jax_enable_x64), jax.config.jax_compilation_cache_dir
    tasks = {
        key: ChunkTask(
            jobs[key[0]][1],
            dict(jobs[key[0]][2]),
            dict(jobs[key[0]][0]),
            chunks[key[1]],
            chunk_seeds,
            str(paths[key]),
            mesh,
            x64,
            cache_dir,
            stale_after,
        )
        for key in plan
    }
    runs_of = {key: chunks[key[1]].size * grid_size(jobs[key[0]][2]) for key in plan}
    inline = executor is None
    wall, computed = 0.0, 0

    def run_round(keys: list[tuple[int, int]], bar: Any, threads: int) -> list[str]:
        """Run ``keys`` through the executor; their statuses (computed / done / busy)."""
        nonlocal wall, computed
        pool = None
        if inline and threads > 1 and len(keys) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(max_workers=threads)
        start = time.perf_counter()
        try:
            attempt = uuid.uuid4().hex
            round_tasks = [dataclasses.replace(tasks[k], attempt=f"{attempt}-{i}") for i, k in enumerate(keys)]
            futures = _submit_round(pool or (InlineExecutor() if inline else executor), round_tasks)

            def advance(i: int, result: Any) -> None:
                if result is not None and result[0] != "busy":
                    bar.update(runs_of[keys[i]])

            outcomes = wait_all(futures, advance)
        finally:
            if pool is not None:
                pool.shutdown()
        statuses = ["failed" if error is not None else result[0] for result, error in outcomes]
        computed += statuses.count("computed")
        if inline and pool is None:
            wall += sum(result[1] for result, error in outcomes if error is None)
        else:  # elapsed, not the sum of the overlapping chunks
            wall += time.perf_counter() - start
        failed = [(keys[i], error) for i, (_, error) in enumerate(outcomes) if error is not None]
        if failed:
            config_errors = [error for _, error in failed if isinstance(error, ConfigError)]
            if config_errors:
                raise config_errors[0]
            (j, c), error = failed[0]
            raise SweepError(
                f"{len(failed)} of {len(keys)} chunks of {name} failed (first: job {j}, chunk {c}: "
                f"{type(error).__name__}: {' '.join(str(error).split())[:300]}); the chunks that finished are kept "
                f"in {chunk_dir}: run the same sweep again to compute the others"
            )
        return statuses

    def finished_elsewhere() -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """The results another process on this folder wrote for this very sweep, if any."""
        if not write or _identity(out_dir / f"{name}.parquet") in (None, results_before):
            return None
        try:
            df, sidecar = read_results(out_dir, name)
        except ResultsError:
            return None
        return (df, sidecar) if sidecar.get("fingerprint") == fingerprint else None

    final = ChunkLock(chunk_dir / "_final.lock", stale_after=stale_after)
    seen = set(done)  # chunks seen on disk: one that vanishes means another process finished
    first_round = True
    with progress_bar(sum(runs_of.values()), name, progress) as bar:
        bar.update(sum(runs_of[key] for key in done))
        while True:
            missing = [key for key in plan if not paths[key].exists()]
            if seen & set(missing) or not chunk_dir.exists():
                other = finished_elsewhere()
                if other is not None:
                    shutil.rmtree(chunk_dir, ignore_errors=True)  # whatever this process wrote since
                    return other
                seen -= set(missing)  # no results of this sweep: compute the vanished chunks again
                chunk_dir.mkdir(parents=True, exist_ok=True)
            seen |= {key for key in plan if key not in missing}
            if not missing:  # every chunk is there: one process writes the results
                try:
                    got = final.acquire()
                except FileNotFoundError:  # the folder is gone: another process finished
                    got = False
                if got and all(paths[key].exists() for key in plan):
                    frames = [pd.read_parquet(paths[key]) for key in plan]
                    break
                final.release()
                time.sleep(POLL_S)
                continue
            if first_round:  # one compile per job: first its first chunk, unless one is done already
                started = {key[0] for key in seen}  # (a done chunk's program is in the compilation cache)
                first = {key[0]: key for key in reversed(missing)}
                keys = [key for key in missing if key[0] in started or first[key[0]] == key]
            else:
                keys = missing
            statuses = run_round(keys, bar, workers if first_round else 1)
            first_round = False
            if "computed" not in statuses and "busy" in statuses:
                time.sleep(POLL_S)  # the others are computed by another process: look again soon
    try:
        df = pd.concat(frames, ignore_index=True)
        sidecar = {
            **dict(metadata or {}),
            "configs": [config.to_dict() for _, config, _ in jobs],
            "sweeps": [{k: list(v) for k, v in s.items()} for _, _, s in jobs],
            "seeds": [int(s) for s in seed_list],
            "chunk_seeds": chunk_seeds,
            "chunks": len(plan),
            "chunks_resumed": len(done),
            "chunks_computed": computed,
            "executor": "inline" if inline else type(executor).__name__,
            "fingerprint": fingerprint,
            "wall_time_s": wall,
        }
        if write:
            write_results(df, out_dir, name, sidecar)
        shutil.rmtree(chunk_dir, ignore_errors=True)
        try:
            chunk_dir.parent.rmdir()
        except OSError:
            pass
    finally:
        final.release()
    return df, sidecar
