"""Test configuration: float64 and strict dtype promotion everywhere, as for a theory check."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

settings.register_profile("lora_theory", deadline=None, max_examples=15, derandomize=True)
settings.load_profile("lora_theory")


@pytest.fixture
def key():
    return jax.random.key(0)
