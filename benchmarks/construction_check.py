"""Construction-time check (NOTES.md): lt.build at d = 256 for 16/32/64 seeds, vmap against lax.map.

python benchmarks/construction_check.py
"""

import os
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)
import lora_theory as lt  # noqa: E402
from lora_theory import engine  # noqa: E402

config = lt.RunConfig(d=256, k=256, r_star=4, rank=8, n_samples=512, init="spectral", steps=0, log_every=1)
grid = lt.make_grid(None)
for mode in ("map", "vmap"):
    engine.CONSTRUCTION = mode
    for n in (16, 32, 64):
        keys = jax.vmap(jax.random.key)(jnp.arange(n, dtype=jnp.uint32))
        t = time.perf_counter()
        compiled = jax.jit(lambda k, g: lt.build(config, k, g)).lower(keys, grid).compile()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        jax.block_until_ready(compiled(keys, grid))
        dt = time.perf_counter() - t
        print(
            f"{mode:>4} {n:>3} seeds: compile {compile_s:.2f} s, build {dt:.2f} s ({dt / n * 1e3:.0f} ms/seed), "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
