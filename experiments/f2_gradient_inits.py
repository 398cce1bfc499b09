"""F2: gradient-based inits under precgd: spectral and LoRA-One converge, LoRA-GA and LoRA-SB stall.

LoRA-One Fig. 4 and the authors' notebook: linear model, target singular values (4, 3, 2, 1)
normalised by the largest (kappa = 4), precgd with lam = 1e-3 and eta = 0.5, 100 steps; inits
``spectral`` (gamma = 1), ``lora_one`` variant ``orthonormal`` (s = 4), ``lora_ga`` (s = 4) and
``lora_sb``.  d = k = 100, r = r_star = 4, N = 16 d (the sizes of claim 5).  One compile per init.

Theory drawn (dashed): LoRA-SB's floor, the best risk reachable with its frozen bases,
min_R ||U_r R V_r^T - dW||_F^2 / 2 = (||dW||_F^2 - ||U_r^T dW V_r||_F^2) / 2 with U_r, V_r the top-r
singular vectors of G (per instance, mean drawn), and precgd's population rate (1 - eta)^2 per
step (:func:`lora_theory.theory.precgd_rate`) from spectral's initial risk, and, dash-dotted, the
finite-N heuristic (1 - eta lambda_min(Sigma_hat))^2 (this suite's: near the optimum the
preconditioned error is contracted by I - eta Sigma_hat, whose slowest factor is
1 - eta lambda_min(Sigma_hat), about 1 - eta (1 - sqrt(d/N))^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.theory import precgd_rate

from .common import per_seed, save, simulate_chunked

NAME = "f2"
TITLE = "spectral, lora_one, lora_ga and lora_sb under precgd: risk vs step (LoRA-One Fig. 4)"

#: (label, init, variant) in legend order.
INITS = (
    ("spectral", "spectral", None),
    ("lora_one (orthonormal)", "lora_one", "orthonormal"),
    ("lora_ga", "lora_ga", None),
    ("lora_sb", "lora_sb", None),
)


@dataclass(frozen=True)
class Config:
    """F2's parameters."""

    seeds: int = 50
    d: int = 100
    k: int = 100
    rank: int = 4
    n_factor: int = 16
    singular_values: tuple[float, ...] = (4.0, 3.0, 2.0, 1.0)
    lr: float = 0.5
    damping: float = 1e-3
    s: float = 4.0
    steps: int = 100
    log_every: int = 1

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(seeds=3, d=50, k=50, log_every=2)

    def run_config(self, init: str, variant) -> lt.RunConfig:
        top = max(self.singular_values)
        return lt.RunConfig(
            model="linear",
            d=self.d,
            k=self.k,
            r_star=len(self.singular_values),
            rank=self.rank,
            n_samples=self.n_factor * self.d,
            singular_values=tuple(v / top for v in self.singular_values),
            init=init,
            variant=variant,
            gamma=1.0,
            s=self.s,
            optimizer="precgd",
            lr=self.lr,
            damping=self.damping,
            steps=self.steps,
            log_every=self.log_every,
        )


def lora_sb_floor(config: lt.RunConfig, seeds: int) -> pd.DataFrame:
    """Per seed: (||dW||_F^2 - ||U_r^T dW V_r||_F^2) / 2, LoRA-SB's best reachable risk."""
    rank = config.rank

    def quantities(problem):
        U, _, Vt = jnp.linalg.svd(problem.G, full_matrices=False)
        core = U[:, :rank].T @ problem.dW @ Vt[:rank].T
        return {
            "lora_sb_floor": 0.5 * (jnp.sum(problem.dW**2) - jnp.sum(core**2)),
            "sigma_hat_min": jnp.linalg.eigvalsh(problem.sigma_hat)[0],
        }

    return pd.DataFrame({"seed": np.arange(seeds), **per_seed(config, range(seeds), quantities)})


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F2 (one compile per init) and write ``f2.parquet`` / ``f2.json``."""
    jobs = [({"label": label}, config.run_config(init, variant), {}) for label, init, variant in INITS]
    df, wall = simulate_chunked(jobs, config.seeds, desc=NAME, progress=progress, out_dir=out_dir)
    df = df.merge(lora_sb_floor(jobs[0][1], config.seeds), on="seed")
    return save(df, out_dir, NAME, config, wall)


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """Risk against the step per init, LoRA-SB's floor and precgd's rate dashed."""
    cfg = metadata["config"]
    fig, axes = P.figure(1, width=8.6, height=3.8)
    ax = axes[0, 0]
    ax.set_yscale("log")
    for label, init, _ in INITS:
        sub = df[df["label"] == label]
        steps, risk = P.per_seed_matrix(sub, "risk")
        P.band(ax, steps, risk, label=label, color=P.INIT_COLORS[init])
    floor = float(df.drop_duplicates("seed")["lora_sb_floor"].mean())
    ax.axhline(
        floor,
        color=P.INIT_COLORS["lora_sb"],
        linestyle="--",
        linewidth=1.2,
        label="lora_sb floor $\\min_R\\|U_rRV_r^\\top-\\Delta W\\|_F^2/2$",
    )
    spectral = df[df["label"] == "spectral"]
    steps, risk = P.per_seed_matrix(spectral, "risk")
    r0 = float(np.exp(np.mean(np.log(risk[:, 0]))))
    rate = float(precgd_rate(cfg["lr"]))
    t = np.linspace(0, cfg["steps"], 200)
    law = r0 * rate**t
    P.theory(ax, t[law > 1e-32], law[law > 1e-32], label="$(1-\\eta)^{2t}$ risk$_0$ (precgd, population)")
    lam_min = float(df.drop_duplicates("seed")["sigma_hat_min"].mean())
    slow = r0 * (1.0 - cfg["lr"] * lam_min) ** (2 * t)
    P.theory(
        ax,
        t[slow > 1e-32],
        slow[slow > 1e-32],
        color="0.45",
        linestyle=(0, (6, 2, 1, 2)),
        label=r"$(1-\eta\lambda_{\min}(\hat\Sigma))^{2t}$ risk$_0$ (finite N; this suite's heuristic)",
    )
    ax.set_ylim(bottom=1e-32)
    ax.set(
        xlabel="step $t$",
        ylabel=r"risk $\|A_tB_t-\Delta W\|_F^2/2$",
        title=f"precgd ($\\eta$ = {cfg['lr']:g}, $\\lambda$ = {cfg['damping']:g}), "
        f"$s_i$ = {tuple(cfg['singular_values'])}/{max(cfg['singular_values']):g}, d = {cfg['d']}, r = {cfg['rank']}",
    )
    P.legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    P.caption(
        fig,
        f"N = {cfg['n_factor']}d; mean over {df['seed'].nunique()} seeds (geometric), band: interquartile; dashed: theory",
    )
    return P.save_figure(fig, figures_dir, NAME)
