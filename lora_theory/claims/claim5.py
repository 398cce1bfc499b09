"""Claim 5 (LoRA-One Sec. 5 / Fig. 4): lora_ga's and lora_sb's stall is a finite-sample bias.

LoRA-One Sec. 5 argues that lora_ga (B_0 from G's directions r+1..2r, W0 offset by -A_0 B_0) and
lora_sb (G's top subspaces fixed, only an r x r core trains) stall where spectral init converges.
The suite found that nothing stalls in population mode, so the stall is not a subspace trap but a
bias of order sqrt(d/N) that vanishes as N grows.  Measured: the final relative error
||D - dW||_F / ||dW||_F (D = A_T B_T + offset) after ``steps`` precgd steps, for

* the linear model (noiseless, Sigma_hat = X^T X / N) at N = n d for n in ``n_ratios``:
  - spectral reaches the minimiser dW on every seed and every N (instance-wise verdict);
  - lora_ga's and lora_sb's floor falls like sqrt(d/N): log-log slope against N of the
    seed-mean floor within ``slope_tol`` of -1/2 (:data:`~lora_theory.theory.linear.FINITE_SAMPLE_EXPONENT`,
    the same law as claim 3), one law verdict per init, over the N/d >= ``law_min_ratio`` points;
  - the floor / sqrt(d/N) (the law's constant): reported, no verdict;
* population mode (Sigma = I, G = dW): lora_ga and lora_sb reach the minimiser (final relative
  error <= ``population_tol`` on every seed), one instance-wise verdict per init.

Why nothing stalls at N = infinity, and what the population verdicts test (rank = r_star):

* lora_sb: U_r(G), V_r(G) are dW's own singular subspaces, so dW = U_r S V_r^T lies in the
  trainable set U_r R V_r^T.  With LoRA-SB's gamma = 1 the init *is* dW (R_0 = S): a verdict on it
  would test nothing.  The population run therefore starts the core at R_0 = ``population_sb_gamma``
  S (0.5: relative error 0.5 at step 0, reported) and the verdict tests that precgd trains the
  core, within the fixed subspaces, to dW.
* lora_ga: dW has rank r_star = r, so G's directions r+1..2r are singular vectors of the singular
  value 0: an (SVD-dependent) orthonormal basis V' of a subspace orthogonal to row(dW).  So
  A_0 = c U(dW), B_0 = c V'^T, and D = A B - A_0 B_0 starts at 0 (relative error 1, reported).
  The target A B = dW + A_0 B_0 = U(dW) (S V^T + c^2 V'^T) has rank r, so a rank-r product fits it
  exactly: B_0 outside row(dW) is not a trap.  The verdict tests that precgd from this init (B_0
  orthogonal to row(dW), A_0 aligned with col(dW)) gets there.
* At finite N, col(G) = col(Sigma_hat dW) is not col(dW) (the gap is O(sqrt(d/N))): lora_sb's
  fixed subspaces miss dW by that much, and dW + A_0 B_0 has rank 2r > r, so the best rank-r fit
  misses by a comparable amount.  Hence the sqrt(d/N) law of the floor.

One compile per mode: the problems at the N grid (and the population problems) are stacked and
each init's run is vmapped over them; seeds are vmapped too.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import split_run_key, train
from ..inits import initialise
from ..models.linear import make_linear_problem, make_population_problem
from ..optimizers import optimizer_from_config
from ..theory import linear as theory
from ._common import f64, risk, seed_keys, seed_list
from ._registry import Claim
from ._verdicts import CheckResult, at_most, pooled_law, sample_mean, sample_std

__all__ = ["CLAIM", "observe", "compute", "measure", "judge"]


_CLAIM5_INITS = ("spectral", "lora_ga", "lora_sb")


def observe(problem, objective, factors):
    """||A B + offset - dW||_F / ||dW||_F (``rel_err`` of the metric set)."""
    return jnp.sqrt(2.0 * risk(problem, objective, factors)) / jnp.linalg.norm(problem.dW)


def _stack(problems):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *problems)


@functools.partial(jax.jit, static_argnames=("shape", "model"))
def compute(keys, singular_values, lr, damping, s_scale, sb_gamma, *, shape, model):
    """Relative error (seeds, problems, inits, logs) for each seed key.

    ``shape`` = (d, k, r_star, rank, n_samples, steps, log_every) with ``n_samples`` a tuple: one
    linear problem per N (``model='linear'``), or one population problem (``model='population'``,
    ``n_samples`` ignored).  The problems of one seed share W0 and dW (same problem key).
    ``sb_gamma``: lora_sb's gamma (R_0 = gamma S_r(G)).
    """
    d, k, r_star, rank, n_samples, steps, log_every = shape

    def one_seed(key):
        key_problem, key_init = split_run_key(key)
        if model == "population":
            problems = [make_population_problem(d, k, r_star, singular_values, key=key_problem)]
        else:
            problems = [make_linear_problem(d, k, r_star, n, singular_values, 0.0, key=key_problem) for n in n_samples]
        out = []
        for name in _CLAIM5_INITS:  # one loop each: lora_sb's optimizer has its own structure

            def run(problem, name=name):
                init = initialise(
                    problem, name, rank=rank, key=key_init, s=s_scale, gamma=sb_gamma if name == "lora_sb" else 1.0
                )
                opt = optimizer_from_config("precgd", lr=lr, damping=damping, A_basis=init.A_basis)
                return train(problem, init, opt, steps=steps, log_every=log_every, observe=observe).metrics

            if model == "population":
                out.append(run(problems[0])[None])
            else:
                out.append(jax.vmap(run)(_stack(problems)))
        return jnp.stack(out, axis=1)  # (problems, inits, logs)

    return jax.vmap(one_seed)(keys)


def measure(p):
    """Run claim 5's experiment at the parameters ``p`` (``CLAIM.quick`` or ``CLAIM.full``): the relative errors of spectral, lora_ga and lora_sb per N/d, and in population mode."""
    d, keys = p["d"], seed_keys(seed_list(p))
    common = (f64(p["singular_values"]), f64(p["lr"]), f64(p["damping"]), f64(p["s"]))
    n_samples = tuple(int(n * d) for n in p["n_ratios"])
    shape = (d, p["k"], p["r_star"], p["rank"], n_samples, p["steps"], p["log_every"])
    rel = compute(keys, *common, f64(1.0), shape=shape, model="linear")
    # the population reference; a finite ``population_n_ratio`` replaces it by a linear problem
    # at that N/d (a wrong setting, for the tests: the population verdicts must then fail)
    pop_n = p.get("population_n_ratio")
    pop_shape = (d, p["k"], p["r_star"], p["rank"], (int(pop_n * d),) if pop_n else (), p["steps"], p["log_every"])
    pop = compute(
        keys, *common, f64(p["population_sb_gamma"]), shape=pop_shape, model="linear" if pop_n else "population"
    )
    return {
        "inits": np.asarray(_CLAIM5_INITS),
        "n_ratio": np.asarray(p["n_ratios"], np.float64),
        "rel_err": np.asarray(rel),  # (seeds, n_ratios, inits, logs)
        "population_rel_err": np.asarray(pop)[:, 0],  # (seeds, inits, logs)
    }


