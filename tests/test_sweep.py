"""Resumable chunked sweeps: a killed sweep, re-run, gives the same results file as an uninterrupted one."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import lora_theory as lt
from lora_theory.sweep import run_sweep

# chunks of 1 seed that each take a noticeable time (many steps), so the kill lands mid-sweep
ARGS = [
    "train",
    "--d",
    "40",
    "--k",
    "40",
    "--r-star",
    "2",
    "--rank",
    "2",
    "--n-samples",
    "640",
    "--init",
    "spectral",
    "--optimizer",
    "precgd",
    "--lr",
    "0.1,0.2",
    "--damping",
    "1e-3",
    "--steps",
    "6000",
    "--log-every",
    "500",
    "--seeds",
    "8",
    "--chunk-seeds",
    "1",
    "--quiet",
]


def _cli(out: Path) -> list[str]:
    return [sys.executable, "-m", "lora_theory.cli", *ARGS, "--out", str(out), "--name", "sweep"]


def test_killed_sweep_resumes_to_the_same_file(tmp_path):
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    process = subprocess.Popen(_cli(interrupted), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    chunk_root = interrupted / "sweep.chunks"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if len(list(chunk_root.glob("*/*.parquet"))) >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, (
        "the sweep finished before it could be killed: " + process.stderr.read().decode()[-2000:]
    )
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in chunk_root.glob("*/*.parquet"))
    assert 2 <= len(finished) < 8, finished
    assert not (interrupted / "sweep.parquet").exists()

    resumed = subprocess.run(_cli(interrupted), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, sidecar = lt.read_results(interrupted, "sweep")
    assert sidecar["chunks_resumed"] == len(finished)
    assert not chunk_root.exists()

    whole = subprocess.run(_cli(reference), env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert (interrupted / "sweep.parquet").read_bytes() == (reference / "sweep.parquet").read_bytes()
    df = pd.read_parquet(reference / "sweep.parquet")
    assert sorted(df["seed"].unique()) == list(range(8))


def test_chunks_are_padded_to_one_shape_and_equal_one_batch(tmp_path):
    config = lt.RunConfig(
        d=10,
        k=8,
        r_star=2,
        rank=2,
        n_samples=80,
        init="spectral",
        optimizer="precgd",
        lr=0.2,
        damping=1e-3,
        steps=20,
        log_every=5,
    )
    before = lt.TRACE_COUNTS["simulate"]
    chunked, sidecar = run_sweep(config, out_dir=tmp_path, name="chunked", seeds=5, chunk_seeds=2, progress=False)
    assert lt.TRACE_COUNTS["simulate"] == before + 1  # 3 chunks (2, 2, 1 padded to 2): one compile
    assert sidecar["chunks"] == 3
    whole = lt.simulate(config, seeds=5).to_dataframe()
    pd.testing.assert_frame_equal(chunked.reset_index(drop=True), whole.reset_index(drop=True), rtol=1e-12)


def test_a_changed_command_does_not_reuse_chunks(tmp_path):
    config = lt.RunConfig(d=10, k=8, r_star=2, rank=2, n_samples=80, steps=10, log_every=5)
    jobs_a = [({}, config, {"alpha": [0.1]})]
    jobs_b = [({}, config.replace(lr=0.02), {"alpha": [0.1]})]
    assert lt.sweep_fingerprint(jobs_a, [0, 1], 1) != lt.sweep_fingerprint(jobs_b, [0, 1], 1)
    assert lt.sweep_fingerprint(jobs_a, [0, 1], 1) != lt.sweep_fingerprint(jobs_a, [0, 2], 1)


def test_bad_chunk_size_is_a_config_error(tmp_path):
    with pytest.raises(lt.ConfigError, match="chunk_seeds"):
        run_sweep(lt.RunConfig(), out_dir=tmp_path, name="x", seeds=2, chunk_seeds=-1)
