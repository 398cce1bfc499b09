"""F1: LoRA from a random init under GD: risk and alignment with G against the step, per alpha^2.

LoRA-One's setting (the SPEC's F1): linear model, d = k = 100, r = 8, r_star = 4, N = 16 d,
eta = 1/64, 1500 GD steps, ``random`` init (A_0 with N(0, alpha^2) entries, B_0 = 0) for
alpha^2 in {1, 1e-1, 1e-2, 1e-3, 1e-4}.  One compiled program: alpha is swept inside it.

Theory drawn (dashed): Thm 3.2's alignment law, theta(t) = sqrt(d) (1 + eta lambda_{r*}(G))^{-t}
(the inverse of t* = ln(sqrt(d)/theta) / ln(1 + eta lambda_{r*}(G)), constant 1), and the
finite-sample floor: the sine of the largest angle between G's and dW's top-r_star left
subspaces (measured per instance), which align_A_G returns to once A_t B_t -> dW.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P

from .common import per_seed, save, simulate_chunked

NAME = "f1"
TITLE = "random init under GD: risk and align_A_G vs step, per alpha^2 (LoRA-One Fig. 2 setting)"


@dataclass(frozen=True)
class Config:
    """F1's parameters (the SPEC's values in ``full``)."""

    seeds: int = 50
    d: int = 100
    k: int = 100
    r_star: int = 4
    rank: int = 8
    n_factor: int = 16
    kappa: float = 1.0
    noise: float = 0.0
    lr: float = 1.0 / 64
    steps: int = 1500
    log_every: int = 10
    alpha2s: tuple[float, ...] = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        # F1b's quick d = 50 job exactly (same static config and shapes): one compile serves both
        return cls(seeds=3, d=50, k=50, steps=600, log_every=20)

    def run_config(self) -> lt.RunConfig:
        return lt.RunConfig(
            model="linear",
            d=self.d,
            k=self.k,
            r_star=self.r_star,
            rank=self.rank,
            n_samples=self.n_factor * self.d,
            kappa=self.kappa,
            noise=self.noise,
            init="random",
            optimizer="gd",
            lr=self.lr,
            steps=self.steps,
            log_every=self.log_every,
        )


def problem_columns(config: lt.RunConfig, seeds: int) -> pd.DataFrame:
    """Per seed: lambda_{r*}(G) and sin of the largest angle between G's and dW's left subspaces."""

    r_star = config.r_star

    def quantities(problem):
        sv = jnp.linalg.svd(problem.G, compute_uv=False)
        return {
            "lambda_rstar_G": sv[r_star - 1],
            "angle_G_dW": lt.sin_largest_angle(problem.G_left, problem.dW_left),
        }

    values = per_seed(config, range(seeds), quantities)
    return pd.DataFrame({"seed": np.arange(seeds), **values})


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F1 (one compile, alpha swept) and write ``f1.parquet`` / ``f1.json``."""
    rc = config.run_config()
    alphas = [math.sqrt(a2) for a2 in config.alpha2s]
    df, wall = simulate_chunked(
        [({}, rc, {"alpha": alphas})], config.seeds, desc=NAME, progress=progress, out_dir=out_dir
    )
    df["alpha2"] = df["alpha"] ** 2
    df = df.merge(problem_columns(rc, config.seeds), on="seed")
    return save(df, out_dir, NAME, config, wall)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """Risk and align_A_G against the step, one curve per alpha^2, with Thm 3.2's law dashed."""
    cfg = metadata["config"]
    fig, axes = P.figure(2, width=4.3)
    ax_risk, ax_align = axes[0]
    ax_risk.set_yscale("log")
    ax_align.set_yscale("log")
    alpha2s = sorted(df["alpha2"].unique(), reverse=True)
    colors = P.color_cycle(len(alpha2s), "viridis")
    for color, a2 in zip(colors, alpha2s, strict=True):
        sub = df[np.isclose(df["alpha2"], a2)]
        label = rf"$\alpha^2$ = {a2:g}"
        steps, risk = P.per_seed_matrix(sub, "risk")
        P.band(ax_risk, steps, risk, label=label, color=color)
        steps, align = P.per_seed_matrix(sub, "align_A_G")
        P.band(ax_align, steps, align, label=label, color=color)
    seeds = df.drop_duplicates("seed")
    lam = float(np.mean(seeds["lambda_rstar_G"]))
    t = np.linspace(0, cfg["steps"], 400)
    law = np.sqrt(cfg["d"]) * (1.0 + cfg["lr"] * lam) ** (-t)
    shown = (law <= 1.5) & (law >= 1e-2)
    P.theory(ax_align, t[shown], law[shown], label=r"Thm 3.2 law $\sqrt{d}\,(1+\eta\lambda_{r^*}(G))^{-t}$")
    floor = float(np.mean(seeds["angle_G_dW"]))
    ax_align.axhline(
        floor, color="0.35", linestyle=":", linewidth=1.2, label=rf"$\sin\angle(U_G, U_{{\Delta W}})$ = {floor:.2f}"
    )
    ax_risk.set(
        xlabel="step $t$",
        ylabel=r"risk $\|A_tB_t-\Delta W\|_F^2/2$",
        title=f"random init, gd ($\\eta$ = 1/{round(1 / cfg['lr'])}), d = {cfg['d']}, r = {cfg['rank']}",
    )
    ax_align.set(
        xlabel="step $t$",
        ylabel=r"align$_{A,G}$ = $\|U_{G,\perp}^\top U_{A_t,r^*}\|_2$",
        title=rf"alignment of $A_t$ with $G$ (N = {cfg['n_factor']}d)",
    )
    ax_align.set_ylim(1e-2, 1.6)
    P.legend(ax_risk, loc="lower left")
    P.legend(ax_align, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the curves fill the panel
    P.caption(
        fig,
        f"mean over {df['seed'].nunique()} seeds (geometric on log axes), band: interquartile range; dashed: theory",
    )
    return P.save_figure(fig, figures_dir, NAME)
