"""F7: the laws: spectral init's error against N (Thm 3.3) and the alignment time against d (Thm 3.2).

(a) Linear model, d = k = 100, r = 8, r_star = 4, kappa = 4, noiseless, N = n_factor * d for
n_factor in {4, ..., 512}: the initial error of ``spectral`` init (gamma = 1),
||A_0 B_0 - dW||_op, against Thm 3.3's per-instance bound ||Sigma_hat - I||_op ||dW||_op
(:func:`lora_theory.theory.spectral_init_error_bound`) and the sqrt(d/N) law (slope -1/2 on
log-log).  There is no training here, so this part builds each seed's problem and init with
:func:`lora_theory.make_problem` and :func:`lora_theory.initialise` (the engine's keys) instead of
running :func:`lora_theory.simulate`; one compile per N (a static shape).

(b) GD from ``random`` init (alpha^2 = ``alpha2``), d in ``ds`` (k = d, N = 16 d, r = 8, r_star = 4,
eta = 1/64) through the engine: the first logged step t*(theta) where align_A_G <= theta, against
Thm 3.2's t* = ln(sqrt(d)/theta) / ln(1 + eta lambda_{r*}(G))
(:func:`lora_theory.theory.alignment_time_bound`).  The theorem hides a constant, so the law is a
slope of 1: drawn dashed is y = x plus the mean offset, and y = x dotted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import alignment_time_bound, spectral_init_error_bound

from .common import first_step_at_or_below, per_seed, progress_bar, save, simulate_chunked
from .f1_random_init import problem_columns

NAME = "f7"
TITLE = "laws: spectral init error vs N (Thm 3.3, slope -1/2) and alignment time vs Thm 3.2's bound across d"


@dataclass(frozen=True)
class Config:
    """F7's parameters (part a: ``d``, ``n_factors``; part b: ``ds``, ``alpha2``, ``thetas``)."""

    seeds: int = 50
    d: int = 100
    r_star: int = 4
    rank: int = 8
    kappa: float = 4.0
    n_factors: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512)
    ds: tuple[int, ...] = (25, 50, 100, 200)
    alpha2: float = 1e-6
    #: part (b) also runs these alpha^2 (not plotted): the quick preset thereby has F1b's grid shape
    #: and static config, so F1b's compiled programs serve it.
    extra_alpha2s: tuple[float, ...] = ()
    thetas: tuple[float, ...] = (0.6, 0.45, 0.3)
    lr: float = 1.0 / 64
    steps: int = 800
    log_every: int = 5

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(
            seeds=3,
            d=40,
            n_factors=(4, 64),
            ds=(25, 50),
            alpha2=1e-4,
            extra_alpha2s=(1.0, 0.1, 0.01, 1e-3),
            steps=600,
            log_every=20,
        )

    def spectral_config(self, n_factor: int) -> lt.RunConfig:
        return lt.RunConfig(
            model="linear",
            d=self.d,
            k=self.d,
            r_star=self.r_star,
            rank=self.rank,
            n_samples=n_factor * self.d,
            kappa=self.kappa,
            init="spectral",
            gamma=1.0,
            steps=0,
        )

    def alignment_config(self, d: int) -> lt.RunConfig:
        return lt.RunConfig(
            model="linear",
            d=d,
            k=d,
            r_star=self.r_star,
            rank=self.rank,
            n_samples=16 * d,
            init="random",
            alpha=math.sqrt(self.alpha2),
            optimizer="gd",
            lr=self.lr,
            steps=self.steps,
            log_every=self.log_every,
        )


