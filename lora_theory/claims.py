"""The claims registry: every theorem of LoRA-One and HRP as a measured check.

One :class:`Claim` per claim of the SPEC (section "Claims"): its paper, theorem, a one-sentence
statement, the measured quantity, the prediction (a function in :mod:`lora_theory.theory`), the
experiment at two sizes (``quick``: seconds, ``full``: minutes) and the verdict rule.  Running a
claim is two steps, kept apart so that a test can feed the *same* measurement a deliberately wrong
prediction and watch the verdict turn to FAIL:

* ``claim.measure(params) -> dict of numpy arrays`` runs the experiment (one compiled program per
  static shape, vmapped over seeds and over the swept values);
* ``claim.judge(measurement, params) -> list[CheckResult]`` compares it with the prediction.

Kinds of checks (each :class:`CheckResult` says which rule it applies):

* instance-wise (Thm 3.1, Thm 3.3's inequality, exact limits): the worst instance over every
  seed, swept value and logged step must satisfy the bound;
* laws (an order O(.) or "<~" with unnamed constants): an exponent or slope is fitted per seed
  across a sweep, and the seeds' mean must be within a stated tolerance of the predicted one (as
  diffrax checks the order of a solver);
* expectations (HRP): a Monte Carlo mean over seeds against the prediction, with a margin of
  ``z`` standard errors (``z = 4``: a correct prediction fails with probability < 1e-4).

The margin of a row is signed, in the units of the rule: >= 0 passes, < 0 (or NaN) fails.

The experiments use small compiled loops built from the suite's own pieces
(:meth:`LinearProblem.objective`, :func:`~lora_theory.optimizers.precondition`,
:func:`~lora_theory.inits.initialise`, :mod:`lora_theory.metrics`) rather than
:func:`~lora_theory.engine.simulate`, because they log per step only what the claim needs (the
engine's full metric set compiles several times slower); a test checks that their trajectories
equal :func:`~lora_theory.engine.train`'s.  Claim 7 (ReLU model) is measured by the nonlinear
part of the suite (``measure_claim7`` and ``relu_precgd_rate_bound`` in
:mod:`lora_theory.theory_nonlinear` or :mod:`lora_theory.nonlinear`); the registry lists it when
they exist.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from . import theory
from .inits import initialise, random_init
from .metrics import align_A, align_B
from .engine import split_run_key
from .optimizers import LoRAFactors, precondition
from .problems import LowRank, make_linear_problem, make_population_problem, target_spectrum

__all__ = [
    "CheckResult",
    "Claim",
    "CLAIMS",
    "claim_ids",
    "get_claim",
    "resolve_params",
    "run_claim",
    "verify",
    "results_frame",
    "format_table",
    "factor_trajectory",
    "tail_rate",
    "fit_slope",
]

DTYPE = jnp.float64
#: standard errors of margin in the Monte Carlo checks (two-sided p < 1e-4 for a true prediction).
Z_MC = 4.0


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One row of the verify table.

    Attributes:
        claim: claim id ("1" .. "7").
        check: what is checked, in words.
        rule: the verdict rule (what ``margin`` measures).
        predicted: the predicted value (a bound, a rate, an exponent, or the threshold).
        mean: the measured quantity, mean over seeds (per-seed values are first reduced over
            the swept values and steps as the rule says).
        spread: standard deviation of the per-seed values (0 with one seed).
        margin: signed distance to failing, in the units of the rule; >= 0 passes.
        n: number of instances (runs or per-seed fits) behind the measurement.
        informative: a reported quantity with no verdict (e.g. the constant hidden in a "<~").
    """

    claim: str
    check: str
    rule: str
    predicted: float
    mean: float
    spread: float
    margin: float
    n: int
    informative: bool = False

    @property
    def passed(self) -> bool:
        """Informative rows (no verdict) pass; the others pass iff margin >= 0."""
        return self.informative or bool(np.isfinite(self.margin) and self.margin >= 0)

    @property
    def verdict(self) -> str:
        return "info" if self.informative else ("PASS" if self.passed else "FAIL")


def _std(values) -> float:
    values = np.asarray(values, np.float64).ravel()
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def _mean(values) -> float:
    return float(np.mean(np.asarray(values, np.float64)))


def _nan_to_inf(value: float, sign: float = 1.0) -> float:
    return float(value) if np.isfinite(value) else sign * math.inf


def at_most(claim, check, per_seed, bound, *, predicted=None, rule=None) -> CheckResult:
    """Instance-wise: every value must be <= bound (NaN counts as a failure); margin = bound - max."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else np.max(values)
    return CheckResult(
        claim,
        check,
        rule or f"max <= {bound:.3g}",
        float(bound if predicted is None else predicted),
        _mean(values),
        _std(values),
        float(bound - worst),
        int(values.size),
    )


def at_least(claim, check, per_seed, bound, *, predicted=None, rule=None) -> CheckResult:
    """Instance-wise: every value must be >= bound (NaN fails); margin = min - bound."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else np.min(values)
    return CheckResult(
        claim,
        check,
        rule or f"min >= {bound:.3g}",
        float(bound if predicted is None else predicted),
        _mean(values),
        _std(values),
        float(worst - bound),
        int(values.size),
    )


def law(claim, check, per_seed, predicted, tol, *, rule=None) -> CheckResult:
    """A fitted exponent/slope per seed; the seeds' mean must be within ``tol`` of the prediction."""
    values = np.asarray(per_seed, np.float64)
    mean = _mean(values)
    return CheckResult(
        claim,
        check,
        rule or f"|mean - predicted| <= {tol:g}",
        float(predicted),
        mean,
        _std(values),
        float(tol - abs(mean - predicted)) if np.isfinite(mean) else math.nan,
        int(values.size),
    )


def pooled_law(claim, check, x, y, predicted, tol, *, rule=None) -> CheckResult:
    """A law fitted on the seed-averaged curve: slope of mean_seeds(y) against mean_seeds(x).

    ``x`` and ``y`` have a leading seed axis (x may also be shared, without it).  The verdict uses
    the pooled slope (averaging first removes the per-instance constants' noise); the spread is the
    standard deviation of the per-seed slopes.
    """
    y = np.asarray(y, np.float64)
    x = np.broadcast_to(np.asarray(x, np.float64), y.shape)
    per_seed = [fit_slope(x[i], y[i]) for i in range(y.shape[0])]
    pooled = fit_slope(np.mean(x, axis=0), np.mean(y, axis=0))
    return CheckResult(
        claim,
        check,
        rule or f"|slope of seed-mean curve - predicted| <= {tol:g}",
        float(predicted),
        pooled,
        _std(per_seed),
        float(tol - abs(pooled - predicted)) if np.isfinite(pooled) else math.nan,
        int(y.shape[0]),
    )


