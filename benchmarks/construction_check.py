"""Construction-time check (NOTES.md, open issue): simulate(steps=0) at d = 256 for 16/32/64 seeds."""
import time, os, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from jax import lax
import lora_theory as lt
from lora_theory import engine
c = lt.RunConfig(d=256, k=256, r_star=4, rank=8, n_samples=512, steps=0, log_every=1)
grid = {engine._INDEX: jnp.arange(1, dtype=jnp.int32)}
for n in (16, 32, 64):
    ks = jax.vmap(jax.random.key)(jnp.arange(n, dtype=jnp.uint32))
    comp = engine._simulate_compiled.lower(c, (), ks, grid, None).compile()
    t = time.perf_counter(); jax.block_until_ready(comp(ks, grid)); dt = time.perf_counter() - t
    print(n, f"simulate steps=0: {dt:.2f} s  {dt/n*1e3:.0f} ms/seed  load {os.getloadavg()[0]:.2f}", flush=True)
