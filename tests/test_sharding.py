"""Device sharding: a batch split over 8 (forced host) CPU devices equals the one-device batch.

JAX fixes the device count at start-up, so the sharded run happens in a subprocess started with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np

import lora_theory as lt

CONFIG = dict(
    d=12,
    k=10,
    r_star=2,
    rank=2,
    n_samples=160,
    init="spectral",
    optimizer="precgd",
    lr=0.3,
    damping=1e-3,
    steps=30,
    log_every=5,
)
SWEEP = {"lr": [0.1, 0.3]}
SEEDS = 11  # not a multiple of 8: the batch is padded and the padding dropped


def test_sharded_batch_equals_single_device_batch(tmp_path):
    script = textwrap.dedent(f"""
        import jax
        jax.config.update("jax_enable_x64", True)
        import numpy as np
        import lora_theory as lt
        assert jax.device_count() == 8, jax.devices()
        batch = lt.simulate(lt.RunConfig(**{CONFIG!r}), seeds={SEEDS}, sweep={SWEEP!r})
        risk = batch.trajectory.metrics["risk"]
        assert len(risk.sharding.device_set) == 8, risk.sharding
        np.savez({str(tmp_path / "sharded.npz")!r}, risk=np.asarray(risk),
                 align=np.asarray(batch.trajectory.metrics["align_A_G"]),
                 A=np.asarray(batch.trajectory.final.A))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = np.load(tmp_path / "sharded.npz")

    single = lt.simulate(lt.RunConfig(**CONFIG), seeds=SEEDS, sweep=SWEEP, mesh=None)
    assert sharded["risk"].shape == single.trajectory.metrics["risk"].shape == (SEEDS, 2, 7)
    # the risk is a difference (||AB - dW||^2): near convergence its relative rounding grows, so an
    # absolute floor far below the initial risk (~0.1) is added
    np.testing.assert_allclose(sharded["risk"], single.trajectory.metrics["risk"], rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(sharded["align"], single.trajectory.metrics["align_A_G"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sharded["A"], single.trajectory.final.A, rtol=1e-10, atol=1e-14)


def test_a_bad_mesh_argument_is_a_config_error():
    import pytest

    with pytest.raises(lt.ConfigError, match="mesh"):
        lt.simulate(lt.RunConfig(**CONFIG), seeds=2, mesh="everywhere")