def sign_law(claim, check, per_seed, *, positive: bool = True, rule=None) -> CheckResult:
    """A fitted slope whose sign is predicted: every seed's slope must have that sign."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else (np.min(values) if positive else -np.max(values))
    return CheckResult(
        claim,
        check,
        rule or ("every seed's slope > 0" if positive else "every seed's slope < 0"),
        0.0,
        _mean(values),
        _std(values),
        float(worst),
        int(values.size),
    )


def mc_equal(claim, check, samples, predicted, *, z=Z_MC, rel_floor=1e-9, rule=None) -> CheckResult:
    """Monte Carlo: |mean - predicted| <= z SE + rel_floor |predicted| (SE over seeds)."""
    samples = np.asarray(samples, np.float64)
    mean, sd = _mean(samples), _std(samples)
    tol = z * sd / math.sqrt(max(samples.size, 1)) + rel_floor * abs(predicted)
    return CheckResult(
        claim,
        check,
        rule or f"|mean - predicted| <= {z:g} SE",
        float(predicted),
        mean,
        sd,
        float(tol - abs(mean - predicted)) if np.isfinite(mean) else math.nan,
        int(samples.size),
    )


def mc_at_most(claim, check, samples, bound, *, z=Z_MC, rel_floor=1e-9, rule=None) -> CheckResult:
    """Monte Carlo one-sided: mean <= bound + z SE + rel_floor |bound|."""
    samples = np.asarray(samples, np.float64)
    mean, sd = _mean(samples), _std(samples)
    tol = z * sd / math.sqrt(max(samples.size, 1)) + rel_floor * abs(bound)
    return CheckResult(
        claim,
        check,
        rule or f"mean <= predicted + {z:g} SE",
        float(bound),
        mean,
        sd,
        float(bound + tol - mean) if np.isfinite(mean) else math.nan,
        int(samples.size),
    )


# ---------------------------------------------------------------------------------------------
# small numerical helpers
# ---------------------------------------------------------------------------------------------


def fit_slope(x, y) -> float:
    """Least-squares slope of y against x (NaN if any value is not finite or x is constant)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0:
        return math.nan
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc**2))


def tail_rate(risk, *, floor: float = 1e-20, ceiling: float | None = None, tail_fraction: float = 0.5) -> float:
    """Asymptotic per-step rate of a per-step risk sequence: exp(slope of log risk) over its tail.

    The usable part is the steps before the risk first drops below ``floor * risk[0]`` (the
    rounding floor of float64 sits near 1e-30 relative).  With ``ceiling`` the fit uses every
    usable step from the first one at or below ``ceiling * risk[0]`` (a window deep in the linear
    regime, where second-order terms are negligible); without it, the last ``tail_fraction`` of
    the usable steps (for slow runs that never get deep).  Either way the slowest mode dominates:
    the rate the theorems state.  Unlike :func:`~lora_theory.metrics.fit_linear_rate` (which finds
    the linear phase between two plateaus) this suits a per-step log of a run whose slow phase has
    not reached its floor.

    Args:
        risk: risk at steps 0, 1, 2, ...
        floor: relative level below which points are not used.
        ceiling: relative level above which points are not used (None: use ``tail_fraction``).
        tail_fraction: fraction of the usable steps used for the fit (the last ones).

    Returns:
        rho with risk_t ~ rho^t; NaN if fewer than 3 usable points or a non-finite value.
    """
    risk = np.asarray(risk, np.float64)
    if not np.isfinite(risk).all() or risk[0] <= 0:
        return math.nan
    below = np.nonzero(risk <= floor * risk[0])[0]
    usable = int(below[0]) if below.size else risk.size
    if ceiling is None:
        start = int(usable * (1.0 - tail_fraction))
    else:
        deep = np.nonzero(risk <= ceiling * risk[0])[0]
        start = int(deep[0]) if deep.size else usable
    if usable - start < 3:
        return math.nan
    steps = np.arange(start, usable)
    return float(np.exp(fit_slope(steps, np.log(risk[start:usable]))))


def _first_step_at_or_below(values, level) -> np.ndarray:
    """Index of the first entry <= level along the last axis (NaN if none)."""
    values = np.asarray(values)
    hit = values <= level
    first = np.argmax(hit, axis=-1).astype(np.float64)
    return np.where(hit.any(axis=-1), first, np.nan)


def _keys(seeds: Sequence[int]):
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds), jnp.uint32))


def _seed_list(params) -> list[int]:
    return list(range(int(params.get("first_seed", 0)), int(params.get("first_seed", 0)) + int(params["seeds"])))


def _split(key):
    """(problem key, init key): the engine's split, so a run can be redone with simulate."""
    return split_run_key(key)


def _f64(value) -> Array:
    return jnp.asarray(value, DTYPE)


def _grid_map(build, train, keys, grid):
    """Run ``train(build(key, value))`` for every (seed key, grid value); outputs (seeds, grid, ...).

    ``build`` (problem and init: QR, SVD, ...) runs under ``lax.map``, so every LAPACK call has
    batch size 1 (see :data:`_LAPACK_NOTE`); ``train`` (gd or precgd steps and the metrics: no
    LAPACK call) is vmapped over the built pytrees.
    """
    n_seeds, n_grid = keys.shape[0], grid.shape[0]
    seed_index = jnp.repeat(jnp.arange(n_seeds), n_grid)
    grid_index = jnp.tile(jnp.arange(n_grid), n_seeds)
    built = lax.map(lambda ij: build(keys[ij[0]], grid[ij[1]]), (seed_index, grid_index))
    out = jax.vmap(train)(built)
    return jax.tree.map(lambda x: x.reshape((n_seeds, n_grid) + x.shape[1:]), out)


#: Why the claims build problems (and run the loops that call LAPACK) under ``lax.map`` rather
#: than ``vmap``: with jaxlib 0.10.2 on CPU, a compiled program with *batched* LAPACK calls (QR,
#: Cholesky, SVD under vmap) sometimes never returns: the calling thread waits in the LAPACK
#: kernels' parallel batch map while every pool thread is idle (a native stack shows
#: ``jax::ParallelBatchMap`` in ``lapack_dgeqrf_ffi``).  Seen with 8+ seeds in claim 6, and with
#: ``simulate`` itself; ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` does not always avoid it.
#: Under ``lax.map`` every LAPACK call has batch size 1 and never hung here.  The training loops
#: have no LAPACK call (precgd's solves, :func:`lora_theory.optimizers.precondition`, and the
#: alignment metrics are plain jnp, :mod:`lora_theory.metrics`) and stay vectorised.
_LAPACK_NOTE = None


# ---------------------------------------------------------------------------------------------
# the training loop (the engine's step, logging only what a claim needs)
# ---------------------------------------------------------------------------------------------


def _make_step(objective, *, optimizer: str, train_factors: str, basis, lr, damping):
    """One optimizer step, the same arithmetic as :func:`lora_theory.engine.train`'s step."""
    train_A = train_factors in ("both", "A")
    train_B = train_factors in ("both", "B") and basis is None

    def step(factors: LoRAFactors) -> LoRAFactors:
        grad_A, grad_B = objective.factor_grads(factors.A, factors.B)
        if basis is not None:
            grad_A = basis @ (basis.T @ grad_A)
        if optimizer == "precgd":
            grad_A, grad_B = precondition(factors.A, factors.B, grad_A, grad_B, damping)
        elif optimizer != "gd":
            raise ValueError(f"optimizer must be 'gd' or 'precgd', got {optimizer!r}")
        return LoRAFactors(
            factors.A + (-lr) * grad_A if train_A else factors.A,
            factors.B + (-lr) * grad_B if train_B else factors.B,
        )

    return step


