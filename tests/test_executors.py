"""Sweeps on any executor: the same chunk files and results file from a process pool, submitit
(local mode) or this process; a killed sweep resumes under another executor; concurrent runs on
one folder share the chunks through lock files and never corrupt the results."""

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lora_theory as lt
from lora_theory.cli import main
from lora_theory.executors import process_pool
from lora_theory.locks import ChunkLock, is_stale
from lora_theory.sweep import SweepError, run_sweep

CONFIG = lt.RunConfig(d=8, k=6, r_star=2, rank=2, n_samples=40, steps=20, log_every=5)
SWEEP = {"alpha": [0.1, 0.2]}
SEEDS, CHUNK = 3, 1  # 3 chunks (a chunk size of its own would be another program: other rounding)


def _args(seeds: int = SEEDS) -> list[str]:
    return [
        "train",
        "--d",
        "8",
        "--k",
        "6",
        "--r-star",
        "2",
        "--rank",
        "2",
        "--n-samples",
        "40",
        "--steps",
        "20",
        "--log-every",
        "5",
        "--alpha",
        "0.1,0.2",
        "--seeds",
        str(seeds),
        "--chunk-seeds",
        str(CHUNK),
        "--quiet",
    ]


ARGS = _args()


class _Borrowed:
    """A pool lent to the command line (which would shut its own pool down at the end)."""

    def __init__(self, pool):
        self.pool = pool

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def shutdown(self, **kwargs):
        pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The in-process sweep's results file (its programs go to the shared compilation cache)."""
    out = tmp_path_factory.mktemp("inline")
    assert main([*ARGS, "--out", str(out)]) == 0
    return (out / "train.parquet").read_bytes()


def _sweep(out, **kwargs):
    return run_sweep(
        CONFIG, out_dir=out, name="train", seeds=SEEDS, chunk_seeds=CHUNK, sweep=SWEEP, progress=False, **kwargs
    )


# --- lock files -------------------------------------------------------------------------------


def test_a_lock_is_exclusive_names_its_holder_and_is_released(tmp_path):
    path = tmp_path / "chunk.lock"
    first, second = ChunkLock(path), ChunkLock(path)
    assert first.acquire() and first.held()
    info = json.loads(path.read_text())
    assert info["pid"] == os.getpid() and info["token"] == first.token and "host" in info and "taken_at" in info
    assert not second.acquire() and not is_stale(path)  # a live holder keeps it
    first.release()
    assert not path.exists() and second.acquire()
    second.release()


def test_a_dead_processs_lock_is_taken_over_at_once(tmp_path):
    path = tmp_path / "chunk.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = ChunkLock(path)
    assert stale.acquire()
    info = json.loads(path.read_text())
    stale.release()
    info["pid"] = int(dead.stdout)  # a process of this machine that has exited
    path.write_text(json.dumps(info))
    assert is_stale(path)
    lock = ChunkLock(path)
    assert lock.acquire() and json.loads(path.read_text())["token"] == lock.token
    lock.release()


def test_another_machines_lock_is_stale_only_after_its_heartbeat_stops(tmp_path):
    path = tmp_path / "chunk.lock"
    path.write_text(json.dumps({"host": "node-17", "boot_id": "x", "pid": 1, "token": "t", "taken_at": 0}))
    assert not is_stale(path, stale_after=60) and not ChunkLock(path, stale_after=60).acquire()
    old = time.time() - 120
    os.utime(path, (old, old))
    assert is_stale(path, stale_after=60)
    path.write_text("not a lock")
    assert is_stale(path, stale_after=60)


def test_a_held_locks_heartbeat_refreshes_it(tmp_path):
    path = tmp_path / "chunk.lock"
    lock = ChunkLock(path, heartbeat=0.05)
    assert lock.acquire()
    old = time.time() - 1000
    os.utime(path, (old, old))
    time.sleep(0.3)
    assert time.time() - path.stat().st_mtime < 10
    lock.release()


