"""Fine-tuning the two-layer digits network (F8): full FT and LoRA methods in one compiled program.

A method is an init and an optimizer (:class:`Method`; F8's list is in ``experiments/f8_digits.py``):

* init ``full``: full fine-tuning, every weight trains (``W_l`` itself);
* a LoRA init of :mod:`lora_theory.inits`, applied to each layer l with its own one-step full
  gradient G_l (:func:`~lora_theory.models.twolayer.one_step_gradient`): ``random`` (A_0 entries
  N(0, alpha_l^2) with alpha_l = ``alpha_gain`` / sqrt(d_in,l), B_0 = 0), ``lora_one`` (LoRA-One's
  Algorithm 1, the ``normalized`` variant: A_0 = U_r (S_r / s_1)^{1/2} / sqrt(s),
  B_0 = (S_r / s_1)^{1/2} V_r^T / sqrt(s), so A_0 B_0 = P_r(G_l) / (s s_1(G_l)) and the model moves at
  step 0), ``lora_ga`` (A_0 = c U_{:,1..r}, B_0 = c V_{:,r+1..2r}^T, W0 offset by -A_0 B_0),
  ``pissa`` (from W0_l's own top-r SVD: A_0 = U_r S_r^{1/2}, B_0 = S_r^{1/2} V_r^T, W0 offset by -A_0 B_0);
* an optimizer, the chain ``[preconditioner] -> [Adam] -> -lr`` (:func:`method_optimizer`): ``gd``,
  ``precgd`` (LoRA-One eq. (9) with damping lam, per layer), ``adam`` and ``precadam`` (the
  preconditioner first, then ``optax.scale_by_adam``: i.e. ``optax.chain(preconditioner,
  optax.adam(lr))``, as Scaled-AdamW).  The switches are traced, so all LoRA methods are one
  ``vmap``, and both full-FT methods another, inside one ``lax.scan``.

:func:`finetune_seed` does one seed: pretrain (full-batch Adam on the pretraining classes), the
one-step gradients, the inits, then ``steps`` full-batch steps of every method, logging at the
steps :attr:`Setup.logged` (:func:`observe`).  Distances to full FT are taken at the same step against
the full-FT run of the same optimizer family (``gd``/``precgd`` against full FT with gd,
``adam``/``precadam`` against full FT with Adam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jaxtyping import Array, Float

from . import inits
from .engine import logged_steps
from .models import twolayer as net
from .optimizers import LoRAFactors, layerwise, maybe, scale_by_lora_preconditioner, standard_promotion

__all__ = [
    "Method",
    "Setup",
    "OPTIMIZER_PARTS",
    "METRICS",
    "method_optimizer",
    "lora_init",
    "lora_starts",
    "span_alignment",
    "lora_alignments",
    "update_alignments",
    "observe",
    "finetune_seed",
]

#: optimizer name -> (uses the preconditioner, uses Adam).
OPTIMIZER_PARTS = {"gd": (False, False), "precgd": (True, False), "adam": (False, True), "precadam": (True, True)}

LORA_INITS = ("random", "lora_one", "lora_ga", "pissa")

#: what :func:`observe` logs per method and step.
METRICS = (
    "train_loss", "train_acc", "test_loss", "test_acc", "pretrain_test_acc",
    "align_A_G_1", "align_B_G_1", "align_A_G_2", "align_B_G_2",
    "dist_ft", "dist_ft_1", "dist_ft_2", "dist_w0",
)  # fmt: skip


class Method(NamedTuple):
    """A fine-tuning method: its name (the results' ``method``), init and optimizer."""

    name: str
    init: str
    optimizer: str

    @property
    def full(self) -> bool:
        return self.init == "full"

    @property
    def adam_family(self) -> bool:
        return OPTIMIZER_PARTS[self.optimizer][1]


@dataclass(frozen=True)
class Setup:
    """Everything static about a fine-tuning run (hashable: the compiled program's key).

    Attributes:
        methods: the methods; at least one full-FT method per optimizer family used.
        hidden: h.
        rank: r (both layers).
        s: LoRA-One's / LoRA-GA's scale.
        alpha_gain: the random init's std times sqrt(d_in).
        lr: step size of the gd family.
        adam_lr: step size of the Adam family.
        damping: lam of the preconditioner.
        pretrain_steps: Adam steps on the pretraining classes.
        pretrain_lr: their step size.
        steps: fine-tuning steps.
        log_every: fine-tuning is logged every ``log_every`` steps after ``log_every_step_until``
            (:attr:`logged`).
        log_every_step_until: and at every step up to it (the first steps are where the methods
            differ most).
    """

    methods: tuple[Method, ...]
    hidden: int = 128
    rank: int = 4
    s: float = 2.0
    alpha_gain: float = 1.0
    lr: float = 0.1
    adam_lr: float = 1e-2
    damping: float = 1e-3
    pretrain_steps: int = 200
    pretrain_lr: float = 1e-2
    steps: int = 500
    log_every: int = 10
    log_every_step_until: int = 10

    def __post_init__(self):
        for m in self.methods:
            if m.optimizer not in OPTIMIZER_PARTS:
                raise ValueError(f"method {m.name!r}: optimizer must be one of {', '.join(OPTIMIZER_PARTS)}")
            if m.init != "full" and m.init not in LORA_INITS:
                raise ValueError(f"method {m.name!r}: init must be 'full' or one of {', '.join(LORA_INITS)}")
            if m.full and OPTIMIZER_PARTS[m.optimizer][0]:
                raise ValueError(f"method {m.name!r}: full fine-tuning has no LoRA preconditioner")
        families = {m.adam_family for m in self.methods if m.full}
        if any(m.adam_family not in families for m in self.methods):
            raise ValueError("every optimizer family (gd-like, Adam-like) needs a full-FT method to compare with")
        if any(m.init == "lora_ga" for m in self.methods) and 2 * self.rank > net.N_CLASSES:
            raise ValueError(f"lora_ga needs 2 * rank <= {net.N_CLASSES} (W2 has {net.N_CLASSES} columns)")
        if not 1 <= self.rank <= net.N_CLASSES:
            raise ValueError(f"rank must be in 1..{net.N_CLASSES}, got {self.rank}")

    @property
    def full_methods(self) -> tuple[Method, ...]:
        return tuple(m for m in self.methods if m.full)

    @property
    def lora_methods(self) -> tuple[Method, ...]:
        return tuple(m for m in self.methods if not m.full)

    @property
    def logged(self) -> np.ndarray:
        """The logged steps: 0, 1, ..., log_every_step_until, then every log_every steps, and the last."""
        dense = np.arange(0, min(self.log_every_step_until, self.steps) + 1)
        return np.unique(np.concatenate([dense, logged_steps(self.steps, self.log_every)]))

    def lr_of(self, method: Method) -> float:
        return self.adam_lr if method.adam_family else self.lr


def method_optimizer(lr, *, precondition, adam, damping=0.0, lora: bool = True) -> optax.GradientTransformation:
    """The chain ``[layerwise preconditioner] -> [scale_by_adam] -> scale(-lr)``, parts switched by flags.

    The preconditioner is LoRA-One eq. (9) with damping (:func:`~lora_theory.optimizers.scale_by_lora_preconditioner`):
    grad_A (B B^T + lam I)^{-1} and (A^T A + lam I)^{-1} grad_B, per layer.

    Args:
        lr: the step size (may be traced).
        precondition: bool, possibly traced (see :func:`~lora_theory.optimizers.maybe`).
        adam: bool, possibly traced.
        damping: lam.
        lora: the parameters are a tuple of ``LoRAFactors`` (else a network: no preconditioner).
    """
    parts = [maybe(layerwise(scale_by_lora_preconditioner(damping)), precondition)] if lora else []
    return optax.chain(*parts, maybe(standard_promotion(optax.scale_by_adam()), adam), optax.scale(-lr))


def lora_init(
    layer: net.LayerProblem, name: str, setup: Setup, *, key: jax.Array
) -> tuple[LoRAFactors, Float[Array, "d k"]]:
    """One layer's LoRA init: (A_0, B_0) and the base weight W0 + offset (-A_0 B_0 for lora_ga and pissa).

    Args:
        layer: (W0, G) of the layer.
        name: ``random``, ``lora_one`` (variant ``normalized``), ``lora_ga`` or ``pissa`` (W0's top-r
            SVD, :func:`lora_theory.inits.pissa_init`).
        setup: for rank, s and alpha_gain.
        key: for ``random``.
    """
    if name == "random":
        alpha = setup.alpha_gain / np.sqrt(layer.W0.shape[0])
        init = inits.random_init(layer, setup.rank, key=key, alpha=alpha)
    elif name == "lora_one":
        init = inits.lora_one_init(layer, setup.rank, variant="normalized", s=setup.s)
    elif name == "pissa":
        init = inits.pissa_init(layer, setup.rank)
    else:
        init = inits.lora_ga_init(layer, setup.rank, s=setup.s)
    init = init.with_offset()
    assert init.offset is not None  # with_offset() fills it
    return init.factors, layer.W0 + init.offset.left @ init.offset.right


class _Subspaces(NamedTuple):
    """Top-r left (d x r) and right (k x r) singular vectors of each layer's G."""

    left: tuple[Float[Array, "d r"], Float[Array, "d r"]]
    right: tuple[Float[Array, "k r"], Float[Array, "k r"]]


def _top(M, r):
    U, _, Vt = jnp.linalg.svd(M, full_matrices=False)
    return U[:, :r], Vt[:r].T


def span_alignment(F: Float[Array, "d r"], reference: Float[Array, "d r"]) -> Float[Array, ""]:
    """sin of the largest principal angle between span(F) and span(reference): ||(I - U U^T) Q_F||_2.

    The quantity of :func:`~lora_theory.metrics.align_A` when the subspace's dimension is the
    factor's rank r (the top-r left subspace of a d x r factor is its span, Fig. 1(b)'s case),
    computed with LAPACK (QR of F, the 2-norm of the d x r residual) rather than the engine's
    unrolled Jacobi kernels, which are fast in wide vmaps but triple this program's trace time.
    NaN when F has rank < r (e.g. B_0 = 0): its span is not r-dimensional.

    Args:
        F: d x r, any scaling.
        reference: d x r orthonormal columns (the top-r singular vectors of G).
    """
    Q, R = jnp.linalg.qr(F)
    diag = jnp.abs(jnp.diagonal(R))
    full_rank = jnp.min(diag) > jnp.finfo(F.dtype).eps * F.shape[0] * jnp.max(diag)
    residual = Q - reference @ (reference.T @ Q)
    return jnp.where(full_rank, jnp.linalg.norm(residual, ord=2), jnp.nan)


def lora_alignments(adapters, sub: _Subspaces) -> dict[str, Array]:
    """sin of the largest principal angle between A_l's top-r left (B_l's top-r right) subspace and G_l's, per layer.

    LoRA-One Fig. 1(b)'s quantity, ||U_{G,perp}^T U_r(A_t)||_op (:func:`span_alignment`); NaN
    while a factor has rank < r (B_0 = 0 for ``random``).
    """
    out = {}
    for i, (A, B) in enumerate(adapters, start=1):
        out[f"align_A_G_{i}"] = span_alignment(A, sub.left[i - 1])
        out[f"align_B_G_{i}"] = span_alignment(B.T, sub.right[i - 1])
    return out


def update_alignments(W: net.Network, W0: net.Network, sub: _Subspaces) -> dict[str, Array]:
    """Full FT's counterpart of :func:`lora_alignments`: the top-r subspaces of its update W_l,t - W_l,0.

    NaN at step 0, where the update is 0 and its subspaces are undefined.
    """
    out = {}
    for i, (w, w0) in enumerate(zip(W, W0, strict=True), start=1):
        U_G, V_G = sub.left[i - 1], sub.right[i - 1]
        U, V = _top(w - w0, U_G.shape[1])
        moved = jnp.sum((w - w0) ** 2) > 0
        out[f"align_A_G_{i}"] = jnp.where(moved, span_alignment(U, U_G), jnp.nan)
        out[f"align_B_G_{i}"] = jnp.where(moved, span_alignment(V, V_G), jnp.nan)
    return out


def observe(W: net.Network, W0: net.Network, W_ft: net.Network, data: net.DigitsData) -> dict[str, Array]:
    """Losses, accuracies and distances of one method's weights ``W`` at one step.

    Args:
        W: the method's weights now (for LoRA: base + A B per layer).
        W0: the pretrained weights.
        W_ft: full FT's weights at the same step (the method's own optimizer family).
        data: the digits.

    Returns:
        name -> scalar, the entries of :data:`METRICS` other than the alignments:
        ``train_*`` / ``test_*``, cross-entropy and accuracy on the fine-tuning classes' train /
        test images; ``pretrain_test_acc``, accuracy on the pretraining classes' test images
        (forgetting); ``dist_ft_l = ||W_l - W_ft,l||_F`` (LoRA-One Fig. 1(c)'s distance) and
        ``dist_ft`` over both layers; ``dist_w0 = ||W - W0||_F`` (both layers), how far it moved.
    """
    train, test = data.finetune_train, data.finetune_test
    d1, d2 = jnp.linalg.norm(W.W1 - W_ft.W1), jnp.linalg.norm(W.W2 - W_ft.W2)
    return {
        "train_loss": net.cross_entropy(W, *train),
        "train_acc": net.accuracy(W, *train),
        "test_loss": net.cross_entropy(W, *test),
        "test_acc": net.accuracy(W, *test),
        "pretrain_test_acc": net.accuracy(W, *data.pretrain_test),
        "dist_ft": jnp.sqrt(d1**2 + d2**2),
        "dist_ft_1": d1,
        "dist_ft_2": d2,
        "dist_w0": jnp.sqrt(sum(jnp.sum((w - w0) ** 2) for w, w0 in zip(W, W0, strict=True))),
    }


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def lora_starts(layers, setup: Setup, *, key: jax.Array):
    """Every LoRA method's starting adapters and base weights, stacked along a leading axis of methods.

    Each init (:func:`lora_init`) is computed once per layer and shared by the methods that use it;
    the two layers' random inits use ``jax.random.split(key)``.

    Returns:
        (adapters: a tuple of two ``LoRAFactors``, base weights: a :class:`~lora_theory.models.twolayer.Network`),
        each leaf with a leading axis of ``setup.lora_methods``.
    """
    keys = jax.random.split(key, len(layers))
    names = dict.fromkeys(m.init for m in setup.lora_methods)  # ordered: the same program in every process
    per_init = {
        name: [lora_init(layer, name, setup, key=k) for layer, k in zip(layers, keys, strict=True)] for name in names
    }
    adapters = _stack([tuple(factors for factors, _ in per_init[m.init]) for m in setup.lora_methods])
    bases = _stack([net.Network(*(base for _, base in per_init[m.init])) for m in setup.lora_methods])
    return adapters, bases


def finetune_seed(data: net.DigitsData, setup: Setup, *, key: jax.Array) -> dict[str, Array]:
    """One seed of F8: pretrain, one-step gradients, inits, then every method, logged.

    Args:
        data: the digits (:func:`~lora_theory.models.twolayer.load_digits_split`).
        setup: the static :class:`Setup`.
        key: a ``jax.random.key``: the network's init and the random LoRA inits come from it.

    Returns:
        name -> array (n_methods, n_logs) for each of :data:`METRICS` (methods in ``setup.methods``
        order; full FT's distance is to itself, 0), plus ``pretrained_acc`` (a scalar: the
        pretrained network's accuracy on the pretraining classes' test images) and
        ``singular_values_G_1`` / ``_2`` (G's top singular values).
    """
    key_net, key_lora = jax.random.split(key)
    dtype = data.finetune_train.X.dtype
    W0 = net.init_network(setup.hidden, key=key_net, dtype=dtype)
    W0 = net.pretrain(W0, data.pretrain_train, steps=setup.pretrain_steps, lr=setup.pretrain_lr)
    G = net.one_step_gradient(W0, data.finetune_train)
    sub = _Subspaces(*zip(*(_top(g, setup.rank) for g in G), strict=True))
    full, lora = setup.full_methods, setup.lora_methods
    adapters, bases = lora_starts(net.layer_problems(W0, G), setup, key=key_lora)
    pre_bases = jax.vmap(lambda W1: data.finetune_train.X @ W1)(bases.W1)  # X W1_base, once
    ref = jnp.asarray([next(i for i, f in enumerate(full) if f.adam_family == m.adam_family) for m in lora])

    def hyper(methods):
        parts = np.asarray([OPTIMIZER_PARTS[m.optimizer] for m in methods], bool).reshape(len(methods), 2)
        lrs = np.asarray([setup.lr_of(m) for m in methods])
        return jnp.asarray(lrs, dtype), jnp.asarray(parts[:, 0]), jnp.asarray(parts[:, 1])

    ft_hyper, lora_hyper = hyper(full), hyper(lora)

    def ft_loss(W):
        return net.cross_entropy(W, *data.finetune_train)

    def lora_loss(ad, base, pre_base):
        return net.lora_cross_entropy(base, ad, *data.finetune_train, pre_base)

    def ft_opt(lr, pre, adam):
        return method_optimizer(lr, precondition=pre, adam=adam, lora=False)

    def lora_opt(lr, pre, adam):
        return method_optimizer(lr, precondition=pre, adam=adam, damping=setup.damping)

    def ft_update(W, state, lr, pre, adam):
        updates, state = ft_opt(lr, pre, adam).update(jax.grad(ft_loss)(W), state, W)
        return optax.apply_updates(W, updates), state

    def lora_update(ad, state, base, pre_base, lr, pre, adam):
        updates, state = lora_opt(lr, pre, adam).update(jax.grad(lora_loss)(ad, base, pre_base), state, ad)
        return optax.apply_updates(ad, updates), state

    def step(_, carry):
        W, ft_state, ad, lora_state = carry
        W, ft_state = jax.vmap(ft_update)(W, ft_state, *ft_hyper)
        ad, lora_state = jax.vmap(lora_update)(ad, lora_state, bases, pre_bases, *lora_hyper)
        return W, ft_state, ad, lora_state

    def log(carry):
        W, _, ad, _ = carry
        W_lora = jax.vmap(net.adapt)(bases, ad)
        W_ref = jax.tree.map(lambda w: w[ref], W)
        ft = jax.vmap(lambda w: observe(w, W0, w, data) | update_alignments(w, W0, sub))(W)
        lo = jax.vmap(lambda w, w_ref, a: observe(w, W0, w_ref, data) | lora_alignments(a, sub))(W_lora, W_ref, ad)
        return {name: jnp.concatenate([ft[name], lo[name]]) for name in METRICS}

    def chunk(carry, bounds):
        start, end = bounds
        metrics = log(carry)
        return lax.fori_loop(start, end, step, carry), metrics

    W_ft = _stack([W0] * len(full))
    ft_state = jax.vmap(lambda W, *h: ft_opt(*h).init(W))(W_ft, *ft_hyper)
    lora_state = jax.vmap(lambda a, *h: lora_opt(*h).init(a))(adapters, *lora_hyper)
    logged = setup.logged
    bounds = (jnp.asarray(logged, jnp.int32), jnp.asarray(np.append(logged[1:], setup.steps), jnp.int32))
    _, metrics = lax.scan(chunk, (W_ft, ft_state, adapters, lora_state), bounds)
    order = [*(m for m in full), *(m for m in lora)]
    position = np.asarray([order.index(m) for m in setup.methods])
    out = {name: value.T[position] for name, value in metrics.items()}  # (n_logs, n) -> (n_methods, n_logs)
    out["pretrained_acc"] = net.accuracy(W0, *data.pretrain_test)
    for i, g in enumerate(G, start=1):
        out[f"singular_values_G_{i}"] = jnp.linalg.svd(g, compute_uv=False)[: setup.rank]
    return out
