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
# # 01 · A tour of `lora_theory`
#
# LoRA fine-tunes a pretrained weight `W0` (d x k) by learning a low-rank update `A B`
# (`A`: d x r, input side; `B`: r x k, output side; PEFT writes `B A` with the roles swapped).
# This notebook builds one instance of the linear model of LoRA-One (arXiv 2502.01235),
# looks at what every initialisation of the suite puts into `A_0, B_0`, trains each one, and
# follows the two quantities the theory is about: the **excess risk** `||A B - dW||_F^2 / 2`
# and the **alignment** of `A`'s top singular subspace with that of the one-step full gradient `G`.
#
# Everything below uses only the public API (`import lora_theory as lt`). The parameters cell
# is tagged `parameters`: change it here, or override it with papermill
# (`papermill 01_tour.ipynb out.ipynb -p d 100 -p n_samples 1600`).

# %% tags=["parameters"]
d = 50  # input dimension of W0 (d x k)
k = 50  # output dimension
r_star = 4  # rank of the downstream shift dW
rank = 8  # LoRA rank r (LoRA-One's Thm 3.2 wants r >= 2 r_star)
n_samples = 800  # N = 16 d, LoRA-One's choice
kappa = 4.0  # condition number s_1 / s_{r*} of dW (geometric spectrum from 1 to 1/kappa)
noise = 0.0  # label noise standard deviation
alpha = 0.01  # std of the random entries of A_0 (the papers label curves by alpha^2)
optimizer = "gd"  # 'gd' or 'precgd' for the training runs of section 3
lr = 1 / 64  # eta (LoRA-One's experiments use 1/64)
damping = 1e-3  # lam of precgd (unused by gd)
steps = 2000
log_every = 20
seed = 0

# %%
import jax

jax.config.update("jax_enable_x64", True)  # float64 for theory checks: before anything else

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import lora_theory as lt

lt.enable_compilation_cache()  # compiled programs persist across kernels and runs (see README, Speed)

print(f"lora_theory {lt.__version__}, jax {jax.__version__}, devices {jax.devices()}")

# %% [markdown]
# ## 1. The problem
#
# `x ~ N(0, I_d)`, `y = (W0 + dW)^T x + eps`, N samples. `dW = U diag(s) V^T` has rank
# `r_star`. The training loss `L(A, B) = ||X (W0 + A B) - Y||_F^2 / (2N)` depends on the data
# only through `Sigma_hat = X^T X / N` and the one-step full gradient
#
# `G = -grad_W L(W0) = X^T (Y - X W0) / N = Sigma_hat dW + X^T E / N`,
#
# which is what the problem object stores. With finite N, `G` is not `dW`: its top left singular
# subspace is tilted by about `sqrt(d/N)` (its right one is exact in the noiseless model, since
# `G = Sigma_hat dW` has the row space of `dW`), and LoRA-One's Thm 3.3 bounds the gap by
# `||G - dW||_op <= ||Sigma_hat - I||_op ||dW||_op` (noiseless case).

# %%
config = lt.RunConfig(
    model="linear", d=d, k=k, r_star=r_star, rank=rank, n_samples=n_samples, kappa=kappa,
    noise=noise, alpha=alpha, optimizer=optimizer, lr=lr, damping=damping, steps=steps,
    log_every=log_every,
)
lt.validate(config)
problem = lt.make_problem(config, key=jax.random.key(seed))

s_dW = np.asarray(problem.dW_singular_values)
s_G = np.asarray(jnp.linalg.svd(problem.G, compute_uv=False))
sigma_gap = float(jnp.linalg.norm(problem.sigma_hat - jnp.eye(d), 2))
G_gap = float(jnp.linalg.norm(problem.G - problem.dW, 2))
tilt_left = float(lt.sin_largest_angle(problem.G_left, problem.dW_left))
tilt_right = float(lt.sin_largest_angle(problem.G_right, problem.dW_right))

print("singular values of dW:        ", np.round(s_dW, 4))
print("top singular values of G:     ", np.round(s_G[: 2 * r_star], 4))
print(f"||G - dW||_op = {G_gap:.4f} <= ||Sigma_hat - I||_op ||dW||_op = {sigma_gap * s_dW[0]:.4f}"
      f"  (Thm 3.3: {'holds' if G_gap <= sigma_gap * s_dW[0] else 'VIOLATED'})")
print(f"sin angle(G, dW) left = {tilt_left:.3f}, right = {tilt_right:.3f};  sqrt(d/N) = {np.sqrt(d / n_samples):.3f}")

fig, ax = plt.subplots(figsize=(6, 3))
idx = np.arange(1, 2 * rank + 1)
ax.semilogy(idx, s_G[: 2 * rank], "o-", label="G (one-step full gradient)")
ax.semilogy(np.arange(1, r_star + 1), s_dW, "kx", ms=10, label="dW (target shift)")
ax.axvline(r_star + 0.5, color="gray", ls=":")
ax.set_xlabel("index i")
ax.set_ylabel("singular value")
ax.set_title("G has the rank of dW (noiseless) but not quite its values")
ax.legend()
plt.show()

