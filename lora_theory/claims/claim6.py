"""Claim 6 (HRP, population mode): frozen-factor limits, wise inits, random init and HRP's preheat.

Setting (HRP, as ``shared/THEOREMS.md`` transcribes it; every HRP statement is **[unverified]**:
only the abstract was available): population loss ||A B - M||_F^2 / 2 (HRP writes B A^T), M =
dW = U diag(s) V^T, d x k, LoRA rank r, GD.  *Asymmetric* LoRA freezes A (d x r, so the frozen
side has n = d) and trains B; *classic* LoRA trains both.  Spectra (one per grid point, same
U, V per seed): a decaying one (``kappa``: s_i from 1 down to 1/kappa over min(d, k) values) and
flat ones of effective rank r* in ``effective_ranks`` ({2r, 4r, n}: s_i = 1 for i <= r*, 0 after).

Measured, and the suite's reading of each statement:

* **H1** (asymmetric LoRA converges to P_A M): ||A B_T - P_A M||_F / ||M||_F after ``b_steps``
  of GD on B, for every frozen A below and every spectrum (instance-wise, rounding tolerance).
* **H2** (a wise init converges exponentially to Eckart-Young), both settings:
  - asymmetric, A frozen at the oracle directions c U_r (c^2 = alpha^2 d): final loss = L_EY =
    sum_{i>r} s_i^2 / 2 on every seed, and the excess loss contracts by exactly (1 - eta c^2)^2
    per step (:func:`~lora_theory.theory.hrp.frozen_orthonormal_factor_rate`);
  - classic, from the same A_0 = c U_r, B_0 = 0 (``wise_lr``): final loss = L_EY on every seed,
    and the rate of every mode's residual u_i^T A_t B_t v_i - s_i (i <= r; the dynamics stay in
    the span, so L_t - L_EY is the sum of these squares / 2) against the suite's derivation
    (:func:`~lora_theory.theory.hrp.classic_wise_init_rate`, first order in eta): fitted on the
    logged steps between ``rate_window`` (relative levels of the squared residual), worst
    |fitted - predicted| over modes and seeds <= ``wise_rate_tol``.
* **H3** (random init gives a random low-rank result): with a Gaussian frozen A, E[L_T] =
  (1 - r/n) ||M||_F^2 / 2 (the suite's closed form; Monte Carlo, Z_MC standard errors).
* **H4** (classic LoRA from random init trapped near random results): classic LoRA from a large
  random init (``classic_alphas[0]``) sits at the random value at ``plateau_steps``; from a small
  one (``classic_alphas[1]``) it reaches L_EY (the trap needs a large init).
* **H5** (HRP beats random init, more so at low effective rank), with the preheat ranks p in
  ``preheat_ranks`` (HRP init :func:`~lora_theory.inits.hrp_init`, variant 'directions':
  A_0 = c U_r(A_p B_p), then B trains, A frozen):
  - *the paper's procedure, a short classic preheat* (``preheat_steps`` of GD on both factors of a
    rank-p LoRA from random, lr ``preheat_lr``: ``preheat_train_factors='both'``, the package's
    default, batched over p by :func:`~lora_theory.inits.hrp_init_over_ranks`): E[L_T(HRP, p)] <
    E[L_T(random)] = (1 - r/n) ||M||^2 / 2 (H3's exact value) at every p, and E[L_T(p)] decreases
    strictly with p (mean - Z_MC SE > a rounding floor, worst p / worst consecutive pair).  **No
    Ky Fan bound applies here**: the suite's bound assumes an asymmetric preheat run to its limit;
    a short classic preheat beats it at intermediate p and misses it at p = n (an explore row);
  - *the effective-rank sweep*: HRP's (classic preheat) relative gain 1 - L_T(HRP) / ((1 - r/n)
    ||M||^2 / 2) on the flat spectra grows strictly as r* shrinks through {n, 4r, 2r} (paired per
    seed: the same U, V and preheat start for every r*; mean - Z_MC SE > rounding, worst over
    consecutive r* and every p).  At r* = n the gain is exactly 0 (M M^T is a multiple of I:
    every frozen A gives the same loss, an identity), so that end of the sweep is the old
    flat-spectrum row, kept as an end point only;
  - *an asymmetric preheat run to its limit* (precgd on B with lr 1: the rank-p frozen-A problem
    solved, A_p B_p = P_p M): E[L_T(p)] decreases strictly with p, and at the intermediate p
    (r < p < n) E[L_T] <= the suite's Ky Fan bound (:func:`~lora_theory.theory.hrp.hrp_loss_bound`,
    derived here, not HRP's).  At p = r and p = n the bound is an equality by construction (HRP is
    then random init and the oracle): a unit test (``tests/test_claims_properties.py``), no row.

One compiled program: per seed, the asymmetric part is vmapped over the spectra, and inside it
every frozen A (random, oracle, 2 x ``len(preheat_ranks)`` HRP inits) trains in one vmapped loop;
the classic runs (the two random inits and the wise init) are one vmapped loop on the decaying
spectrum.  The preheats are the package's HRP init, one loop per kind for every p
(:func:`~lora_theory.inits.hrp_init_over_ranks`: zero-padded nested starts, so the two kinds and
all the p share one random draw per seed).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import theory
from ..engine import logged_steps, split_run_key, train
from ..inits import LoRAInit, hrp_init_over_ranks, initialise, random_init
from ..models.linear import LowRank, make_population_problem, target_spectrum
from ..optimizers import gd, optimizer_from_config
from ._common import DTYPE, f64, risk, seed_keys, seed_list
from ._registry import Claim
from ._verdicts import (
    Z_MC,
    CheckResult,
    at_most,
    explore,
    law,
    mc_at_most,
    mc_equal,
    report,
    sample_mean,
    sample_std,
    tail_rate,
)

__all__ = ["CLAIM", "compute", "measure", "judge", "spectra", "mode_rates"]


def spectra(p) -> np.ndarray:
    """The grid of spectra (rows, each of length min(d, k)): the decaying one (kappa), then a flat
    spectrum of rank r* (s_i = 1 for i <= r*, 0 after) for each r* in ``effective_ranks``."""
    m = min(p["d"], p["k"])
    rows = [np.asarray(target_spectrum(m, p["kappa"], 1.0, DTYPE))]
    for r_eff in p["effective_ranks"]:
        rows.append(np.where(np.arange(m) < r_eff, 1.0, 0.0))
    return np.stack(rows)


@functools.partial(jax.jit, static_argnames=("shape", "preheat_ranks"))
def compute(keys, spectra, alpha, b_lr, preheat_lr, classic_alphas, classic_lrs, wise_lr, *, shape, preheat_ranks):
    """Every run of the claim, for each seed key.

    ``shape`` = (d, k, rank, b_steps, preheat_steps, classic_steps, classic_log_every).  Returns
    arrays with leading axes (seeds, spectra) for the asymmetric part and (seeds,) for the classic
    part (on ``spectra[0]``).
    """
    d, k, rank, b_steps, preheat_steps, classic_steps, classic_log_every = shape
    m = spectra.shape[-1]

    def problem_for(key_problem, s):
        return make_population_problem(d, k, m, s, key=key_problem)

    def asymmetric(key_problem, key_init, s):
        problem = problem_for(key_problem, s)
        M = problem.dW
        # every asymmetric run has a d x r frozen A and B_0 = 0: one vmapped loop trains them all
        frozen = [
            random_init(problem, rank, key=key_init, alpha=alpha).A[None],
            initialise(problem, "oracle", rank=rank, key=key_init, variant="directions", alpha=alpha).A[None],
        ]
        # HRP at every preheat rank p, one preheat loop per kind (nested random starts, the same for both kinds)
        common = dict(
            key=jax.random.fold_in(key_init, 1), alpha=alpha, preheat_ranks=preheat_ranks, variant="directions"
        )
        # the asymmetric preheat run to its limit: precgd on B with lr 1 solves the rank-p frozen-A problem
        frozen.append(
            hrp_init_over_ranks(
                problem,
                rank,
                preheat_steps=3,
                preheat_optimizer="precgd",
                preheat_lr=1.0,
                preheat_damping=1e-13,
                preheat_train_factors="B",
                **common,
            ).A
        )
        # the paper's procedure: a short classic preheat (GD on both factors)
        frozen.append(
            hrp_init_over_ranks(
                problem,
                rank,
                preheat_steps=preheat_steps,
                preheat_optimizer="gd",
                preheat_lr=preheat_lr,
                preheat_train_factors="both",
                **common,
            ).A
        )
        train_only_B = optimizer_from_config("gd", lr=b_lr, train_factors="B")

        def train_B(A):
            init = LoRAInit(A, jnp.zeros((rank, k), DTYPE), LowRank.zeros(d, k, 0, DTYPE))
            trajectory = train(problem, init, train_only_B, steps=b_steps, observe=risk)
            final = trajectory.final
            gap = jnp.linalg.norm(final.A @ final.B - theory.projection_limit(final.A, M)) / jnp.linalg.norm(M)
            return trajectory.metrics, gap

        b_loss, gap = jax.vmap(train_B)(jnp.concatenate(frozen))  # (2 + 2 len(preheat_ranks), b_steps + 1)
        n_p = len(preheat_ranks)
        return {
            "random_final": b_loss[0, -1],
            "oracle_loss": b_loss[1],
            "hrp_asym_final": b_loss[2 : 2 + n_p, -1],
            "hrp_classic_final": b_loss[2 + n_p :, -1],
            "gap": gap,
        }

    def classic_observe(problem, objective, factors):
        """The loss, and each top-r mode's residual u_i^T A B v_i - s_i (M's own singular pairs)."""
        A, B = factors
        U, V = problem.dW_left[:, :rank], problem.dW_right[:, :rank]
        modes = jnp.sum((U.T @ A) * (B @ V).T, axis=1) - problem.dW_singular_values[:rank]
        return {"risk": risk(problem, objective, factors), "modes": modes}

    def one_seed(key):
        key_problem, key_init = split_run_key(key)
        asym = jax.vmap(lambda s: asymmetric(key_problem, key_init, s))(spectra)
        problem = problem_for(key_problem, spectra[0])
        inits = [random_init(problem, rank, key=key_init, alpha=a) for a in (classic_alphas[0], classic_alphas[1])]
        inits.append(initialise(problem, "oracle", rank=rank, key=key_init, variant="directions", alpha=alpha))
        A0 = jnp.stack([init.A for init in inits])
        B0 = jnp.stack([init.B for init in inits])
        lrs = jnp.stack([classic_lrs[0], classic_lrs[1], wise_lr])

        def classic(A, B, lr):
            init = LoRAInit(A, B, LowRank.zeros(d, k, 0, DTYPE))
            return train(
                problem, init, gd(lr), steps=classic_steps, log_every=classic_log_every, observe=classic_observe
            ).metrics

        out = jax.vmap(classic)(A0, B0, lrs)
        asym["classic_loss"] = out["risk"]  # (3, logs): large random, small random, wise
        asym["wise_modes"] = out["modes"][2]  # (logs, r)
        return asym

    return jax.vmap(one_seed)(keys)


def measure(p):
    """Run claim 6's experiment at the parameters ``p`` (``CLAIM.quick`` or ``CLAIM.full``): HRP's final losses and rates, per frozen factor, preheat rank and spectrum."""
    shape = (p["d"], p["k"], p["rank"], p["b_steps"], p["preheat_steps"], p["classic_steps"], p["classic_log_every"])
    grid = spectra(p)
    out = compute(
        seed_keys(seed_list(p)),
        f64(grid),
        f64(p["alpha"]),
        f64(p["b_lr"]),
        f64(p["preheat_lr"]),
        f64(p["classic_alphas"]),
        f64(p["classic_lrs"]),
        f64(p["wise_lr"]),
        shape=shape,
        preheat_ranks=tuple(p["preheat_ranks"]),
    )
    m = {name: np.asarray(value) for name, value in out.items()}
    m["spectra"] = grid
    m["preheat_ranks"] = np.asarray(p["preheat_ranks"], np.float64)
    m["effective_ranks"] = np.asarray(p["effective_ranks"], np.float64)
    m["classic_steps"] = logged_steps(p["classic_steps"], p["classic_log_every"])
    return m


def mode_rates(residuals, steps, window) -> np.ndarray:
    """Per-step rate of each mode's squared residual, fitted on the logged steps inside ``window``.

    ``residuals``: (..., logs, modes); ``window`` = (ceiling, floor), levels relative to the mode's
    squared residual at step 0: the fit uses the logged steps with ceiling >= e_t^2 / e_0^2 >=
    floor (deep in the linear regime, above rounding).  NaN for a mode with fewer than 3 points.
    """
    ceiling, floor = window
    sq = np.asarray(residuals, np.float64) ** 2
    rel = sq / sq[..., :1, :]
    out = np.full(sq.shape[:-2] + sq.shape[-1:], np.nan)
    for index in np.ndindex(*out.shape):
        *lead, mode = index
        series = rel[(*lead, slice(None), mode)]
        use = (series <= ceiling) & (series >= floor)
        if use.sum() >= 3:
            slope = np.polyfit(steps[use], np.log(series[use]), 1)[0]
            out[index] = math.exp(slope)
    return out


def _mc_positive(check, samples, *, floor, statement, rule=None):
    """Monte Carlo: the mean of ``samples`` exceeds ``floor`` by Z_MC standard errors.

    margin = mean - Z_MC SE - floor (>= 0 passes).  ``floor`` is a rounding level (an exact tie,
    e.g. identical losses, must fail: a difference below rounding is no improvement)."""
    samples = np.asarray(samples, np.float64)
    mean, sd = sample_mean(samples), sample_std(samples)
    margin = mean - Z_MC * sd / math.sqrt(max(samples.size, 1)) - floor
    return CheckResult(
        "6",
        check,
        rule or f"mean - {Z_MC:g} SE > {floor:.1g}",
        0.0,
        mean,
        sd,
        margin if np.isfinite(margin) else -math.inf,
        int(samples.size),
        statement=statement,
    )


def _worst_positive(check, columns, *, floor, statement, rule):
    """The column (samples over seeds) with the smallest margin under :func:`_mc_positive`."""
    rows = [_mc_positive(check, c, floor=floor, statement=statement, rule=rule) for c in columns]
    return min(rows, key=lambda row: row.margin)


def judge(m, p):
    """Claim 6's rows of the verify table (:class:`~lora_theory.claims.CheckResult`) from a :func:`measure` result ``m``."""
    r, d = p["rank"], p["d"]
    n = p.get("frozen_side_dim") or d  # the frozen factor is A (d x r): n = d
    s = m["spectra"][0]
    M_sq = float(np.sum(s**2))
    ey = float(theory.eckart_young_loss(s, r))
    random_pred = float(theory.random_frozen_factor_loss(M_sq, r, n))
    c_sq = p["alpha"] ** 2 * d  # the oracle 'directions' init: A_0 = alpha sqrt(d) U_r
    ranks = list(p["preheat_ranks"])
    order = np.argsort(ranks, kind="stable")  # judge along increasing p, whatever the given order
    p_sorted = [ranks[j] for j in order]
    loss_floor = p["rounding"] * random_pred  # differences of losses below this are rounding
    rows = []

    # H1: the asymmetric limit
    gaps = np.max(m["gap"], axis=(1, 2))
    rows.append(
        at_most(
            "6",
            "asymmetric limit: ||A B_T - P_A M||_F/||M||_F, every frozen A (random, oracle, HRP "
            "asymmetric and classic preheat) and every spectrum",
            gaps,
            p["limit_tol"],
            statement="HRP H1",
        )
    )

    # H2: the wise init, asymmetric and classic
    oracle = m["oracle_loss"][:, 0]  # (seeds, b_steps + 1), decaying spectrum
    rows.append(
        at_most(
            "6",
            "asymmetric, A frozen at oracle directions: |L_T - L_EY| / L_EY",
            np.abs(oracle[:, -1] - ey) / ey,
            p["limit_tol"],
            statement="HRP H2",
        )
    )
    predicted_rate = float(theory.frozen_orthonormal_factor_rate(p["b_lr"], c_sq))
    rates = [tail_rate(oracle[i] - ey, floor=1e-12) for i in range(oracle.shape[0])]
    rows.append(
        law(
            "6",
            "asymmetric, oracle directions: rate of L_t - L_EY ((1 - eta c^2)^2, exponential)",
            rates,
            predicted_rate,
            p["rate_tol"],
            statement="HRP H2",
        )
    )
    wise = m["classic_loss"][:, 2]  # (seeds, logs)
    rows.append(
        at_most(
            "6",
            f"classic LoRA from the wise init c U_r (c^2 = {c_sq:g}, eta = {p['wise_lr']:g}): "
            f"|L_T - L_EY| / L_EY at T = {p['classic_steps']}",
            np.abs(wise[:, -1] - ey) / ey,
            p["limit_tol"],
            statement="HRP H2",
        )
    )
    fitted = mode_rates(m["wise_modes"], m["classic_steps"], p["rate_window"])  # (seeds, r)
    order_rate = int(p["wise_rate_order"])
    predicted_modes = np.asarray(theory.classic_wise_init_rate(p["wise_lr"], c_sq, s[:r], order=order_rate))
    worst = np.max(np.abs(fitted - predicted_modes[None, :])) if np.isfinite(fitted).all() else math.nan
    tol = p["wise_rate_tol"]
    rows.append(
        CheckResult(
            "6",
            f"classic LoRA from the wise init: per-step rate of each mode's (u_i^T A_t B_t v_i - s_i)^2, i <= r, vs "
            f"(1 - eta sqrt(D^2 + 4 s_i^2))^2 (D: {'GD balance, first order in eta' if order_rate else 'gradient-flow balance c^2'}); "
            f"shown: the slowest mode (s_r = {s[r - 1]:.3g}), judged: every mode",
            f"max over modes and seeds |fitted - predicted| <= {tol:g}",
            float(predicted_modes[-1]),
            sample_mean(fitted[:, -1]),
            sample_std(fitted[:, -1]),
            float(tol - worst) if np.isfinite(worst) else math.nan,
            int(fitted.size),
            statement="HRP H2",
        )
    )

    # H3: a Gaussian frozen A
    rows.append(
        mc_equal(
            "6",
            f"Gaussian frozen A: E[L_T] vs (1 - r/n)||M||^2/2, n={n}",
            m["random_final"][:, 0],
            random_pred,
            statement="HRP H3",
        )
    )

    # H5: HRP with the asymmetric preheat run to its limit (the suite's Ky Fan bound)
    asym = m["hrp_asym_final"][:, 0, :][:, order]  # (seeds, p increasing)
    rows.append(
        _worst_positive(
            f"HRP, asymmetric preheat run to its limit: E[L_T(p)] - E[L_T(p_next)] > 0, worst consecutive p in "
            f"{tuple(p_sorted)} (E[L_T] = {', '.join(f'{v:.3g}' for v in asym.mean(axis=0))})",
            [asym[:, j] - asym[:, j + 1] for j in range(asym.shape[1] - 1)],
            floor=loss_floor,
            statement="HRP H5",
            rule=f"worst pair: mean - {Z_MC:g} SE > rounding",
        )
    )
    for j, p_rank in enumerate(p_sorted):
        if r < p_rank < n:  # at p = r and p = n the bound is an equality by construction (a unit test)
            bound = float(theory.hrp_loss_bound(s, r, int(p_rank), n))
            rows.append(
                mc_at_most(
                    "6",
                    f"HRP, asymmetric preheat to its limit, p={p_rank}: E[L_T] <= the Ky Fan bound "
                    "(this suite's, valid for this preheat only)",
                    asym[:, j],
                    bound,
                    statement="HRP H5",
                )
            )

    # H5: HRP as the paper describes it, a short classic preheat
    classic = m["hrp_classic_final"][:, 0, :][:, order]
    random_final = m["random_final"][:, 0]
    rows.append(
        _worst_positive(
            f"HRP, classic preheat ({p['preheat_steps']} GD steps, lr {p['preheat_lr']:g}): (1 - r/n)||M||^2/2 - E[L_T(HRP, p)] "
            f"> 0 (random init's exact expectation, H3), worst p in {tuple(p_sorted)}",
            [random_pred - classic[:, j] for j in range(classic.shape[1])],
            floor=loss_floor,
            statement="HRP H5",
            rule=f"worst p: mean - {Z_MC:g} SE > rounding",
        )
    )
    rows.append(
        _worst_positive(
            f"HRP, classic preheat: E[L_T(p)] - E[L_T(p_next)] > 0, worst consecutive p (E[L_T] = "
            f"{', '.join(f'{v:.3g}' for v in classic.mean(axis=0))}; random {random_final.mean():.3g}, L_EY {ey:.3g})",
            [classic[:, j] - classic[:, j + 1] for j in range(classic.shape[1] - 1)],
            floor=loss_floor,
            statement="HRP H5",
            rule=f"worst pair: mean - {Z_MC:g} SE > rounding",
        )
    )
    bounds = np.asarray([float(theory.hrp_loss_bound(s, r, int(q), n)) for q in p_sorted])
    rows.append(
        explore(
            "6",
            "HRP, classic preheat vs the Ky Fan bound, outside its hypotheses (the bound assumes an asymmetric preheat "
            f"run to its limit; here {p['preheat_steps']} classic steps): E[L_T] / bound at p = {tuple(p_sorted)}: "
            + ", ".join(f"{v:.3g}" for v in classic.mean(axis=0) / bounds),
            classic.mean(axis=0) / bounds,
            predicted=1.0,
            statement="HRP H5",
        )
    )

    # H5: the effective-rank sweep (flat spectra), the classic preheat at every p
    eff = list(p["effective_ranks"])
    eff_order = np.argsort(eff, kind="stable")[::-1]  # r* decreasing: the gain must grow along it
    gain_cols = []
    for index in eff_order:
        grid = 1 + int(index)
        flat_pred = float(theory.random_frozen_factor_loss(float(np.sum(m["spectra"][grid] ** 2)), r, n))
        gain_cols.append((flat_pred - m["hrp_classic_final"][:, grid, :]) / flat_pred)
    gains = np.stack(gain_cols, axis=1)  # (seeds, r* decreasing, p)
    eff_sorted = [eff[i] for i in eff_order]
    rows.append(
        _worst_positive(
            f"effective-rank sweep (flat spectra, r* = {', '.join(f'{v:g}' for v in eff_sorted)}): HRP's relative gain "
            "1 - L_T(HRP) / ((1 - r/n)||M||^2/2) grows as r* shrinks, every p, classic preheat",
            [gains[:, j + 1, q] - gains[:, j, q] for j in range(gains.shape[1] - 1) for q in range(gains.shape[2])],
            floor=p["rounding"],
            statement="HRP H5",
            rule=f"worst (consecutive r*, p): mean - {Z_MC:g} SE > rounding",
        )
    )
    rows.append(
        report(
            "6",
            f"effective-rank sweep: HRP's mean relative gain per r* and p = {tuple(p_sorted)}: "
            + "; ".join(
                f"r*={v:g}: " + ", ".join(f"{g:.3g}" for g in gains[:, i, :].mean(axis=0))
                for i, v in enumerate(eff_sorted)
            )
            + f" (shown: r* = {eff_sorted[-1]:g}, p = {p_sorted[-1]})",
            gains[:, -1, -1],
            statement="HRP H5",
        )
    )

    # H4: classic LoRA from random init, large and small
    large = m["classic_loss"][:, 0]
    for step in p["plateau_steps"]:
        ratio = large[:, int(np.searchsorted(m["classic_steps"], step))] / random_pred
        rows.append(
            mc_equal(
                "6",
                f"classic LoRA, alpha={p['classic_alphas'][0]:g}: L_t / ((1 - r/n)||M||^2/2) at t={step} (plateau)",
                ratio,
                1.0,
                z=0.0,
                rel_floor=p["plateau_tol"],
                rule=f"|mean - 1| <= {p['plateau_tol']:g}",
                statement="HRP H4",
            )
        )
    rows.append(
        at_most(
            "6",
            f"classic LoRA, alpha={p['classic_alphas'][1]:g}: L_T / L_EY - 1 at T={p['classic_steps']} "
            "(a small random init is not trapped)",
            m["classic_loss"][:, 1, -1] / ey - 1.0,
            p["optimum_tol"],
            statement="HRP H4",
        )
    )
    return rows


