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
# # 04 · HRP: high-rank preheating
#
# HRP (Chen et al., arXiv 2502.07739) studies LoRA in population mode, `L = ||A B - M||_F^2 / 2`
# with `M = dW`, through **asymmetric LoRA**: one factor (here `A`, d x r, so `n = d`) is frozen at
# its init and only `B` trains. The loss is then convex in `B`, training converges to the
# projection `P_A M` of `M` onto `span(A)`, and everything is decided by the init of `A`:
#
# * a Gaussian `A` gives a **random** rank-r result, `E loss = (1 - r/n) ||M||_F^2 / 2`;
# * a "wise" `A` along `M`'s top-r left singular vectors gives the best rank-r approximation,
#   `sum_{i>r} s_i^2 / 2` (Eckart-Young);
# * HRP trains a rank-p LoRA (p >= r) for a few steps from a random init, takes the top-r left
#   singular vectors of its product, and freezes `A` along them. This suite bounds its expected
#   loss by `min{(1 - r/n) ||M||^2, sum_{i>r} s_i^2 + (1 - p/n) sum_{i<=r} s_i^2} / 2`
#   (`theory.hrp_loss_bound`, derived here from Ky Fan's inequality, not quoted from the paper).
#
# The notebook sweeps the preheat rank p and the spectrum of `M` from flat to steep, against
# random, spectral and oracle inits, with every prediction computed by `lora_theory.theory`.

# %% tags=["parameters"]
d = 32  # n = d: the frozen factor A is d x r
k = 32
r_star = 32  # rank of M = dW; r_star = n makes kappa = 1 a truly flat spectrum (try 16)
rank = 4  # LoRA rank r
kappas = [1.0, 3.0, 10.0, 100.0]  # spectrum of M: flat (1) to steeply decaying
preheat_ranks = [4, 8, 16, 24]  # p (p = r is no preheating at all)
preheat_steps = 100
preheat_steps_sweep = [0, 1, 3, 10, 30, 100]
alpha = None  # std of random entries; None: 1/sqrt(d), columns of A of norm ~1, so A^T A ~ I
lr = 0.5
steps = 60
log_every = 2
classic_steps = 4000  # section 5
seeds = 16  # the claims are about expectations over the random init
seed = 0

# %%
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import lora_theory as lt
from lora_theory import theory

lt.enable_compilation_cache()  # compiled programs persist across kernels and runs (see README, Speed)

alpha = d**-0.5 if alpha is None else alpha
config = lt.RunConfig(
    model="population", d=d, k=k, r_star=r_star, rank=rank, alpha=alpha, lr=lr, steps=steps,
    log_every=log_every, train_factors="B", init="hrp", preheat_steps=preheat_steps,
)
lt.validate(config, {"kappa": kappas})
for p in preheat_ranks:
    lt.validate(config.replace(preheat_rank=p))
n = d

# %% [markdown]
# ## 1. Problems, inits and one compiled training program
#
# One problem per (seed, kappa), built by a `vmap` of `lt.make_problem` (kappa is a traced value).
# Each init is a `vmap` of `lt.initialise` over the same problems; since every init has the same
# shapes (`A`: d x r, `B`: r x k), all of them train in one `vmap` of `lt.train` with
# `train_factors='B'`. In population mode `G = M`, so `spectral` (from `G`) and `oracle` (from `dW`)
# coincide; `oracle/directions` is HRP's "wise" init, `B_0 = 0`.

# %%
keys = jax.random.split(jax.random.key(seed), seeds)
kappa_grid = jnp.asarray(kappas, jnp.float64)


@jax.jit
def make_problems(keys):
    per_kappa = jax.vmap(lambda key, kap: lt.make_problem(config, {"kappa": kap}, key=key), in_axes=(None, 0))
    return jax.vmap(per_kappa, in_axes=(0, None))(keys, kappa_grid)  # leading axes (seed, kappa)


problems = make_problems(keys)


def init_all(name, **kwargs):
    """lt.initialise vmapped over (seed, kappa), with the seed's init key."""
    init_keys = jax.random.split(jax.random.key(seed + 1), seeds)

    @jax.jit
    def run(problems):
        one = lambda p, key: lt.initialise(p, name, rank=rank, key=key, alpha=alpha, **kwargs)
        return jax.vmap(jax.vmap(one, in_axes=(0, None)), in_axes=(0, 0))(problems, init_keys)

    return run(problems)