def factor_trajectory(
    objective,
    factors: LoRAFactors,
    *,
    steps: int,
    observe: Callable[[LoRAFactors], Any],
    log_every: int = 1,
    optimizer: str = "gd",
    lr=0.0,
    damping=0.0,
    train_factors: str = "both",
    basis: Float[Array, "d r"] | None = None,
):
    """Train the factors and return (final factors, ``observe`` at steps 0, log_every, ..., steps).

    The step is :func:`lora_theory.engine.train`'s (same gradients, lora_sb projection onto
    ``basis``, preconditioner, frozen factors); only the logging differs: ``observe(factors)``
    returns whatever pytree a claim needs, stacked along a leading axis of length
    ``steps // log_every + 1``.  Pure; jit/vmap-able (``steps``, ``log_every``, ``optimizer``,
    ``train_factors`` static).

    Args:
        objective: ``problem.objective(offset)``.
        factors: (A_0, B_0).
        steps: number of steps, a multiple of ``log_every``.
        observe: the per-log measurement.
        log_every: logging stride.
        optimizer: 'gd' or 'precgd'.
        lr: eta.
        damping: lam of precgd.
        train_factors: 'both', 'A' or 'B'.
        basis: lora_sb's fixed left basis (A's gradient projected onto it, B frozen), or None.

    Returns:
        (final factors, history).
    """
    if steps % log_every:
        raise ValueError(f"steps={steps} must be a multiple of log_every={log_every}")
    dtype = factors.A.dtype
    step = _make_step(
        objective,
        optimizer=optimizer,
        train_factors=train_factors,
        basis=basis,
        lr=jnp.asarray(lr, dtype),
        damping=jnp.asarray(damping, dtype),
    )

    def chunk(f, _):
        f = lax.fori_loop(0, log_every, lambda _, g: step(g), f)
        return f, observe(f)

    first = observe(factors)
    final, history = lax.scan(chunk, factors, None, length=steps // log_every)
    history = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, history)
    return final, history


# ---------------------------------------------------------------------------------------------
# claim 1: LoRA-One Thm 3.1, B_t stays in G's row space
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape",))
def _claim1_compute(keys, alphas, kappa, noise, lr, b0_scale, *, shape):
    d, k, r_star, rank, n_samples, steps = shape

    def build(key, alpha):
        key_problem, key_init = _split(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, noise, key=key_problem)
        B0 = b0_scale * jax.random.normal(jax.random.fold_in(key_init, 1), (rank, k), DTYPE) / math.sqrt(k)
        init = random_init(problem, rank, key=key_init, alpha=alpha)
        return problem, LoRAFactors(init.A, B0 + init.B)

    def train(built):
        problem, factors = built
        _, history = factor_trajectory(
            problem.objective(LowRank.zeros(d, k, rank, DTYPE)),
            factors,
            steps=steps,
            observe=lambda f: align_B(f.B, problem.G_right),
            lr=lr,
        )
        return history

    return _grid_map(build, train, keys, alphas)


def _measure_claim1(p):
    shape = (p["d"], p["k"], p["r_star"], p["rank"], p["n_samples"], p["steps"])
    sines = _claim1_compute(
        _keys(_seed_list(p)),
        _f64(p["alphas"]),
        _f64(p["kappa"]),
        _f64(p["noise"]),
        _f64(p["lr"]),
        _f64(p["b0_scale"]),
        shape=shape,
    )
    return {"sin_B_G": np.asarray(sines)}  # (seeds, alphas, steps + 1)


def _judge_claim1(m, p):
    # B_0 = 0 (step 0) has no row space; from step 1 on, B_1 = eta A_0^T G.
    worst_per_seed = np.max(m["sin_B_G"][:, :, 1:], axis=(1, 2))
    return [
        at_most(
            "1",
            "||V_G,perp^T V_B_t||_op at every step t >= 1 (sin of angle, row(B_t) vs row(G))",
            worst_per_seed,
            p["tol"],
            predicted=0.0,
            rule=f"max over seeds, alphas, steps <= {p['tol']:g} (rounding)",
        )
    ]


# ---------------------------------------------------------------------------------------------
# claim 2: LoRA-One Thm 3.2, alignment of A from a small random init
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape",))
def _claim2_compute(keys, alphas, kappa, lr, *, shape):
    d, k, r_star, rank, n_samples, steps = shape

    def build(key, alpha):
        key_problem, key_init = _split(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, 0.0, key=key_problem)
        lam = jnp.linalg.svd(problem.G, compute_uv=False)[r_star - 1]
        return problem, random_init(problem, rank, key=key_init, alpha=alpha).factors, lam

    def train(built):
        problem, factors, lam = built

        def observe(f):
            return align_A(f.A, problem.G_left), 0.5 * jnp.sum((f.A @ f.B - problem.dW) ** 2)

        _, (align, risk) = factor_trajectory(
            problem.objective(LowRank.zeros(d, k, rank, DTYPE)), factors, steps=steps, observe=observe, lr=lr
        )
        return align, risk, lam

    align, risk, lam = _grid_map(build, train, keys, alphas)
    return align, risk, lam[:, 0]


def _measure_claim2(p):
    out = {"d": np.asarray(p["ds"], np.float64)}
    aligns, risks, lams = [], [], []
    for d in p["ds"]:
        k = d if p["k"] is None else p["k"]
        shape = (d, k, p["r_star"], p["rank"], p["n_factor"] * d, p["steps"])
        align, risk, lam = _claim2_compute(
            _keys(_seed_list(p)), _f64(np.sqrt(p["alpha2s"])), _f64(p["kappa"]), _f64(p["lr"]), shape=shape
        )
        aligns.append(np.asarray(align))
        risks.append(np.asarray(risk))
        lams.append(np.asarray(lam))
    out["align_A_G"] = np.stack(aligns, axis=1)  # (seeds, ds, alphas, steps + 1)
    out["risk"] = np.stack(risks, axis=1)
    out["lambda_rstar"] = np.stack(lams, axis=1)  # (seeds, ds)
    return out