def test_a_lock_works_without_hard_links(tmp_path, monkeypatch):
    def no_links(*_):
        raise PermissionError("this file system has no hard links")

    monkeypatch.setattr(os, "link", no_links)
    first, second = ChunkLock(tmp_path / "chunk.lock"), ChunkLock(tmp_path / "chunk.lock")
    assert (
        first.acquire()
        and not second.acquire()
        and json.loads((tmp_path / "chunk.lock").read_text())["token"] == first.token
    )
    first.release()
    assert second.acquire()
    second.release()


# --- executors --------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_submitit_in_local_mode_writes_the_same_file(tmp_path, reference):
    if importlib.util.find_spec("submitit") is None:  # not imported here: see executors._import_submitit
        pytest.skip("submitit is not installed")
    # 1 seed, 1 chunk: one submitit job (a process that starts JAX: about 4 s of CPU)
    run_sweep(
        CONFIG, out_dir=tmp_path / "inline", name="train", seeds=1, chunk_seeds=CHUNK, sweep=SWEEP, progress=False
    )
    jobs = tmp_path / "jobs"
    assert (
        main(
            [
                *_args(1),
                "--out",
                str(tmp_path),
                "--executor",
                "submitit",
                "--submitit-cluster",
                "local",
                "--submitit-folder",
                str(jobs),
                "--slurm-time",
                "10",
                "--slurm-cpus",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "train.parquet").read_bytes() == (tmp_path / "inline" / "train.parquet").read_bytes()
    _, sidecar = lt.read_results(tmp_path, "train")
    assert sidecar["executor"] == "AutoExecutor" and sidecar["chunks_computed"] == 1
    assert len(list(jobs.glob("*_log.out"))) == 1  # the chunk ran as a submitit job


def test_a_dask_client_is_an_executor_too(tmp_path, reference):
    """Smoke test: Dask's futures are not concurrent.futures ones; the file is the same."""
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("distributed is not installed")
    from distributed import Client

    # in-process (threads): the interface, cheaply; a LocalCluster of processes works the same way
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as client:
        _, sidecar = _sweep(tmp_path, executor=client)
    assert sidecar["executor"] == "Client" and (tmp_path / "train.parquet").read_bytes() == reference


DYING = """
import os, signal, sys
import jax
jax.config.update("jax_enable_x64", True)
import lora_theory as lt
import lora_theory.executors as executors
lt.enable_compilation_cache()
compute, calls = executors._compute, []
def dying(task, path):  # the second chunk: killed while it holds the chunk's lock
    calls.append(path)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return compute(task, path)
executors._compute = dying
config = lt.RunConfig(d=8, k=6, r_star=2, rank=2, n_samples=40, steps=20, log_every=5)
lt.run_sweep(config, out_dir=sys.argv[1], name="train", seeds=3, chunk_seeds=1, sweep={"alpha": [0.1, 0.2]},
             progress=False)
"""


@pytest.mark.timeout(300)
def test_a_two_worker_process_pool_writes_the_same_file_and_resumes_a_killed_sweep(tmp_path, reference, monkeypatch):
    """One test, one pool (2 processes that start JAX): a fresh sweep through the command line, then
    a sweep SIGKILLed mid-way in this process's executor resumed in the pool."""
    import lora_theory.executors

    with process_pool(2) as pool:
        sizes = []
        monkeypatch.setattr(
            lora_theory.executors, "process_pool", lambda workers: sizes.append(workers) or _Borrowed(pool)
        )
        fresh = tmp_path / "fresh"
        assert main([*ARGS, "--out", str(fresh), "--executor", "processes", "--workers", "2"]) == 0
        assert sizes == [2] and (fresh / "train.parquet").read_bytes() == reference
        _, sidecar = lt.read_results(fresh, "train")
        assert sidecar["executor"] == "_Borrowed" and sidecar["chunks_computed"] == SEEDS
        assert not (fresh / "train.chunks").exists() and len(pool._processes) == 2  # both workers started

        killed = tmp_path / "killed"
        run = subprocess.run([sys.executable, "-c", DYING, str(killed)], capture_output=True, text=True, timeout=280)
        assert run.returncode == -9, run.stderr[-2000:]
        chunk_dir = next((killed / "train.chunks").iterdir())
        assert len(list(chunk_dir.glob("*.parquet"))) == 1 and len(list(chunk_dir.glob("*.parquet.lock"))) == 1
        assert not (killed / "train.parquet").exists()
        _, sidecar = _sweep(killed, executor=pool)  # the dead process's lock is taken over at once
    assert sidecar["chunks_resumed"] == 1 and sidecar["chunks_computed"] == 2
    assert (killed / "train.parquet").read_bytes() == reference


def test_two_concurrent_sweeps_on_one_folder_share_it_and_write_a_correct_file(tmp_path, reference, monkeypatch):
    import lora_theory.executors as executors

    compute, computed = executors._compute, []

    def slow(task, path):  # each chunk takes 0.5 s, so that the two sweeps overlap
        computed.append((Path(path).name, threading.get_ident()))
        time.sleep(0.5)
        return compute(task, path)

    monkeypatch.setattr(executors, "_compute", slow)
    barrier, outcomes = threading.Barrier(2), [None, None]

    def run(i):
        barrier.wait()
        outcomes[i] = _sweep(tmp_path)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert all(outcome is not None for outcome in outcomes)
    assert (tmp_path / "train.parquet").read_bytes() == reference
    assert sorted(name for name, _ in computed) == [f"job000-chunk{c:05d}.parquet" for c in range(SEEDS)]  # once each
    assert len({ident for _, ident in computed}) == 2  # and both sweeps computed some
    pd.testing.assert_frame_equal(outcomes[0][0], outcomes[1][0])
    assert outcomes[0][1]["fingerprint"] == outcomes[1][1]["fingerprint"]
    assert not (tmp_path / "train.chunks").exists()
    lt.read_results(tmp_path, "train")  # the pair matches


def test_a_chunk_another_process_holds_is_waited_for_not_computed_twice(tmp_path, reference):
    chunk_dir = tmp_path / "train.chunks" / lt.sweep_fingerprint([({}, CONFIG, SWEEP)], np.arange(SEEDS), CHUNK)
    chunk_dir.mkdir(parents=True)
    other = ChunkLock(chunk_dir / "job000-chunk00002.parquet.lock")
    assert other.acquire()
    threading.Timer(1.0, other.release).start()  # the other process "dies cleanly" after 1 s
    start = time.perf_counter()
    _, sidecar = _sweep(tmp_path)
    assert time.perf_counter() - start >= 1.0  # it waited for the held chunk
    assert sidecar["chunks_computed"] == SEEDS
    assert (tmp_path / "train.parquet").read_bytes() == reference


class _Failing:
    """An executor whose worker for chunk 1 fails (as a crashed job would)."""

    def submit(self, fn, task):
        future = Future()
        if task.path.endswith("chunk00001.parquet"):
            future.set_exception(RuntimeError("node lost"))
        else:
            future.set_result(fn(task))
        return future


def test_a_failed_chunk_is_reported_and_redone_on_the_next_run(tmp_path, reference):
    with pytest.raises(
        SweepError, match=r"1 of 2 chunks of train failed \(first: job 0, chunk 1: RuntimeError: node lost\)"
    ):
        _sweep(tmp_path, executor=_Failing())
    assert len(list(tmp_path.glob("train.chunks/*/*.parquet"))) == 2 and not list(
        tmp_path.glob("train.chunks/*/*.lock")
    )
    _, sidecar = _sweep(tmp_path)
    assert sidecar["chunks_resumed"] == 2 and sidecar["chunks_computed"] == 1
    assert (tmp_path / "train.parquet").read_bytes() == reference


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_concurrent_processes_on_one_folder_write_a_correct_file(tmp_path, reference):
    """The thread test above, with two ``lora-theory train`` processes started together."""
    command = [sys.executable, "-m", "lora_theory.cli", *ARGS, "--out", str(tmp_path)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for process in processes:
        _, err = process.communicate(timeout=500)
        assert process.returncode == 0, err.decode()[-2000:]
    assert (tmp_path / "train.parquet").read_bytes() == reference
    assert not (tmp_path / "train.chunks").exists()
