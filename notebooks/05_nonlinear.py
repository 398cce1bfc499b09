# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · The nonlinear (ReLU) model: LoRA-One's Thm 4.2
#
# LoRA-One (arXiv 2502.01235, Sec. 4) carries its results to `y = sigma((W0 + dW)^T x)` with
# `sigma = ReLU`, training `L = ||sigma(X (W0 + A B)) - Y||_F^2 / (2N)`. Thm 4.2: with `r = r*`,
# the spectral init with **gamma = 2**, and preconditioned GD without damping (`lam = 0`, step
# `eta` in (c, 1)), under Assumption 4.1 (the shift `dW` small against `W0`), N large enough and
# an initial error `rho_0 = ||A_0 B_0 - dW||_F / lambda*_{r*} <= rho <= 1/20`,
#
# `||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*}`,  a rate that does not depend on `kappa`.
#
# This notebook looks at why gamma = 2 (the one-step gradient is about `dW / 2`, and other
# activations give other factors), measures the rate against `lt.relu_precgd_rate_bound`, and maps
# which assumption matters in practice: the size of the shift or the number of samples.

# %% tags=["parameters"]
d = 20
k = 20
r_star = 2
rank = 2  # r = r*, as in Thm 4.2
n_factor = 32  # N = n_factor * d
eta = 0.5
steps = 100
log_every = 5
seeds = 3
kappas = [1.0, 10.0, 100.0]
target_scales = [0.1, 1.0, 10.0, 100.0]  # s_1(dW); W0's columns have norm ~ sqrt(d)
gammas = [1.0, 2.0]
n_factors_sweep = [4, 8, 16, 32]  # N / d for the sample-size map (section 4)
activations = ["relu", "leaky_relu", "gelu", "tanh", "identity"]
alpha = 1e-2  # random init of the baseline (random + gd)
seed = 0

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import lora_theory as lt

lt.enable_compilation_cache()  # compiled programs persist across kernels and runs (see README, Speed)

n_samples = n_factor * d
config = lt.RunConfig(
    model="relu", activation="relu", d=d, k=k, r_star=r_star, rank=rank, n_samples=n_samples,
    init="spectral", gamma=2.0, optimizer="precgd", lr=eta, damping=0.0, steps=steps, log_every=log_every,
)
lt.validate(config, {"kappa": kappas, "target_scale": target_scales, "gamma": gammas})
bound = lt.relu_precgd_rate_bound(eta)
print(f"Thm 4.2's error contraction per step: 1 - eta/4 = {bound}")

# %% [markdown]
# ## 1. The one-step gradient is a scaled copy of `dW`
#
# For a small shift, `sigma(x^T (w0 + dw)) - sigma(x^T w0) ~ sigma'(x^T w0) x^T dw`, so
# `G = -grad_W L(W0) ~ E[sigma'(x^T w0)^2 x x^T] dW`. For ReLU, `sigma'^2 = 1{x^T w0 > 0}` and the
# symmetry `x -> -x` gives `E[1{x^T w0 > 0} x x^T] = I / 2`: `G ~ dW / 2`, hence gamma = 2 in the
# spectral init. Other activations give other factors (leaky ReLU: `(1 + a^2) / 2`); a saturating
# one (tanh, with pre-activations of size `||w0|| ~ sqrt(d)`) gives a small factor. Measured on one
# problem per activation: the least-squares factor `c = <G, dW> / ||dW||^2`, how far `G` is from
# `c dW`, and the tilt of its left singular subspace.

# %%
rows = []
for act in activations:
    problem = lt.make_problem(config.replace(activation=act), key=jax.random.key(seed))
    c = float(jnp.sum(problem.G * problem.dW) / jnp.sum(problem.dW**2))
    rows.append({
        "activation": act,
        "c = <G, dW> / ||dW||^2": c,
        "||G - c dW|| / ||c dW||": float(jnp.linalg.norm(problem.G - c * problem.dW) / jnp.linalg.norm(c * problem.dW)),
        "sin angle(G, dW)": float(lt.sin_largest_angle(problem.G_left, problem.dW_left)),
        "gamma = 1/c": 1 / c,
    })
by_activation = pd.DataFrame(rows).set_index("activation")
print(f"predicted c: relu 0.5, leaky_relu (1 + {config.leaky_slope}^2)/2 = {(1 + config.leaky_slope**2) / 2:.5f}, identity 1")
by_activation.round(4)

# %% [markdown]
# `identity` is the linear model (same key, same data): its residual `||G - c dW|| / ||c dW||` is
# the finite-sample error alone (`Sigma_hat != I`, notebook 02), so what ReLU adds on top of it is
# the nonlinearity. The column `gamma = 1/c` is the spectral-init scale that would make
# `A_0 B_0 ~ dW` for each activation: 2 for ReLU and GELU, about 9 for tanh here.

