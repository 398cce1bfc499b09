"""The nonlinear (ReLU-type) model: gradients vs autodiff, identity == linear, ReLU at 0, batching, claim 7's parts."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from helpers import relative_error

import lora_theory as lt
from lora_theory.cli import main

# jax.nn's own activations: an independent reference for lt.activate and its derivative.
REFERENCE = {
    "relu": lambda z, a: jax.nn.relu(z),
    "leaky_relu": lambda z, a: jax.nn.leaky_relu(z, a),
    "tanh": lambda z, a: jnp.tanh(z),
    "gelu": lambda z, a: jax.nn.gelu(z, approximate=False),
    "identity": lambda z, a: z,
}
SLOPE = 0.2
# one small shape for every compiled run of this file (compile time dominates)
SMALL = lt.RunConfig(
    model="relu",
    d=10,
    k=8,
    r_star=2,
    rank=2,
    n_samples=160,
    steps=30,
    log_every=10,
    init="spectral",
    gamma=2.0,
    optimizer="precgd",
    lr=0.5,
    damping=1e-3,
)


def nonlinear_problem(activation="relu", noise=0.1, seed=0, d=12, k=10, n=200, slope=SLOPE):
    s = lt.target_spectrum(2, 3.0, 1.0, jnp.float64)
    return lt.make_nonlinear_problem(
        d, k, 2, n, s, noise, activation=activation, leaky_slope=slope, key=jax.random.key(seed)
    )


def _factors(d, k, r, seed):
    kA, kB, kL, kR = jax.random.split(jax.random.key(seed), 4)
    A = jax.random.normal(kA, (d, r), jnp.float64)
    B = jax.random.normal(kB, (r, k), jnp.float64)
    offset = lt.LowRank(0.3 * jax.random.normal(kL, (d, r), jnp.float64), jax.random.normal(kR, (r, k), jnp.float64))
    return A, B, offset


def test_activation_registry_matches_config():
    assert lt.ACTIVATIONS == ("relu", "leaky_relu", "tanh", "gelu", "identity")
    assert set(REFERENCE) == set(lt.ACTIVATIONS)
    assert "relu" in lt.MODELS
    with pytest.raises(ValueError, match="valid activations: relu, leaky_relu"):
        lt.activate(jnp.zeros(3), "swish")


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "gelu", "identity"])
def test_activation_and_derivative_match_jax_nn(activation):
    z = jnp.linspace(-3.0, 3.0, 61) + 1e-3  # avoids 0 exactly (tested separately)
    ref = REFERENCE[activation]
    np.testing.assert_allclose(lt.activate(z, activation, SLOPE), ref(z, SLOPE), rtol=1e-14, atol=1e-15)
    ref_grad = jax.vmap(jax.grad(lambda u: ref(u, SLOPE)))(z)
    np.testing.assert_allclose(lt.activation_derivative(z, activation, SLOPE), ref_grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "gelu", "identity"])
def test_loss_gradients_and_G_match_autodiff(activation):
    """Closed-form loss, factor gradients and G equal jax.grad of the raw X-based loss (jax.nn's sigma)."""
    problem = nonlinear_problem(activation)
    A, B, offset = _factors(12, 10, 3, 1)
    ref = REFERENCE[activation]
    n = problem.X.shape[0]

    def raw_loss_W(W):
        return 0.5 * jnp.sum((ref(problem.X @ W, SLOPE) - problem.Y) ** 2) / n

    def raw_loss(A, B):
        return raw_loss_W(problem.W0 + A @ B + offset.dense())

    objective = problem.objective(offset)
    assert relative_error(objective.loss(A, B), raw_loss(A, B)) < 1e-12
    grad_A, grad_B = objective.factor_grads(A, B)
    raw_A, raw_B = jax.grad(raw_loss, argnums=(0, 1))(A, B)
    assert relative_error(grad_A, raw_A) < 1e-11
    assert relative_error(grad_B, raw_B) < 1e-11
    assert relative_error(problem.G, -jax.grad(raw_loss_W)(problem.W0)) < 1e-11
    assert relative_error(problem.loss_W0, raw_loss_W(problem.W0)) < 1e-12


def test_relu_subgradient_convention_at_zero():
    """sigma'(0) = 0 for ReLU (as jax.nn.relu), sigma'(0) = leaky_slope for leaky ReLU."""
    zero = jnp.zeros(4)
    assert np.all(np.asarray(lt.activation_derivative(zero, "relu")) == 0.0)
    assert np.all(np.asarray(lt.activation_derivative(zero, "leaky_relu", 0.3)) == 0.3)
    assert np.all(np.asarray(lt.activation_derivative(jnp.full(4, 1e-300), "relu")) == 1.0)
    # every pre-activation exactly 0: P = X (W0 + offset) + (X A) B with X (W0 + offset) = -(X A) B
    problem = nonlinear_problem("relu", noise=0.0)
    A, B, _ = _factors(12, 10, 3, 2)
    XA = problem.X @ A
    for activation, slope in (("relu", 0.0), ("leaky_relu", 0.3)):
        objective = lt.NonlinearObjective(
            problem.X, problem.Y, -(XA @ B), lt.LowRank.zeros(12, 10, 1, jnp.float64), jnp.asarray(slope), activation
        )
        assert np.all(np.asarray(objective.pre_offset + XA @ B) == 0.0)
        grad_A, grad_B = objective.factor_grads(A, B)
        # R = (sigma(0) - Y) sigma'(0) / N = -slope Y / N
        R = -slope * problem.Y / problem.X.shape[0]
        np.testing.assert_allclose(grad_B, XA.T @ R, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grad_A, problem.X.T @ (R @ B.T), rtol=1e-13, atol=1e-15)
    assert float(jnp.max(jnp.abs(grad_B))) > 0  # the leaky case is not trivially zero


def test_relu_one_step_gradient_is_about_half_dW():
    """For ReLU and a small shift, G ~ dW / 2 (why Thm 4.2 uses gamma = 2); identity: G ~ dW."""
    relu = nonlinear_problem("relu", noise=0.0, n=20000, k=6)
    identity = nonlinear_problem("identity", noise=0.0, n=20000, k=6)
    assert relative_error(relu.G, relu.dW / 2) < 0.1
    assert relative_error(identity.G, identity.dW) < 0.05
    assert relative_error(relu.G, relu.dW) > 0.4  # the factor 1/2 is real


def test_identity_problem_is_the_linear_problem():
    s = lt.target_spectrum(2, 3.0, 1.0, jnp.float64)
    key = jax.random.key(5)
    linear, (X, Y) = lt.make_linear_problem(12, 10, 2, 200, s, 0.1, key=key, return_data=True)
    identity = lt.make_nonlinear_problem(12, 10, 2, 200, s, 0.1, activation="identity", key=key)
    for name in ("W0", "dW", "dW_left", "dW_right", "dW_singular_values"):
        assert np.array_equal(np.asarray(getattr(linear, name)), np.asarray(getattr(identity, name))), name
    assert np.array_equal(np.asarray(X), np.asarray(identity.X))
    assert np.array_equal(np.asarray(Y), np.asarray(identity.Y))
    assert relative_error(identity.G, linear.G) < 1e-13
    assert relative_error(identity.loss_W0, linear.loss_W0) < 1e-13
    assert not np.allclose(np.asarray(identity.X_test), np.asarray(X))  # the test sample is fresh


def test_identity_trajectories_equal_the_linear_model():
    """Same seeds, same config: the relu model with identity activation == model linear, to ~1e-10."""
    config = SMALL.replace(noise=0.1, activation="identity", gamma=1.0, rank=3)
    nonlinear = lt.simulate(config, seeds=2).trajectory
    linear = lt.simulate(config.replace(model="linear"), seeds=2).trajectory
    for name in ("loss", "risk", "rel_err", "align_A_G", "align_B_dW", "balance", "sv_AB"):
        a, b = np.asarray(nonlinear.metrics[name]), np.asarray(linear.metrics[name])
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(nonlinear.final.A, linear.final.A, rtol=1e-10, atol=1e-12)
    assert float(np.max(np.asarray(nonlinear.metrics["risk"])[:, :, -1])) < 0.5 * float(
        np.min(np.asarray(nonlinear.metrics["risk"])[:, :, 0])
    )


def test_test_loss_metric_and_pytree():
    problem = nonlinear_problem("relu", noise=0.0)
    A, B, offset = _factors(12, 10, 3, 3)
    metrics = problem.extra_metrics(A, B, offset)
    D = A @ B + offset.dense()
    direct = (
        0.5 * jnp.sum((jax.nn.relu(problem.X_test @ (problem.W0 + D)) - problem.Y_test) ** 2) / problem.X_test.shape[0]
    )
    assert relative_error(metrics["test_loss"], direct) < 1e-12
    assert float(problem.test_loss(problem.dW)) < 1e-25  # noiseless: the target generalises exactly
    # a pytree with the activation as static metadata: jit and vmap work over it
    leaves, treedef = jax.tree.flatten(problem)
    assert all(isinstance(leaf, jax.Array) for leaf in leaves) and "relu" in str(treedef)
    jitted = jax.jit(lambda p: p.objective(offset).loss(A, B))(problem)
    assert relative_error(jitted, problem.objective(offset).loss(A, B)) < 1e-12


def test_every_init_builds_on_the_nonlinear_problem():
    """Every init uses this model's G; the offset inits leave the model unchanged at step 0."""
    problem = nonlinear_problem("relu", noise=0.0)
    objective_W0 = problem.objective(lt.LowRank.zeros(12, 10, 1, jnp.float64))
    for name in lt.INITS:
        init = lt.initialise(problem, name, rank=2, key=jax.random.key(1), gamma=2.0, preheat_lr=0.1, preheat_steps=3)
        loss = problem.objective(init.offset).loss(init.A, init.B)
        assert np.isfinite(float(loss)), name
        if name in ("random", "lora_ga", "hrp"):  # B_0 = 0, or the offset cancels A_0 B_0
            assert relative_error(loss, problem.loss_W0) < 1e-12, name
    spectral = lt.initialise(problem, "spectral", rank=2, key=jax.random.key(1), gamma=2.0)
    U, s, Vt = jnp.linalg.svd(problem.G)
    assert relative_error(spectral.A @ spectral.B, 2.0 * (U[:, :2] * s[:2]) @ Vt[:2]) < 1e-12
    assert float(objective_W0.loss(spectral.A, spectral.B)) < 0.5 * float(problem.loss_W0)


def test_batched_seeds_and_traced_leaky_slope_equal_one_by_one():
    """simulate over seeds x a leaky_slope grid (traced) == each (seed, slope) alone."""
    config = SMALL.replace(activation="leaky_relu", noise=0.05)
    slopes = [0.05, 0.4]
    batch = lt.simulate(config, seeds=[3, 4], sweep={"leaky_slope": slopes})
    for i, seed in enumerate([3, 4]):
        for j, slope in enumerate(slopes):
            alone = lt.simulate(config, seeds=[seed], sweep={"leaky_slope": [slope]})
            for name in ("risk", "test_loss", "align_A_G"):  # align_A_G(step 0) is ~1e-16: atol
                np.testing.assert_allclose(
                    batch.trajectory.metrics[name][i, j], alone.trajectory.metrics[name][0, 0], rtol=1e-12, atol=1e-13
                )
            np.testing.assert_allclose(
                batch.trajectory.final.B[i, j], alone.trajectory.final.B[0, 0], rtol=1e-12, atol=1e-14
            )
    risk = np.asarray(batch.trajectory.metrics["risk"])
    assert not np.allclose(risk[:, 0], risk[:, 1])  # the slope does change the problem


def test_unknown_activation_is_rejected_before_compiling():
    with pytest.raises(
        lt.ConfigError, match="activation='swish' is invalid: must be one of relu, leaky_relu, tanh, gelu, identity"
    ):
        lt.validate(SMALL.replace(activation="swish"))


def test_cli_train_relu_end_to_end(tmp_path, capsys):
    code = main(
        [
            "train",
            "--model",
            "relu",
            "--activation",
            "leaky_relu",
            "--leaky-slope",
            "0.05,0.4",
            "--d",
            "10",
            "--k",
            "8",
            "--r-star",
            "2",
            "--rank",
            "2",
            "--n-samples",
            "160",
            "--noise",
            "0.05",
            "--init",
            "spectral",
            "--gamma",
            "2",
            "--optimizer",
            "precgd",
            "--lr",
            "0.5",
            "--damping",
            "0.001",
            "--steps",
            "30",
            "--log-every",
            "10",
            "--seeds",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "spectral" in capsys.readouterr().out
    df = pd.read_parquet(tmp_path / "train.parquet")
    assert len(df) == 2 * 2 * 4 and set(df["model"]) == {"relu"} and set(df["leaky_slope"]) == {0.05, 0.4}
    assert df["test_loss"].notna().all() and (df["test_loss"] > 0).all()
    assert main(["train", "--model", "relu", "--activation", "swish", "--out", str(tmp_path)]) == 2
    assert "relu, leaky_relu, tanh, gelu, identity" in capsys.readouterr().err


def test_claim7_theory_functions():
    from lora_theory.theory import relu

    assert lt.relu_precgd_rate_bound(0.5) == 0.875
    assert lt.relu_precgd_rate_bound(0.2) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        lt.relu_precgd_rate_bound(float("nan"))
    assert lt.relu_precgd_population_rate(0.5) == 0.75  # the ReLU Hessian I/2 halves the linear model's eta
    assert lt.relu_precgd_population_rate(0.5) < lt.relu_precgd_rate_bound(0.5)  # the theorem's bound is above it
    with pytest.raises(ValueError):
        lt.relu_precgd_population_rate(1.5)  # there |1 - eta| > 1 - eta/2: the core mode is the slow one
    assert relu.THM42_RHO == 0.05
    np.testing.assert_allclose(relu.relu_precgd_error_bound([0, 2], 0.5, 0.05, 2.0), [0.1, 0.025])
    assert float(relu.assumption41_shift_bound(2.0, 2)) == 0.25
    assert float(relu.thm42_sample_eps(2.0, 2, 16)) == pytest.approx(1 / 16)


def test_claim7_instances_are_the_models_problems():
    """Claim 7 builds its problems on one nested draw of X; they are make_nonlinear_problem's on that X."""
    from lora_theory.claims import claim7

    problem = nonlinear_problem(noise=0.0)
    mine = claim7.relu_instance(
        problem.W0, problem.dW_left, problem.dW_singular_values, problem.dW_right, problem.X, problem.X @ problem.W0
    )
    for name in ("dW", "Y", "G", "loss_W0"):
        np.testing.assert_allclose(getattr(mine, name), getattr(problem, name), rtol=1e-12, atol=1e-14, err_msg=name)
    init = lt.initialise(problem, "spectral", rank=2, key=jax.random.key(0), gamma=2.0)
    a = lt.train(problem, init, lt.precgd(0.5), steps=10, observe=claim7.observe).metrics["risk"]
    b = lt.train(mine, init, lt.precgd(0.5), steps=10, observe=claim7.observe).metrics["risk"]
    np.testing.assert_allclose(a, b, rtol=1e-10)
