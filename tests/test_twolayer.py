"""F8's network: LoRA forward, spectral init from the one-step gradient, the alignment metric, the run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
import scipy.linalg

import lora_theory as lt
from lora_theory import finetune, inits
from lora_theory.cli import main
from lora_theory.models import twolayer as net


@pytest.fixture(scope="module")
def data():
    return net.load_digits_split()


@pytest.fixture(scope="module")
def pretrained(data):
    """A briefly pretrained network (20 Adam steps: enough for a non-trivial gradient) and its G."""
    W0 = net.init_network(32, key=jax.random.key(3))
    W0 = jax.jit(lambda W: net.pretrain(W, data.pretrain_train, steps=20, lr=1e-2))(W0)
    return W0, net.one_step_gradient(W0, data.finetune_train)


def test_digits_split_is_fixed_standardised_and_grouped(data):
    again = net.load_digits_split()
    np.testing.assert_array_equal(np.asarray(data.finetune_test.X), np.asarray(again.finetune_test.X))
    assert sum(part.y.size for part in data) == 1797
    assert set(np.unique(data.pretrain_train.y)) == {1, 3, 5, 7, 9}
    assert set(np.unique(data.finetune_test.y)) == {0, 2, 4, 6, 8}
    train = np.concatenate([np.asarray(data.pretrain_train.X), np.asarray(data.finetune_train.X)])
    spread = train.std(axis=0) > 0
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train.std(axis=0)[spread], 1.0, rtol=1e-12)
    other = net.load_digits_split(split_seed=1)  # another seed, another split
    assert not np.array_equal(np.asarray(other.finetune_test.y), np.asarray(data.finetune_test.y))


def test_lora_with_zero_product_is_the_pretrained_network(data, pretrained):
    W0, G = pretrained
    X = data.finetune_test.X
    expected = net.logits(W0, X)
    rank = 3
    zero_B = tuple(
        inits.random_init(layer, rank, key=jax.random.key(i), alpha=0.5).factors
        for i, layer in enumerate(net.layer_problems(W0, G))
    )
    assert all(float(jnp.abs(f.A).max()) > 0 for f in zero_B)  # A_0 random, B_0 = 0
    np.testing.assert_array_equal(np.asarray(net.logits(net.adapt(W0, zero_B), X)), np.asarray(expected))
    np.testing.assert_array_equal(np.asarray(net.lora_logits(W0, zero_B, X)), np.asarray(expected))
    # LoRA-GA: A_0 B_0 != 0, offset by -A_0 B_0 in the base weights: the same network to rounding
    # (and PiSSA: A_0 B_0 = W0's top-r part, offset the same way)
    setup = finetune.Setup((finetune.Method("ft", "full", "gd"), finetune.Method("ga", "lora_ga", "precgd")), rank=rank)
    for name in ("lora_ga", "pissa"):
        pairs = [finetune.lora_init(layer, name, setup, key=jax.random.key(0)) for layer in net.layer_problems(W0, G)]
        factors, base = tuple(p[0] for p in pairs), net.Network(*(p[1] for p in pairs))
        assert float(jnp.abs(factors[0].A @ factors[0].B).max()) > 0.1
        np.testing.assert_allclose(np.asarray(net.lora_logits(base, factors, X)), np.asarray(expected), atol=1e-12)
    # PiSSA's A_0 spans layer 1's W0 top-r left singular subspace
    U = np.linalg.svd(np.asarray(W0.W1))[0][:, :rank]
    np.testing.assert_allclose(np.asarray(lt.align_A(factors[0].A, jnp.asarray(U))), 0.0, atol=1e-10)


def test_factored_lora_forward_equals_the_dense_one(data, pretrained):
    W0, _ = pretrained
    keys = jax.random.split(jax.random.key(1), 4)
    adapters = (
        lt.LoRAFactors(jax.random.normal(keys[0], (64, 3)), jax.random.normal(keys[1], (3, 32)) * 0.1),
        lt.LoRAFactors(jax.random.normal(keys[2], (32, 3)), jax.random.normal(keys[3], (3, 10)) * 0.1),
    )
    X, y = data.finetune_train
    np.testing.assert_allclose(
        np.asarray(net.lora_logits(W0, adapters, X)), np.asarray(net.logits(net.adapt(W0, adapters), X)), rtol=1e-11
    )
    np.testing.assert_allclose(
        float(net.lora_cross_entropy(W0, adapters, X, y)),
        float(net.cross_entropy(net.adapt(W0, adapters), X, y)),
        rtol=1e-12,
    )


def test_one_step_gradient_is_minus_the_loss_derivative(data, pretrained):
    """<G_l, D> = -dL/dW_l [D], checked by a central difference along a random direction per layer.

    The step is small (1e-7) so that no ReLU pre-activation changes sign inside it (at 1e-5 some of
    the 678 x 32 do, and the difference quotient averages over the kinks: 2% off for W1).
    """
    W0, G = pretrained
    X, y = data.finetune_train
    for layer, key in zip(range(2), jax.random.split(jax.random.key(2)), strict=True):
        D = jax.random.normal(key, W0[layer].shape)
        eps = 1e-7

        def moved(t):
            return net.cross_entropy(W0._replace(**{W0._fields[layer]: W0[layer] + t * D}), X, y)  # noqa: B023

        slope = (float(moved(eps)) - float(moved(-eps))) / (2 * eps)
        assert float(jnp.sum(G[layer] * D)) == pytest.approx(-slope, rel=1e-6)


@pytest.mark.parametrize("s", [1.0, 4.0])
def test_spectral_init_is_the_scaled_best_rank_r_approximation_of_G(pretrained, s):
    """LoRA-One's Algorithm 1 per layer: A_0 B_0 = P_r(G_l) / (s s_1(G_l)), P_r the best rank-r approximation."""
    W0, G = pretrained
    rank = 4
    setup = finetune.Setup(
        (finetune.Method("ft", "full", "gd"), finetune.Method("one", "lora_one", "precgd")), rank=rank, s=s
    )
    for layer in net.layer_problems(W0, G):
        (A0, B0), base = finetune.lora_init(layer, "lora_one", setup, key=jax.random.key(0))
        np.testing.assert_array_equal(np.asarray(base), np.asarray(layer.W0))  # no offset: the model moves
        U, sv, Vt = np.linalg.svd(np.asarray(layer.G))
        best = (U[:, :rank] * sv[:rank]) @ Vt[:rank]
        product = np.asarray(A0 @ B0) * s * sv[0]
        np.testing.assert_allclose(product, best, atol=1e-12 * sv[0])
        # Eckart-Young: the residual is the tail of the spectrum
        residual = np.linalg.norm(np.asarray(layer.G) - product) ** 2
        assert residual == pytest.approx(np.sum(sv[rank:] ** 2), rel=1e-9)
        assert sv[rank - 1] > 1.01 * sv[rank]  # the top-r subspace is well defined here