# %% [markdown]
# ## 2. Spectral init + precgd against random init + gd
#
# One `simulate` call runs the grid `kappa x target_scale x gamma` (all dynamic fields) for every
# seed; a second runs the baseline, vanilla LoRA (random init, gd, same step) on the same problems.

# %%
batch = lt.simulate(config, seeds=seeds, seed=seed, sweep={"kappa": kappas, "target_scale": target_scales, "gamma": gammas})
baseline = lt.simulate(config.replace(init="random", alpha=alpha, optimizer="gd"), seeds=seeds, seed=seed,
                       sweep={"kappa": kappas})
print(f"spectral+precgd: {batch.trajectory.rate.size} runs in {batch.wall_time:.1f} s; "
      f"random+gd: {baseline.trajectory.rate.size} runs in {baseline.wall_time:.1f} s (compile included)")
t_log = np.asarray(batch.trajectory.steps)[0, 0]
rel = np.asarray(batch.trajectory.metrics["rel_err"])  # (seeds, grid, logs)
rel_base = np.asarray(baseline.trajectory.metrics["rel_err"])
grid = pd.DataFrame(batch.grid)

fig, ax = plt.subplots(figsize=(8, 4.5))
colors = plt.cm.viridis(np.linspace(0, 0.85, len(kappas)))
scale_shown = 1.0 if 1.0 in target_scales else target_scales[0]
for kap, c in zip(kappas, colors):
    for gam, style in zip(gammas, ["--", "-"]):
        j = grid.index[(grid.kappa == kap) & (grid.target_scale == scale_shown) & (grid.gamma == gam)][0]
        ax.semilogy(t_log, rel[:, j].mean(0), style, color=c, label=f"spectral gamma={gam:g} + precgd, kappa={kap:g}")
    jb = int(np.flatnonzero(baseline.grid["kappa"] == kap)[0])
    ax.semilogy(t_log, rel_base[:, jb].mean(0), ":", color=c, lw=2, label=f"random + gd, kappa={kap:g}")
j2 = grid.index[(grid.gamma == 2.0) & (grid.target_scale == scale_shown)]
e0 = rel[:, j2, 0].mean()
ax.semilogy(t_log, e0 * bound**t_log, "r-", lw=0.8, alpha=0.7, label="Thm 4.2: e_0 (1 - eta/4)^t")
ax.set_xlabel("step")
ax.set_ylabel("relative error ||AB - dW|| / ||dW||")
ax.set_ylim(1e-11, 2)
ax.set_title(f"ReLU model, d = {d}, N = {n_samples}, r = r* = {r_star}, s_1 = {scale_shown:g}, eta = {eta}")
ax.legend(fontsize=7, ncol=2)
plt.show()

j_final = grid.index[(grid.gamma == 2.0) & (grid.target_scale == scale_shown)]
print(f"final relative error after {steps} steps, by kappa {kappas}:")
print("  random + gd:               ", ", ".join(f"{v:.1e}" for v in rel_base[:, :, -1].mean(0)))
print("  spectral (gamma=2) + precgd:", ", ".join(f"{v:.1e}" for v in rel[:, j_final, -1].mean(0)))

# %% [markdown]
# * gamma = 1 starts at about half the target (relative error ~0.5, because `G ~ dW / 2`);
#   gamma = 2 starts much closer. Both then converge at the same linear rate: the init scale
#   only buys a head start.
# * The precgd curves for different `kappa` lie on top of each other; the random + gd baseline
#   needs its alignment phase first, and with `kappa > 1` its weak direction keeps it far from the
#   target after the same number of steps.
#
# ## 3. The fitted rate against the bound, across kappa and the size of the shift

# %%
grid["error rate"] = np.sqrt(np.asarray(batch.trajectory.rate)).mean(0)  # the risk's rate is the error's squared
grid["initial rel_err"] = rel[:, :, 0].mean(0)
rate_table = grid[grid.gamma == 2.0].pivot(index="target_scale", columns="kappa", values="error rate")
print(f"error rate of spectral (gamma = 2) + precgd; bound 1 - eta/4 = {bound}")
rate_table.round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for gam, marker in zip(gammas, ["s", "o"]):
    for kap, c in zip(kappas, colors):
        sub = grid[(grid.gamma == gam) & (grid.kappa == kap)]
        axes[0].semilogx(sub.target_scale, sub["error rate"], marker + "-", color=c, mfc="none" if gam == 1 else c,
                         label=f"gamma={gam:g}, kappa={kap:g}")
        axes[1].loglog(sub.target_scale, sub["initial rel_err"], marker + "-", color=c, mfc="none" if gam == 1 else c)
