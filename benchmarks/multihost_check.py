"""Multi-process check of ``lt.simulate`` over a seed mesh spanning processes (run 2 on one host).

    python benchmarks/multihost_check.py 0 & python benchmarks/multihost_check.py 1; wait

Each process calls ``jax.distributed.initialize`` (localhost coordinator, 2 processes, one CPU
device each; jaxlib uses Gloo for cross-process CPU collectives), runs ``lt.simulate`` with
``mesh=lt.seed_mesh()`` (the mesh spans both processes), shows that the result is a global
``jax.Array`` that no single process can convert to NumPy, gathers it with
``jax.experimental.multihost_utils.process_allgather(..., tiled=True)`` and (process 0) compares
with a single-device run.  The same script shape works across hosts with a real coordinator
address.
"""

import sys

import jax

jax.config.update("jax_enable_x64", True)
pid = int(sys.argv[1])
seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
jax.distributed.initialize(coordinator_address="localhost:12359", num_processes=2, process_id=pid)

import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

import lora_theory as lt  # noqa: E402

print(
    pid, "processes", jax.process_count(), "devices", jax.device_count(), "local", jax.local_device_count(), flush=True
)
config = lt.RunConfig(d=10, k=8, r_star=2, rank=4, n_samples=80, steps=20, log_every=10, lr=0.05)
batch = lt.simulate(config, seeds=seeds, mesh=lt.seed_mesh())
risk = batch.trajectory.metrics["risk"]
print(pid, "risk", risk.shape, "fully addressable:", risk.is_fully_addressable, risk.sharding.spec, flush=True)
try:
    np.asarray(risk)
    print(pid, "np.asarray worked (replicated result)", flush=True)
except RuntimeError as e:
    print(pid, "np.asarray failed:", str(e)[:90], flush=True)
gathered = multihost_utils.process_allgather(batch.trajectory, tiled=True)
got = np.asarray(gathered.metrics["risk"])
print(pid, "gathered", got.shape, flush=True)
if pid == 0:
    ref = lt.simulate(config, seeds=seeds, mesh=None)
    print(
        pid,
        "max |difference| against one device:",
        float(np.max(np.abs(np.asarray(ref.trajectory.metrics["risk"]) - got))),
        flush=True,
    )
