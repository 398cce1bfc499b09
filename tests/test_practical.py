"""Scaling (none / lora / rslora), LoRA+'s lr_ratio, targets in W0's subspaces, align_A_W0, and the
defaults reproducing the trajectories of before (commit 0c06b00) bit for bit."""

import functools
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference_runs
from helpers import linear_problem, relative_error
from hypothesis import given, settings
from hypothesis import strategies as st

import lora_theory as lt

#: one file per platform the references were made on (tests/reference_runs.py says how)
REFERENCES = sorted((Path(__file__).resolve().parent / "data" / "reference_0c06b00").glob("*.npz"))
REFERENCE_COMMIT = "0c06b00"
SEEDS = st.integers(min_value=0, max_value=2**16)


# ---------------------------------------------------------------------------------------------
# the defaults: today's trajectories, bit for bit
# ---------------------------------------------------------------------------------------------


def _same_platform(reference) -> bool:
    return all(str(reference[f"meta/{k}"]) == v for k, v in reference_runs.fingerprint().items())


def _reference_from_git(folder: Path):
    """Make this platform's reference by running the configs with commit 0c06b00's package (its
    files from git, in a subprocess with the tests' environment), as tests/reference_runs.py says."""
    repo = Path(__file__).resolve().parent.parent
    base = folder / "base"
    base.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", REFERENCE_COMMIT, "lora_theory"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(
            f"no reference for this platform ({reference_runs.fingerprint()}) and commit {REFERENCE_COMMIT} "
            f"is not in this checkout's git history ({error}): cannot compare bit for bit"
        )
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    out = folder / "reference.npz"
    env = {**os.environ, "PYTHONPATH": str(base)}
    subprocess.run([sys.executable, reference_runs.__file__, str(out)], env=env, check=True, capture_output=True)
    return np.load(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The committed reference made on this platform; where there is none, one made here from commit
    0c06b00.  Across platforms the runs are not comparable at all: LAPACK picks different bases of
    G's null space (population model, rank > r_star) and different signs of singular vectors, so
    lora_ga's and lora_sb's factors differ by O(1) between the AMD EPYC and Intel Xeon references."""
    files = [np.load(path) for path in REFERENCES]
    assert len(files) >= 2, "expected the AMD EPYC and Intel Xeon references"
    here = [f for f in files if _same_platform(f)]
    return here[0] if here else _reference_from_git(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def current():
    return reference_runs.run_all()


def _compare(new: dict, reference, names) -> None:
    assert _same_platform(reference), "a reference is only comparable on the platform it was made on"
    for name in names:
        np.testing.assert_array_equal(new[name], reference[name], err_msg=name)


def test_defaults_reproduce_the_trajectories_of_0c06b00_bit_for_bit(reference, current):
    """scaling='none', lr_ratio=1, target_subspace='random' at their defaults: every metric, final
    factor, rate and divergence step of 8 configs (3 models, gd and precgd, offset inits, lora_sb,
    hrp's preheat, shared and per-run-problem grids) equals the pre-issue-13 package's."""
    names = [n for n in reference.files if not n.startswith("meta/")]
    assert len(names) == 129 and set(names) <= set(current)
    _compare(current, reference, names)
    assert {n.split("/")[1] for n in current} - {n.split("/")[1] for n in names} == {"align_A_W0"}


def test_traced_default_values_are_the_defaults_bit_for_bit(current):
    """lr_ratio = 1 and lora_alpha swept (traced scalars, not constants) change nothing, bit for bit."""
    name, kwargs, sweep = reference_runs.CONFIGS[0]
    config = lt.RunConfig(**{**reference_runs.BASE, **kwargs})
    batch = lt.simulate(config, seeds=reference_runs.SEEDS, sweep={**sweep, "lr_ratio": [1.0], "lora_alpha": [3.0]})
    for metric, values in batch.trajectory.metrics.items():
        np.testing.assert_array_equal(np.asarray(values), current[f"{name}/{metric}"], err_msg=metric)
    np.testing.assert_array_equal(np.asarray(batch.trajectory.final.B), current[f"{name}/final_B"])


# ---------------------------------------------------------------------------------------------
# LoRA+: B's learning rate is lr_ratio x lr
# ---------------------------------------------------------------------------------------------


@functools.cache
def _one_step_problem():
    problem = linear_problem(d=10, k=8, r_star=2, n=60, noise=0.1)
    init = lt.initialise(problem, "spectral", rank=3, key=jax.random.key(0))
    return problem, init


@settings(max_examples=10)
@given(lr=st.floats(1e-3, 0.5), lr_ratio=st.floats(0.1, 16.0), damping=st.floats(1e-4, 1.0))
def test_lr_ratio_scales_Bs_step_only_in_gd_precgd_and_their_pure_forms(lr, lr_ratio, damping):
    problem, init = _one_step_problem()
    grads = lt.LoRAFactors(*problem.objective(init.with_offset().offset).factor_grads(init.A, init.B))
    pre_A, pre_B = lt.precondition(init.A, init.B, grads.A, grads.B, damping)
    expected = {
        "gd": (init.A - lr * grads.A, init.B - lr * lr_ratio * grads.B),
        "precgd": (init.A - lr * pre_A, init.B - lr * lr_ratio * pre_B),
    }
    pure = {
        "gd": lt.gd_update(init.factors, grads, lr, lr_ratio),
        "precgd": lt.precgd_update(init.factors, grads, lr, damping, lr_ratio),
    }
    optax_path = {"gd": lt.gd(lr, lr_ratio=lr_ratio), "precgd": lt.precgd(lr, damping, lr_ratio=lr_ratio)}
    for name, (A, B) in expected.items():
        trained = lt.train(problem, init, optax_path[name], steps=1, log_every=1, observe=lt.no_metrics).final
        for got in (pure[name], trained):
            assert relative_error(got.A, A) < 1e-13 and relative_error(got.B, B) < 1e-13, name


def test_lr_ratio_sweeps_in_one_program_and_reaches_the_registry_optimizers():
    config = lt.RunConfig(
        d=10,
        k=8,
        r_star=2,
        rank=4,
        n_samples=60,
        init="spectral",
        optimizer="precgd",
        lr=0.3,
        damping=1e-3,
        steps=1,
        log_every=1,
    )
    before = lt.TRACE_COUNTS["simulate"]
    batch = lt.simulate(config, seeds=2, sweep={"lr_ratio": [1.0, 4.0]})
    assert lt.TRACE_COUNTS["simulate"] - before == 1
    A, B = np.asarray(batch.trajectory.final.A), np.asarray(batch.trajectory.final.B)
    init = lt.initialise(batch.problem(0), "spectral", rank=4, key=jax.random.key(0))
    np.testing.assert_array_equal(A[:, 0], A[:, 1])  # A's step does not depend on the ratio
    np.testing.assert_allclose(B[0, 1] - init.B, 4.0 * (B[0, 0] - init.B), rtol=1e-10, atol=1e-14)
    df = batch.to_dataframe()
    assert sorted(df["lr_ratio"].unique()) == [1.0, 4.0]


# ---------------------------------------------------------------------------------------------
# scaling: W = W0 + s (A B + offset)
# ---------------------------------------------------------------------------------------------


def test_lora_scale_follows_peft():
    assert lt.scaling.lora_scale("none", 16.0, 4) is None
    assert lt.scaling.lora_scale("lora", 16.0, 4) == 4.0
    assert lt.scaling.lora_scale("rslora", 16.0, 4) == 8.0
    with pytest.raises(ValueError, match="none, lora, rslora"):
        lt.scaling.lora_scale("dora", 16.0, 4)


@settings(max_examples=10)
@given(scale=st.floats(0.05, 20.0), seed=SEEDS)
def test_scaled_gradients_are_those_of_the_scaled_model_on_the_data(scale, seed):
    """scaled_factor_grads against autodiff of ||X (W0 + s (A B + offset)) - Y||^2 / (2N) itself."""
    problem, (X, Y) = linear_problem(d=8, k=6, r_star=2, n=30, noise=0.2, seed=seed % 97, return_data=True)
    keys = jax.random.split(jax.random.key(seed), 4)
    A, L = (jax.random.normal(key, (8, 3)) for key in keys[:2])
    B, R = (jax.random.normal(key, (3, 6)) for key in keys[2:])
    objective = problem.objective(lt.LowRank(scale * L, R))

    def data_loss(A, B):
        return jnp.sum((X @ (problem.W0 + scale * (A @ B + L @ R)) - Y) ** 2) / (2 * X.shape[0])

    auto = jax.grad(data_loss, argnums=(0, 1))(A, B)
    mine = lt.scaling.scaled_factor_grads(objective, scale, A, B)
    for got, want in zip(mine, auto, strict=True):
        assert relative_error(got, want) < 1e-10


@functools.partial(jax.jit, static_argnames=("optimizer",))
def _scaled_against_reparametrised(seed, scale, lr, *, optimizer):
    """(s A_t B_t with scale s, A'_t B'_t unscaled from sqrt(s) A_0, sqrt(s) B_0 at the equivalent lr)."""
    config = lt.RunConfig(model="population", d=10, k=8, r_star=2, rank=2, kappa=3.0)
    problem = lt.make_problem(config, key=jax.random.key(seed))
    init = lt.initialise(problem, "spectral", rank=2, key=jax.random.key(seed), gamma=0.3)
    root = jnp.sqrt(scale)
    twin = lt.LoRAInit(init.A * root, init.B * root)
    if optimizer == "gd":  # GD on s A B at lr eta = GD on A' B' at lr eta s
        scaled, unscaled = lt.gd(lr), lt.gd(lr * scale)
    else:  # precgd (lam = 0) on s A B at lr eta = precgd on A' B' at lr eta s^2
        scaled, unscaled = lt.precgd(lr), lt.precgd(lr * scale**2)
    run = functools.partial(lt.train, problem, steps=30, log_every=10)
    a = run(init.with_offset(), scaled, scale=scale)
    b = run(twin, unscaled)
    return scale * a.final.A @ a.final.B, b.final.A @ b.final.B, a.metrics["risk"], b.metrics["risk"]


@settings(max_examples=8)
@given(optimizer=st.sampled_from(["gd", "precgd"]), scale=st.floats(0.2, 4.0), seed=SEEDS)
def test_scaled_training_equals_the_reparametrised_unscaled_one(optimizer, scale, seed):
    """A' = sqrt(s) A, B' = sqrt(s) B turns the scaled model into the unscaled one; the learning rate
    becomes eta s (gd) or eta s^2 (precgd without damping).  The engine's risk is the model's."""
    lr = 0.05 / scale if optimizer == "gd" else 0.3 / scale**2
    product, twin, risk, twin_risk = _scaled_against_reparametrised(seed, scale, lr, optimizer=optimizer)
    assert relative_error(product, twin) < 1e-10
    np.testing.assert_allclose(risk, twin_risk, rtol=1e-8, atol=1e-14 * float(risk[0]))  # precgd reaches rounding


def test_offset_inits_start_at_W0_through_simulate_under_scaling():
    """The engine scales the offset with the branch: olora's -A_0 B_0 (no 1/s in its factors) still
    cancels s A_0 B_0 for every swept lora_alpha (the other offset inits: tests/test_inits.py)."""
    config = lt.RunConfig(
        d=10, k=8, r_star=2, rank=3, n_samples=60, init="olora", scaling="lora", lr=0.02, steps=1, log_every=1
    )
    batch = lt.simulate(config, seeds=2, sweep={"lora_alpha": [1.0, 24.0]})
    loss0 = np.asarray(batch.trajectory.metrics["loss"])[:, :, 0]
    for i in range(2):
        np.testing.assert_allclose(loss0[i], float(batch.problem(i).loss_W0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(batch.trajectory.metrics["rel_err"])[:, :, 0], 1.0, rtol=1e-12)
    moved = np.asarray(batch.trajectory.metrics["rel_err"])[:, :, 1]
    assert np.all(np.abs(moved[:, 1] - 1.0) > np.abs(moved[:, 0] - 1.0))  # a larger scale moves faster


# ---------------------------------------------------------------------------------------------
# targets in W0's singular subspaces
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape", "subspace"))
def _target(seed, angle, *, shape, subspace):
    model, d, k, r_star = shape
    config = lt.RunConfig(
        model=model, d=d, k=k, r_star=r_star, rank=r_star, n_samples=4 * d, kappa=5.0, target_subspace=subspace
    )
    return lt.make_problem(config, {"target_angle": angle}, key=jax.random.key(seed))


@settings(max_examples=8)
@given(
    shape=st.sampled_from([("linear", 10, 8, 2), ("population", 9, 13, 3)]),
    subspace=st.sampled_from(["top", "bottom"]),
    angle=st.floats(0.0, math.pi / 2),
    seed=SEEDS,
)
def test_target_subspaces_are_W0s_tilted_by_target_angle(shape, subspace, angle, seed):
    """Every principal angle between dW's singular subspaces and W0's chosen ones is target_angle."""
    _, d, k, r_star = shape
    problem = _target(seed, angle, shape=shape, subspace=subspace)
    U0, _, V0t = jnp.linalg.svd(problem.W0, full_matrices=False)
    m = min(d, k)
    pick = slice(0, r_star) if subspace == "top" else slice(m - r_star, m)
    for base, side in ((U0[:, pick], problem.dW_left), (V0t[pick].T, problem.dW_right)):
        assert relative_error(side.T @ side, jnp.eye(r_star)) < 1e-12
        cosines = jnp.linalg.svd(base.T @ side, compute_uv=False)
        np.testing.assert_allclose(cosines, math.cos(angle), atol=1e-10)
    np.testing.assert_allclose(
        jnp.linalg.svd(problem.dW, compute_uv=False)[:r_star], problem.dW_singular_values, rtol=1e-12
    )
    assert lt.sin_largest_angle(U0[:, :r_star], problem.W0_left) < 1e-10


def test_a_swept_target_angle_builds_one_problem_per_grid_point_on_the_same_W0():
    config = lt.RunConfig(
        d=10, k=8, r_star=2, rank=4, n_samples=60, init="pissa", target_subspace="top", steps=3, log_every=1
    )
    batch = lt.simulate(config.replace(steps=0), seeds=1, sweep={"target_angle": [0.0, math.pi / 2]})
    inside, outside = batch.problem(0, 0), batch.problem(0, 1)
    np.testing.assert_array_equal(inside.W0, outside.W0)
    assert float(lt.sin_largest_angle(inside.W0_left, inside.dW_left)) < 1e-10
    assert float(lt.sin_largest_angle(inside.W0_left, outside.dW_left)) > 1 - 1e-10  # orthogonal to it
    align = np.asarray(batch.trajectory.metrics["align_A_dW"])[0, :, 0]
    assert align[0] < 1e-10 and align[1] > 1 - 1e-10  # PiSSA starts in dW's subspace only inside W0's top


# ---------------------------------------------------------------------------------------------
# align_A_W0
# ---------------------------------------------------------------------------------------------


def _both_align_A_W0(problem, objective, factors):
    return {
        "mine": lt.align_A(factors.A, problem.W0_left),
        "metric": lt.lora_metrics(problem, objective, factors)["align_A_W0"],
    }


@jax.jit
def _align_A_W0_run(key):
    config = lt.RunConfig(d=10, k=8, r_star=2, rank=4, n_samples=60)
    problem = lt.make_problem(config, key=key)
    init = lt.initialise(problem, "random", rank=4, key=key, alpha=0.3)
    traj = lt.train(problem, init, lt.gd(0.05), steps=20, log_every=5, observe=_both_align_A_W0)
    bare = problem._replace(W0_left=None)  # a problem built by hand without W0_left
    nan = lt.lora_metrics(bare, bare.objective(init.with_offset().offset), init.factors)["align_A_W0"]
    return traj.metrics, problem, nan


def test_align_A_W0_is_the_angle_to_W0s_top_subspace_at_every_logged_step():
    metrics, problem, nan = _align_A_W0_run(lt.problem_key(0))
    np.testing.assert_allclose(metrics["metric"], metrics["mine"], rtol=1e-10)
    assert np.all(np.asarray(metrics["metric"]) > 0.1)  # a random A is far from W0's top subspace
    assert float(lt.sin_largest_angle(problem.W0_left, jnp.linalg.svd(problem.W0)[0][:, :2])) < 1e-10
    assert math.isnan(float(nan))  # without W0_left: NaN, not an error
