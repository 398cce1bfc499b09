"""F4: the condition number: gd's linear rate degrades with kappa, precgd's does not (ScaledGD's law).

Linear model, d = k = 50, r = r_star = 4, N = 16 d, dW's singular values geometric from 1 to
1/kappa, kappa in {1, 10, 100, 1000}; ``gd`` and ``precgd`` (eta = 0.5 both; lam = ``damping``,
tiny, so precgd from ``random`` init, where B_0 = 0, is defined), from ``random`` (alpha^2 = 1e-6)
and ``spectral`` (gamma = 1) init.  One compile per (init, optimizer), kappa swept inside.

The fitted rate rho of each run is the asymptotic one (exp of the slope of log risk over the last
30% of the logged steps above the rounding floor and the final plateau,
:func:`experiments.common.tail_rate`).

Theory drawn (dashed): precgd's kappa-free rate (1 - eta)^2 (:func:`lora_theory.theory.precgd_rate`,
population mode, r = r_star) and gd's (1 - eta s_{r*})^2 = (1 - eta / kappa)^2
(:func:`lora_theory.theory.gd_rate`), as 1 - rho against kappa; dash-dotted, the finite-N
heuristic for precgd, (1 - eta lambda_min(Sigma_hat))^2 (this suite's, see F2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import gd_rate, precgd_rate

from .common import per_seed, save, simulate_chunked, tail_rate

NAME = "f4"
TITLE = "kappa in {1, 10, 100, 1000}: gd vs precgd, random vs spectral; fitted rate vs kappa (ScaledGD)"

INITS = ("random", "spectral")
OPTIMIZERS = ("gd", "precgd")


@dataclass(frozen=True)
class Config:
    """F4's parameters."""

    seeds: int = 50
    d: int = 50
    r_star: int = 4
    n_factor: int = 16
    kappas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    lr: float = 0.5
    damping: float = 1e-8
    alpha2: float = 1e-6
    steps: int = 1000
    log_every: int = 5

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=3, d=20, steps=600, log_every=10)

    def run_config(self, init: str, optimizer: str) -> lt.RunConfig:
        return lt.RunConfig(
            model="linear",
            d=self.d,
            k=self.d,
            r_star=self.r_star,
            rank=self.r_star,
            n_samples=self.n_factor * self.d,
            init=init,
            alpha=math.sqrt(self.alpha2),
            gamma=1.0,
            optimizer=optimizer,
            lr=self.lr,
            damping=self.damping,
            steps=self.steps,
            log_every=self.log_every,
        )


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F4 (one compile per init and optimizer) and write ``f4.parquet`` / ``f4.json``."""
    jobs = [({}, config.run_config(i, o), {"kappa": list(config.kappas)}) for i in INITS for o in OPTIMIZERS]
    df, wall = simulate_chunked(jobs, config.seeds, desc=NAME, progress=progress, out_dir=out_dir)
    lam = per_seed(jobs[0][1], range(config.seeds), lambda p: {"sigma_hat_min": jnp.linalg.eigvalsh(p.sigma_hat)[0]})
    df = df.merge(pd.DataFrame({"seed": np.arange(config.seeds), **lam}), on="seed")
    return save(df, out_dir, NAME, config, wall)


def fitted_rates(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its asymptotic rate rho (see the module docstring)."""
    rows = []
    for (init, opt, kappa, seed), run in df.groupby(["init", "optimizer", "kappa", "seed"]):
        run = run.sort_values("step")
        rows.append(
            dict(
                init=init,
                optimizer=opt,
                kappa=kappa,
                seed=seed,
                rho=tail_rate(run["step"].to_numpy(), run["risk"].to_numpy()),
            )
        )
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """Risk vs step per (init, optimizer), one curve per kappa; 1 - rho vs kappa with the laws dashed."""
    cfg = metadata["config"]
    fig, axes = P.figure(3, 2, width=3.7, height=3.0)
    kappas = sorted(df["kappa"].unique())
    colors = P.color_cycle(len(kappas), "cividis", 0.0, 0.85)
    for row, init in enumerate(INITS):
        for col, opt in enumerate(OPTIMIZERS):
            ax = axes[row, col]
            ax.set_yscale("log")
            for color, kappa in zip(colors, kappas, strict=True):
                sub = df[(df["init"] == init) & (df["optimizer"] == opt) & np.isclose(df["kappa"], kappa)]
                steps, risk = P.per_seed_matrix(sub, "risk")
                P.band(ax, steps, risk, label=f"$\\kappa$ = {kappa:g}", color=color)
            ax.set_ylim(bottom=1e-32)
            ax.set(xlabel="step $t$", ylabel=r"risk $\|A_tB_t-\Delta W\|_F^2/2$", title=f"{init} init, {opt}")
            P.legend(ax, loc="upper right" if opt == "gd" else "lower left")
    rates = fitted_rates(df)
    k_line = np.geomspace(min(kappas), max(kappas), 100)
    for row, init in enumerate(INITS):
        ax = axes[row, 2]
        ax.set_xscale("log")
        ax.set_yscale("log")
        for opt, marker in zip(OPTIMIZERS, ("o", "s"), strict=True):
            sub = rates[(rates["init"] == init) & (rates["optimizer"] == opt)]
            table = sub.pivot(index="seed", columns="kappa", values="rho")[kappas].to_numpy()
            P.band(
                ax,
                kappas,
                1.0 - table,
                label=opt,
                marker=marker,
                markersize=4,
                linestyle=P.OPTIMIZER_STYLES[opt],
                log=True,
            )
        P.theory(ax, k_line, 1.0 - float(precgd_rate(cfg["lr"])) + 0 * k_line, color="C1", label=r"$1-(1-\eta)^2$")
        lam_min = float(df.drop_duplicates("seed")["sigma_hat_min"].mean())
        P.theory(
            ax,
            k_line,
            1.0 - (1.0 - cfg["lr"] * lam_min) ** 2 + 0 * k_line,
            color="C1",
            linestyle=(0, (6, 2, 1, 2)),
            label=r"$1-(1-\eta\lambda_{\min}(\hat\Sigma))^2$",
        )
        P.theory(
            ax, k_line, 1.0 - np.asarray(gd_rate(cfg["lr"], 1.0 / k_line)), color="C0", label=r"$1-(1-\eta/\kappa)^2$"
        )
        ax.set(
            xlabel=r"$\kappa = s_1/s_{r^*}$",
            ylabel=r"$1-\rho$ (fitted rate $\rho$ of the risk)",
            title=f"{init} init: rate vs $\\kappa$",
        )
        P.legend(ax, loc="lower left", fontsize=7)
    P.caption(
        fig,
        f"linear model, d = k = {cfg['d']}, r = r* = {cfg['r_star']}, N = {cfg['n_factor']}d, $\\eta$ = {cfg['lr']:g}, "
        f"$\\lambda$ = {cfg['damping']:g}, random: $\\alpha^2$ = {cfg['alpha2']:g}; mean over "
        f"{df['seed'].nunique()} seeds (geometric), band: interquartile; dashed: theory",
    )
    return P.save_figure(fig, figures_dir, NAME)
