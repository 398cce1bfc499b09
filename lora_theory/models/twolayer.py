"""A two-layer ReLU network on scikit-learn's handwritten digits, with LoRA adapters on both layers.

F8's model (LoRA-One Fig. 1(c) moved to data that ships offline).  In the suite's orientation
(a sample is a row x, a weight W is d_in x d_out and acts as x -> x W, i.e. W^T x):

    logits(x) = sigma(x W1) W2,   sigma = ReLU,   W1: 64 x h,   W2: h x 10,

which is the issue's x -> W2 sigma(W1 x) written with the transposed weights.  No biases.  LoRA on
layer l: W_l = W_l,0 + A_l B_l, A_l (d_in x r) on the input side, B_l (r x d_out) on the output
side (PEFT writes W + B A: the roles are swapped there).  Loss: the mean cross-entropy of the
softmax over all 10 classes (the theory's squared loss is not used here: this is a classifier).

The one-step full gradient of each layer (LoRA-One eq. (5), with this loss) is
G_l = -grad_{W_l} L(W_{1,0}, W_{2,0}) on the fine-tuning training set, full batch.

Data (:func:`load_digits_split`): the 1,797 8 x 8 images of ``sklearn.datasets.load_digits``
(inside the scikit-learn wheel: no download), split once into train / test by ``split_seed``
(the same split for every run), pixels standardised with the training images' mean and standard
deviation (pixels constant over the training images stay 0).  The pretraining group (default
the odd digits) and the fine-tuning group (the even ones) are both cut from that split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.typing import DTypeLike
from jaxtyping import Array, Float, Int

from ..optimizers import LoRAFactors, standard_promotion

__all__ = [
    "Split",
    "DigitsData",
    "load_digits_split",
    "Network",
    "LayerProblem",
    "init_network",
    "logits",
    "cross_entropy",
    "accuracy",
    "adapt",
    "lora_logits",
    "lora_cross_entropy",
    "pretrain",
    "one_step_gradient",
    "layer_problems",
]

N_CLASSES = 10
N_PIXELS = 64


class Split(NamedTuple):
    """Images (standardised pixels, one row each) and their digit labels."""

    X: Float[Array, "N 64"]
    y: Int[Array, " N"]


class DigitsData(NamedTuple):
    """The four parts F8 uses: train / test of the pretraining and of the fine-tuning classes."""

    pretrain_train: Split
    pretrain_test: Split
    finetune_train: Split
    finetune_test: Split


def load_digits_split(
    *,
    split_seed: int = 0,
    test_fraction: float = 0.25,
    pretrain_classes: Sequence[int] = (1, 3, 5, 7, 9),
    dtype: DTypeLike = jnp.float64,
) -> DigitsData:
    """scikit-learn's digits, split into train / test by ``split_seed``, standardised, by class group.

    Args:
        split_seed: seed of the one random permutation that picks the test images (numpy's
            ``default_rng``); the split is the same for every run and method.
        test_fraction: share of the images held out.
        pretrain_classes: the digits of the pretraining group; the others are fine-tuned on.
        dtype: of the pixels.

    Returns:
        A :class:`DigitsData`; pixels are (x - mean) / std with the training images' statistics.
    """
    from sklearn.datasets import load_digits

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    images, labels = np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.int32)
    order = np.random.default_rng(split_seed).permutation(labels.size)
    n_test = int(round(test_fraction * labels.size))
    test = np.zeros(labels.size, bool)
    test[order[:n_test]] = True
    mean = images[~test].mean(axis=0)
    std = images[~test].std(axis=0)
    images = (images - mean) / np.where(std > 0, std, 1.0)
    pre = np.isin(labels, np.asarray(pretrain_classes))

    def part(mask: np.ndarray) -> Split:
        return Split(jnp.asarray(images[mask], dtype), jnp.asarray(labels[mask], jnp.int32))

    return DigitsData(part(pre & ~test), part(pre & test), part(~pre & ~test), part(~pre & test))


class Network(NamedTuple):
    """The weights of the two layers (the suite's orientation: x -> sigma(x W1) W2)."""

    W1: Float[Array, "d h"]
    W2: Float[Array, "h c"]


class LayerProblem(NamedTuple):
    """One adapted layer as the inits of :mod:`lora_theory.inits` read a problem: W0 and G."""

    W0: Float[Array, "d k"]
    G: Float[Array, "d k"]


def init_network(
    hidden: int, *, key: jax.Array, d: int = N_PIXELS, c: int = N_CLASSES, dtype: DTypeLike = jnp.float64
) -> Network:
    """He-normal weights: W1 entries N(0, 2/d), W2 entries N(0, 1/h).

    Args:
        hidden: h, the width of the hidden layer.
        key: a ``jax.random.key``.
        d: input size (64 pixels).
        c: output size (10 classes).
        dtype: of the weights.
    """
    k1, k2 = jax.random.split(key)
    W1 = jax.random.normal(k1, (d, hidden), dtype) * jnp.sqrt(jnp.asarray(2.0 / d, dtype))
    W2 = jax.random.normal(k2, (hidden, c), dtype) * jnp.sqrt(jnp.asarray(1.0 / hidden, dtype))
    return Network(W1, W2)


def logits(params: Network, X: Float[Array, "N d"]) -> Float[Array, "N c"]:
    """sigma(X W1) W2, sigma = ReLU (jax.nn.relu: sigma'(0) = 0)."""
    return jax.nn.relu(X @ params.W1) @ params.W2


def cross_entropy(params: Network, X: Float[Array, "N d"], y: Int[Array, " N"]) -> Float[Array, ""]:
    """L(W1, W2) = -(1/N) sum_i log softmax(logits(x_i))_{y_i}, over all 10 classes."""
    z = logits(params, X)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))