# limit_tol = 1e-8 (H1, H2 final losses): measured 5e-16 at worst (float64 rounding of P_A M and of
#   the losses); B 1e-8 away from its limit is not at it (b_lr = 0.005 leaves 1e-2: FAIL).
# rate_tol = 1e-6 (asymmetric oracle): the loss is quadratic in B, so (1 - eta c^2)^2 is exact;
#   the tail fit above the 1e-12 floor of L_t - L_EY scatters by 3e-7; eta = 0.4 in the
#   prediction (0.36) fails by 0.1.
# plateau_tol = 0.1 (H4): measured L_t / random value 0.996, 0.949 (quick, t = 100, 1000) and
#   0.998, 0.979 (full, t = 200, 2000): the large init drifts down slowly (H4 says trapped "for
#   long"); a small init starts at ||M||^2 / (2 (1 - r/n) ||M||^2 / 2) = 1.14 and leaves towards
#   L_EY (ratio 0.35): FAIL.
# optimum_tol = 1e-3 (H4's small init): measured 2e-16; a stalled small init (lr 0.001) sits
#   at L_0 = 3.3 L_EY.
# rounding = 1e-12: loss differences below 1e-12 x the random value (losses ~1, summed to ~1e-15)
#   are rounding, not improvements: an exact tie (no preheat: every p gives the same A) fails.
_COMMON = dict(
    kappa=100.0,
    b_lr=0.5,
    preheat_steps=5,
    preheat_lr=0.5,
    classic_alphas=(1.0, 1e-3),
    wise_lr=0.1,
    limit_tol=1e-8,
    rate_tol=1e-6,
    plateau_tol=0.1,
    optimum_tol=1e-3,
    frozen_side_dim=None,
    wise_rate_order=1,
    rate_window=(1e-8, 1e-26),
    rounding=1e-12,
)

