"""JAX's persistent compilation cache: where it lives, and that a second CLI run compiles nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from lora_theory.cache import enable_compilation_cache


@pytest.fixture
def restore_cache_config():
    """Put the worker's cache settings back: the tests below point JAX at temporary folders."""
    saved = {
        name: getattr(jax.config, name)
        for name in (
            "jax_compilation_cache_dir",
            "jax_persistent_cache_min_compile_time_secs",
            "jax_persistent_cache_min_entry_size_bytes",
        )
    }
    yield
    folder = saved.pop("jax_compilation_cache_dir")
    assert folder is not None, "conftest.py enables the cache"
    enable_compilation_cache(folder)
    for name, value in saved.items():
        jax.config.update(name, value)


def test_the_argument_wins_and_small_programs_are_cached(tmp_path, monkeypatch, restore_cache_config):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "from_env"))
    folder = enable_compilation_cache(tmp_path / "given")
    assert folder == (tmp_path / "given").resolve() and folder.is_dir()
    assert jax.config.jax_compilation_cache_dir == str(folder)
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
    assert jax.config.jax_persistent_cache_min_entry_size_bytes == 0
    assert enable_compilation_cache(tmp_path / "given") == folder  # idempotent
    assert jax.config.jax_compilation_cache_dir == str(folder)


def test_the_environment_variable_then_the_per_user_folder(tmp_path, monkeypatch, restore_cache_config):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "from_env"))
    assert enable_compilation_cache() == (tmp_path / "from_env").resolve()
    assert jax.config.jax_compilation_cache_dir == str((tmp_path / "from_env").resolve())

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert enable_compilation_cache() == (tmp_path / "xdg" / "lora_theory" / "jax").resolve()

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert enable_compilation_cache() == (tmp_path / "home" / ".cache" / "lora_theory" / "jax").resolve()


#: ``lora-theory train`` in a fresh interpreter, counting JAX's compilation events.
_COUNTING_CLI = """
import json, sys
import jax.monitoring

counts = {"programs": 0, "hits": 0, "writes": 0}
EVENTS = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "writes"}


def on_event(event, **kwargs):
    if event in EVENTS:
        counts[EVENTS[event]] += 1


def on_duration(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        counts["programs"] += 1


jax.monitoring.register_event_listener(on_event)
jax.monitoring.register_event_duration_secs_listener(on_duration)
from lora_theory.cli import main

code = main(sys.argv[1:])
print("COUNTS " + json.dumps(counts))
sys.exit(code)
"""

_TINY_TRAIN = [
    "train",
    "--d",
    "6",
    "--k",
    "5",
    "--r-star",
    "2",
    "--rank",
    "2",
    "--n-samples",
    "40",
    "--init",
    "spectral",
    "--optimizer",
    "precgd",
    "--lr",
    "0.5",
    "--steps",
    "20",
    "--log-every",
    "5",
    "--seeds",
    "2",
    "--quiet",
]


def _train_counting(cache_dir: Path, out: Path) -> dict:
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(cache_dir))
    proc = subprocess.run(
        [sys.executable, "-c", _COUNTING_CLI, *_TINY_TRAIN, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("COUNTS "))
    return json.loads(line.removeprefix("COUNTS "))


def test_a_second_cli_run_reads_every_program_from_the_cache(tmp_path):
    """Two runs of the same ``lora-theory train`` in fresh interpreters, one cache folder.

    How a hit is detected: JAX reports, through :mod:`jax.monitoring` (its public hook for
    counters), one ``/jax/core/compile/backend_compile_duration`` event for every program it
    obtains from XLA or from the persistent cache, one ``/jax/compilation_cache/cache_hits`` for
    each one read back from the cache and one ``/jax/compilation_cache/cache_misses`` for each one
    compiled and written to it.  So ``programs - hits`` is the number of real XLA compilations.
    The first run (empty folder) compiles every program and writes it; the second compiles none:
    every program, eager ops included, is a hit, which is what
    ``jax_persistent_cache_min_compile_time_secs = 0`` (and min entry size 0) buys.
    """
    cache = tmp_path / "cache"
    first = _train_counting(cache, tmp_path / "out1")
    assert first["programs"] > 0 and first["hits"] == 0
    assert first["writes"] == first["programs"], first  # every program, however small, is written
    assert any(cache.iterdir()), "the first run left the cache folder empty"

    second = _train_counting(cache, tmp_path / "out2")
    assert second["programs"] == first["programs"], (first, second)
    assert second["programs"] - second["hits"] == 0, second  # no XLA compilation at all
    assert second["writes"] == 0
