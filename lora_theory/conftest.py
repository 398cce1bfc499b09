"""pytest configuration of the package's doctests (the ``Examples:`` sections of the docstrings).

``pytest lora_theory`` (and ``make test``, whose ``testpaths`` include the package) runs them
with ``--doctest-modules``, in the tests' settings (``tests/conftest.py``): float64, strict
dtype promotion, XLA's CPU backend at optimisation level 0, the persistent compilation cache.
The examples' namespace holds ``jax``, ``jnp``, ``np`` and ``lt`` (``import lora_theory as lt``).
This file is not part of the library's API.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lora_theory as lt  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
os.environ["JAX_COMPILATION_CACHE_DIR"] = str(lt.enable_compilation_cache())

# importing these runs code: the CLI's ``python -m`` entry point exits the process
collect_ignore = ["cli/__main__.py"]


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace: dict) -> None:
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, lt=lt)