CLAIM = Claim(
    id="6",
    paper="HRP",
    theorem="Sec. 3-4 (population; asymmetric and classic LoRA)",
    statement="With A frozen, training B converges to P_A M (H1); from M's top directions to the Eckart-Young "
    "optimum, exponentially, in asymmetric and classic LoRA (H2); a Gaussian A gives (1 - r/n)||M||^2/2 in "
    "expectation (H3); classic LoRA from a large random init plateaus there (H4); HRP's short classic preheat "
    "beats random init in expectation, more so as p grows and as the effective rank shrinks (H5; no Ky Fan "
    "bound there); an asymmetric preheat run to its limit stays within this suite's Ky Fan bound.",
    measured="final loss and ||A B_T - P_A M|| of asymmetric runs (A frozen: Gaussian, oracle directions, HRP with "
    "an asymmetric and a classic preheat for each p) on a decaying and three flat spectra; classic LoRA's loss "
    "and per-mode residuals over time from a large and a small random init and from the wise init.",
    prediction="theory.projection_limit, eckart_young_loss, frozen_orthonormal_factor_rate, "
    "classic_wise_init_rate (derived here), random_frozen_factor_loss, hrp_loss_bound (derived here from Ky Fan); "
    "signs and orderings for HRP's gains.",
    verdict_rule="exact limits on every instance (limit_tol); rates within rate_tol / wise_rate_tol; expectations "
    "and gains within / beyond 4 standard errors.",
    # wise_rate_tol = 1e-3: the first-order prediction's O(eta^2) remainder, measured on the scalar
    # mode map at eta = 0.1, c^2 = 1, is at most 2.6e-4 (s = 1; 1.5e-4 at s = 0.64, the quick
    # slowest mode), and the fit over the rate_window adds ~2e-5; 1e-3 covers both with 3x room
    # and still rejects the gradient-flow balance (order 0: off by 0.7e-3 .. 3e-3, the largest
    # mode fails), the balanced law lambda = 2 s_i (off by >= 0.03) and the asymmetric rate
    # (1 - eta c^2)^2 (>= 0.03).  rate_window = (1e-8, 1e-26): e^2 / e_0^2 <= 1e-8 makes the
    # nonlinear term eta^2 e a b negligible (< 1e-5 in the rate), >= 1e-26 stays above rounding.
    quick=dict(
        _COMMON,
        d=32,
        k=48,
        rank=4,
        effective_ranks=(8, 16, 32),
        preheat_ranks=(4, 8, 16, 32),
        alpha=1.0 / math.sqrt(32),
        b_steps=300,
        classic_lrs=(0.01, 0.2),
        classic_steps=3000,
        classic_log_every=5,
        plateau_steps=(100, 1000),
        seeds=24,
        wise_rate_tol=1e-3,
    ),
    full=dict(
        _COMMON,
        d=64,
        k=96,
        rank=8,
        effective_ranks=(16, 32, 64),
        preheat_ranks=(8, 16, 32, 64),
        alpha=1.0 / math.sqrt(64),
        b_steps=400,
        classic_lrs=(0.005, 0.2),
        classic_steps=5000,
        classic_log_every=5,
        plateau_steps=(200, 2000),
        seeds=100,
        wise_rate_tol=1e-3,
    ),
    measure=measure,
    judge=judge,
    covers=("HRP H5", "HRP H1", "HRP H2", "HRP H3", "HRP H4"),
)
