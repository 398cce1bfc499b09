"""F5: HRP (high-rank preheating) against random, spectral and oracle inits, with claim 6's bounds.

HRP's setting: population mode (L = ||A B - M||_F^2 / 2 with M = dW), asymmetric LoRA (A frozen
at its init, only B trains, GD), d = 64, k = 96, a full-rank target (r_star = d) whose spectrum is
geometric from 1 to 1/kappa: decaying (kappa = 100) or flat (kappa = 1); LoRA rank r = 8.
Frozen factors A (n = d):

* ``random``: Gaussian entries, alpha = 1/sqrt(d) (unit-norm columns on average);
* ``hrp``: a rank-p LoRA preheated from ``random`` (B only), then A = the top-r left singular
  vectors of A_p B_p scaled to alpha sqrt(d) (variant ``directions``).  Against p: the preheat is
  run to its limit P_p M (3 steps of precgd with lr 1: exact for B given A_p).  Against the number
  of preheat steps: gd with lr ``preheat_lr`` at p = ``steps_rank`` (0 steps: a random subspace);
* ``oracle`` (variant ``directions``: A = M's top-r left singular vectors) and ``spectral``
  (A_0 B_0 = M_r from the SVD of G = M): both the Eckart-Young optimum.

Theory drawn (dashed; :mod:`lora_theory.theory`): the random factor's expectation
(1 - r/n) ||M||_F^2 / 2, the Eckart-Young optimum sum_{i>r} s_i^2 / 2 and the HRP bound
min{(1 - r/n)||M||^2, sum_{i>r} s_i^2 + (1 - p/n) sum_{i<=r} s_i^2} / 2 (derived in this suite
from Ky Fan's inequality, not quoted from the HRP paper).  Losses are shown relative to
||M||_F^2 / 2.  One compile per init and per static HRP setting (p, preheat steps); kappa is
swept inside each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import eckart_young_loss, hrp_loss_bound, random_frozen_factor_loss

from .common import last_step, save, simulate_chunked

NAME = "f5"
TITLE = "HRP: final loss vs preheat rank and preheat steps, decaying vs flat spectrum, with claim 6's bounds"


@dataclass(frozen=True)
class Config:
    """F5's parameters."""

    seeds: int = 50
    d: int = 64
    k: int = 96
    rank: int = 8
    kappas: tuple[float, ...] = (100.0, 1.0)
    preheat_ranks: tuple[int, ...] = (8, 16, 32, 64)
    steps_rank: int = 32
    preheat_steps_grid: tuple[int, ...] = (0, 1, 3, 10, 30, 100)
    preheat_lr: float = 0.5
    lr: float = 0.5
    steps: int = 400
    log_every: int = 50
    references: tuple[str, ...] = ("random", "oracle", "spectral")

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        # spectral left out: like oracle (directions), it reaches the Eckart-Young optimum
        return cls(
            seeds=4,
            d=32,
            k=48,
            rank=4,
            preheat_ranks=(4, 32),
            steps_rank=16,
            preheat_steps_grid=(0, 10),
            steps=200,
            log_every=100,
            references=("random", "oracle"),
        )

    def base(self, **changes) -> lt.RunConfig:
        values = dict(
            model="population",
            d=self.d,
            k=self.k,
            r_star=self.d,
            rank=self.rank,
            alpha=1.0 / math.sqrt(self.d),
            gamma=1.0,
            optimizer="gd",
            lr=self.lr,
            train_factors="B",
            steps=self.steps,
            log_every=self.log_every,
        )
        values.update(changes)
        return lt.RunConfig(**values)


