"""Initialisations: the properties the SPEC's table states."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lora_theory as lt
from helpers import linear_problem, population_problem, relative_error


def _best_rank(M, r):
    U, s, Vt = jnp.linalg.svd(M, full_matrices=False)
    return (U[:, :r] * s[:r]) @ Vt[:r]


@pytest.mark.parametrize("rank", [2, 4])
def test_spectral_gamma_one_is_best_rank_r_approximation_of_G(rank):
    problem = linear_problem(noise=0.5)
    init = lt.initialise(problem, "spectral", rank=rank, key=jax.random.key(1), gamma=1.0)
    assert relative_error(init.A @ init.B, _best_rank(problem.G, rank)) < 1e-12
    init2 = lt.initialise(problem, "spectral", rank=rank, key=jax.random.key(1), gamma=2.0)
    assert relative_error(init2.A @ init2.B, 2.0 * _best_rank(problem.G, rank)) < 1e-12


@pytest.mark.parametrize("name", ["spectral", "oracle"])
def test_population_alignment_is_zero_at_step_zero(name):
    problem = population_problem(d=20, k=16, r_star=3)
    init = lt.initialise(problem, name, rank=5, key=jax.random.key(1))
    assert float(lt.align_A(init.A, problem.G_left)) < 1e-10
    assert float(lt.align_B(init.B, problem.G_right)) < 1e-10
    assert float(lt.align_A(init.A, problem.dW_left)) < 1e-10


@pytest.mark.parametrize("name,variant", [("lora_ga", None), ("lora_one", "orthonormal")])
def test_offset_inits_leave_the_model_unchanged(name, variant):
    problem = linear_problem(d=12, k=10)
    init = lt.initialise(problem, name, rank=3, key=jax.random.key(1), variant=variant)
    assert float(jnp.max(jnp.abs(init.A @ init.B + init.offset.dense()))) < 1e-12
    assert relative_error(problem.objective(init.offset).loss(init.A, init.B), problem.loss_W0) < 1e-12
    assert float(jnp.linalg.norm(init.A)) > 0.1  # but the factors are not zero


def test_lora_ga_uses_directions_r_plus_1_to_2r():
    problem = linear_problem(d=12, k=10, noise=0.5)
    init = lt.initialise(problem, "lora_ga", rank=3, key=jax.random.key(1), s=4.0)
    U, _, Vt = jnp.linalg.svd(problem.G, full_matrices=False)
    c = 12**0.25 / 2.0
    assert relative_error(init.A, c * U[:, :3]) < 1e-12
    assert relative_error(init.B, c * Vt[3:6]) < 1e-12


def test_lora_one_normalized_scale():
    problem = linear_problem(noise=0.5)
    init = lt.initialise(problem, "lora_one", rank=2, key=jax.random.key(0), s=4.0)
    s1 = jnp.linalg.svd(problem.G, compute_uv=False)[0]
    assert relative_error(init.A @ init.B, _best_rank(problem.G, 2) / s1 / 4.0) < 1e-12
    assert float(jnp.max(jnp.abs(init.offset.dense()))) == 0.0


def test_random_init_statistics():
    problem = population_problem(d=200, k=50)
    init = lt.initialise(problem, "random", rank=50, key=jax.random.key(3), alpha=0.1)
    assert abs(float(jnp.std(init.A)) - 0.1) < 0.005
    assert float(jnp.max(jnp.abs(init.B))) == 0.0


def test_lora_sb_core_and_basis():
    problem = linear_problem(noise=0.5)
    init = lt.initialise(problem, "lora_sb", rank=3, key=jax.random.key(0))
    U, s, Vt = jnp.linalg.svd(problem.G, full_matrices=False)
    assert relative_error(init.A @ init.B, _best_rank(problem.G, 3)) < 1e-12
    assert relative_error(init.A_basis, U[:, :3]) < 1e-12


def test_hrp_directions_and_singular_values():
    problem = population_problem(d=30, k=20, r_star=3, kappa=5.0)
    common = dict(rank=3, key=jax.random.key(4), alpha=0.05, preheat_rank=12, preheat_steps=300, preheat_lr=0.2)
    directions = lt.initialise(problem, "hrp", **common)
    # directions: orthogonal columns of norm alpha sqrt(d), B = 0
    gram = directions.A.T @ directions.A
    assert jnp.allclose(gram, 0.05**2 * 30 * jnp.eye(3), atol=1e-12)
    assert float(jnp.max(jnp.abs(directions.B))) == 0.0
    # a long preheat at rank 12 in population mode finds dW's top-3 subspace
    assert float(lt.align_A(directions.A, problem.dW_left)) < 1e-3
    kept = lt.initialise(problem, "hrp", variant="singular_values", **common)
    assert relative_error(kept.A @ kept.B, problem.dW) < 1e-3


def test_hrp_classic_preheat_is_gd_on_both_factors():
    """preheat_train_factors='both' (the default) is HRP's own procedure: a few GD steps of classic
    rank-p LoRA from random (both factors move), then the top-r left singular vectors of A_p B_p."""
    problem = population_problem(d=10, k=8, r_star=4, kappa=5.0)
    key, alpha, eta, p, r = jax.random.key(2), 0.3, 0.5, 5, 2
    init = lt.initialise(problem, "hrp", rank=r, key=key, alpha=alpha, preheat_rank=p, preheat_steps=2, preheat_lr=eta,
                         preheat_optimizer="gd", preheat_train_factors="both")
    A = np.asarray(lt.initialise(problem, "random", rank=p, key=key, alpha=alpha).A)
    A0, B, M = A.copy(), np.zeros((p, 8)), np.asarray(problem.dW)
    for _ in range(2):
        R = A @ B - M
        A, B = A - eta * R @ B.T, B - eta * A.T @ R
    assert np.linalg.norm(A - A0) > 1e-3  # A trains too (its gradient is 0 only at step 0, where B = 0)
    U = np.linalg.svd(A @ B)[0][:, :r]
    assert float(lt.align_A(init.A, jnp.asarray(U))) < 1e-10


@pytest.mark.parametrize("optimizer,factors", [("gd", "both"), ("precgd", "B")])
def test_hrp_init_over_ranks_is_one_preheat_per_rank_from_nested_starts(optimizer, factors):
    from lora_theory.inits import hrp_init_over_ranks

    problem = population_problem(d=12, k=10, r_star=6, kappa=5.0)
    key, alpha, r, ranks = jax.random.key(5), 0.3, 2, (2, 4, 8)
    kw = dict(alpha=alpha, preheat_steps=3, preheat_lr=0.4, preheat_optimizer=optimizer, preheat_damping=1e-12,
              preheat_train_factors=factors)
    batch = hrp_init_over_ranks(problem, r, key=key, preheat_ranks=ranks, **kw)
    assert batch.A.shape == (3, 12, r) and float(jnp.max(jnp.abs(batch.B))) == 0.0
    start = lt.initialise(problem, "random", rank=max(ranks), key=key, alpha=alpha).A
    for i, p in enumerate(ranks):  # zero-padded columns stay zero: exactly a rank-p preheat from start[:, :p]
        hot = lt.preheat(problem, lt.LoRAFactors(start[:, :p], jnp.zeros((p, 10))), steps=3, optimizer=optimizer,
                         lr=0.4, damping=1e-12, train_factors=factors)
        U = jnp.linalg.svd(hot.A @ hot.B)[0][:, :r]
        assert float(lt.align_A(batch.A[i], U)) < 1e-9
        assert jnp.allclose(batch.A[i].T @ batch.A[i], alpha**2 * 12 * jnp.eye(r), atol=1e-12)
    single = lt.initialise(problem, "hrp", rank=r, key=key, preheat_rank=max(ranks), **kw)  # p_max: hrp_init's own
    assert float(lt.align_A(batch.A[-1], single.A / jnp.linalg.norm(single.A[:, 0]))) < 1e-10
    with pytest.raises(ValueError, match="preheat_ranks"):
        hrp_init_over_ranks(problem, 3, key=key, preheat_ranks=(2, 4), **kw)


def test_oracle_directions():
    problem = population_problem(d=20, k=16, r_star=2)
    init = lt.initialise(problem, "oracle", rank=2, key=jax.random.key(0), variant="directions", alpha=0.1)
    assert float(lt.align_A(init.A, problem.dW_left)) < 1e-12
    assert float(jnp.max(jnp.abs(init.B))) == 0.0


def test_unknown_init_lists_the_valid_ones():
    with pytest.raises(ValueError, match="spectral"):
        lt.initialise(population_problem(), "kaiming", rank=2, key=jax.random.key(0))