axes[0].axhline(bound, color="r", ls="--", label="1 - eta/4 (Thm 4.2)")
axes[0].set_xlabel("s_1(dW) (shift size; W0 columns ~ sqrt(d))")
axes[0].set_ylabel("fitted error rate per step")
axes[0].legend(fontsize=7, ncol=2)
axes[1].set_xlabel("s_1(dW)")
axes[1].set_ylabel("relative error at step 0")
axes[1].set_title("where a large shift shows: the init, not the rate")
plt.tight_layout()
plt.show()

# %% [markdown]
# Within this grid the rate is below `1 - eta/4` everywhere and flat in `kappa`, as Thm 4.2 says.
# It is also flat in the size of the shift: here Assumption 4.1 (small `dW`) is not what limits the
# rate; a larger shift only makes `G` a worse copy of `dW / 2` (the initial error grows).
#
# ## 4. The sample size: where the bound stops holding
#
# Thm 4.2 also needs N large enough. A `NonlinearProblem` carries its data (N x d), so each N is
# its own shape: problems are built per N and trained with one `jax.jit(jax.vmap(lt.train))`
# per N (kappa fixed at its largest value).

# %%
@jax.jit
def spectral_precgd(problems):
    def one(p):
        init = lt.initialise(p, "spectral", rank=rank, key=jax.random.key(0), gamma=2.0)
        return lt.train(p, init, lt.precgd(eta, 0.0), steps=steps, log_every=log_every)
    return jax.vmap(one)(problems)


rows = []
for f in n_factors_sweep:
    cfg = config.replace(n_samples=f * d, kappa=max(kappas))
    problems = [lt.make_problem(cfg, key=jax.random.key(1000 + s)) for s in range(seeds)]
    traj = spectral_precgd(jax.tree.map(lambda *xs: jnp.stack(xs), *problems))
    for s in range(seeds):
        sv = problems[s].dW_singular_values  # rho_0 = e_0 / lambda*_r*, with e_0 = rel_err_0 ||dW||_F
        rows.append({"N / d": f, "seed": s, "error rate": float(np.sqrt(traj.rate[s])),
                     "rho_0": float(traj.metrics["rel_err"][s, 0] * jnp.linalg.norm(sv) / sv[-1]),
                     "final rel_err": float(traj.metrics["rel_err"][s, -1]),
                     "final test_loss": float(traj.metrics["test_loss"][s, -1])})
by_N = pd.DataFrame(rows)
summary_N = by_N.groupby("N / d")[["error rate", "rho_0", "final rel_err", "final test_loss"]].agg(["mean", "max"])
print(f"Thm 4.2 asks rho_0 <= 1/20 = {lt.theory.relu.THM42_RHO}: "
      f"{int((by_N['rho_0'] <= lt.theory.relu.THM42_RHO).sum())} of {len(by_N)} runs here")
summary_N

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(by_N["N / d"], by_N["error rate"], "o", alpha=0.6, label="fitted error rate (each seed)")
ax.plot(summary_N.index, summary_N[("error rate", "mean")], "-", color="C0")
ax.axhline(bound, color="r", ls="--", label="1 - eta/4 (Thm 4.2)")
ax.set_xscale("log", base=2)
ax.set_xlabel("N / d")
ax.set_ylabel("error rate per step")
ax.set_title(f"spectral + precgd on ReLU, kappa = {max(kappas):g}: the rate needs N >> d")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Below some multiple of d (about 10 d here) the fitted rate is above `1 - eta/4`: the theorem's
# "N large enough" is the assumption that binds in this model, not the size of the shift. The
# runs still converge (noiseless data: `A B -> dW` and the loss on a fresh sample, `test_loss`,
# goes to 0 too), only more slowly. Add 2 to `n_factors_sweep`: at N = 2d there is no linear phase
# within `steps` (the fitted rate is NaN) and the error stalls at a few percent.
#
# Every run of this notebook is **outside Thm 4.2's hypotheses**: `rho_0` is far above 1/20 (it
# falls like `sqrt(d/N)`, and `rho_0 <= 1/20` at `kappa = 2` takes N of about 8000 d). So what is
# seen here is an exploration: the rate stays under `1 - eta/4` from N of about 16 d on, well
# before the premise holds. The claims table judges the theorem inside its premises (N/d up to
# 8192, `kappa` in {1, 2}, a small shift) and the suite's population law (the ReLU Hessian at the
# optimum is `I/2`, so the rate tends to `1 - eta/2 =` `lt.relu_precgd_population_rate(eta)`):
# `lt.run_claim("7", "quick")` returns its measurement and rows (`print(lt.claims.format_table([run]))`).