inits = {
    "random": init_all("random"),
    **{f"hrp p={p}": init_all("hrp", preheat_rank=p, preheat_steps=preheat_steps, preheat_lr=lr,
                              preheat_train_factors="B") for p in preheat_ranks},
    "spectral": init_all("spectral"),
    "oracle/directions": init_all("oracle", variant="directions"),
}
train_config = lt.TrainConfig(steps=steps, log_every=log_every, optimizer="gd", train_factors="B")
train_batch = jax.jit(jax.vmap(jax.vmap(lambda p, i: lt.train(p, i, train_config, lr, 0.0))))
trajectories = {name: train_batch(problems, init) for name, init in inits.items()}
t_log = np.asarray(trajectories["random"].steps)[0, 0]

# %% [markdown]
# ## 2. What training converges to: the projection, computed directly
#
# With `A` frozen the limit is known in closed form, `theory.projection_limit(A_0, M) = P_A M`.
# The first check: the trained loss equals `||M - P_A M||^2 / 2` run by run. The rest of the
# notebook can then read the limit without training, for any number of seeds.

# %%
M = problems.dW  # (seeds, kappas, d, k)
limit_loss = {}
for name, init in inits.items():
    P_M = jax.vmap(jax.vmap(theory.projection_limit))(init.A, M)
    limit_loss[name] = np.asarray(0.5 * jnp.sum((M - P_M) ** 2, axis=(-2, -1)))
gap = max(np.max(np.abs(np.asarray(t.metrics["loss"])[..., -1] - limit_loss[name])) for name, t in trajectories.items())
print(f"max |trained final loss - ||M - P_A M||^2/2| over all runs: {gap:.1e}")
assert gap < 1e-6, "training did not reach the projection limit: raise steps"

j_steep = int(np.argmax(kappas))
sv_steep = problems.dW_singular_values[0, j_steep]
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for name, t in trajectories.items():
    loss = np.asarray(t.metrics["loss"])[:, j_steep]
    excess = loss - limit_loss[name][:, j_steep, None]  # distance to each run's own limit
    line, = axes[0].plot(t_log, loss.mean(0), label=name)
    excess = excess.mean(0)
    axes[1].semilogy(t_log, np.where(excess > 1e-14, excess, np.nan), color=line.get_color())  # hide rounding
axes[0].axhline(float(theory.random_frozen_factor_loss(jnp.sum(sv_steep**2), rank, n)), color="k", ls="--", lw=1,
                label="(1 - r/n)||M||^2/2")
axes[0].axhline(float(theory.eckart_young_loss(sv_steep, rank)), color="k", ls=":", lw=1, label="Eckart-Young")
rate = float(theory.frozen_orthonormal_factor_rate(lr, alpha**2 * d))
excess0 = (np.asarray(trajectories["oracle/directions"].metrics["loss"])[:, j_steep, 0]
           - limit_loss["oracle/directions"][:, j_steep]).mean()
axes[1].semilogy(t_log, excess0 * rate**t_log, "k--", lw=1, label=f"frozen_orthonormal_factor_rate^t = {rate:.3g}^t")
axes[0].set_title(f"loss, kappa = {kappas[j_steep]:g} (mean over seeds)")
axes[1].set_title("loss - its own limit ||M - P_A M||^2 / 2 (float64 rounding cut off)")
axes[1].set_ylim(1e-14, None)
for ax in axes:
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# Every init converges exponentially (`A` is frozen, so this is least squares in `B`), each to its
# own limit: the whole story is where the limit is, i.e. which subspace `A_0` spans. The inits with
# orthonormal directions (`hrp`, `oracle/directions`: `A_0^T A_0 = alpha^2 d I`) follow
# `theory.frozen_orthonormal_factor_rate` exactly; a Gaussian `A_0` converges more slowly, at the
# pace of the smallest eigenvalue of its Wishart matrix `A_0^T A_0`, and `spectral` starts at its limit.
#
# ## 3. Final loss against the preheat rank, flat to steep spectra, with the claim-6 bound

