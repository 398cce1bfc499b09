"""F3: LoRA-One Fig. 3's scalar toy, y = b x^T a: 3-D GD trajectories from random and spectral init.

Model: a in R^2, b a scalar, target beta = (2, 1), 4 samples x_i ~ N(0, I_2), y_i = x_i^T beta,
loss L(a, b) = sum_i (y_i - b x_i^T a)^2 / 8, GD with lr 0.1 for 1000 steps.  The global minimisers
are the curve {(a, b): b a = beta} (two branches, b > 0 and b < 0).

Inits: ``random`` (a ~ N(0, I_2), b = 0; one per seed) and ``spectral`` (from the one-step gradient
of the full model y = x^T w at w0 = 0: G = -grad_w L(0) = X^T y / 4, a 2 x 1 matrix with SVD
G = u s v, v = 1: a_0 = sqrt(gamma s) u, b_0 = sqrt(gamma s)).

**True gradient.**  This uses the gradient of the loss above.  The authors' notebook weights the
samples by y_i^2 in its update (its gradient is not that of the stated loss); the suite does not
copy that.  This is not the matrix engine's model: a small jitted ``lax.scan`` of its own, vmapped
over the random inits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from lora_theory import plotting as P

from .common import progress_bar, save

NAME = "f3"
TITLE = "scalar toy y = b x^T a: 3-D GD trajectories from random and spectral init (LoRA-One Fig. 3)"


@dataclass(frozen=True)
class Config:
    """F3's parameters (``seeds`` random inits; the data set is drawn from ``data_seed``)."""

    seeds: int = 50
    data_seed: int = 0
    beta: tuple[float, ...] = (2.0, 1.0)
    n_samples: int = 4
    lr: float = 0.1
    steps: int = 1000
    log_every: int = 5
    gamma: float = 1.0

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=8)


def toy_data(config: Config):
    """X (n x 2) with N(0, 1) entries and y = X beta, from ``data_seed``."""
    X = jax.random.normal(jax.random.key(config.data_seed), (config.n_samples, len(config.beta)), jnp.float64)
    return X, X @ jnp.asarray(config.beta, jnp.float64)


def toy_loss(a, b, X, y):
    """sum_i (y_i - b x_i^T a)^2 / (2 n) (= / 8 with n = 4 samples)."""
    return jnp.sum((y - b * (X @ a)) ** 2) / (2 * y.shape[0])


def spectral_toy_init(X, y, gamma):
    """(a_0, b_0) from the SVD of G = -grad_w L(0) = X^T y / n (a column vector: u = G/|G|, s = |G|, v = 1)."""
    G = X.T @ y / y.shape[0]
    s = jnp.linalg.norm(G)
    return jnp.sqrt(gamma * s) * G / s, jnp.sqrt(gamma * s)


