"""Long sweeps in chunks: each chunk written atomically, an interrupted sweep resumes where it stopped.

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
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import pandas as pd

from .config import ConfigError, RunConfig, validate
from .engine import seed_array, simulate
from .results import atomic_write_bytes, batch_to_dataframe, write_results

__all__ = ["SweepJob", "run_sweep", "sweep_fingerprint", "progress_bar"]

#: one job of a sweep: (constant columns added to its rows, config, sweep of dynamic fields).
SweepJob = tuple[Mapping[str, Any], RunConfig, Mapping[str, Sequence[float]]]


def progress_bar(total: int, desc: str, enabled: bool = True, unit: str = "run"):
    """A tqdm bar on stderr (done / total, rate, ETA); silent when disabled or not a terminal."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or not sys.stderr.isatty(), leave=False)


def grid_size(sweep: Mapping[str, Sequence[float]]) -> int:
    """The number of grid points of a sweep (the cartesian product of its value lists; 1 if empty)."""
    return int(np.prod([len(v) for v in sweep.values()])) if sweep else 1


def sweep_fingerprint(jobs: Sequence[SweepJob], seeds: Sequence[int], chunk_seeds: int) -> str:
    """A short hash of everything that determines a sweep's results."""
    payload = {
        "jobs": [
            {"columns": dict(columns), "config": config.to_dict(), "sweep": {k: list(map(float, v)) for k, v in sweep.items()}}
            for columns, config, sweep in jobs
        ],
        "seeds": [int(s) for s in seeds],
        "chunk_seeds": int(chunk_seeds),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _chunks(seeds: np.ndarray, chunk_seeds: int) -> list[np.ndarray]:
    return [seeds[i : i + chunk_seeds] for i in range(0, seeds.size, chunk_seeds)]


def run_sweep(
    jobs: Sequence[SweepJob] | RunConfig,
    *,
    out_dir,
    name: str,
    seeds: int | Sequence[int] = 1,
    seed: int = 0,
    sweep: Mapping[str, Sequence[float]] | None = None,
    chunk_seeds: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    mesh: Any = "auto",
    log=None,
    write: bool = True,
    workers: int = 1,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run a sweep chunk by chunk, resuming from the chunks already written.

    Args:
        jobs: ``[(columns, config, sweep), ...]`` (one compiled program per config), or a single
            :class:`~lora_theory.config.RunConfig` (then ``sweep`` is its grid).
        out_dir, name: the results go to ``{out_dir}/{name}.parquet`` and ``{name}.json``.
        seeds, seed: number of seeds starting at ``seed``, or an explicit list.
        chunk_seeds: seeds per chunk (default: all seeds in one chunk).
        metadata: extra entries for the JSON sidecar.
        progress: show a progress bar (chunks as runs done, runs/s, ETA) when stderr is a TTY.
        mesh: passed to :func:`~lora_theory.engine.simulate` (device sharding).
        log: optional ``print``-like callable for one-line status messages (e.g. resuming).
        write: write ``{name}.parquet`` / ``.json`` (default).  ``False`` returns the DataFrame
            without writing it, for a caller that adds columns and saves the result itself
            (the chunk folder is still used while running, and removed at the end).
        workers: with more than one, the first pending chunk of each job runs in a pool of this
            many threads, so that the jobs' XLA compilations (which release the GIL and dominate
            short sweeps) overlap; the other chunks then run one after the other, compiled.

    Returns:
        (the tidy DataFrame, the sidecar's metadata).
    """
    if isinstance(jobs, RunConfig):
        jobs = [({}, jobs, dict(sweep or {}))]
    jobs = list(jobs)
    for _, config, job_sweep in jobs:  # every error before anything compiles
        validate(config, job_sweep)
    seed_list = seed_array(seeds, seed)
    chunk_seeds = int(seed_list.size if chunk_seeds is None else chunk_seeds)
    if chunk_seeds < 1:
        raise ConfigError(f"chunk_seeds={chunk_seeds} is invalid: must be at least 1")
    fingerprint = sweep_fingerprint(jobs, seed_list, chunk_seeds)
    chunk_dir = Path(out_dir) / f"{name}.chunks" / fingerprint
    chunks = _chunks(seed_list, chunk_seeds)
    plan = [(j, c) for j in range(len(jobs)) for c in range(len(chunks))]
    paths = {(j, c): chunk_dir / f"job{j:03d}-chunk{c:05d}.parquet" for j, c in plan}
    done = [key for key in plan if paths[key].exists()]
    if done and log is not None:
        log(f"resuming {name}: {len(done)}/{len(plan)} chunks already done in {chunk_dir}")

    runs_of = {key: chunks[key[1]].size * grid_size(jobs[key[0]][2]) for key in plan}
    wall = 0.0

    def run_chunk(key):
        columns, config, job_sweep = jobs[key[0]]
        chunk = chunks[key[1]]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], chunk_seeds - chunk.size)])
        batch = simulate(config, seeds=padded, sweep=job_sweep, mesh=mesh)
        if chunk.size < padded.size:  # drop the padding runs
            trimmed = jax.tree.map(lambda x: x[: chunk.size], batch.trajectory)
            batch = dataclasses.replace(batch, seeds=chunk, trajectory=trimmed)
        df = batch_to_dataframe(batch, **columns)
        buffer = io.BytesIO()
        df.reset_index(drop=True).to_parquet(buffer, index=False)
        atomic_write_bytes(paths[key], buffer.getvalue())
        return batch.wall_time

    pending = [key for key in plan if not paths[key].exists()]
    with progress_bar(sum(runs_of.values()), name, progress) as bar:
        bar.update(sum(runs_of[key] for key in done))
        if workers > 1 and pending:
            from concurrent.futures import ThreadPoolExecutor

            first = list({key[0]: key for key in reversed(pending)}.values())[::-1]  # one per job
            start = time.perf_counter()  # elapsed, not the sum of the overlapping calls
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for key, _ in zip(first, pool.map(run_chunk, first)):
                    bar.update(runs_of[key])
            wall += time.perf_counter() - start
            pending = [key for key in pending if key not in first]
        for key in pending:
            wall += run_chunk(key)
            bar.update(runs_of[key])
    frames = [pd.read_parquet(paths[key]) for key in plan]
    df = pd.concat(frames, ignore_index=True)
    sidecar = {
        **dict(metadata or {}),
        "configs": [config.to_dict() for _, config, _ in jobs],
        "sweeps": [{k: list(v) for k, v in s.items()} for _, _, s in jobs],
        "seeds": [int(s) for s in seed_list],
        "chunk_seeds": chunk_seeds,
        "chunks": len(plan),
        "chunks_resumed": len(done),
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
    return df, sidecar