# %%
rows = []
for j, kap in enumerate(kappas):
    sv = problems.dW_singular_values[0, j]
    total = float(jnp.sum(sv**2))
    for name in inits:
        losses = limit_loss[name][:, j]
        p = int(name.split("=")[1]) if name.startswith("hrp") else None
        rows.append({
            "kappa": kap, "init": name, "p": p,
            "E loss (measured)": losses.mean(), "std. error": losses.std(ddof=1) / np.sqrt(seeds),
            "random: (1-r/n)||M||^2/2": float(theory.random_frozen_factor_loss(total, rank, n)),
            "HRP bound": float(theory.hrp_loss_bound(sv, rank, p, n)) if p else np.nan,
            "Eckart-Young": float(theory.eckart_young_loss(sv, rank)),
        })
results = pd.DataFrame(rows)
results["within bound"] = np.where(
    results["HRP bound"].notna(),
    results["E loss (measured)"] <= results["HRP bound"] + 3 * results["std. error"], None)
results.round(4)

# %%
fig, axes = plt.subplots(1, len(kappas), figsize=(4 * len(kappas), 3.8))
p_fine = np.arange(rank, n + 1)
for ax, (j, kap) in zip(np.atleast_1d(axes), enumerate(kappas)):
    sv = problems.dW_singular_values[0, j]
    sub = results[(results.kappa == kap)]
    hrp = sub[sub.init.str.startswith("hrp")]
    ax.errorbar(hrp["p"], hrp["E loss (measured)"], yerr=2 * hrp["std. error"], fmt="o-", label="HRP (measured)")
    ax.plot(p_fine, [float(theory.hrp_loss_bound(sv, rank, int(p), n)) for p in p_fine], "r--", label="claim-6 bound")
    for name, style in (("random", "k-"), ("oracle/directions", "g-")):
        value = sub[sub.init == name]["E loss (measured)"].item()
        ax.axhline(value, color=style[0], lw=1, label=f"{name} (measured)")
    ax.axhline(float(theory.random_frozen_factor_loss(jnp.sum(sv**2), rank, n)), color="k", ls=":", lw=1,
               label="(1 - r/n)||M||^2/2")
    ax.set_xlabel("preheat rank p")
    ax.set_title(f"kappa = {kap:g}")
np.atleast_1d(axes)[0].set_ylabel("E final loss")
np.atleast_1d(axes)[0].legend(fontsize=7)
fig.suptitle(f"HRP vs random and oracle: d = n = {n}, r = {rank}, rank(M) = {r_star}, {seeds} seeds, {preheat_steps} preheat steps")
plt.tight_layout()
plt.show()

# %% [markdown]
# * **Flat spectrum** (`kappa = 1`, `r_star = n`): every rank-r subspace is as good as any other;
#   random, HRP, oracle and the bound all give `(1 - r/n) ||M||^2 / 2`: HRP gains nothing (the
#   claim's last sentence). With `r_star < n` (set `r_star = 16` above) "flat" is no longer flat:
#   the spectrum drops to 0 after `r_star`, and preheating finds `M`'s column space.
# * **Decaying spectra**: HRP's loss falls as p grows, from the random value at `p = r` (the
#   preheated product lives in `span(A_p)`, so HRP with `p = r` *is* the random init) toward
#   Eckart-Young, and the steeper the spectrum the larger the gain.
# * The bound is a straight line in p once it is below the random value; the measured expectation
#   is at or under it (the table's `within bound` allows 3 standard errors of Monte Carlo noise).
#   For steep spectra it is nearly tight: its first line (`Ky Fan` with `M`'s top right singular
#   vectors) is an equality when one direction carries almost all of `||M||^2`.
#   The bound assumes a preheat run to its limit; the next section shows what a short preheat does.
#
# ## 4. How long to preheat
#
# The preheat is `preheat_steps` of gd on the rank-p asymmetric LoRA. Step 0 means no preheat:
# the product is 0 and its "top singular vectors" are arbitrary. One step already gives
# `A_p B_1 = eta A_p A_p^T M`, whose top left singular vectors are a noisy, Wishart-weighted
# version of the limit's `P_p M`.