# %% [markdown]
# In the noiseless model `G = Sigma_hat dW` has rank `r_star` exactly (the values past index
# `r_star` are rounding), but its singular values and vectors are those of `dW` distorted by
# `Sigma_hat`. With label noise (`noise > 0`) the tail fills with noise at the `noise * sqrt(d/N)` level.
#
# ## 2. The initialisations
#
# Every strategy of `lt.INITS` returns `A_0, B_0` (and, for the inits that keep the model
# unchanged at step 0, an `offset = -A_0 B_0` added to `W0`). The table measures, before any
# training, how far the initial update is from `dW` and how well `A_0` is aligned with the top
# left subspaces of `G` and of `dW` (sin of the largest principal angle: 0 aligned, 1 orthogonal).

# %%
INIT_LIST = [
    ("random", None),
    ("spectral", None),
    ("lora_one", "normalized"),
    ("lora_one", "orthonormal"),
    ("lora_ga", None),
    ("lora_sb", None),
    ("hrp", "directions"),
    ("oracle", "spectral"),
]
key_init = jax.random.key(seed + 1)
inits = {}
for name, variant in INIT_LIST:
    label = name if variant is None else f"{name}/{variant}"
    inits[label] = lt.initialise(
        problem, name, rank=rank, key=key_init, alpha=alpha, variant=variant,
        preheat_rank=2 * rank, preheat_steps=50, preheat_lr=lr,
    )

rows = []
norm_dW = float(jnp.linalg.norm(problem.dW))
for label, init in inits.items():
    update = init.A @ init.B + init.offset.dense()  # the total change of W0 at step 0
    rows.append({
        "init": label,
        "||A_0||_F": float(jnp.linalg.norm(init.A)),
        "||B_0||_F": float(jnp.linalg.norm(init.B)),
        "rel. error at step 0": float(jnp.linalg.norm(update - problem.dW)) / norm_dW,
        "align_A_G": float(lt.align_A(init.A, problem.G_left)),
        "align_A_dW": float(lt.align_A(init.A, problem.dW_left)),
        "align_B_G": float(lt.align_B(init.B, problem.G_right)) if float(jnp.linalg.norm(init.B)) > 0 else np.nan,
    })
table = pd.DataFrame(rows).set_index("init")
table.round(4)

# %% [markdown]
# What to read in the table:
#
# * `random` (vanilla LoRA): `A_0` is a random Gaussian, so `align_A_G` is about 1 (a random
#   r-dimensional subspace of R^d barely meets a fixed one when d >> r); `B_0 = 0`, so the
#   model starts at `W0` (relative error 1).
# * `spectral` (LoRA-One, gamma = 1): `A_0 B_0` is the best rank-r approximation of `G`, so the
#   error is already `||G - dW|| / ||dW||`, the finite-sample error of Thm 3.3, and `align_A_G = 0`.
#   `align_A_dW` is the tilt `sin angle(G, dW)` printed above.
# * `lora_one/normalized` (the paper's Algorithm 1) has the same directions at a smaller scale;
#   `lora_one/orthonormal` and `lora_ga` put `G`'s directions in `A_0` but subtract `A_0 B_0`
#   from `W0`, so the model starts at `W0` (error 1). `lora_ga`'s `B_0` comes from `G`'s right singular
#   directions r+1..2r, which lie outside `G`'s row space: its `align_B_G` is 1.
#   Caveat: when a factor has r equal singular values (`A_0` and `B_0` of `lora_one/orthonormal`
#   and `lora_ga`, `B_0` of `lora_sb`), "its top-r* subspace" is not defined and the alignment
#   metric returns an arbitrary r*-dimensional piece of its span: those entries say nothing.
# * `hrp`: directions from a few preheating steps of a rank-2r LoRA, `B_0 = 0`.
# * `oracle` uses `dW` itself: zero error, the upper reference no real method can have.
#
# ## 3. One training run each
#
# `lt.train` runs one trajectory in one compiled `lax.scan`; wrapping it in `jax.jit` with the
# `TrainConfig` static compiles it once for every init with the same array shapes (`lora_sb`, whose
# init also carries a fixed basis, gets its own compile).

# %%
train = jax.jit(lt.train, static_argnums=2)
train_config = lt.TrainConfig(steps=steps, log_every=log_every, optimizer=optimizer)
trajectories = {label: train(problem, init, train_config, lr, damping) for label, init in inits.items()}

summary = pd.DataFrame({
    label: {
        "final rel_err": float(t.metrics["rel_err"][-1]),
        "min_t align_A_G": float(jnp.min(t.metrics["align_A_G"])),
        "final align_A_G": float(t.metrics["align_A_G"][-1]),
        "final align_A_dW": float(t.metrics["align_A_dW"][-1]),
        "fitted rate": float(t.rate),
        "diverged": bool(t.diverged),
    }
    for label, t in trajectories.items()
}).T
summary

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for label, t in trajectories.items():
    steps_logged = np.asarray(t.steps)
    line, = axes[0].semilogy(steps_logged, np.asarray(t.metrics["rel_err"]), label=label)
    axes[1].plot(steps_logged, np.asarray(t.metrics["align_A_G"]), color=line.get_color())
    axes[2].plot(steps_logged, np.asarray(t.metrics["align_A_dW"]), color=line.get_color())