def _scipy_sin(F, reference) -> float:
    return float(np.sin(np.max(scipy.linalg.subspace_angles(np.asarray(F), np.asarray(reference)))))


def test_alignment_metric_agrees_with_scipy_subspace_angles(data, pretrained):
    W0, G = pretrained
    rank = 4
    U1, V1 = finetune._top(G.W1, rank)
    U2, V2 = finetune._top(G.W2, rank)
    sub = finetune._Subspaces((U1, U2), (V1, V2))
    keys = jax.random.split(jax.random.key(5), 4)
    # factors near G's subspaces (small angles), far (random) and in between
    cases = [
        (U1 * 2.0 + 1e-3 * jax.random.normal(keys[0], U1.shape), V1.T + 1e-3 * jax.random.normal(keys[1], V1.T.shape)),
        (jax.random.normal(keys[2], U1.shape), jax.random.normal(keys[3], V1.T.shape)),
        (U1 + 0.5 * jax.random.normal(keys[0], U1.shape), V1.T + 0.3 * jax.random.normal(keys[1], V1.T.shape)),
    ]
    alignments, align_A = jax.jit(finetune.lora_alignments), jax.jit(lt.align_A)  # eager Jacobi sweeps are slow
    for A1, B1 in cases:
        A2 = U2 @ jax.random.normal(keys[2], (rank, rank)) + 0.2 * jax.random.normal(keys[3], U2.shape)
        B2 = jax.random.normal(keys[1], (rank, 10))
        out = alignments((lt.LoRAFactors(A1, B1), lt.LoRAFactors(A2, B2)), sub)
        for name, F, ref in [
            ("align_A_G_1", A1, U1),
            ("align_B_G_1", B1.T, V1),
            ("align_A_G_2", A2, U2),
            ("align_B_G_2", B2.T, V2),
        ]:
            expected = _scipy_sin(F, ref)
            assert float(out[name]) == pytest.approx(expected, abs=1e-9)
            if name == "align_A_G_1":  # the suite's metric agrees (one shape: each compiles its Jacobi sweeps)
                assert float(align_A(F, ref)) == pytest.approx(expected, abs=1e-9)
    # a rank-deficient factor (B_0 = 0) has no r-dimensional span: NaN, as lt.align_B
    assert np.isnan(float(finetune.span_alignment(jnp.zeros((32, rank)), V1)))


