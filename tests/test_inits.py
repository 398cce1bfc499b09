"""Initialisations: the properties the SPEC's table states."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import linear_problem, population_problem, relative_error

import lora_theory as lt


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
    init = lt.initialise(
        problem,
        "hrp",
        rank=r,
        key=key,
        alpha=alpha,
        preheat_rank=p,
        preheat_steps=2,
        preheat_lr=eta,
        preheat_optimizer="gd",
        preheat_train_factors="both",
    )
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
    kw = dict(
        alpha=alpha,
        preheat_steps=3,
        preheat_lr=0.4,
        preheat_optimizer=optimizer,
        preheat_damping=1e-12,
        preheat_train_factors=factors,
    )
    batch = hrp_init_over_ranks(problem, r, key=key, preheat_ranks=ranks, **kw)
    assert batch.A.shape == (3, 12, r) and float(jnp.max(jnp.abs(batch.B))) == 0.0
    start = lt.initialise(problem, "random", rank=max(ranks), key=key, alpha=alpha).A
    for i, p in enumerate(ranks):  # zero-padded columns stay zero: exactly a rank-p preheat from start[:, :p]
        hot = lt.preheat(
            problem,
            lt.LoRAFactors(start[:, :p], jnp.zeros((p, 10))),
            steps=3,
            optimizer=optimizer,
            lr=0.4,
            damping=1e-12,
            train_factors=factors,
        )
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


# ---------------------------------------------------------------------------------------------
# the practical inits (issue 13): each one's defining property, on random instances
# ---------------------------------------------------------------------------------------------

import functools  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEEDS = st.integers(min_value=0, max_value=2**16)
#: (model, d, k, r_star, rank): wide and tall W0, rank below and above r_star; few shapes, so the
#: jitted checks compile once per shape.
SHAPES = [("linear", 10, 8, 2, 4), ("population", 7, 12, 1, 2)]


def _problem(model, d, k, r_star, seed, target_subspace="random", target_angle=0.0):
    config = lt.RunConfig(
        model=model, d=d, k=k, r_star=r_star, rank=r_star, n_samples=3 * d, kappa=3.0, target_subspace=target_subspace
    )
    return lt.make_problem(config, {"target_angle": target_angle}, key=jax.random.key(seed))


def _sin(A, U):
    """sin of the largest principal angle between span(A) and span(U) (both full column rank)."""
    Q, _ = jnp.linalg.qr(A)
    return float(lt.sin_largest_angle(U, Q))


@functools.partial(jax.jit, static_argnames=("shape", "name", "variant", "scaling"))
def _start(seed, lora_alpha, *, shape, name, variant=None, scaling="none"):
    """(init, problem, model's update s (A_0 B_0 + offset), loss at step 0 through the engine's objective)."""
    model, d, k, r_star, rank = shape
    problem = _problem(model, d, k, r_star, seed)
    init = lt.initialise(
        problem, name, rank=rank, key=jax.random.key(seed + 1), variant=variant, scaling=scaling, lora_alpha=lora_alpha
    ).with_offset()
    scale = lt.scaling.lora_scale(scaling, lora_alpha, rank)
    s = 1.0 if scale is None else scale
    update = s * (init.A @ init.B + init.offset.dense())
    offset = lt.LowRank(s * init.offset.left, init.offset.right)
    loss = problem.objective(offset).loss(s * init.A, init.B)
    return init, problem, update, loss


OFFSET_INITS = [
    ("pissa", None),
    ("milora", None),
    ("olora", "peft"),
    ("olora", "qr"),
    ("lora_ga", None),
    ("lora_one", "orthonormal"),
]


@settings(max_examples=8)
@given(
    shape=st.sampled_from(SHAPES),
    which=st.sampled_from(OFFSET_INITS),
    scaling=st.sampled_from(["none", "lora", "rslora"]),
    lora_alpha=st.floats(0.5, 32.0),
    seed=SEEDS,
)
def test_offset_inits_leave_the_model_unchanged_at_step_0_under_any_scaling(shape, which, scaling, lora_alpha, seed):
    """W0 + s (A_0 B_0 + offset) = W0: the update is zero to rounding and L is L(W0), while A_0, B_0 != 0."""
    name, variant = which
    if name == "lora_ga" and 2 * shape[4] > min(shape[1], shape[2]):
        name = "pissa"
    init, problem, update, loss = _start(seed, lora_alpha, shape=shape, name=name, variant=variant, scaling=scaling)
    scale = float(jnp.linalg.norm(init.A) * jnp.linalg.norm(init.B))
    assert scale > 1e-3
    assert float(jnp.max(jnp.abs(update))) <= 1e-13 * max(scale, 1.0)
    assert abs(float(loss - problem.loss_W0)) <= 1e-11 * max(float(problem.loss_W0), 1.0)


@settings(max_examples=10)
@given(shape=st.sampled_from(SHAPES), seed=SEEDS)
def test_pissa_and_milora_span_W0s_top_and_bottom_left_singular_vectors(shape, seed):
    _, d, k, _, rank = shape
    pissa, problem, _, _ = _start(seed, 8.0, shape=shape, name="pissa")
    milora, _, _, _ = _start(seed, 8.0, shape=shape, name="milora")
    U, s, Vt = jnp.linalg.svd(problem.W0, full_matrices=False)
    m = min(d, k)
    assert _sin(pissa.A, U[:, :rank]) < 1e-10
    assert _sin(milora.A, U[:, m - rank : m]) < 1e-10
    assert _sin(pissa.B.T, Vt[:rank].T) < 1e-10 and _sin(milora.B.T, Vt[m - rank : m].T) < 1e-10
    # the branch holds W0's principal (minor) part exactly: A_0 B_0 = U_r S_r V_r^T
    top = (U[:, :rank] * s[:rank]) @ Vt[:rank]
    assert relative_error(pissa.A @ pissa.B, top) < 1e-12
    assert relative_error(pissa.A.T @ pissa.A, pissa.B @ pissa.B.T) < 1e-12  # balanced: both S_r^{1/2}


def test_pissa_under_scaling_divides_S_by_the_scale_as_peft_does():
    shape = SHAPES[0]
    plain, problem, _, _ = _start(3, 8.0, shape=shape, name="pissa")
    scaled, _, _, _ = _start(3, 8.0, shape=shape, name="pissa", scaling="rslora")
    s = 8.0 / 4**0.5  # lora_alpha / sqrt(r), r = 4
    assert relative_error(s * scaled.A @ scaled.B, plain.A @ plain.B) < 1e-12
    assert relative_error(scaled.A * s**0.5, plain.A) < 1e-12


@settings(max_examples=8)
@given(shape=st.sampled_from(SHAPES), seed=SEEDS)
def test_olora_factors_come_from_a_qr_of_W0(shape, seed):
    """qr: A_0 = Q_r (orthonormal), A_0 B_0 = Q_r Q_r^T W0; peft (PEFT's orientation): B_0 orthonormal rows."""
    _, d, k, _, rank = shape
    qr, problem, _, _ = _start(seed, 8.0, shape=shape, name="olora", variant="qr")
    peft, _, _, _ = _start(seed, 8.0, shape=shape, name="olora", variant="peft")
    eye = jnp.eye(rank)
    assert relative_error(qr.A.T @ qr.A, eye) < 1e-12 and relative_error(peft.B @ peft.B.T, eye) < 1e-12
    assert relative_error(qr.A @ qr.B, qr.A @ (qr.A.T @ problem.W0)) < 1e-12
    assert relative_error(peft.A @ peft.B, (problem.W0 @ peft.B.T) @ peft.B) < 1e-12
    # Q_r spans W0's first r columns (qr) / rows (peft)
    assert _sin(problem.W0[:, :rank], qr.A) < 1e-10 and _sin(problem.W0[:rank].T, peft.B.T) < 1e-10


@functools.partial(jax.jit, static_argnames=("d", "k", "rank"))
def _orthogonal(seed, alpha, *, d, k, rank):
    problem = _problem("population", d, k, 1, seed)
    return lt.initialise(problem, "orthogonal", rank=rank, key=jax.random.key(seed), alpha=alpha)


@settings(max_examples=10)
@given(dims=st.sampled_from([(10, 8, 4), (6, 14, 2), (16, 16, 8)]), alpha=st.floats(1e-3, 1.0), seed=SEEDS)
def test_orthogonal_has_a_zero_product_with_both_factors_non_zero(dims, alpha, seed):
    d, k, rank = dims
    init = _orthogonal(seed, alpha, d=d, k=k, rank=rank)
    norm_A, norm_B = float(jnp.linalg.norm(init.A)), float(jnp.linalg.norm(init.B))
    assert norm_A > 0.1 * alpha and norm_B > 0.1 * alpha
    assert float(jnp.linalg.norm(init.A @ init.B)) <= 1e-14 * norm_A * norm_B
    # each factor has rank r/2 (the odd and the even rows of one orthogonal Q)
    for factor in (init.A, init.B.T):
        sv = jnp.linalg.svd(factor, compute_uv=False)
        assert float(sv[rank // 2 - 1]) > 1e-6 * float(sv[0]) and float(sv[rank // 2]) < 1e-12 * float(sv[0])
    assert init.offset is None or float(jnp.max(jnp.abs(init.offset.dense()))) == 0.0


def test_random_b_zeroes_A_and_draws_B():
    problem = population_problem(d=50, k=200)
    init = lt.initialise(problem, "random_b", rank=50, key=jax.random.key(3), alpha=0.1)
    assert float(jnp.max(jnp.abs(init.A))) == 0.0
    assert abs(float(jnp.std(init.B)) - 0.1) < 0.005


def _column_space_leak(problem, objective, factors):
    """||(I - U U^T) A_t||_F / ||A_t||_F for U = dW's left singular vectors (= G's in population mode)."""
    A = factors.A
    residual = A - problem.dW_left @ (problem.dW_left.T @ A)
    return {"leak": jnp.linalg.norm(residual) / jnp.linalg.norm(A), "leak_G": _leak(A, problem.G_left)}


def _leak(A, U):
    return jnp.linalg.norm(A - U @ (U.T @ A)) / jnp.linalg.norm(A)


@functools.partial(jax.jit, static_argnames=("shape",))
def _random_b_leaks(seed, alpha, lr, *, shape):
    model, d, k, r_star, rank, n_samples, steps = shape
    config = lt.RunConfig(model=model, d=d, k=k, r_star=r_star, rank=rank, n_samples=n_samples, kappa=3.0)
    problem = lt.make_problem(config, key=jax.random.key(seed))
    init = lt.initialise(problem, "random_b", rank=rank, key=jax.random.key(seed + 1), alpha=alpha)
    traj = lt.train(problem, init, lt.gd(lr), steps=steps, log_every=1, observe=_column_space_leak)
    return traj.metrics


@settings(max_examples=8)
@given(
    shape=st.sampled_from([("population", 10, 8, 2, 4, 0, 40), ("population", 9, 14, 3, 3, 0, 40)]),
    alpha=st.sampled_from([1e-2, 0.3, 1.0]),
    lr=st.sampled_from([0.02, 0.1]),
    seed=SEEDS,
)
def test_random_b_keeps_A_in_dWs_column_space_in_population_mode(shape, alpha, lr, seed):
    """Mirrored Thm 3.1: A_1 = eta dW B_0^T and (A B - dW) B^T keep A_t in col(dW) for every t (Sigma = I)."""
    leak = np.asarray(_random_b_leaks(seed, alpha, lr, shape=shape)["leak"])[1:]  # t >= 1 (A_0 = 0)
    assert leak.shape == (40,) and np.max(leak) < 1e-12, np.max(leak)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_b_leaves_Gs_column_space_at_finite_N(seed):
    """At finite N, grad_A = (Sigma_hat A B - G) B^T: Sigma_hat acts on A's side and A_t leaves col(G)."""
    leaks = _random_b_leaks(seed, 0.3, 0.1, shape=("linear", 10, 8, 2, 4, 20, 40))
    leak_G = np.asarray(leaks["leak_G"])
    assert leak_G[1] < 1e-12  # A_1 = eta G B_0^T lies in col(G) ...
    assert np.max(leak_G[2:]) > 1e-3  # ... and the next steps leave it, measurably