def judge(m, p):
    """Claim 5's rows of the verify table (:class:`~lora_theory.claims.CheckResult`) from a :func:`measure` result ``m``."""
    inits = list(m["inits"])
    n_ratio = m["n_ratio"]
    final = m["rel_err"][..., -1]  # (seeds, n_ratios, inits)
    rows = []
    for name in p["reaching_inits"]:
        rows.append(
            at_most(
                "5",
                f"{name}: final ||D - dW||_F/||dW||_F at every N/d = {', '.join(f'{v:g}' for v in n_ratio)} "
                "(reaches the minimiser at finite N)",
                final[:, :, inits.index(name)],
                p["reach_tol"],
                statement="LoRA-One App. C.3",
            )
        )
    use = n_ratio >= p["law_min_ratio"]
    n_samples = n_ratio[use] * p["d"]
    scale = np.asarray(theory.finite_sample_error_law(p["d"], n_samples))
    for name in p["stalling_inits"]:
        floor = final[:, use, inits.index(name)]
        rows.append(
            pooled_law(
                "5",
                f"{name}: floor ||D - dW||_F/||dW||_F vs N (N/d = {n_ratio[use][0]:g} .. {n_ratio[use][-1]:g}): "
                "log-log slope (finite-sample bias ~ sqrt(d/N))",
                np.log(n_samples),
                np.log(floor),
                p["predicted_exponent"],
                p["slope_tol"],
            )
        )
        const = floor / scale
        rows.append(
            CheckResult(
                "5",
                f"{name}: stall level / sqrt(d/N) (the law's constant; per N/d: "
                f"{', '.join(f'{v:.3g}' for v in np.mean(const, axis=0))})",
                "reported, no verdict",
                1.0,
                sample_mean(np.mean(const, axis=1)),
                sample_std(np.mean(const, axis=1)),
                math.nan,
                const.shape[0],
                kind="info",
            )
        )
    pop = m["population_rel_err"]  # (seeds, inits, logs)
    where = (
        f"linear model at N/d = {p['population_n_ratio']:g} (wrong setting)"
        if p.get("population_n_ratio")
        else "population mode, Sigma = I, G = dW"
    )
    for name in p["population_inits"]:
        i = inits.index(name)
        rows.append(
            CheckResult(
                "5",
                f"{name}, {where}: relative error at step 0"
                + (f" (lora_sb started at R_0 = {p['population_sb_gamma']:g} S)" if name == "lora_sb" else ""),
                "reported, no verdict",
                math.nan,
                sample_mean(pop[:, i, 0]),
                sample_std(pop[:, i, 0]),
                math.nan,
                pop.shape[0],
                kind="info",
            )
        )
        rows.append(
            at_most(
                "5",
                f"{name}, {where}: final ||D - dW||_F/||dW||_F (no stall: reaches the minimiser)",
                pop[:, i, -1],
                p["population_tol"],
            )
        )
    return [
        dataclasses.replace(row, statement=_STATEMENT[row.check.split(":")[0].split(",")[0]])
        if row.check.split(":")[0].split(",")[0] in _STATEMENT
        else row
        for row in rows
    ]


