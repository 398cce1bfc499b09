"""Test configuration: the shared settings (float64, strict promotion, XLA opt level 0, the
compilation cache) are in the repository's ``conftest.py``; here the hypothesis profile and the
``key`` fixture."""

import jax
import pytest
from hypothesis import settings

settings.register_profile("lora_theory", deadline=None, max_examples=15, derandomize=True)
settings.load_profile("lora_theory")


@pytest.fixture
def key():
    return jax.random.key(0)