# %%
p_sweep = max(preheat_ranks)
steep = jax.tree.map(lambda x: x[:, j_steep : j_steep + 1], problems)
rows = []
for n_steps in preheat_steps_sweep:
    init_keys = jax.random.split(jax.random.key(seed + 1), seeds)
    one = lambda p, key: lt.initialise(p, "hrp", rank=rank, key=key, alpha=alpha, preheat_rank=p_sweep,
                                       preheat_steps=n_steps, preheat_lr=lr, preheat_train_factors="B")
    init = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None))))(steep, init_keys)
    P_M = jax.vmap(jax.vmap(theory.projection_limit))(init.A, steep.dW)
    losses = np.asarray(0.5 * jnp.sum((steep.dW - P_M) ** 2, axis=(-2, -1)))[:, 0]
    rows.append({"preheat steps": n_steps, "E loss": losses.mean(), "std. error": losses.std(ddof=1) / np.sqrt(seeds)})
by_steps = pd.DataFrame(rows)
fig, ax = plt.subplots(figsize=(6.5, 4))
x = np.maximum(by_steps["preheat steps"], 0.5)
ax.errorbar(x, by_steps["E loss"], yerr=2 * by_steps["std. error"], fmt="o-", label=f"HRP, p = {p_sweep}")
ax.axhline(float(theory.hrp_loss_bound(sv_steep, rank, p_sweep, n)), color="r", ls="--", label="claim-6 bound (preheat limit)")
ax.axhline(float(theory.random_frozen_factor_loss(jnp.sum(sv_steep**2), rank, n)), color="k", ls=":", label="random")
ax.axhline(float(theory.eckart_young_loss(sv_steep, rank)), color="g", ls=":", label="Eckart-Young")
ax.set_xscale("log")
ax.set_xlabel("preheat steps (0 drawn at 0.5)")
ax.set_ylabel("E final loss")
ax.set_title(f"kappa = {kappas[j_steep]:g}: the value of preheating longer")
ax.legend(fontsize=8)
plt.show()
by_steps

# %% [markdown]
# ## 5. Classic LoRA (both factors train): the plateau of a large random init
#
# The asymmetric picture explains a phenomenon of classic LoRA: from a *large* random init the
# factors barely rotate before `B` has fitted `M` inside the random `span(A_0)`, so the loss
# first drops to near the random-subspace value `(1 - r/n) ||M||^2 / 2` and stays there for a long
# time; from a *small* init, `A` aligns first (notebook 02) and the loss goes to Eckart-Young.

# %%
problem = jax.tree.map(lambda x: x[0, j_steep], problems)
train_both = jax.jit(lt.train, static_argnums=2)
classic_config = lt.TrainConfig(steps=classic_steps, log_every=10, optimizer="gd", train_factors="both")
classic_alphas = [1.0, alpha, 1e-3]
lr_classic = min(lr, 0.5 / (max(classic_alphas) ** 2 * d))  # one eta, stable for the largest A_0
fig, ax = plt.subplots(figsize=(7, 4))
for a in classic_alphas:
    init = lt.initialise(problem, "random", rank=rank, key=jax.random.key(seed + 2), alpha=a)
    t = train_both(problem, init, classic_config, lr_classic, 0.0)
    ax.loglog(np.asarray(t.steps) + 1, np.asarray(t.metrics["loss"]), label=f"alpha = {a:.3g}")
ax.axhline(float(theory.random_frozen_factor_loss(jnp.sum(sv_steep**2), rank, n)), color="k", ls="--", lw=1, label="(1 - r/n)||M||^2/2")
ax.axhline(float(theory.eckart_young_loss(sv_steep, rank)), color="g", ls=":", label="Eckart-Young")
ax.set_xlabel("step + 1")
ax.set_title(f"classic LoRA from random init, gd with eta = {lr_classic:.3g}, kappa = {kappas[j_steep]:g}")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# With one step size for all three (stable for the largest init), the large init drops at once to
# about the random-subspace value and then creeps, while the small inits wait out their escape
# time (longer for smaller alpha, notebook 02) and then go straight to Eckart-Young. HRP is a way
# to get the small init's subspace without its wait: a short high-rank run finds the directions,
# and the rank-r LoRA starts on them.