def test_layerwise_and_maybe_compose_the_suites_transformations():
    keys = jax.random.split(jax.random.key(7), 8)
    params = tuple(
        lt.LoRAFactors(jax.random.normal(keys[2 * i], (6, 2)), jax.random.normal(keys[2 * i + 1], (2, 5)))
        for i in range(2)
    )
    grads = jax.tree.map(lambda x: 0.3 * x[::-1] if x.ndim == 1 else 0.3 * x + 1.0, params)
    pre = lt.layerwise(lt.scale_by_lora_preconditioner(1e-3))
    updates, _ = pre.update(grads, pre.init(params), params)
    for u, g, p in zip(updates, grads, params, strict=True):
        expected = lt.precondition(p.A, p.B, g.A, g.B, 1e-3)
        np.testing.assert_allclose(np.asarray(u.A), np.asarray(expected[0]), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(u.B), np.asarray(expected[1]), rtol=1e-12)
    for on, reference in [(True, optax.chain(pre, lt.standard_promotion(optax.adam(0.01)))), (False, optax.sgd(0.01))]:
        opt = finetune.method_optimizer(0.01, precondition=jnp.asarray(on), adam=jnp.asarray(on), damping=1e-3)
        state, ref_state = opt.init(params), reference.init(params)
        update, ref_update = jax.jit(opt.update), jax.jit(reference.update)
        for _ in range(3):  # Adam's state is carried (or left alone) the same way
            u, state = update(grads, state, params)
            v, ref_state = ref_update(grads, ref_state, params)
            for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(v), strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-15)


def test_setup_rejects_bad_methods():
    ft = finetune.Method("ft", "full", "gd")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        finetune.Setup((ft, finetune.Method("x", "random", "sgd")))
    with pytest.raises(ValueError, match="init must be 'full' or one of"):
        finetune.Setup((ft, finetune.Method("x", "milora", "gd")))
    with pytest.raises(ValueError, match="needs a full-FT method"):
        finetune.Setup((ft, finetune.Method("x", "random", "adam")))
    with pytest.raises(ValueError, match="lora_ga needs 2 . rank <= 10"):
        finetune.Setup((ft, finetune.Method("x", "lora_ga", "precgd")), rank=6)
    with pytest.raises(ValueError, match="full fine-tuning has no LoRA preconditioner"):
        finetune.Setup((ft, finetune.Method("x", "full", "precgd")))


def test_run_f8_quick_writes_results_and_plots(tmp_path):
    """``lora-theory run f8 --quick`` and ``plot f8``: the tidy results and the properties every run has."""
    out, figs = tmp_path / "results", tmp_path / "figs"
    assert main(["run", "f8", "--quick", "--out", str(out), "--quiet"]) == 0
    df = pd.read_parquet(out / "f8.parquet")
    meta = json.loads((out / "f8.json").read_text())
    from experiments import f8_digits as f8

    config = f8.Config.quick()
    steps = config.setup().logged
    assert len(df) == config.seeds * len(f8.METHODS) * steps.size and meta["config"]["steps"] == config.steps
    assert set(df["method"]) == {m.name for m in f8.METHODS}
    assert (df.drop_duplicates("seed")["pretrained_acc"] >= 0.95).all()  # the stated pretraining accuracy
    first = df[df["step"] == 0].set_index(["method", "seed"])
    ft = first.loc["full FT, gd"]
    for name in ("LoRA, gd", "LoRA-GA, precgd", "PiSSA, gd"):  # unchanged at step 0 (B_0 = 0, or the offset)
        np.testing.assert_allclose(first.loc[name]["test_loss"], ft["test_loss"], rtol=1e-10)
    assert (first.loc["LoRA-One, precgd"]["align_A_G_1"] < 1e-10).all()  # spectral init spans G's top subspaces
    assert (first.loc["LoRA-One, precgd"]["align_B_G_2"] < 1e-10).all()
    assert first.loc["LoRA, gd"]["align_B_G_1"].isna().all()  # B_0 = 0: no subspace yet
    one = df[(df["step"] == 1) & (df["method"] == "full FT, gd")]
    assert (
        one[["align_A_G_1", "align_B_G_1", "align_A_G_2", "align_B_G_2"]].to_numpy() < 1e-8
    ).all()  # W_1 - W_0 = lr G
    assert (df[df["init"] == "full"]["dist_ft"] == 0).all()
    last = df[df["step"] == config.steps]
    assert (last.groupby("method")["test_acc"].mean() > 0.85).all()
    assert main(["plot", "f8", "--out", str(out), "--figures-dir", str(figs)]) == 0
    assert (figs / "f8.png").stat().st_size > 10_000 and (figs / "f8.pdf").exists()