def _judge_claim2(m, p):
    alpha2s = np.asarray(p["alpha2s"], np.float64)
    thetas = np.asarray(p["thetas"], np.float64)
    ds = m["d"]
    align, risk, lam = m["align_A_G"], m["risk"], m["lambda_rstar"]
    n_seeds = align.shape[0]
    law_index = int(np.argmin(alpha2s))  # the law is checked at the smallest init
    trend_index = int(np.argmax(alpha2s))  # the d trend where the init scale sets the alignment
    # t*(seed, d, theta): first step t >= 1 with align_A_G <= theta; the bound per instance
    measured = np.stack(
        [_first_step_at_or_below(align[:, :, law_index, 1:], theta) + 1 for theta in thetas], axis=-1
    )
    predicted = np.asarray(
        [
            [[float(theory.alignment_time_bound(d, theta, p["lr"], lam[i, j])) for theta in thetas] for j, d in enumerate(ds)]
            for i in range(n_seeds)
        ]
    )
    ratios = np.mean(measured / predicted, axis=(1, 2))
    min_align = np.min(align, axis=-1)  # (seeds, ds, alphas)
    log_a2 = np.log(alpha2s)
    align_slopes = [fit_slope(log_a2, np.log(min_align[i, j])) for i in range(n_seeds) for j in range(len(ds))]
    conv = _first_step_at_or_below(risk / risk[..., :1], p["conv_level"])  # (seeds, ds, alphas)
    escape = np.asarray([[fit_slope(-log_a2, conv[i, j]) for j in range(len(ds))] for i in range(n_seeds)])
    escape_pred = np.asarray(theory.escape_time_slope(p["lr"], lam))
    d_slopes = [fit_slope(np.log(ds), np.log(min_align[i, :, trend_index])) for i in range(n_seeds)]
    law_row = pooled_law(
        "2",
        f"t*(theta, d) vs Thm 3.2's ln(sqrt(d)/theta)/ln(1+eta lambda_r*(G)) at alpha^2={alpha2s[law_index]:g}: slope",
        predicted.reshape(n_seeds, -1),
        measured.reshape(n_seeds, -1),
        p["law_slope"],
        p["law_tol"],
    )
    # across d alone: regress the seed-mean t* on the seed-mean bound within each theta
    x, y = np.mean(predicted, axis=0), np.mean(measured, axis=0)  # (ds, thetas)
    xc, yc = x - np.mean(x, axis=0), y - np.mean(y, axis=0)
    d_law = float(np.sum(xc * yc) / np.sum(xc**2)) if np.isfinite(xc).all() and np.isfinite(yc).all() else math.nan
    d_law_seeds = [
        float(np.sum((predicted[i] - predicted[i].mean(0)) * (measured[i] - measured[i].mean(0))) / np.sum((predicted[i] - predicted[i].mean(0)) ** 2))
        for i in range(n_seeds)
    ]
    d_tol = p["d_law_tol"]  # None: too few d values / seeds to resolve it (quick size): reported only
    d_row = CheckResult(
        "2",
        f"the same across d alone (d in {{{', '.join(f'{d:g}' for d in ds)}}}, slope within each theta): sqrt(d) law",
        f"|pooled slope - predicted| <= {d_tol:g}" if d_tol is not None else "reported, no verdict (checked at full size)",
        float(p["law_slope"]),
        d_law,
        _std(d_law_seeds),
        float(d_tol - abs(d_law - p["law_slope"])) if d_tol is not None and np.isfinite(d_law) else math.nan,
        n_seeds,
        informative=d_tol is None,
    )
    return [
        law_row,
        d_row,
        CheckResult(
            "2",
            "t* / Thm 3.2 bound: the constant hidden in '<~'",
            "reported, no verdict",
            1.0,
            _mean(ratios),
            _std(ratios),
            math.nan,
            len(ratios),
            informative=True,
        ),
        sign_law("2", "smaller alpha aligns better: slope of log min_t align_A_G vs log alpha^2", align_slopes),
        sign_law("2", "smaller alpha converges later: slope of t(risk <= conv_level risk_0) vs ln(1/alpha^2)", escape.ravel()),
        CheckResult(
            "2",
            "that slope / (1/(2 ln(1+eta lambda_r*))) (this suite's power-iteration law)",
            "reported, no verdict",
            1.0,
            _mean(escape / escape_pred),
            _std(escape / escape_pred),
            math.nan,
            escape.size,
            informative=True,
        ),
        sign_law(
            "2",
            f"larger d aligns worse: slope of log min_t align_A_G vs log d at alpha^2={alpha2s[trend_index]:g}",
            d_slopes,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# claim 3: LoRA-One Thm 3.3, one step suffices
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape",))
def _claim3_compute(keys, kappa, noise, gamma, *, shape):
    d, k, r_star, rank, n_samples = shape

    def one_seed(key):
        key_problem, key_init = _split(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, noise, key=key_problem)
        init = initialise(problem, "spectral", rank=rank, key=key_init, gamma=gamma)
        error = jnp.linalg.norm(init.A @ init.B - problem.dW, ord=2)
        bound = theory.spectral_init_error_bound(problem.sigma_hat, problem.dW)
        return error, bound, error / jnp.linalg.norm(problem.dW, ord=2)

    return lax.map(one_seed, keys)  # sequential over seeds: one X (N x d) in memory at a time


def _measure_claim3(p):
    errors, bounds, rel = [], [], []
    for factor in p["n_factors"]:
        shape = (p["d"], p["k"], p["r_star"], p["rank"], int(factor * p["d"]))
        e, b, r = _claim3_compute(
            _keys(_seed_list(p)), _f64(p["kappa"]), _f64(p["noise"]), _f64(p["gamma"]), shape=shape
        )
        errors.append(np.asarray(e))
        bounds.append(np.asarray(b))
        rel.append(np.asarray(r))
    return {
        "n_samples": np.asarray([int(f * p["d"]) for f in p["n_factors"]], np.float64),
        "error": np.stack(errors, axis=1),  # (seeds, Ns)
        "bound": np.stack(bounds, axis=1),
        "rel_error": np.stack(rel, axis=1),
    }


def _judge_claim3(m, p):
    ratio = m["error"] / m["bound"]
    law_const = m["rel_error"] / np.asarray(theory.finite_sample_error_law(p["d"], m["n_samples"]))
    return [
        at_most(
            "3",
            "||A_0 B_0 - dW||_op / (||Sigma_hat - I||_op ||dW||_op), every instance",
            np.max(ratio, axis=1),
            1.0 + 1e-12,
            predicted=1.0,
            rule="max over seeds and N <= 1 (+1e-12)",
        ),
        pooled_law(
            "3",
            "initial error ||A_0 B_0 - dW||_op/||dW||_op vs N: log-log slope (sqrt(d/N) law)",
            np.log(m["n_samples"]),
            np.log(m["rel_error"]),
            p["predicted_exponent"],
            p["slope_tol"],
        ),
        CheckResult(
            "3",
            "initial error / sqrt(d/N): the law's constant",
            "reported, no verdict",
            1.0,
            _mean(np.mean(law_const, axis=1)),
            _std(np.mean(law_const, axis=1)),
            math.nan,
            law_const.shape[0],
            informative=True,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# claim 4: LoRA-One App. C.2/C.3, gd's rate degrades with kappa, precgd's does not
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape", "optimizer"))
def _claim4_compute(keys, kappas, lr, damping, *, shape, optimizer):
    d, k, r_star, rank, n_samples, steps = shape

    def build(key, kappa):
        key_problem, key_init = _split(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, 0.0, key=key_problem)
        return problem, initialise(problem, "spectral", rank=rank, key=key_init).factors

    def train(built):
        problem, factors = built
        _, risk = factor_trajectory(
            problem.objective(LowRank.zeros(d, k, rank, DTYPE)),
            factors,
            steps=steps,
            observe=lambda f: 0.5 * jnp.sum((f.A @ f.B - problem.dW) ** 2),
            optimizer=optimizer,
            lr=lr,
            damping=damping,
        )
        return risk

    # gd's loop has no LAPACK call: vectorised; precgd's has two Cholesky solves per step: mapped
    return _grid_map(build, train, keys, kappas)


def _measure_claim4(p):
    out = {"kappa": np.asarray(p["kappas"], np.float64)}
    for optimizer in ("gd", "precgd"):
        d = p[f"{optimizer}_d"]
        shape = (d, d, p["r_star"], p["rank"], p["n_factor"] * d, p[f"{optimizer}_steps"])
        risk = np.asarray(
            _claim4_compute(
                _keys(_seed_list(p)),
                _f64(p["kappas"]),
                _f64(p["lr"]),
                _f64(p["damping"]),
                shape=shape,
                optimizer=optimizer,
            )
        )
        window = dict(floor=p["precgd_window"][0], ceiling=p["precgd_window"][1]) if optimizer == "precgd" else {}
        rate = functools.partial(tail_rate, **window)
        out[f"{optimizer}_rate"] = np.vectorize(rate, signature="(n)->()")(risk)  # (seeds, kappas)
    return out


def _judge_claim4(m, p):
    precgd_rates = m[p.get("precgd_check_uses", "precgd") + "_rate"]
    gd_rates = m["gd_rate"]
    log_kappa = np.log(m["kappa"])
    kappas = ", ".join(f"{k:g}" for k in m["kappa"])
    precgd_slopes = [fit_slope(log_kappa, np.log1p(-precgd_rates[i])) for i in range(precgd_rates.shape[0])]
    gd_slopes = [fit_slope(log_kappa, np.log1p(-gd_rates[i])) for i in range(gd_rates.shape[0])]
    spread = np.max(precgd_rates, axis=1) - np.min(precgd_rates, axis=1)
    return [
        law(
            "4",
            f"precgd: slope of log(1 - rate) vs log kappa, kappa in {{{kappas}}} (rate independent of kappa)",
            precgd_slopes,
            p["precgd_exponent"],
            p["slope_tol"],
        ),
        CheckResult(
            "4",
            f"precgd: max - min of the rate over kappa (population law (1 - eta)^2 = {float(theory.precgd_rate(p['lr'])):.3g})",
            "reported, no verdict",
            0.0,
            _mean(spread),
            _std(spread),
            math.nan,
            spread.size,
            informative=True,
        ),
        CheckResult(
            "4",
            "precgd: the rate itself (finite N: set by Sigma_hat, not by kappa)",
            "reported, no verdict",
            float(theory.precgd_rate(p["lr"])),
            _mean(precgd_rates),
            _std(precgd_rates),
            math.nan,
            precgd_rates.size,
            informative=True,
        ),
        law(
            "4",
            f"gd: slope of log(1 - rate) vs log kappa, kappa in {{{kappas}}} (1 - rate ~ 1/kappa)",
            gd_slopes,
            p["gd_exponent"],
            p["slope_tol"],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# claim 5: LoRA-One Sec. 5 / Fig. 4, lora_ga and lora_sb stall
# ---------------------------------------------------------------------------------------------

_CLAIM5_INITS = ("spectral", "lora_ga", "lora_sb")


@functools.partial(jax.jit, static_argnames=("shape", "model"))
def _claim5_compute(keys, singular_values, lr, damping, s_scale, *, shape, model):
    d, k, r_star, rank, n_samples, steps, log_every = shape

    def one_seed(key):
        key_problem, key_init = _split(key)
        if model == "population":
            problem = make_population_problem(d, k, r_star, singular_values, key=key_problem)
        else:
            problem = make_linear_problem(d, k, r_star, n_samples, singular_values, 0.0, key=key_problem)
        norm = jnp.linalg.norm(problem.dW)
        out = []
        for name in _CLAIM5_INITS:
            init = initialise(problem, name, rank=rank, key=key_init, s=s_scale)
            offset = init.offset.dense()

            def observe(f, offset=offset):
                return jnp.linalg.norm(f.A @ f.B + offset - problem.dW) / norm

            _, rel = factor_trajectory(
                problem.objective(init.offset),
                init.factors,
                steps=steps,
                log_every=log_every,
                observe=observe,
                optimizer="precgd",
                lr=lr,
                damping=damping,
                basis=init.A_basis,
            )
            out.append(rel)
        return jnp.stack(out)

    return lax.map(one_seed, keys)  # see _LAPACK_NOTE


def _measure_claim5(p):
    shape = (p["d"], p["k"], p["r_star"], p["rank"], p["n_factor"] * p["d"], p["steps"], p["log_every"])
    rel = _claim5_compute(
        _keys(_seed_list(p)),
        _f64(p["singular_values"]),
        _f64(p["lr"]),
        _f64(p["damping"]),
        _f64(p["s"]),
        shape=shape,
        model=p["model"],
    )
    return {"inits": np.asarray(_CLAIM5_INITS), "rel_err": np.asarray(rel)}  # (seeds, inits, logs)


def _judge_claim5(m, p):
    inits = list(m["inits"])
    final = m["rel_err"][:, :, -1]
    rows = []
    for name in p["reaching_inits"]:
        rows.append(
            at_most("5", f"{name}: final ||D - dW||_F/||dW||_F (reaches the minimiser)", final[:, inits.index(name)], p["reach_tol"])
        )
    scale = float(theory.finite_sample_error_law(p["d"], p["n_factor"] * p["d"])) if p["model"] == "linear" else 1.0
    for name in p["stalling_inits"]:
        rows.append(
            at_least("5", f"{name}: final ||D - dW||_F/||dW||_F (stalls above it)", final[:, inits.index(name)], p["stall_tol"])
        )
        rows.append(
            CheckResult(
                "5",
                f"{name}: stall level / sqrt(d/N)",
                "reported, no verdict",
                1.0,
                _mean(final[:, inits.index(name)] / scale),
                _std(final[:, inits.index(name)] / scale),
                math.nan,
                final.shape[0],
                informative=True,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# claim 6: HRP, population mode, asymmetric LoRA
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("shape", "preheat_ranks"))
def _claim6_compute(keys, kappas, alpha, b_lr, classic_alphas, classic_lrs, *, shape, preheat_ranks):
    d, k, r_star, rank, b_steps, classic_steps, classic_log_every = shape

    def one_seed(key):
        key_problem, key_init = _split(key)

        def one_kappa(kappa):
            s = target_spectrum(r_star, kappa, 1.0, DTYPE)
            problem = make_population_problem(d, k, r_star, s, key=key_problem)
            M = problem.dW

            def loss(f):
                return 0.5 * jnp.sum((f.A @ f.B - M) ** 2)

            # every asymmetric run has a d x r frozen A and B_0 = 0: one vmapped loop trains them all
            frozen = [
                random_init(problem, rank, key=key_init, alpha=alpha).A,
                initialise(problem, "oracle", rank=rank, key=key_init, variant="directions", alpha=alpha).A,
            ]
            for p_rank in preheat_ranks:
                init = initialise(
                    problem,
                    "hrp",
                    rank=rank,
                    key=jax.random.fold_in(key_init, p_rank),
                    alpha=alpha,
                    preheat_rank=p_rank,
                    preheat_steps=3,
                    preheat_optimizer="precgd",
                    preheat_lr=1.0,
                    preheat_damping=1e-13,
                    preheat_train_factors="B",
                )
                frozen.append(init.A)
            objective = problem.objective(LowRank.zeros(d, k, rank, DTYPE))

            def train_B(A):
                final, history = factor_trajectory(
                    objective, LoRAFactors(A, jnp.zeros((rank, k), DTYPE)), steps=b_steps, observe=loss, lr=b_lr,
                    train_factors="B",
                )
                gap = jnp.linalg.norm(final.A @ final.B - theory.projection_limit(final.A, M)) / jnp.linalg.norm(M)
                return history, gap

            b_loss, gap = lax.map(train_B, jnp.stack(frozen))  # (2 + len(preheat_ranks), b_steps + 1)

            def classic(alpha_c, lr_c):
                init = random_init(problem, rank, key=key_init, alpha=alpha_c)
                _, history = factor_trajectory(
                    problem.objective(init.offset),
                    init.factors,
                    steps=classic_steps,
                    log_every=classic_log_every,
                    observe=loss,
                    lr=lr_c,
                )
                return history

            classic_loss = jax.vmap(classic)(classic_alphas, classic_lrs)
            return {
                "random_final": b_loss[0, -1],
                "oracle_loss": b_loss[1],
                "hrp_final": b_loss[2:, -1],
                "gap": gap,
                "classic_loss": classic_loss,
                "singular_values": s,
            }

        return lax.map(one_kappa, kappas)

    return lax.map(one_seed, keys)  # see _LAPACK_NOTE


def _measure_claim6(p):
    shape = (p["d"], p["k"], p["r_star"], p["rank"], p["b_steps"], p["classic_steps"], p["classic_log_every"])
    out = _claim6_compute(
        _keys(_seed_list(p)),
        _f64(p["kappas"]),
        _f64(p["alpha"]),
        _f64(p["b_lr"]),
        _f64(p["classic_alphas"]),
        _f64(p["classic_lrs"]),
        shape=shape,
        preheat_ranks=tuple(p["preheat_ranks"]),
    )
    m = {name: np.asarray(value) for name, value in out.items()}
    m["kappa"] = np.asarray(p["kappas"], np.float64)
    m["preheat_ranks"] = np.asarray(p["preheat_ranks"], np.float64)
    return m


def _judge_claim6(m, p):
    r, d = p["rank"], p["d"]
    n = p.get("frozen_side_dim") or d  # the frozen factor is A (d x r): n = d
    kappas = list(m["kappa"])
    flat, decay = kappas.index(1.0), kappas.index(max(kappas))
    s = m["singular_values"][0, decay]  # target_spectrum is deterministic: the same for every seed
    s_flat = m["singular_values"][0, flat]
    M_sq, M_sq_flat = float(np.sum(s**2)), float(np.sum(s_flat**2))
    ey = float(theory.eckart_young_loss(s, r))
    random_pred = float(theory.random_frozen_factor_loss(M_sq, r, n))
    rows = []
    gaps = np.max(m["gap"], axis=(1, 2))
    rows.append(
        at_most("6", "asymmetric limit: ||A B_T - P_A M||_F/||M||_F, any frozen A (random, oracle, hrp)", gaps, p["limit_tol"])
    )
    oracle = m["oracle_loss"][:, decay]  # (seeds, b_steps + 1)
    rows.append(
        at_most(
            "6",
            "oracle directions: |L_T - Eckart-Young| / Eckart-Young",
            np.abs(oracle[:, -1] - ey) / ey,
            p["limit_tol"],
        )
    )
    scale_sq = p["alpha"] ** 2 * d
    predicted_rate = float(theory.frozen_orthonormal_factor_rate(p["b_lr"], scale_sq))
    rates = [tail_rate(oracle[i] - ey, floor=1e-12) for i in range(oracle.shape[0])]
    rows.append(
        law("6", "oracle directions: rate of L_t - L_EY ((1 - eta c^2)^2, exponential)", rates, predicted_rate, p["rate_tol"])
    )
    rows.append(
        mc_equal(
            "6",
            f"Gaussian frozen A: E[L_T] vs (1 - r/n)||M||^2/2, n={n}",
            m["random_final"][:, decay],
            random_pred,
        )
    )
    hrp = m["hrp_final"][:, decay, :]  # (seeds, preheat ranks)
    diffs = hrp[:, 1:] - hrp[:, :-1]
    worst = int(np.argmax(np.mean(diffs, axis=0)))
    rows.append(
        mc_at_most(
            "6",
            f"HRP: E[L_T(p_next)] - E[L_T(p)], largest over p in {tuple(p['preheat_ranks'])}",
            diffs[:, worst],
            0.0,
        )
    )
    drop = hrp[:, 0] - hrp[:, -1]
    rows.append(
        CheckResult(
            "6",
            f"HRP: E[L_T(p={p['preheat_ranks'][0]})] - E[L_T(p={p['preheat_ranks'][-1]})] (a real decrease)",
            f"mean - {Z_MC:g} SE > 0",
            0.0,
            _mean(drop),
            _std(drop),
            _nan_to_inf(_mean(drop) - Z_MC * _std(drop) / math.sqrt(drop.size), -1.0),
            int(drop.size),
        )
    )
    for j, p_rank in enumerate(p["preheat_ranks"]):
        bound = float(theory.hrp_loss_bound(s, r, int(p_rank), n))
        rows.append(mc_at_most("6", f"HRP p={p_rank}: E[L_T] <= Ky Fan bound (this suite's)", hrp[:, j], bound))
    flat_pred = float(theory.random_frozen_factor_loss(M_sq_flat, r, n))
    flat_values = np.concatenate([m["hrp_final"][:, flat, :], m["random_final"][:, flat, None]], axis=1)
    rows.append(
        at_most(
            "6",
            "flat spectrum: |L_T - (1 - r/n)||M||^2/2| / that, HRP (every p) and random",
            np.max(np.abs(flat_values - flat_pred) / flat_pred, axis=1),
            p["limit_tol"],
        )
    )
    classic = m["classic_loss"][:, decay]  # (seeds, classic runs, logs)
    logs = np.arange(classic.shape[-1]) * p["classic_log_every"]
    for step in p["plateau_steps"]:
        ratio = classic[:, 0, int(np.searchsorted(logs, step))] / random_pred
        rows.append(
            mc_equal(
                "6",
                f"classic LoRA, alpha={p['classic_alphas'][0]:g}: L_t / ((1 - r/n)||M||^2/2) at t={step} (plateau)",
                ratio,
                1.0,
                z=0.0,
                rel_floor=p["plateau_tol"],
                rule=f"|mean - 1| <= {p['plateau_tol']:g}",
            )
        )
    rows.append(
        at_most(
            "6",
            f"classic LoRA, alpha={p['classic_alphas'][1]:g}: L_T / Eckart-Young - 1 at T={p['classic_steps']}",
            classic[:, 1, -1] / ey - 1.0,
            p["optimum_tol"],
        )
    )
    return rows


# ---------------------------------------------------------------------------------------------
# claim 7: LoRA-One Thm 4.2 (ReLU), delegated to lora_theory.nonlinear
# ---------------------------------------------------------------------------------------------


_CLAIM7_MODULES = ("lora_theory.theory_nonlinear", "lora_theory.nonlinear")


def _nonlinear_claim7():
    """The module providing ``measure_claim7`` and ``relu_precgd_rate_bound``, or None if absent.

    Claim 7's model and prediction are built with the nonlinear model (another part of the suite);
    the registry takes them from there when they exist.
    """
    for name in _CLAIM7_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "measure_claim7") and hasattr(module, "relu_precgd_rate_bound"):
            return module
    return None


def _measure_claim7(p):
    module = _nonlinear_claim7()
    measurement = module.measure_claim7(
        quick=p["quick"], seeds=p["seeds"], eta=p["eta"], kappas=tuple(p["kappas"]), seed=p.get("first_seed", 0)
    )
    return {"measurement": measurement}


def _judge_claim7(m, p):
    measurement = m["measurement"]
    if p.get("predicted_error_rate") is not None:  # a test feeds a wrong prediction here
        measurement = measurement._replace(predicted_error_rate=float(p["predicted_error_rate"]))
    rows = measurement.check_rows(kappa_tolerance=p["kappa_tolerance"], min_ratio=p["min_ratio"])
    fields = {f.name for f in dataclasses.fields(CheckResult)} - {"claim"}
    return [CheckResult(claim="7", **{key: value for key, value in row.items() if key in fields}) for row in rows]


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One claim of the papers as a measured check.

    Attributes:
        id: "1" .. "7" (the SPEC's numbering).
        paper: "LoRA-One" or "HRP".
        theorem: theorem or section (LoRA-One: ICML version's numbering).
        statement: the claim in one sentence.
        measured: what is measured.
        prediction: the predicted value, bound or law, naming the :mod:`lora_theory.theory`
            functions that compute it.
        verdict_rule: when the claim passes.
        quick, full: the experiment's parameters at the two sizes (``seeds`` included); the
            prediction's parameters (tolerances, exponents) live here too, so a test can
            override them.
        measure: params -> measurement (dict of numpy arrays).
        judge: (measurement, params) -> list of :class:`CheckResult`.
    """

    id: str
    paper: str
    theorem: str
    statement: str
    measured: str
    prediction: str
    verdict_rule: str
    quick: Mapping[str, Any]
    full: Mapping[str, Any]
    measure: Callable[[Mapping[str, Any]], dict] = field(repr=False)
    judge: Callable[[dict, Mapping[str, Any]], list] = field(repr=False)


_F1 = dict(r_star=4, rank=8, kappa=1.0, lr=1.0 / 64)

_REGISTRY: list[Claim] = [
    Claim(
        id="1",
        paper="LoRA-One",
        theorem="Thm 3.1",
        statement="Under GD from random init (B_0 = 0) in the noiseless linear model, the rows of B_t stay in G's "
        "row space at every step.",
        measured="sin of the largest principal angle between row(B_t) and row(G) (= ||V_G,perp^T V_B_t||_op, "
        "metrics.align_B) at every step t >= 1, for several alpha (any A_0).",
        prediction="0 (exact invariance: B_{t+1} - B_t = eta A_t^T Sigma_hat (dW - A_t B_t) has rows in row(dW) = row(G)).",
        verdict_rule="worst instance over seeds, alphas and steps <= tol (rounding, 1e-9 in float64).",
        quick=dict(d=40, k=30, r_star=3, rank=6, n_samples=640, kappa=4.0, noise=0.0, lr=1.0 / 64,
                   alphas=(1e-3, 1e-1, 0.5), b0_scale=0.0, steps=300, seeds=4, tol=1e-9),
        full=dict(d=100, k=100, r_star=4, rank=8, n_samples=1600, kappa=4.0, noise=0.0, lr=1.0 / 64,
                  alphas=(1e-3, 1e-2, 1e-1, 0.5), b0_scale=0.0, steps=1500, seeds=10, tol=1e-9),
        measure=_measure_claim1,
        judge=_judge_claim1,
    ),
    Claim(
        id="2",
        paper="LoRA-One",
        theorem="Thm 3.2",
        statement="From a small random init (r >= 2 r_star) GD aligns A's top-r_star left subspace with G's within "
        "t* <~ ln(sqrt(d)/theta)/ln(1 + eta lambda_r*(G)) steps; smaller alpha aligns better but converges later, "
        "larger d aligns later and worse.",
        measured="align_A_G at every step: first step t* where it is <= theta, its minimum over t, and the first "
        "step where risk/risk_0 <= conv_level; swept over alpha^2, theta and d.",
        prediction="theory.alignment_time_bound (law: t* against it has slope 1); theory.escape_time_slope "
        "(suite's law: convergence time grows by 1/(2 ln(1+eta lambda_r*)) per unit of ln(1/alpha^2)); signs of "
        "the alpha and d trends.",
        verdict_rule="fitted slopes within tolerance of the prediction: law_tol = 0.15 on the slope over theta and d, "
        "d_law_tol = 0.35 on the slope across d alone (full size only: it separates the sqrt(d) law, slope 1, from a "
        "d law, slope 1/2, and from no d dependence, 0; per-seed fits scatter by ~0.5); trend signs on every seed.",
        quick=dict(_F1, ds=(25, 100), k=None, n_factor=16, alpha2s=(1e-3, 1e-4, 1e-5, 1e-6),
                   thetas=(0.4, 0.2, 0.1), steps=800, conv_level=1e-4, seeds=4, law_slope=1.0, law_tol=0.15,
                   d_law_tol=None),
        full=dict(_F1, ds=(50, 100, 200, 400), k=None, n_factor=16, alpha2s=(1e-3, 1e-4, 1e-5, 1e-6, 1e-7),
                  thetas=(0.4, 0.3, 0.2, 0.1), steps=1200, conv_level=1e-4, seeds=10, law_slope=1.0, law_tol=0.15,
                  d_law_tol=0.35),
        measure=_measure_claim2,
        judge=_judge_claim2,
    ),
    Claim(
        id="3",
        paper="LoRA-One",
        theorem="Thm 3.3",
        statement="Spectral init (gamma = 1, r >= r_star) is already close: ||A_0 B_0 - dW||_op <= "
        "||Sigma_hat - I||_op ||dW||_op on every instance, an error that falls like sqrt(d/N).",
        measured="||A_0 B_0 - dW||_op and the bound per instance, for N = n_factor * d.",
        prediction="theory.spectral_init_error_bound (every instance); theory.finite_sample_error_law "
        "(exponent -1/2 in N).",
        verdict_rule="worst ratio error/bound <= 1; fitted log-log slope within tolerance of -1/2.",
        quick=dict(d=50, k=40, r_star=4, rank=8, kappa=4.0, noise=0.0, gamma=1.0, n_factors=(4, 16, 64, 256),
                   seeds=8, predicted_exponent=theory.FINITE_SAMPLE_EXPONENT, slope_tol=0.05),
        full=dict(d=100, k=100, r_star=4, rank=8, kappa=4.0, noise=0.0, gamma=1.0,
                  n_factors=(4, 8, 16, 32, 64, 128, 256, 512), seeds=10,
                  predicted_exponent=theory.FINITE_SAMPLE_EXPONENT, slope_tol=0.05),
        measure=_measure_claim3,
        judge=_judge_claim3,
    ),
    Claim(
        id="4",
        paper="LoRA-One",
        theorem="App. C.2/C.3",
        statement="From spectral init in the linear model, gd converges linearly at a rate that degrades like "
        "1/kappa while precgd's rate does not depend on kappa.",
        measured="per-step risk over the run; the asymptotic rate (exp of the slope of log risk over the tail) per "
        "seed and kappa in {1, 10, 100, 1000}; r = r_star, lam = 0, d = k, N = 16 d (gd at d = gd_d: its slow "
        "runs need ~kappa/eta steps; precgd at d = precgd_d).",
        prediction="the exponent of 1 - rate in kappa: 0 for precgd (theory.precgd_rate is kappa-free), -1 for gd "
        "(theory.gd_rate: 1 - rate ~ 2 eta s_1 / kappa).",
        verdict_rule="each fitted exponent (seed mean) within slope_tol = 0.1 of its prediction.",
        quick=dict(gd_d=20, precgd_d=50, r_star=4, rank=4, n_factor=16, kappas=(1.0, 10.0, 100.0, 1000.0), lr=0.5,
                   damping=0.0, gd_steps=40000, precgd_steps=100, precgd_window=(1e-25, 1e-13), seeds=3, precgd_exponent=0.0,
                   gd_exponent=theory.GD_RATE_KAPPA_EXPONENT, slope_tol=0.1),
        full=dict(gd_d=50, precgd_d=100, r_star=4, rank=4, n_factor=16, kappas=(1.0, 10.0, 100.0, 1000.0), lr=0.5,
                  damping=0.0, gd_steps=60000, precgd_steps=100, precgd_window=(1e-25, 1e-13), seeds=8, precgd_exponent=0.0,
                  gd_exponent=theory.GD_RATE_KAPPA_EXPONENT, slope_tol=0.1),
        measure=_measure_claim4,
        judge=_judge_claim4,
    ),
    Claim(
        id="5",
        paper="LoRA-One",
        theorem="Sec. 5 / Fig. 4",
        statement="In the linear model, lora_ga (B_0 from directions r+1..2r) and lora_sb (only an r x r core "
        "trains) stall above the minimiser where spectral init reaches it.",
        measured="final relative error ||A_T B_T + offset - dW||_F / ||dW||_F under precgd (F2 setting).",
        prediction="spectral: 0 (below reach_tol); lora_ga, lora_sb: bounded away from 0 (above stall_tol).",
        verdict_rule="every seed: spectral <= reach_tol; lora_ga and lora_sb >= stall_tol.",
        quick=dict(model="linear", d=50, k=50, r_star=4, rank=4, n_factor=16, singular_values=(1.0, 0.75, 0.5, 0.25),
                   lr=0.5, damping=1e-3, s=4.0, steps=100, log_every=10, seeds=4, reach_tol=1e-6, stall_tol=1e-2,
                   reaching_inits=("spectral",), stalling_inits=("lora_ga", "lora_sb")),
        full=dict(model="linear", d=100, k=100, r_star=4, rank=4, n_factor=16, singular_values=(1.0, 0.75, 0.5, 0.25),
                  lr=0.5, damping=1e-3, s=4.0, steps=1000, log_every=50, seeds=10, reach_tol=1e-6, stall_tol=1e-2,
                  reaching_inits=("spectral",), stalling_inits=("lora_ga", "lora_sb")),
        measure=_measure_claim5,
        judge=_judge_claim5,
    ),
    Claim(
        id="6",
        paper="HRP",
        theorem="Sec. 3-4 (population, asymmetric LoRA)",
        statement="With A frozen, training B converges to P_A M; from M's top directions that is the Eckart-Young "
        "optimum (exponentially fast); a Gaussian A gives (1 - r/n)||M||^2/2 in expectation; HRP improves on it "
        "as the preheat rank p grows, within this suite's Ky Fan bound, and gains nothing on a flat spectrum; "
        "classic LoRA from a large init plateaus at the random value, from a small one reaches the optimum.",
        measured="final loss and ||A B_T - P_A M|| of asymmetric runs (A frozen: Gaussian, oracle directions, HRP "
        "for each p) and the loss of classic LoRA (both factors) over time; decaying (kappa) and flat spectra.",
        prediction="theory.projection_limit, eckart_young_loss, frozen_orthonormal_factor_rate, "
        "random_frozen_factor_loss, hrp_loss_bound (derived here from Ky Fan).",
        verdict_rule="exact limits on every instance (limit_tol); expectations within 4 standard errors.",
        quick=dict(d=32, k=48, r_star=32, rank=4, kappas=(1.0, 100.0), preheat_ranks=(4, 8, 16, 32),
                   alpha=1.0 / math.sqrt(32), b_lr=0.5, b_steps=300, classic_alphas=(1.0, 1e-3),
                   classic_lrs=(0.01, 0.2), classic_steps=3000, classic_log_every=50, plateau_steps=(100, 1000),
                   seeds=24, limit_tol=1e-8, rate_tol=1e-6, plateau_tol=0.1, optimum_tol=1e-3, frozen_side_dim=None),
        full=dict(d=64, k=96, r_star=64, rank=8, kappas=(1.0, 100.0), preheat_ranks=(8, 16, 32, 64),
                  alpha=1.0 / math.sqrt(64), b_lr=0.5, b_steps=400, classic_alphas=(1.0, 1e-3),
                  classic_lrs=(0.005, 0.2), classic_steps=5000, classic_log_every=50, plateau_steps=(200, 2000),
                  seeds=100, limit_tol=1e-8, rate_tol=1e-6, plateau_tol=0.1, optimum_tol=1e-3, frozen_side_dim=None),
        measure=_measure_claim6,
        judge=_judge_claim6,
    ),
]


def _claim7_entry() -> Claim | None:
    module = _nonlinear_claim7()
    if module is None:
        return None
    kappas = tuple(getattr(module, "CLAIM7_KAPPAS", (1.0, 10.0, 100.0)))
    common = dict(eta=0.5, kappas=kappas, kappa_tolerance=0.01, min_ratio=100.0, predicted_error_rate=None)
    return Claim(
        id="7",
        paper="LoRA-One",
        theorem="Thm 4.2",
        statement="In the ReLU model with r = r_star, spectral init (gamma = 2) and precgd without damping, "
        "||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_r*: a linear rate independent of kappa.",
        measured="the error's per-step rate sqrt(rho_risk) of spectral + precgd across kappa, the envelope "
        "e_t / (e_0 (1 - eta/4)^t), and the final error of random + gd after as many steps "
        f"({module.__name__}.measure_claim7).",
        prediction=f"{module.__name__}.relu_precgd_rate_bound: 1 - eta/4, the same for every kappa.",
        verdict_rule="every seed's rate <= 1 - eta/4; spread across kappa <= kappa_tolerance; envelope <= 1; "
        "random + gd >= min_ratio times worse at kappa >= 10.",
        quick=dict(common, quick=True, seeds=3),
        full=dict(common, quick=False, seeds=8),
        measure=_measure_claim7,
        judge=_judge_claim7,
    )


def _all_claims() -> tuple[Claim, ...]:
    claims = list(_REGISTRY)
    seven = _claim7_entry()
    if seven is not None:
        claims.append(seven)
    return tuple(claims)


CLAIMS: tuple[Claim, ...] = _all_claims()


def claim_ids() -> tuple[str, ...]:
    """The registered claim ids, in order."""
    return tuple(c.id for c in CLAIMS)


def get_claim(claim_id: str) -> Claim:
    """The claim with this id (ValueError listing the valid ids otherwise)."""
    for claim in CLAIMS:
        if claim.id == str(claim_id):
            return claim
    raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(claim_ids())}")


def resolve_params(claim: Claim, size: str = "quick", *, seeds: int | None = None, **overrides) -> dict:
    """The parameters of ``claim`` at ``size`` ('quick' or 'full'), with ``seeds`` and overrides applied."""
    if size not in ("quick", "full"):
        raise ValueError(f"size must be 'quick' or 'full', got {size!r}")
    params = dict(claim.quick if size == "quick" else claim.full)
    unknown = set(overrides) - set(params) - {"first_seed", "precgd_check_uses"}
    if unknown:
        raise ValueError(f"claim {claim.id}: unknown parameter(s) {sorted(unknown)}; known: {sorted(params)}")
    params.update(overrides)
    if seeds is not None:
        if int(seeds) < 1:
            raise ValueError(f"seeds={seeds!r} is invalid: must be at least 1")
        params["seeds"] = int(seeds)
    return params


@dataclass
class ClaimRun:
    """A claim's measurement, the rows judged from it, its parameters and its wall time (s)."""

    claim: Claim
    params: dict
    measurement: dict
    rows: list
    wall_time: float

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)


def run_claim(claim_id: str, size: str = "quick", *, seeds: int | None = None, **overrides) -> ClaimRun:
    """Measure and judge one claim.

    Args:
        claim_id: "1" .. "7".
        size: 'quick' or 'full'.
        seeds: number of seeds (default: the size's).
        **overrides: experiment or prediction parameters replacing the size's defaults.

    Returns:
        A :class:`ClaimRun`.
    """
    claim = get_claim(claim_id)
    params = resolve_params(claim, size, seeds=seeds, **overrides)
    start = time.perf_counter()
    measurement = claim.measure(params)
    rows = claim.judge(measurement, params)
    return ClaimRun(claim, params, measurement, rows, time.perf_counter() - start)


def verify(claims: Sequence[str] | None = None, size: str = "quick", *, seeds: int | None = None, progress=None) -> list[ClaimRun]:
    """Run the given claims (default all) at ``size``; ``progress(claim, run)`` is called after each."""
    runs = []
    for claim_id in claims or claim_ids():
        run = run_claim(claim_id, size, seeds=seeds)
        runs.append(run)
        if progress is not None:
            progress(run.claim, run)
    return runs


def results_frame(runs: Sequence[ClaimRun]):
    """The verify table as a pandas DataFrame, one row per check."""
    import pandas as pd

    records = []
    for run in runs:
        for row in run.rows:
            record = dataclasses.asdict(row)
            record["verdict"] = row.verdict
            record["paper"] = run.claim.paper
            record["theorem"] = run.claim.theorem
            record["wall_time_s"] = run.wall_time
            records.append(record)
    columns = ["claim", "paper", "theorem", "check", "rule", "predicted", "mean", "spread", "margin", "verdict", "n", "wall_time_s"]
    return pd.DataFrame.from_records(records, columns=columns)


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "nan" if value is None or np.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.3g}"


def format_table(runs: Sequence[ClaimRun]) -> str:
    """The verify table as text, one row per check: claim, verdict, predicted, measured mean +- spread
    over seeds, margin (>= 0 passes), and what is checked [verdict rule; number of instances]."""
    header = f"{'claim':<5} {'verdict':<7} {'predicted':>9} {'measured (mean +- sd)':>21} {'margin':>9}  check [rule; n]"
    lines = [header, "-" * len(header)]
    for run in runs:
        for row in run.rows:
            measured = f"{_fmt(row.mean)} +- {_fmt(row.spread)}"
            lines.append(
                f"{row.claim:<5} {row.verdict:<7} {_fmt(row.predicted):>9} {measured:>21} {_fmt(row.margin):>9}  "
                f"{row.check} [{row.rule}; n={row.n}]"
            )
    return "\n".join(lines)
