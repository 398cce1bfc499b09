"""Small shared helpers for the tests."""

import jax
import jax.numpy as jnp

import lora_theory as lt


def linear_problem(d=12, k=10, r_star=2, n=200, noise=0.1, seed=0, kappa=3.0, return_data=False):
    s = lt.target_spectrum(r_star, kappa, 1.0, jnp.float64)
    return lt.make_linear_problem(d, k, r_star, n, s, noise, key=jax.random.key(seed), return_data=return_data)


def population_problem(d=12, k=10, r_star=2, seed=0, kappa=3.0):
    s = lt.target_spectrum(r_star, kappa, 1.0, jnp.float64)
    return lt.make_population_problem(d, k, r_star, s, key=jax.random.key(seed))


def relative_error(a, b):
    return float(jnp.linalg.norm(jnp.ravel(a - b)) / jnp.maximum(jnp.linalg.norm(jnp.ravel(b)), 1e-300))