#: the statement each init's rows check (the spectral row: precgd from spectral init converges).
_STATEMENT = {"lora_ga": "LoRA-One Sec. 5 (LoRA-GA)", "lora_sb": "LoRA-One Sec. 5 (LoRA-SB)"}

# slope_tol = 0.1: the floor is a Frobenius-norm bias, first order in Sigma_hat - I, whose
# second-order part (~ d/N) is small even at N/d = 4: the measured pooled slopes over
# N/d = 4 .. 256 are -0.50 (lora_ga) and -0.49 (lora_sb), per-seed spread ~0.03 (4 seeds: SE of
# the pooled slope ~0.015).  0.1 covers 3 SE and the curvature, and rejects a flat floor (slope 0,
# a subspace trap) and a 1/N bias (slope -1).
_COMMON = dict(
    r_star=4,
    rank=4,
    singular_values=(1.0, 0.75, 0.5, 0.25),
    lr=0.5,
    damping=1e-3,
    s=4.0,
    reach_tol=1e-6,
    population_tol=1e-6,
    population_sb_gamma=0.5,
    population_n_ratio=None,
    predicted_exponent=theory.FINITE_SAMPLE_EXPONENT,
    slope_tol=0.1,
    law_min_ratio=4,
    reaching_inits=("spectral",),
    stalling_inits=("lora_ga", "lora_sb"),
    population_inits=("lora_ga", "lora_sb"),
)

CLAIM = Claim(
    id="5",
    paper="LoRA-One",
    theorem="Sec. 5 / Fig. 4",
    statement="In the linear model, lora_ga (B_0 from directions r+1..2r) and lora_sb (only an r x r core "
    "trains) stall above the minimiser where spectral init reaches it; the stall is a finite-sample bias "
    "(floor ~ sqrt(d/N)), not a subspace trap: in population mode both reach the minimiser.",
    measured="final relative error ||A_T B_T + offset - dW||_F / ||dW||_F under precgd (F2 setting), on an N/d "
    "grid and in population mode (Sigma = I, G = dW).",
    prediction="spectral: 0 (below reach_tol) at every N; lora_ga, lora_sb: floor slope "
    "theory.linear.FINITE_SAMPLE_EXPONENT = -1/2 in N (finite_sample_error_law); population: 0 (below population_tol).",
    verdict_rule="every seed and N: spectral <= reach_tol; pooled log-log slope of the floor within slope_tol of "
    "-1/2 (N/d >= law_min_ratio), per init; population mode, every seed: lora_ga, lora_sb <= population_tol.",
    quick=dict(_COMMON, d=50, k=50, n_ratios=(4, 16, 64, 256), steps=100, log_every=10, seeds=4),
    full=dict(_COMMON, d=100, k=100, n_ratios=(4, 16, 64, 256, 1024), steps=1000, log_every=50, seeds=10),
    measure=measure,
    judge=judge,
    covers=("LoRA-One Sec. 5 (LoRA-GA)", "LoRA-One Sec. 5 (LoRA-SB)", "LoRA-One App. C.3"),
)
