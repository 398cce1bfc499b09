"""JAX's persistent compilation cache, on for every entry point of the suite.

Why: the suite's programs are small and many (a claim, a figure or a test runs each for well
under a second), so XLA's compilation is most of their wall time, and the same programs come back
run after run.  With the cache, a program compiled once is read back from disk by every later
process (another ``lora-theory`` command, a test worker, a notebook kernel) instead of being
compiled again.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

__all__ = ["enable_compilation_cache", "quick_compile_flags"]


def _default_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "lora_theory" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Turn on JAX's persistent compilation cache, for every program however small; returns its folder.

    The folder is ``path`` if given, else ``$JAX_COMPILATION_CACHE_DIR`` if set, else a per-user
    cache folder, ``$XDG_CACHE_HOME/lora_theory/jax`` (``~/.cache/lora_theory/jax`` without
    ``XDG_CACHE_HOME``); never a results folder, so results stay results and one cache serves
    every results folder.  It is created if missing.  Sets ``jax_compilation_cache_dir``, and
    ``jax_persistent_cache_min_compile_time_secs = 0`` and
    ``jax_persistent_cache_min_entry_size_bytes = 0``: JAX's defaults cache only programs that
    took a second or more to compile, while the small ones are those that repeat most here.

    Idempotent: a second call with the same folder changes nothing.  JAX opens the cache at its
    first compilation, so call this before anything compiles; a call with another folder after
    that resets JAX's cache so that later compilations use the new folder.

    The cache is keyed on the program, the JAX/jaxlib versions, the devices and the XLA flags, so
    a stale entry is never used; entries are never evicted.  Processes may share the folder (the
    test workers do); an entry read while another process is still writing it, or left truncated
    by a killed process, fails to load: JAX warns and compiles the program instead.  To clear the
    cache, delete the folder (``rm -rf ~/.cache/lora_theory/jax``); to move it, set
    ``JAX_COMPILATION_CACHE_DIR``.  Like any JAX compilation cache it is trusted: do not point it
    at a folder others can write to.

    Args:
        path: the cache folder (default: ``$JAX_COMPILATION_CACHE_DIR`` or the per-user folder).

    Returns:
        The cache folder, absolute.
    """
    if path is None:
        path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or _default_dir()
    folder = Path(path).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    current = jax.config.jax_compilation_cache_dir
    if current is not None and Path(current).expanduser().resolve() != folder:
        from jax.experimental.compilation_cache import compilation_cache

        compilation_cache.reset_cache()  # JAX opened the old folder already: reopen at the next compile
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def quick_compile_flags() -> None:
    """Quick runs: XLA's CPU backend at optimisation level 0 (``XLA_FLAGS``), unless set already.

    Compilation is nearly all of a quick run (``reproduce --quick``, ``verify --quick``: each
    program runs for well under a second), and level 0 halves its CPU time.  A program whose run
    time dominates opts back in with ``jax.jit(..., compiler_options={"xla_backend_optimization_level":
    3})``.  Only effective before JAX's backend starts, i.e. from the CLI.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_backend_optimization_level=0").strip()
