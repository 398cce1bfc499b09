"""The public constructors are safe under the user's own ``vmap`` (jax >= 0.11.2).

jaxlib 0.10.0-0.11.0 split batched CPU LAPACK calls (QR, SVD, Cholesky under ``vmap``) over XLA's
intra-op pool and could deadlock: ``jax.vmap(lt.make_problem)`` over 512 seeds hung for good.  The
project now requires jax >= 0.11.2; this test vmaps the problem constructors and every init over
512 seeds, as a JAX user would, and checks the results against one-at-a-time construction.  A
regression hangs, and pytest-timeout turns the hang into a failure with a stack trace.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lora_theory as lt

SEEDS = 512
POPULATION = lt.RunConfig(model="population", d=16, k=12, r_star=2, rank=3, kappa=4.0)
LINEAR = POPULATION.replace(model="linear", n_samples=64, noise=0.1)
INIT_NAMES = ("random", "spectral", "lora_one", "lora_ga", "lora_sb", "hrp", "oracle")


def _keys(n):
    return jax.vmap(jax.random.key)(jnp.arange(n, dtype=jnp.uint32))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("config", [POPULATION, LINEAR], ids=["population", "linear"])
def test_vmapped_make_problem_over_512_seeds_completes_and_equals_one_by_one(config):
    problems = jax.jit(jax.vmap(lambda key: lt.make_problem(config, key=key)))(_keys(SEEDS))
    assert problems.G.shape == (SEEDS, config.d, config.k)
    for seed in (0, 301, SEEDS - 1):
        alone = lt.make_problem(config, key=jax.random.key(seed))
        np.testing.assert_allclose(problems.G[seed], alone.G, rtol=1e-12, atol=1e-14)
        # singular subspaces are defined up to sign: compare projectors
        P, Q = problems.G_left[seed], alone.G_left
        np.testing.assert_allclose(P @ P.T, Q @ Q.T, atol=1e-10)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", INIT_NAMES)
def test_vmapped_initialise_over_512_seeds_completes(name):
    problems = jax.vmap(lambda key: lt.make_problem(LINEAR, key=key))(_keys(SEEDS))

    def init(problem, key):
        return lt.initialise(
            problem, name, rank=LINEAR.rank, key=key, alpha=0.1, preheat_rank=6, preheat_steps=5, preheat_lr=0.1
        )

    inits = jax.jit(jax.vmap(init))(problems, _keys(SEEDS))
    assert inits.A.shape == (SEEDS, LINEAR.d, LINEAR.rank)
    assert bool(jnp.all(jnp.isfinite(inits.A))) and bool(jnp.all(jnp.isfinite(inits.B)))
    seed = 137
    alone = init(jax.tree.map(lambda x: x[seed], problems), jax.random.key(seed))
    # the product is sign-invariant (singular vectors are not)
    np.testing.assert_allclose(inits.A[seed] @ inits.B[seed], alone.A @ alone.B, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(inits.A[seed] @ inits.A[seed].T, alone.A @ alone.A.T, rtol=1e-9, atol=1e-12)
