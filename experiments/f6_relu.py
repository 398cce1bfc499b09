"""F6: the nonlinear (ReLU) model: random vs spectral init, gd vs precgd (LoRA-One Sec. 4, Thm 4.2).

Model y = ReLU((W0 + dW)^T x) (:mod:`lora_theory.models.relu`, ``model='relu'``), noiseless,
d = k = 50, r = r_star = 4, N = 32 d, dW's spectrum geometric from 1 to 1/kappa for kappa in
{1, 10, 100}; ``spectral`` init with gamma = 2 (G is about dW / 2 for ReLU) and ``random`` init
(alpha^2 = 1e-6); ``gd`` and ``precgd`` (eta = 0.5; lam = ``damping``, tiny, so that precgd from
random init, where B_0 = 0, is defined; Thm 4.2's lam = 0 is within rounding of it for spectral).
One compile per (init, optimizer), kappa swept inside.

Theory drawn (dashed): Thm 4.2's envelope ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*},
drawn as (1 - eta/4)^t times spectral + precgd's measured initial relative error
(:func:`lora_theory.theory.relu.relu_precgd_rate_bound`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import relu_precgd_rate_bound

from .common import save, simulate_chunked

NAME = "f6"
TITLE = "ReLU model: random vs spectral init, gd vs precgd; Thm 4.2's (1 - eta/4)^t envelope"

INITS = ("random", "spectral")
OPTIMIZERS = ("gd", "precgd")


@dataclass(frozen=True)
class Config:
    """F6's parameters."""

    seeds: int = 50
    d: int = 50
    r_star: int = 4
    n_factor: int = 32
    kappas: tuple[float, ...] = (1.0, 10.0, 100.0)
    lr: float = 0.5
    damping: float = 1e-8
    gamma: float = 2.0
    alpha2: float = 1e-6
    steps: int = 300
    log_every: int = 5

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=3, d=20, r_star=2, kappas=(1.0, 100.0), steps=150, log_every=10)

    def run_config(self, init: str, optimizer: str) -> lt.RunConfig:
        return lt.RunConfig(
            model="relu",
            activation="relu",
            d=self.d,
            k=self.d,
            r_star=self.r_star,
            rank=self.r_star,
            n_samples=self.n_factor * self.d,
            init=init,
            gamma=self.gamma,
            alpha=math.sqrt(self.alpha2),
            optimizer=optimizer,
            lr=self.lr,
            damping=self.damping,
            steps=self.steps,
            log_every=self.log_every,
        )


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F6 (one compile per init and optimizer) and write ``f6.parquet`` / ``f6.json``."""
    jobs = [({}, config.run_config(i, o), {"kappa": list(config.kappas)}) for i in INITS for o in OPTIMIZERS]
    df, wall = simulate_chunked(jobs, config.seeds, desc=NAME, progress=progress, out_dir=out_dir)
    return save(df, out_dir, NAME, config, wall)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """Relative error ||A_t B_t - dW||_F / ||dW||_F vs step, one panel per kappa, Thm 4.2's envelope dashed."""
    cfg = metadata["config"]
    kappas = sorted(df["kappa"].unique())
    fig, axes = P.figure(len(kappas), width=3.6, height=3.3)
    rate = relu_precgd_rate_bound(cfg["lr"])
    for i, (ax, kappa) in enumerate(zip(axes[0], kappas, strict=True)):
        ax.set_yscale("log")
        for init in INITS:
            for opt in OPTIMIZERS:
                sub = df[(df["init"] == init) & (df["optimizer"] == opt) & np.isclose(df["kappa"], kappa)]
                steps, err = P.per_seed_matrix(sub, "rel_err")
                P.band(
                    ax, steps, err, label=f"{init}, {opt}", color=P.INIT_COLORS[init], linestyle=P.OPTIMIZER_STYLES[opt]
                )
        spec = df[(df["init"] == "spectral") & (df["optimizer"] == "precgd") & np.isclose(df["kappa"], kappa)]
        e0 = float(np.exp(np.mean(np.log(spec[spec["step"] == 0]["rel_err"]))))
        t = np.linspace(0, cfg["steps"], 200)
        P.theory(ax, t, e0 * rate**t, label=f"Thm 4.2: $(1-\\eta/4)^t$ = {rate:g}$^t$")
        ax.set_ylim(bottom=max(1e-16, ax.get_ylim()[0]))
        ax.set(
            xlabel="step $t$", ylabel=r"$\|A_tB_t-\Delta W\|_F/\|\Delta W\|_F$", title=f"ReLU, $\\kappa$ = {kappa:g}"
        )
        if i == 0:  # one legend, where the curves have already converged (the same in every panel)
            P.legend(ax, loc="upper right", fontsize=6.5)
    P.caption(
        fig,
        f"d = k = {cfg['d']}, r = r* = {cfg['r_star']}, N = {cfg['n_factor']}d, $\\eta$ = {cfg['lr']:g}, "
        f"spectral $\\gamma$ = {cfg['gamma']:g}, random $\\alpha^2$ = {cfg['alpha2']:g}; mean over "
        f"{df['seed'].nunique()} seeds (geometric), band: interquartile; dashed: theory",
    )
    return P.save_figure(fig, figures_dir, NAME)