def trajectories(a0, b0, X, y, lr, steps: int, log_every: int):
    """GD on (a, b) with the true gradient; returns (a, b, loss) at steps 0, log_every, ..., steps."""
    grad = jax.grad(toy_loss, argnums=(0, 1))

    def one(a, b):
        def chunk(carry, _):
            def step(_, ab):
                ga, gb = grad(ab[0], ab[1], X, y)
                return ab[0] - lr * ga, ab[1] - lr * gb

            carry = jax.lax.fori_loop(0, log_every, step, carry)
            return carry, (carry[0], carry[1], toy_loss(carry[0], carry[1], X, y))

        _, (a_t, b_t, l_t) = jax.lax.scan(chunk, (a, b), None, length=steps // log_every)
        return (
            jnp.concatenate([a[None], a_t]),
            jnp.concatenate([b[None], b_t]),
            jnp.concatenate([toy_loss(a, b, X, y)[None], l_t]),
        )

    return jax.jit(jax.vmap(one))(a0, b0)


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run the toy from ``seeds`` random inits and the spectral init; write ``f3.parquet`` / ``f3.json``."""
    if config.steps % config.log_every:
        raise ValueError(f"steps={config.steps} must be a multiple of log_every={config.log_every}")
    start = time.perf_counter()
    X, y = toy_data(config)
    dim = len(config.beta)
    keys = jax.vmap(jax.random.key)(jnp.arange(config.seeds, dtype=jnp.uint32))
    a_random = jax.vmap(lambda k: jax.random.normal(k, (dim,), jnp.float64))(keys)
    a_spec, b_spec = spectral_toy_init(X, y, config.gamma)
    a0 = jnp.concatenate([a_random, a_spec[None]])
    b0 = jnp.concatenate([jnp.zeros(config.seeds), b_spec[None]])
    with progress_bar(1, NAME, progress, unit="it") as bar:
        a_t, b_t, loss_t = (
            np.asarray(v) for v in trajectories(a0, b0, X, y, config.lr, config.steps, config.log_every)
        )
        bar.update(1)
    steps = np.arange(0, config.steps + 1, config.log_every)
    frames = []
    for i in range(config.seeds + 1):
        frames.append(
            pd.DataFrame(
                {
                    "init": "random" if i < config.seeds else "spectral",
                    "seed": i if i < config.seeds else -1,
                    "step": steps,
                    **{f"a{j + 1}": a_t[i, :, j] for j in range(dim)},
                    "b": b_t[i],
                    "loss": loss_t[i],
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df["dist_to_minimisers"] = np.linalg.norm(
        df[[f"a{j + 1}" for j in range(dim)]].to_numpy() * df["b"].to_numpy()[:, None] - np.asarray(config.beta), axis=1
    )
    return save(
        df,
        out_dir,
        NAME,
        config,
        time.perf_counter() - start,
        data={"X": np.asarray(X).tolist(), "y": np.asarray(y).tolist()},
    )


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """3-D trajectories (a_1, a_2, b) with the minimiser curve b a = beta dashed; loss vs step."""
    import matplotlib.pyplot as plt

    cfg = metadata["config"]
    beta = np.asarray(cfg["beta"])
    P.figure(1)  # applies the style
    plt.close("all")
    fig = plt.figure(figsize=(9.6, 4.0), layout="constrained")
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    ax = fig.add_subplot(1, 2, 2)
    random = df[df["init"] == "random"]
    for i, (_, run) in enumerate(random.groupby("seed")):
        ax3.plot(
            run["a1"],
            run["a2"],
            run["b"],
            color=P.INIT_COLORS["random"],
            alpha=0.35,
            linewidth=0.8,
            label="random ($a_0\\sim N(0,I)$, $b_0=0$)" if i == 0 else None,
        )
        ax3.scatter(run["a1"].iloc[0], run["a2"].iloc[0], run["b"].iloc[0], color=P.INIT_COLORS["random"], s=6)
    spec = df[df["init"] == "spectral"]
    ax3.plot(spec["a1"], spec["a2"], spec["b"], color=P.INIT_COLORS["spectral"], linewidth=2.2, label="spectral")
    ax3.scatter(
        spec["a1"].iloc[0], spec["a2"].iloc[0], spec["b"].iloc[0], color=P.INIT_COLORS["spectral"], s=25, marker="*"
    )
    b_lim = max(2.5, float(np.nanmax(np.abs(df["b"]))) * 1.1)
    for sign in (1.0, -1.0):
        b = sign * np.geomspace(0.45, b_lim, 200)
        a = beta[None, :] / b[:, None]
        keep = np.all(np.abs(a) <= 4.5, axis=1)
        ax3.plot(
            a[keep, 0],
            a[keep, 1],
            b[keep],
            color="black",
            linestyle="--",
            linewidth=1.3,
            label=r"global minimisers $b\,a=\beta$" if sign > 0 else None,
        )
    ax3.set_xlabel("$a_1$")
    ax3.set_ylabel("$a_2$")
    ax3.set_zlabel("$b$")
    ax3.view_init(elev=22, azim=-58)
    ax3.set_title(f"GD trajectories ($\\eta$ = {cfg['lr']:g}, {cfg['steps']} steps), $\\beta$ = {tuple(cfg['beta'])}")
    ax3.legend(loc="upper left", fontsize=7)
    ax.set_yscale("log")
    steps, loss = P.per_seed_matrix(random, "loss")
    P.band(ax, steps, loss, label=f"random ({random['seed'].nunique()} inits)", color=P.INIT_COLORS["random"])
    ax.plot(spec["step"], spec["loss"], color=P.INIT_COLORS["spectral"], label="spectral")
    ax.set(xlabel="step $t$", ylabel=r"$L(a_t,b_t)=\sum_i(y_i-b_tx_i^\top a_t)^2/8$", title="loss (true gradient)")
    P.legend(ax, loc="upper right")
    P.caption(
        fig,
        "true gradient of the stated loss (the authors' notebook weights samples by $y_i^2$); "
        "random: geometric mean over inits, band: interquartile; dashed: the minimiser curve",
    )
    return P.save_figure(fig, figures_dir, NAME)
