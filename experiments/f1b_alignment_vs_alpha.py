"""F1b: the "double-edged sword" of a small random init, across d (LoRA-One Fig. 2).

For each d in ``ds`` (N = 16 d, k = d; the SPEC's d = 400 is left out of the full preset: its
50 seeds x 5 alphas cost ~16x d = 100's on 2 cores; ``--set ds=50,100,200,400`` adds it) and alpha^2 in {1, ..., 1e-4}: GD from
``random`` init as in F1.  1000 GD steps (past the minimum of align_A_G and the escape for every alpha^2 <= 1e-2).  Per run: the minimum over t of align_A_G (how well A_t ever aligns with
G), the final risk, and the first step where the risk is below ``conv_level`` times its initial
value (when it converges).  One compiled program per d (alpha swept inside).

Theory drawn (dashed): the convergence time's slope in ln(1/alpha^2),
1 / (2 ln(1 + eta lambda_{r*}(G))) (:func:`lora_theory.theory.escape_time_slope`, the suite's
power-iteration reading of Thm 3.2), through each d's smallest-alpha point; and the finite-sample
level sin angle(U_G, U_dW), about sqrt(d/N), under which align_A_G cannot stay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import escape_time_slope

from .common import first_step_at_or_below, save, simulate_chunked
from .f1_random_init import problem_columns

NAME = "f1b"
TITLE = "min_t align_A_G, final risk and convergence time vs alpha^2, one curve per d (LoRA-One Fig. 2)"


@dataclass(frozen=True)
class Config:
    """F1b's parameters."""

    seeds: int = 50
    ds: tuple[int, ...] = (50, 100, 200)
    r_star: int = 4
    rank: int = 8
    n_factor: int = 16
    kappa: float = 1.0
    lr: float = 1.0 / 64
    steps: int = 1000
    log_every: int = 10
    alpha2s: tuple[float, ...] = (1.0, 1e-1, 1e-2, 1e-3, 1e-4)
    conv_level: float = 1e-2

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=3, ds=(25, 50), steps=600, log_every=20)

    def run_config(self, d: int) -> lt.RunConfig:
        return lt.RunConfig(
            model="linear",
            d=d,
            k=d,
            r_star=self.r_star,
            rank=self.rank,
            n_samples=self.n_factor * d,
            kappa=self.kappa,
            init="random",
            optimizer="gd",
            lr=self.lr,
            steps=self.steps,
            log_every=self.log_every,
        )


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F1b (one compile per d) and write ``f1b.parquet`` / ``f1b.json``."""
    alphas = [math.sqrt(a2) for a2 in config.alpha2s]
    jobs = [({}, config.run_config(d), {"alpha": alphas}) for d in config.ds]
    df, wall = simulate_chunked(jobs, config.seeds, desc=NAME, progress=progress, out_dir=out_dir)
    df["alpha2"] = df["alpha"] ** 2
    extra = pd.concat(
        [problem_columns(config.run_config(d), config.seeds).assign(d=d) for d in config.ds], ignore_index=True
    )
    df = df.merge(extra, on=["d", "seed"])
    return save(df, out_dir, NAME, config, wall)


def run_summaries(df: pd.DataFrame, conv_level: float) -> pd.DataFrame:
    """One row per run: min over t of align_A_G, its step, final risk, convergence step."""
    rows = []
    for (d, a2, seed), run in df.groupby(["d", "alpha2", "seed"]):
        run = run.sort_values("step")
        align = run["align_A_G"].to_numpy()
        risk = run["risk"].to_numpy()
        steps = run["step"].to_numpy()
        i = int(np.nanargmin(align)) if np.isfinite(align).any() else 0
        rows.append(
            dict(
                d=d,
                alpha2=a2,
                seed=seed,
                min_align=float(np.nanmin(align)) if np.isfinite(align).any() else np.nan,
                min_align_step=float(steps[i]),
                final_risk=float(risk[-1]),
                conv_step=first_step_at_or_below(steps, risk, conv_level * risk[0]),
                diverged=bool(run["diverged"].iloc[0]),
                lambda_rstar_G=float(run["lambda_rstar_G"].iloc[0]),
                angle_G_dW=float(run["angle_G_dW"].iloc[0]),
            )
        )
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """Three panels against alpha^2, one curve per d: min_t align_A_G, final risk, convergence step."""
    cfg = metadata["config"]
    runs = run_summaries(df, cfg["conv_level"])
    fig, axes = P.figure(3, width=3.7, height=3.3)
    ax_align, ax_risk, ax_time = axes[0]
    for ax in (ax_align, ax_risk, ax_time):
        ax.set_xscale("log")
    ax_align.set_yscale("log")
    ax_risk.set_yscale("log")
    ds = sorted(runs["d"].unique())
    colors = P.color_cycle(len(ds), "plasma", 0.0, 0.8)
    for color, d in zip(colors, ds, strict=True):
        sub = runs[runs["d"] == d]
        a2 = np.sort(sub["alpha2"].unique())
        table = lambda col, sub=sub, a2=a2: sub.pivot(index="seed", columns="alpha2", values=col)[a2].to_numpy()  # noqa: E731
        P.band(ax_align, a2, table("min_align"), label=f"d = {d}", color=color, marker="o", markersize=3)
        P.band(ax_risk, a2, table("final_risk"), label=f"d = {d}", color=color, marker="o", markersize=3)
        conv = table("conv_step")
        P.band(ax_time, a2, conv, label=f"d = {d}", color=color, marker="o", markersize=3, log=False)
        ax_align.axhline(float(sub["angle_G_dW"].mean()), color=color, linestyle=":", linewidth=1.0)
        diverged = sub.groupby("alpha2")["diverged"].sum()
        for a2_bad, count in diverged[diverged > 0].items():
            risk_mean = P.summarise(sub[sub["alpha2"] == a2_bad]["final_risk"].to_numpy()[:, None], log=True)[0][0]
            ax_risk.annotate(
                f"{count}/{sub['seed'].nunique()} diverged",
                (a2_bad, risk_mean),
                xytext=(2, -75),
                textcoords="offset points",
                ha="right",
                arrowprops=dict(arrowstyle="-", color=color, lw=0.6),
                fontsize=7,
                color=color,
            )
        # theory: slope 1/(2 ln(1 + eta lambda)) per unit of ln(1/alpha^2), through the smallest alpha^2
        slope = float(escape_time_slope(cfg["lr"], float(sub["lambda_rstar_G"].mean())))
        anchor = np.nanmean(conv[:, 0]) if np.isfinite(conv[:, 0]).any() else np.nan
        reached = np.isfinite(conv).all(axis=0)
        if np.isfinite(anchor):
            P.theory(
                ax_time,
                a2[reached],
                anchor - slope * np.log(a2[reached] / a2[0]),
                color=color,
                label="theory slope" if d == ds[-1] else None,
            )
    ax_align.set(
        xlabel=r"$\alpha^2$", ylabel=r"$\mathrm{min}_t\,$align$_{A,G}$", title=r"best alignment of $A_t$ with $G$"
    )
    ax_align.plot([], [], color="0.4", linestyle=":", label=r"$\sin\angle(U_G,U_{\Delta W})$")
    ax_risk.set(
        xlabel=r"$\alpha^2$",
        ylabel=r"final risk $\|A_TB_T-\Delta W\|_F^2/2$",
        title=f"risk after T = {cfg['steps']} steps",
    )
    ax_time.set(
        xlabel=r"$\alpha^2$",
        ylabel=f"first step with risk $\\leq$ {cfg['conv_level']:g} risk$_0$",
        title="convergence time",
    )
    ax_time.plot([], [], color="black", linestyle="--", label=r"slope $1/(2\ln(1+\eta\lambda_{r^*}))$")
    handles, labels = ax_time.get_legend_handles_labels()
    keep = [i for i, lab in enumerate(labels) if lab != "theory slope"]
    ax_time.legend([handles[i] for i in keep], [labels[i] for i in keep], loc="upper right")
    P.legend(ax_align, loc="lower right")
    P.legend(ax_risk, loc="upper left")
    P.caption(
        fig,
        f"random init, gd, $\\eta$ = 1/{round(1 / cfg['lr'])}, r = {cfg['rank']}, N = {cfg['n_factor']}d; "
        f"mean over {runs['seed'].nunique()} seeds, band: interquartile; dashed: theory slope",
    )
    return P.save_figure(fig, figures_dir, NAME)
