"""F8: LoRA-One's Fig. 1(b, c) on real data: a two-layer ReLU network on scikit-learn's digits.

Setting (:mod:`lora_theory.models.twolayer`, :mod:`lora_theory.finetune`): 8 x 8 digit images
(1,797, shipped inside scikit-learn), one fixed 75/25 train/test split, standardised pixels; a
network x -> sigma(x W1) W2 (64 -> h -> 10, ReLU, no biases) pretrained with full-batch Adam on the
odd digits, then fine-tuned on the even ones with full-batch steps of the cross-entropy over all
10 classes.  LoRA adapters of rank r on both layers, W_l = W_l,0 + A_l B_l.  Per seed: a new
pretraining init (so a new pretrained network), new random LoRA inits; the data split is fixed.

Methods (:data:`METHODS`, the same data and steps): full FT with gd and with Adam; LoRA (random
init, A_0 entries N(0, alpha_gain^2 / d_in), B_0 = 0) with gd and with Adam; LoRA-One (Algorithm 1's
spectral init from each layer's one-step full gradient G_l: A_0 B_0 = P_r(G_l) / (s s_1(G_l)))
with precgd, with a preconditioned Adam (the preconditioner, then ``optax.scale_by_adam``: i.e.
``optax.chain(preconditioner, optax.adam(lr))``) and, to separate the init from the
preconditioner, with plain gd; LoRA-GA (W0 offset by -A_0 B_0) with precgd, as in F2; PiSSA (each
layer's W0 top-r SVD, W0 offset by -A_0 B_0) with gd, the practitioner's W0-subspace choice against
LoRA-One's gradient subspace.  The gd family shares ``lr``, the Adam family
``adam_lr``.  All seeds are one ``vmap`` and all methods one compiled program.

Measured, every ``log_every`` steps: train / test loss and accuracy on the even digits (and the
accuracy on the odd test digits, forgetting); per layer, the sine of the largest principal angle
between the top-r left subspace of A_t (right of B_t) and that of G_l (Fig. 1(b)'s quantity; for
full FT, of its update W_t - W_0); ||W_t - W_t^FT||_F over both layers against full FT of the same
optimizer family (Fig. 1(c)'s point).  No theorem covers this network: nothing is drawn dashed.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from lora_theory import finetune
from lora_theory import plotting as P
from lora_theory.models import twolayer

from .common import progress_bar, save

NAME = "f8"
TITLE = "two-layer ReLU net on sklearn digits (odd -> even): full FT, LoRA, LoRA-One, LoRA-GA, PiSSA (LoRA-One Fig. 1(b, c))"

M = finetune.Method
#: the methods, in legend order (full FT first: the references).
METHODS = (
    M("full FT, gd", "full", "gd"),
    M("full FT, Adam", "full", "adam"),
    M("LoRA, gd", "random", "gd"),
    M("LoRA, Adam", "random", "adam"),
    M("LoRA-One, precgd", "lora_one", "precgd"),
    M("LoRA-One, prec. Adam", "lora_one", "precadam"),
    M("LoRA-One, gd", "lora_one", "gd"),
    M("LoRA-GA, precgd", "lora_ga", "precgd"),
    M("PiSSA, gd", "pissa", "gd"),
)

COLORS = {
    "full": "black",
    "random": P.INIT_COLORS["random"],
    "lora_one": P.INIT_COLORS["lora_one"],
    "lora_ga": P.INIT_COLORS["lora_ga"],
    "pissa": "#e377c2",
}
STYLES = {"gd": "-", "precgd": "-.", "adam": ":", "precadam": "-."}
MARKERS = {"precadam": "v"}  # precadam: precgd's line with markers


@dataclass(frozen=True)
class Config:
    """F8's parameters (see the module docstring; ``lr`` is the gd family's, ``adam_lr`` Adam's)."""

    seeds: int = 20
    split_seed: int = 0
    test_fraction: float = 0.25
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
    log_every: int = 5
    log_every_step_until: int = 10
    dtype: str = "float64"

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=2, hidden=32, pretrain_steps=60, steps=100)

    def setup(self) -> finetune.Setup:
        return finetune.Setup(
            METHODS,
            hidden=self.hidden,
            rank=self.rank,
            s=self.s,
            alpha_gain=self.alpha_gain,
            lr=self.lr,
            adam_lr=self.adam_lr,
            damping=self.damping,
            pretrain_steps=self.pretrain_steps,
            pretrain_lr=self.pretrain_lr,
            steps=self.steps,
            log_every=self.log_every,
            log_every_step_until=self.log_every_step_until,
        )


@functools.lru_cache(maxsize=4)
def _program(setup: finetune.Setup):
    """keys -> every seed's metrics: ``jit`` of ``vmap`` over seeds of :func:`finetune.finetune_seed`."""
    return jax.jit(jax.vmap(lambda key, data: finetune.finetune_seed(data, setup, key=key), in_axes=(0, None)))