for ax in axes[1:]:
    ax.axhline(tilt_left, color="k", ls="--", lw=1, label="sin angle(G, dW)")
    ax.set_ylim(-0.02, 1.02)
axes[0].set_ylim(1e-8, 2)
axes[0].set_title(r"relative error $||AB - dW||_F / ||dW||_F$")
axes[1].set_title("align_A_G: sin angle(A_t, G), top r* left subspaces")
axes[2].set_title("align_A_dW: sin angle(A_t, dW)")
for ax in axes:
    ax.set_xlabel("step")
axes[0].legend(fontsize=8)
axes[1].legend(fontsize=8)
fig.suptitle(f"{optimizer}, lr = {lr}, d = {d}, N = {n_samples}, r = {rank}, r* = {r_star}, kappa = {kappa}")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to notice:
#
# * From `random` (and `hrp`, which also starts with `B_0 = 0`), `align_A_G` stays near 1, then
#   drops while the risk is still high: `A`'s top subspace turns toward `G`'s (LoRA-One Thm 3.2).
#   `align_A_G` is the *worst* of the r* directions, so it only drops once the weakest one
#   (`s_{r*}`) has grown out of the random part of `A`; section 4 shows when that happens. Once the
#   model fits the data, `A B -> dW`, `A`'s subspace ends on `dW`'s, and `align_A_G` settles at the
#   tilt `sin angle(G, dW)` (dashed): alignment with `G` is a transient, the finite-sample tilt
#   is what remains. (With `kappa = 1`, notebook 02, the transient dips well below the tilt.)
# * `spectral` and `lora_one/normalized` start from `G`'s singular vectors: no alignment phase,
#   `align_A_G = 0` at step 0 and the error of Thm 3.3, then a linear decrease.
# * `lora_one/orthonormal` and `lora_ga` start with `A_0 = c U_r`: all r singular values of `A_0`
#   are equal, so "the top r* subspace of `A_0`" is not defined and their step-0 alignment values
#   are arbitrary (this is a property of the metric, not of the init). Their model is
#   `W0 + A B - A_0 B_0`, so `A`'s own subspace does not describe the update either.
#   `lora_one/orthonormal` converges fastest here because its scale `c = d^{1/4} / sqrt(s)` makes
#   the effective step of gd larger; `lora_ga` stalls because its `B_0` points away from `G`'s row
#   space, and `lora_sb` stalls because it can only move inside `U_r R V_r^T` with `G`'s (tilted)
#   singular vectors frozen (LoRA-One Sec. 5, Fig. 4). Switch `optimizer` to `"precgd"` in the
#   parameters cell to see preconditioning change the speeds.
#
# ## 4. Inside one run: how `A_t B_t` learns `dW`
#
# The suite logs the singular values of `A_t B_t` at every logged step (`sv_AB`). From a small
# random init they are learned one at a time, largest first (incremental learning); from the
# spectral init they start at `G`'s values and only correct the finite-sample error.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, label in zip(axes, ["random", "spectral"]):
    t = trajectories[label]
    sv = np.asarray(t.metrics["sv_AB"])
    for i in range(r_star + 1):
        ax.plot(np.asarray(t.steps), sv[:, i], label=f"sv_{i + 1}(A_t B_t)")
    for s in s_dW:
        ax.axhline(s, color="k", ls="--", lw=0.8)
    ax.set_title(f"{label}: singular values of A_t B_t (dashed: dW's)")
    ax.set_xlabel("step")
axes[0].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Many runs at once: `lt.simulate`
#
# The figures and the claims use `lt.simulate`: one compiled program for many seeds (one
# problem per seed) and a grid of the float parameters (`lt.DYNAMIC_FIELDS`), returned as a
# `Batch` whose `to_dataframe()` is a tidy table (one row per run and logged step).
# Here: vanilla LoRA over a small grid of `alpha`, 4 seeds.

# %%
batch = lt.simulate(config.replace(init="random", optimizer="gd"), seeds=4, sweep={"alpha": [1.0, 0.1, 0.01]})
df = batch.to_dataframe()
print(f"{len(df)} rows, {batch.trajectory.rate.size} runs in {batch.wall_time:.1f} s (compile included)")
lt.run_summary(df, by=["alpha"])

# %% [markdown]
# A large `alpha` (alpha^2 = 1) leaves `A` essentially random and the risk barely moves in the
# same number of steps; small `alpha` aligns first and then converges. Notebook `02_alignment`
# takes this apart: how small is small enough, how long the alignment takes, and what floor
# finite N leaves.
