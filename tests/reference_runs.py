"""Reference trajectories from before scaling, LoRA+ and target subspaces existed (commit 0c06b00).

``python tests/reference_runs.py OUT.npz``, run with that commit's package first on the path
(``git archive 0c06b00 lora_theory | tar -x -C /tmp/base && PYTHONPATH=/tmp/base python
tests/reference_runs.py tests/data/reference_0c06b00/PLATFORM.npz``), writes every array of
:data:`CONFIGS`' runs and a fingerprint of the platform.  ``tests/test_practical.py`` runs the
same configs with the current package at its defaults (``scaling='none'``, ``lr_ratio=1``,
``target_subspace='random'``) and compares bit for bit on the same platform.  Uses only the API
both versions share, with the tests' XLA flags (optimisation level 0, as ``conftest.py``).
"""

from __future__ import annotations

import os
import platform
import sys

#: (name, RunConfig keyword arguments, sweep): small runs covering every model, both optimizers,
#: the offset inits, lora_sb's projection, HRP's preheat, a shared and a per-run-problem grid.
CONFIGS = (
    ("random_gd", dict(init="random", optimizer="gd", lr=0.05), {"alpha": [0.01, 0.1]}),
    ("spectral_precgd", dict(init="spectral", optimizer="precgd", lr=0.5, damping=1e-3), {}),
    ("lora_ga_population", dict(model="population", rank=3, init="lora_ga", lr=0.05), {"lr": [0.02, 0.05]}),
    ("relu_spectral", dict(model="relu", init="spectral", gamma=2.0, optimizer="precgd", lr=0.5, damping=1e-6), {}),
    ("lora_sb_precgd", dict(init="lora_sb", optimizer="precgd", lr=0.5, damping=1e-3), {}),
    ("hrp_gd", dict(init="hrp", preheat_steps=10, preheat_lr=0.1, lr=0.05), {}),
    ("lora_one_noise", dict(init="lora_one", variant="orthonormal", noise=0.1, lr=0.05), {"kappa": [1.0, 3.0]}),
    ("oracle_B", dict(model="population", init="oracle", variant="directions", train_factors="B", lr=0.1), {}),
)

BASE = dict(d=10, k=8, r_star=2, rank=4, n_samples=80, steps=30, log_every=5)
SEEDS = [0, 1]


def fingerprint() -> dict[str, str]:
    """What must match for bit-identical results: versions, machine, CPU model, XLA flags."""
    import jax
    import jaxlib

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "machine": platform.machine(),
        "cpu": cpu or platform.processor(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def run_all() -> dict:
    """name/array -> numpy array, for every run of CONFIGS (metrics, final factors, rate, divergence)."""
    import numpy as np

    import lora_theory as lt

    out = {}
    for name, kwargs, sweep in CONFIGS:
        batch = lt.simulate(lt.RunConfig(**{**BASE, **kwargs}), seeds=SEEDS, sweep=sweep, mesh=None)
        traj = batch.trajectory
        for metric, values in traj.metrics.items():
            out[f"{name}/{metric}"] = np.asarray(values)
        out[f"{name}/final_A"] = np.asarray(traj.final.A)
        out[f"{name}/final_B"] = np.asarray(traj.final.B)
        out[f"{name}/rate"] = np.asarray(traj.rate)
        out[f"{name}/diverged_step"] = np.asarray(traj.diverged_step)
    return out


if __name__ == "__main__":
    if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import lora_theory

    arrays = run_all()
    meta = {f"meta/{k}": np.asarray(v) for k, v in fingerprint().items()}
    np.savez_compressed(sys.argv[1], **arrays, **meta)
    print(f"{len(arrays)} arrays from {lora_theory.__file__} -> {sys.argv[1]}")