def accuracy(params: Network, X: Float[Array, "N d"], y: Int[Array, " N"]) -> Float[Array, ""]:
    """Share of the images whose largest logit (over all 10 classes) is their label."""
    return jnp.mean((jnp.argmax(logits(params, X), axis=1).astype(y.dtype) == y).astype(X.dtype))


def adapt(base: Network, adapters: tuple[LoRAFactors, LoRAFactors]) -> Network:
    """The adapted weights W_l = base_l + A_l B_l of both layers.

    ``base`` is W0 (plus the init's fixed offset for the inits that keep the model unchanged at
    step 0, e.g. LoRA-GA's -A_0 B_0).  With B_0 = 0 the adapted network is the pretrained one.
    """
    (A1, B1), (A2, B2) = adapters
    return Network(base.W1 + A1 @ B1, base.W2 + A2 @ B2)


def lora_logits(
    base: Network,
    adapters: tuple[LoRAFactors, LoRAFactors],
    X: Float[Array, "N d"],
    pre_base: Float[Array, "N h"] | None = None,
) -> Float[Array, "N c"]:
    """logits of the adapted network, factored: sigma(X W1_base + (X A1) B1) (W2_base + A2 B2).

    Equal to ``logits(adapt(base, adapters), X)``, but X meets only A1 (N x d x r) and the cached
    ``pre_base = X W1_base``, never a dense d x h update: a training step of the first layer costs
    O(N r (d + h)) instead of O(N d h), as in the nonlinear model of :mod:`lora_theory.models.relu`.

    Args:
        base: the base weights (W0, or W0 + the init's offset).
        adapters: (A1, B1), (A2, B2).
        X: the images.
        pre_base: X @ base.W1, if already computed (the fine-tuning loop computes it once).
    """
    (A1, B1), (A2, B2) = adapters
    pre = (X @ base.W1 if pre_base is None else pre_base) + (X @ A1) @ B1
    h = jax.nn.relu(pre)
    return h @ base.W2 + (h @ A2) @ B2


def lora_cross_entropy(
    base: Network,
    adapters: tuple[LoRAFactors, LoRAFactors],
    X: Float[Array, "N d"],
    y: Int[Array, " N"],
    pre_base: Float[Array, "N h"] | None = None,
) -> Float[Array, ""]:
    """:func:`cross_entropy` of the adapted network, through :func:`lora_logits` (same value, factored cost)."""
    z = lora_logits(base, adapters, X, pre_base)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1))


def pretrain(params: Network, data: Split, *, steps: int, lr: Float[Array, ""] | float) -> Network:
    """Full-batch Adam (``optax.adam(lr)``) on every weight for ``steps`` steps, in one ``fori_loop``.

    Args:
        params: the initial network (e.g. :func:`init_network`).
        data: the pretraining images and labels.
        steps: number of Adam steps (static).
        lr: Adam's learning rate (may be traced).

    Returns:
        The trained network.
    """
    optimizer = standard_promotion(optax.adam(lr))
    grad = jax.grad(cross_entropy)

    def step(_: Array, carry: tuple[Network, optax.OptState]) -> tuple[Network, optax.OptState]:
        params, state = carry
        updates, state = optimizer.update(grad(params, data.X, data.y), state, params)
        return optax.apply_updates(params, updates), state

    return lax.fori_loop(0, steps, step, (params, optimizer.init(params)))[0]


def one_step_gradient(params: Network, data: Split) -> Network:
    """G_l = -grad_{W_l} L at the pretrained weights, on the fine-tuning data (LoRA-One eq. (5))."""
    return jax.tree.map(jnp.negative, jax.grad(cross_entropy)(params, data.X, data.y))


def layer_problems(params: Network, G: Network) -> tuple[LayerProblem, LayerProblem]:
    """The two layers as (W0, G) pairs, so that ``lora_theory.inits``' functions initialise each."""
    return LayerProblem(params.W1, G.W1), LayerProblem(params.W2, G.W2)