def spectral_errors(config: Config, progress: bool) -> pd.DataFrame:
    """Part (a): per seed and N, ||A_0 B_0 - dW||_op, its Frobenius form and Thm 3.3's bound."""
    frames = []
    with progress_bar(len(config.n_factors), f"{NAME} (a)", progress, unit="it") as bar:
        for n_factor in config.n_factors:
            rc = config.spectral_config(n_factor)

            def quantities(problem, rc=rc):
                init = lt.initialise(problem, "spectral", rank=rc.rank, key=jax.random.key(0), gamma=1.0)
                err = init.A @ init.B - problem.dW
                return {
                    "error_op": jnp.linalg.norm(err, ord=2),
                    "error_fro": jnp.linalg.norm(err),
                    "bound": spectral_init_error_bound(problem.sigma_hat, problem.dW),
                    "dW_op": jnp.linalg.norm(problem.dW, ord=2),
                }

            values = per_seed(rc, range(config.seeds), quantities)
            frames.append(
                pd.DataFrame(
                    {"part": "a", "seed": np.arange(config.seeds), "d": config.d, "n_samples": rc.n_samples, **values}
                )
            )
            bar.update(1)
    return pd.concat(frames, ignore_index=True)


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run both parts and write ``f7.parquet`` / ``f7.json`` (column ``part`` = 'a' or 'b')."""
    start = time.perf_counter()
    part_a = spectral_errors(config, progress)
    wall_a = time.perf_counter() - start
    alphas = [math.sqrt(a2) for a2 in (config.alpha2, *config.extra_alpha2s)]
    jobs = [({"part": "b"}, config.alignment_config(d), {"alpha": alphas}) for d in config.ds]
    part_b, wall_b = simulate_chunked(jobs, config.seeds, desc=f"{NAME}-b", progress=progress, out_dir=out_dir)
    extra = pd.concat(
        [problem_columns(config.alignment_config(d), config.seeds).assign(d=d) for d in config.ds], ignore_index=True
    )
    part_b = part_b[np.isclose(part_b["alpha"], math.sqrt(config.alpha2), rtol=1e-12)]
    part_b = part_b.merge(extra, on=["d", "seed"])
    df = pd.concat([part_a, part_b], ignore_index=True)
    return save(df, out_dir, NAME, config, wall_a + wall_b)


def alignment_times(df: pd.DataFrame, thetas, lr: float) -> pd.DataFrame:
    """Part (b): per run and theta, the measured t*(theta) and Thm 3.2's bound."""
    rows = []
    for (d, seed), run in df[df["part"] == "b"].groupby(["d", "seed"]):
        run = run.sort_values("step")
        lam = float(run["lambda_rstar_G"].iloc[0])
        for theta in thetas:
            rows.append(
                dict(
                    d=d,
                    seed=seed,
                    theta=theta,
                    measured=first_step_at_or_below(run["step"], run["align_A_G"], theta),
                    bound=float(alignment_time_bound(d, theta, lr, lam)),
                )
            )
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """(a) relative op-norm error vs N with the bound and the N^{-1/2} law; (b) t* vs Thm 3.2's bound."""
    cfg = metadata["config"]
    fig, axes = P.figure(2, width=5.2, height=3.6)
    ax_a, ax_b = axes[0]
    a = df[df["part"] == "a"].copy()
    a["rel"] = a["error_op"] / a["dW_op"]
    a["rel_bound"] = a["bound"] / a["dW_op"]
    ns = np.sort(a["n_samples"].unique())
    ax_a.set_xscale("log")
    ax_a.set_yscale("log")
    table = a.pivot(index="seed", columns="n_samples", values="rel")[ns].to_numpy()
    P.band(
        ax_a,
        ns,
        table,
        label=r"spectral: $\|A_0B_0-\Delta W\|_{op}/\|\Delta W\|_{op}$",
        color=P.INIT_COLORS["spectral"],
        marker="o",
        markersize=4,
    )
    bound = a.pivot(index="seed", columns="n_samples", values="rel_bound")[ns].to_numpy()
    mean_bound, _, _ = P.summarise(bound, log=True)
    P.theory(ax_a, ns, mean_bound, label=r"Thm 3.3 bound $\|\hat\Sigma-I\|_{op}$ (mean)")
    worst = float(np.nanmax(table / bound))
    slope = np.polyfit(np.log(ns), np.log(P.summarise(table, log=True)[0]), 1)[0]
    law = np.sqrt(cfg["d"] / ns)
    P.theory(
        ax_a,
        ns,
        law * P.summarise(table, log=True)[0][-1] / law[-1],
        color="0.5",
        linestyle=":",
        label=rf"$\propto\sqrt{{d/N}}$ (slope $-1/2$); fitted slope {slope:.3f}",
    )
    ax_a.set(
        xlabel="N (samples)",
        ylabel="relative initial error (op norm)",
        title=f"Thm 3.3, d = {cfg['d']}: max error/bound = {worst:.2f}",
    )
    from matplotlib.ticker import NullFormatter

    ax_a.xaxis.set_minor_formatter(NullFormatter())
    P.legend(ax_a, loc="upper right")
    times = alignment_times(df, cfg["thetas"], cfg["lr"])
    markers = ("o", "s", "^", "v", "D")
    colors = P.color_cycle(len(cfg["ds"]), "plasma", 0.0, 0.8)
    lo, hi = np.inf, -np.inf
    for color, d in zip(colors, sorted(times["d"].unique()), strict=True):
        for marker, theta in zip(markers, cfg["thetas"], strict=True):
            sub = times[(times["d"] == d) & np.isclose(times["theta"], theta)]
            x, y = sub["bound"].mean(), sub["measured"].to_numpy()
            mean, q1, q3 = P.summarise(y[:, None], log=False)
            ax_b.errorbar(
                [x],
                mean,
                yerr=[mean - q1, q3 - mean],
                color=color,
                marker=marker,
                markersize=5,
                linestyle="none",
                label=f"d = {d}" if theta == cfg["thetas"][0] else None,
            )
            lo, hi = min(lo, x, mean[0]), max(hi, x, mean[0])
    for marker, theta in zip(markers, cfg["thetas"], strict=True):
        ax_b.plot([], [], color="0.4", marker=marker, linestyle="none", label=f"$\\theta$ = {theta:g}")
    finite = times.dropna()
    offset = float(np.mean(finite["measured"] - finite["bound"])) if len(finite) else 0.0
    line = np.linspace(max(0.0, lo - 20), hi + 20, 50)
    P.theory(ax_b, line, line + offset, label=f"slope 1 (law), offset {offset:+.0f} fitted")
    ax_b.plot(line, line, color="0.6", linestyle=":", linewidth=1.0, label="$t^* =$ bound")
    ax_b.set(
        xlabel=r"Thm 3.2: $\ln(\sqrt{d}/\theta)/\ln(1+\eta\lambda_{r^*}(G))$",
        ylabel=r"measured $t^*$: first step with align$_{A,G}\leq\theta$",
        title=rf"alignment time, random init $\alpha^2$ = {cfg['alpha2']:g}, gd",
    )
    P.legend(ax_b, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n_missing = int(times["measured"].isna().sum())
    P.caption(
        fig,
        f"mean over {df['seed'].nunique()} seeds, band / bars: interquartile; dashed: theory"
        + (f"; {n_missing} (run, theta) pairs never reached theta" if n_missing else ""),
    )
    return P.save_figure(fig, figures_dir, NAME)
