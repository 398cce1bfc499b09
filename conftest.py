"""pytest configuration shared by the tests (``tests/``) and the package's doctests (the
``Examples:`` sections of ``lora_theory``'s docstrings, collected with ``--doctest-modules``).

Float64 and strict dtype promotion everywhere, as for a theory check; XLA's CPU backend at
optimisation level 0; the persistent compilation cache.  The doctests' namespace holds ``jax``,
``jnp``, ``np`` and ``lt`` (``import lora_theory as lt``).  At the repository root, so it is not
part of the installed package.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The tests' problems are tiny, so compilation is nearly all of their time: XLA's CPU backend at
# optimisation level 0 compiles about twice as fast (same HLO, so the same math; the notebook
# kernels and subprocesses the tests start inherit it through the environment).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

import lora_theory as lt  # noqa: E402

# JAX's persistent compilation cache ($JAX_COMPILATION_CACHE_DIR, else the per-user folder): the
# pytest-xdist workers, the CLI subprocesses and the notebook kernels the tests start all share it
# (the variable is exported for them), and a second test run reads most programs back from disk.
os.environ["JAX_COMPILATION_CACHE_DIR"] = str(lt.enable_compilation_cache())

# importing it runs code: the CLI's ``python -m`` entry point exits the process
collect_ignore = ["lora_theory/cli/__main__.py"]


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, lt=lt)