def _tidy(out: dict, config: Config) -> pd.DataFrame:
    """One row per (seed, method, logged step)."""
    n_seeds, n_methods, n_logs = np.shape(out["test_loss"])
    steps = config.setup().logged
    index = pd.MultiIndex.from_product([range(n_seeds), range(n_methods), range(n_logs)], names=["s", "m", "t"])
    df = pd.DataFrame({name: np.asarray(out[name]).reshape(-1) for name in finetune.METRICS}, index=index)
    df = df.reset_index()
    df.insert(0, "method", [METHODS[m].name for m in df["m"]])
    df.insert(1, "init", [METHODS[m].init for m in df["m"]])
    df.insert(2, "optimizer", [METHODS[m].optimizer for m in df["m"]])
    df.insert(3, "seed", df.pop("s").astype(np.int64))
    df.insert(4, "step", steps[df.pop("t")])
    df = df.drop(columns="m")
    df["pretrained_acc"] = np.asarray(out["pretrained_acc"])[df["seed"]]
    for layer in (1, 2):
        sv = np.asarray(out[f"singular_values_G_{layer}"])
        for i in range(sv.shape[1]):
            df[f"sv_G{layer}_{i + 1}"] = sv[df["seed"], i]
    return df


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F8 (one compiled program: all seeds and methods) and write ``f8.parquet`` / ``f8.json``."""
    setup = config.setup()
    start = time.perf_counter()
    dtype = {"float64": jnp.float64, "float32": jnp.float32}[config.dtype]
    data = twolayer.load_digits_split(split_seed=config.split_seed, test_fraction=config.test_fraction, dtype=dtype)
    keys = jax.vmap(jax.random.key)(jnp.arange(config.seeds, dtype=jnp.uint32))
    with progress_bar(1, NAME, progress, unit="batch") as bar:
        out = jax.tree.map(np.asarray, _program(setup)(keys, data))
        bar.update(1)
    df = _tidy(out, config)
    sizes = {part: int(getattr(data, part).y.size) for part in twolayer.DigitsData._fields}
    return save(df, out_dir, NAME, config, time.perf_counter() - start, data_sizes=sizes)


def _curves(ax, df, value, methods, *, log=False):
    for method in methods:
        sub = df[df["method"] == method.name]
        steps, values = P.per_seed_matrix(sub, value)
        P.band(
            ax,
            steps,
            values,
            label=method.name,
            color=COLORS[method.init],
            linestyle=STYLES[method.optimizer],
            marker=MARKERS.get(method.optimizer),
            markevery=0.08,
            markersize=3.5,
            log=log,
            alpha=0.12,
        )


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """(a) test loss and accuracy, (b) alignment with G per layer and factor, (c) distance to full FT."""
    cfg = metadata["config"]
    fig, axes = P.figure(4, 2, width=3.5, height=2.9)
    linear_until = 10
    for ax in axes.flat:
        ax.set_xscale("symlog", linthresh=linear_until, linscale=0.6)
        ax.set_xlim(0, cfg["steps"])
    # (a)
    ax = axes[0, 0]
    ax.set_yscale("log")
    _curves(ax, df, "test_loss", METHODS, log=True)
    ax.set(ylabel="test cross-entropy (even digits)", title="(a) test loss")
    ax = axes[1, 0]
    _curves(ax, df, "test_acc", METHODS)
    ax.set(xlabel="step $t$", ylabel="test accuracy (even digits)", title="(a) test accuracy", ylim=(0, 1.02))
    handles, labels = ax.get_legend_handles_labels()
    # (b)
    lora = [m for m in METHODS if not m.full] + [m for m in METHODS if m.full]
    for row, layer in enumerate((1, 2)):
        for col, (factor, side) in enumerate((("A", "left"), ("B", "right")), start=1):
            ax = axes[row, col]
            _curves(ax, df, f"align_{factor}_G_{layer}", lora)
            ax.set(
                ylim=(-0.02, 1.05),
                title=f"(b) layer {layer}: {factor}$_t$ vs $G_{layer}$ ({side}, top {cfg['rank']})",
                ylabel=rf"$\sin\angle_{{\max}}$({factor}$_t$, $G_{layer}$)",
            )
            if row == 1:
                ax.set_xlabel("step $t$")
    # (c)
    for row, adam in enumerate((False, True)):
        ax = axes[row, 3]
        ax.set_yscale("log")
        reference = next(m for m in METHODS if m.full and m.adam_family == adam)
        sub = df[df["method"] == reference.name]
        steps, moved = P.per_seed_matrix(sub[sub["step"] > 0], "dist_w0")
        P.band(ax, steps, moved, label=r"$W_0$ (no fine-tuning)", color="0.6", log=True, alpha=0.12)
        _curves(
            ax, df[df["step"] > 0], "dist_ft", [m for m in METHODS if not m.full and m.adam_family == adam], log=True
        )
        ax.set(title=f"(c) distance to {reference.name}", ylabel=r"$\|W_t - W_t^{\mathrm{FT}}\|_F$ (both layers)")
        if row == 1:
            ax.set_xlabel("step $t$")
    extra = axes[0, 3].get_legend_handles_labels()
    fig.legend(handles + extra[0][:1], labels + extra[1][:1], loc="outside upper center", ncol=9, fontsize=7.5)
    pre = df.drop_duplicates("seed")["pretrained_acc"]
    P.caption(
        fig,
        f"64 -> {cfg['hidden']} -> 10 ReLU net pretrained on odd digits (Adam, {cfg['pretrain_steps']} steps; "
        f"odd test accuracy {pre.min():.3f}-{pre.max():.3f}), fine-tuned on even digits, full batch; "
        f"LoRA rank {cfg['rank']} on both layers; gd family lr {cfg['lr']:g}, Adam family lr {cfg['adam_lr']:g}, "
        f"precgd damping {cfg['damping']:g}, LoRA-One s = {cfg['s']:g}, random A_0 std {cfg['alpha_gain']:g}/sqrt(d_in); "
        f"mean over {df['seed'].nunique()} seeds (geometric on log axes), band: interquartile; "
        f"(b) full FT: top subspaces of $W_t - W_0$; x axis linear to {linear_until}, then log",
    )
    return P.save_figure(fig, figures_dir, NAME)