def jobs(config: Config):
    """(constant columns, RunConfig, sweep) of every compiled program of F5."""
    sweep = {"kappa": list(config.kappas)}
    references = {
        "random": config.base(init="random"),
        "oracle": config.base(init="oracle", variant="directions"),
        "spectral": config.base(init="spectral"),
    }
    out = [({"label": ref, "p": np.nan, "preheat": np.nan}, references[ref], sweep) for ref in config.references]
    for p in config.preheat_ranks:
        rc = config.base(
            init="hrp",
            preheat_rank=p,
            preheat_steps=3,
            preheat_optimizer="precgd",
            preheat_lr=1.0,
            preheat_damping=1e-13,
            preheat_train_factors="B",
        )
        out.append(({"label": "hrp_rank", "p": p, "preheat": np.nan}, rc, sweep))
    for steps in config.preheat_steps_grid:
        rc = config.base(
            init="hrp",
            preheat_rank=config.steps_rank,
            preheat_steps=steps,
            preheat_optimizer="gd",
            preheat_lr=config.preheat_lr,
            preheat_train_factors="B",
        )
        out.append(({"label": "hrp_steps", "p": config.steps_rank, "preheat": steps}, rc, sweep))
    return out


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F5 and write ``f5.parquet`` / ``f5.json``."""
    df, wall = simulate_chunked(jobs(config), config.seeds, desc=NAME, progress=progress, out_dir=out_dir)
    return save(df, out_dir, NAME, config, wall)


def _spectrum(cfg, kappa):
    return np.asarray(lt.target_spectrum(cfg["d"], kappa, 1.0, jnp.float64))


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """2 x 2 panels (decaying / flat spectrum x preheat rank / preheat steps) of the relative final loss."""
    cfg = metadata["config"]
    n, r = cfg["d"], cfg["rank"]
    final = last_step(df).copy()
    kappas = sorted(final["kappa"].unique(), reverse=True)
    fig, axes = P.figure(2, len(kappas), width=4.4, height=3.1)
    for row, kappa in enumerate(kappas):
        s = _spectrum(cfg, kappa)
        total = 0.5 * float(np.sum(s**2))
        at = final[np.isclose(final["kappa"], kappa)].copy()
        at["rel"] = at["loss"] / total
        for col, (label, xcol) in enumerate((("hrp_rank", "p"), ("hrp_steps", "preheat"))):
            ax = axes[row, col]
            sub = at[at["label"] == label]
            xs = np.sort(sub[xcol].unique())
            table = sub.pivot(index="seed", columns=xcol, values="rel")[xs].to_numpy()
            x_plot = xs if col == 0 else np.maximum(xs, 0.3)
            P.band(
                ax,
                x_plot,
                table,
                label="hrp (measured)",
                color=P.INIT_COLORS["hrp"],
                marker="o",
                markersize=4,
                log=False,
            )
            x_line = (
                np.linspace(x_plot.min(), x_plot.max(), 50)
                if col == 0
                else np.geomspace(x_plot.min(), x_plot.max(), 50)
            )
            for ref in [ref for ref in ("random", "spectral", "oracle") if (at["label"] == ref).any()]:
                vals = at[at["label"] == ref]["rel"].to_numpy()
                mean, lo, hi = P.summarise(vals[:, None], log=False)
                ls = ":" if ref == "oracle" else "-"
                ax.plot(
                    x_line,
                    np.full_like(x_line, mean[0]),
                    color=P.INIT_COLORS[ref],
                    linestyle=ls,
                    linewidth=1.3,
                    label=f"{ref}" + (" (directions)" if ref == "oracle" else "") + " (measured)",
                )
                ax.fill_between(x_line, lo[0], hi[0], color=P.INIT_COLORS[ref], alpha=0.15, linewidth=0)
            rand = float(random_frozen_factor_loss(2 * total, r, n)) / total
            ey = float(eckart_young_loss(s, r)) / total
            P.theory(
                ax, x_line, np.full_like(x_line, rand), color=P.INIT_COLORS["random"], label=r"$E$[random] $=(1-r/n)$"
            )
            P.theory(ax, x_line, np.full_like(x_line, ey), color="0.3", label=r"Eckart-Young $\sum_{i>r}s_i^2/\|M\|^2$")
            if col == 0:
                p_line = np.linspace(min(xs), max(xs), 50)
                bound = [float(hrp_loss_bound(s, r, int(round(p)), n)) / total for p in p_line]
                P.theory(ax, p_line, bound, color=P.INIT_COLORS["hrp"], label="hrp bound (Ky Fan, this suite)")
                ax.set_xlabel("preheat rank $p$ (preheat to its limit)")
            else:
                ax.set_xscale("log")
                p_steps = int(sub["p"].iloc[0])
                bound = float(hrp_loss_bound(s, r, p_steps, n)) / total
                P.theory(
                    ax,
                    x_line,
                    np.full_like(x_line, bound),
                    color=P.INIT_COLORS["hrp"],
                    label=f"hrp bound at p = {p_steps}",
                )
                ax.set_xlabel(f"preheat steps (gd, lr {cfg['preheat_lr']:g}, p = {p_steps}; 0 plotted at 0.3)")
            spectrum = "flat" if kappa == 1 else "decaying"
            ax.set_ylabel(r"final loss / ($\|M\|_F^2/2$)")
            ax.set_title(f"{spectrum} spectrum ($\\kappa$ = {kappa:g})")
            ax.set_ylim(bottom=max(0.0, ey - 0.08), top=min(1.05, rand + 0.06))
            if row == 0 and col == 1:
                P.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    P.caption(
        fig,
        f"population mode, A frozen (only B trains, gd lr {cfg['lr']:g}, {cfg['steps']} steps), "
        f"n = d = {n}, k = {cfg['k']}, r = {r}; mean over {final['seed'].nunique()} seeds, band: interquartile; dashed: theory",
    )
    return P.save_figure(fig, figures_dir, NAME)
