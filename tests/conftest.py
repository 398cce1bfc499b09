"""Test configuration: float64 and strict dtype promotion everywhere, as for a theory check."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The tests' problems are tiny, so compilation is nearly all of their time: XLA's CPU backend at
# optimisation level 0 compiles about twice as fast (same HLO, so the same math; the notebook
# kernels and subprocesses the tests start inherit it through the environment).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

# JAX's persistent compilation cache ($JAX_COMPILATION_CACHE_DIR, else the per-user folder): the
# pytest-xdist workers, the CLI subprocesses and the notebook kernels the tests start all share it
# (the variable is exported for them), and a second test run reads most programs back from disk.
from lora_theory.cache import enable_compilation_cache  # noqa: E402

os.environ["JAX_COMPILATION_CACHE_DIR"] = str(enable_compilation_cache())

settings.register_profile("lora_theory", deadline=None, max_examples=15, derandomize=True)
settings.load_profile("lora_theory")


@pytest.fixture
def key():
    return jax.random.key(0)
