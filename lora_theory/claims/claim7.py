"""Claim 7 (LoRA-One Thm 4.2): the ReLU model, spectral init + precgd, judged inside the theorem's premises.

Statement (LoRA-One, Zhang, Liu, Chen, ICML 2025, Section 4, Thm 4.2, as ``shared/THEOREMS.md``
transcribes it): in the noiseless model y = ReLU((W0 + dW)^T x), x ~ N(0, I_d), with r = r*,
spectral init with gamma = 2, precgd (9) without damping, eta in (c_eta, 1), under Assumption 4.1,
eps = O(1/(r* kappa sqrt(d))) and **rho <= 1/20**: with probability >= 1 - 2C d k exp(-eps^2 N),

    ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_{r*}   for all t >= 0, independent of kappa.

**Premises, measured per run** (seed x N x kappa), with the suite's readings of the unnamed
constants (:mod:`lora_theory.theory.relu`):

* rho_0 = ||A_0 B_0 - dW||_F / lambda*_{r*} at step 0 (spectral init, gamma = 2) against
  rho = 1/20 (:data:`~lora_theory.theory.relu.THM42_RHO`);
* Assumption 4.1 (ii): max_m max{lambda*_{r*}, ||dW_m||} / ||w_m||_2 against 1/(kappa r*)
  (:func:`~lora_theory.theory.relu.assumption41_shift_bound`: the O(.) read with constant 1);
* the sample size: ||Sigma_hat - I||_op (Sigma_hat = X^T X / N, the Eq. (8)-type quantity: the
  sample quantity of Thm D.10 is not available) against eps = 1/(r* kappa sqrt(d))
  (:func:`~lora_theory.theory.relu.thm42_sample_eps`, constant 1);
* Assumption 4.1 (i), ||W0||_op / min_m ||w_m||_2 = O(1), is reported (no constant to test).

A run is **inside** when the first three hold.  Verdicts only on inside runs: (a) the absolute
bound e_t <= (1 - eta/4)^t (1/20) lambda*_{r*} at every logged step; (b) the relative bound
e_t <= (1 - eta/4)^t rho_0 lambda*_{r*} (= (1 - eta/4)^t e_0); (c) the fitted rate does not depend
on kappa (the exponent p of 1 - rate ~ kappa^p, predicted 0).  Both envelopes are computed in
:func:`judge` from the predicted rate (``predicted_error_rate``, default
:func:`~lora_theory.theory.relu.relu_precgd_rate_bound`), so a wrong prediction reaches them.

**The suite's laws** (not the paper's statements; premise-free, over the whole N sweep):

* the population rate: the Gauss-Newton Hessian of the ReLU loss at the optimum is
  E[1{w^T x > 0} x x^T] = I/2, so precgd's error rate tends to 1 - eta/2 as N/d grows
  (:func:`~lora_theory.theory.relu.relu_precgd_population_rate`); verdict: the fitted rate,
  extrapolated linearly in d/N to d/N = 0, is within a tolerance of 1 - eta/2;
* Lemma D.5's rho_0 falls like sqrt(d/N) (log-log slope -1/2 in N, as Thm 3.3's error in the
  linear model): the spectral init's error is finite-sample error (the shift is small, so the
  linearisation bias G - dW/2 is negligible).

**Explore rows** (outside the hypotheses, never PASS): the runs of the N sweep whose premises fail,
and the setting this claim was judged in before (N = 32 d, kappa in {1, 10, 100}), each with
the premise that fails and by how much.  The random + gd comparison of that version is gone: no
theorem is behind it (notebook 05 still draws it).

**The regime.**  rho_0 falls like sqrt(d/N) (about 1.6 sqrt(d/N) at kappa = 1, 2.5 sqrt(d/N) at
kappa = 2), so rho_0 <= 1/20 on every seed takes N/d >= 2048 at kappa = 1 and 8192 at kappa = 2
whatever d is: the sweep goes to N = 8192 d, at d = 10 (quick) and 20 (full), kappa in {1, 2}
as the theorem's premises allow, with s_1(dW) = 0.1 against W0's N(0, 1) columns.

**Statements.**  The envelopes, the kappa row and the population law check Thm 4.2 (the premise
check, rho_0 <= 1/20 at step 0, is Thm 4.2's hypothesis); the rows on rho_0 itself (its sqrt(d/N)
law, its values per N/d) are tagged Lemma D.5 (spectral init with gamma = 2 gives
e_0 <= rho lambda*_{r*}: **[unverified]**, only the main text's citation is available), those on
the ratios Assumption 4.1.

**One compile.**  Per seed one W0, dW's singular vectors and one Gaussian X at the largest N are
drawn; the run at N uses X's leading N rows, so the N points of a seed are nested (common random
numbers across N and kappa; seeds independent).  Every run trains with
:func:`~lora_theory.engine.train` (precgd, lam = 0) from the package's spectral init
(:func:`~lora_theory.inits.initialise`), logging the risk ||A_t B_t - dW||_F^2 / 2 every step.
The rate of the error is sqrt of the risk's :func:`~lora_theory.claims._verdicts.tail_rate`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ..engine import train
from ..inits import initialise
from ..models.linear import haar_orthonormal, target_spectrum
from ..models.relu import NonlinearProblem, activate, activation_derivative
from ..optimizers import precgd
from ..theory import FINITE_SAMPLE_EXPONENT
from ..theory import relu as theory
from ._common import DTYPE, f64, risk, seed_keys, seed_list
from ._registry import Claim
from ._verdicts import (
    CheckResult,
    at_most,
    explore,
    fit_slope,
    law,
    pooled_law,
    report,
    sample_std,
    tail_rate,
)

__all__ = ["CLAIM", "observe", "relu_instance", "compute", "measure", "judge", "premises", "error_rates"]


def observe(problem, objective, factors) -> dict:
    """What claim 7 logs: ``risk`` = ||A_t B_t - dW||_F^2 / 2 (the error is sqrt(2 risk); the engine fits its rate)."""
    return {"risk": risk(problem, objective, factors)}


def relu_instance(W0, U, s, V, X, pre0) -> NonlinearProblem:
    """The noiseless ReLU problem with data X, W0 and dW = U diag(s) V^T (``pre0`` = X W0).

    Y = ReLU(X (W0 + dW)) and G = X^T [(Y - ReLU(X W0)) * 1{X W0 > 0}] / N, as
    :func:`~lora_theory.models.relu.make_nonlinear_problem` builds them (a test checks it), on
    the given X: the claim's N points share one draw.  The test sample and G's singular vectors
    are placeholders (claim 7 logs neither the test loss nor an alignment).
    """
    dW = (U * s) @ V.T
    n = X.shape[0]
    Y = activate(pre0 + X @ dW, "relu")
    residual = Y - activate(pre0, "relu")
    G = X.T @ (residual * activation_derivative(pre0, "relu")) / n
    no_subspaces = jnp.zeros_like(U), jnp.zeros_like(V)  # G's singular vectors: unused here (no alignment logged)
    return NonlinearProblem(
        W0,
        dW,
        G,
        0.5 * jnp.sum(residual**2) / n,
        *no_subspaces,
        U,
        V,
        s,
        X,
        Y,
        X[:1],
        Y[:1],
        pre0[:1],
        jnp.asarray(0.01, X.dtype),
        activation="relu",
    )


@functools.partial(jax.jit, static_argnames=("shape",))
def compute(keys, kappas, explore_kappas, scale, eta, gamma, *, shape):
    """Every run of the claim, for each seed key (sequential over seeds: one X in memory at a time).

    ``shape`` = (d, k, r_star, n_ratios, explore_ratio, steps, log_every): runs at N = n d for n in
    ``n_ratios`` with kappa in ``kappas``, and at N = explore_ratio d (one of ``n_ratios``) also with
    kappa in ``explore_kappas``.

    Returns a dict of arrays with a leading seed axis: ``risk`` (n_ratios, kappas, logs),
    ``explore_risk`` (explore_kappas, logs), ``sigma_hat`` (n_ratios, d, d) = X^T X / N,
    ``shift_ratio`` (kappas,) and ``explore_shift_ratio`` (explore_kappas,) = max_m
    max{lambda*_r*, ||dW_m||} / ||w_m||, ``balance_ratio`` () = ||W0||_op / min_m ||w_m||.
    """
    d, k, r_star, n_ratios, explore_ratio, steps, log_every = shape
    n_max = max(n_ratios) * d
    optimizer = precgd(eta, 0.0)

    def one_seed(key):
        k_w, k_u, k_v, k_x, k_init = jax.random.split(key, 5)
        W0 = jax.random.normal(k_w, (d, k), DTYPE)
        U = haar_orthonormal(k_u, d, r_star, DTYPE)
        V = haar_orthonormal(k_v, k, r_star, DTYPE)
        X = jax.random.normal(k_x, (n_max, d), DTYPE)
        col = jnp.linalg.norm(W0, axis=0)

        def shift_ratio(kappa):
            s = target_spectrum(r_star, kappa, scale, DTYPE)
            dW_cols = jnp.linalg.norm((U * s) @ V.T, axis=0)
            return jnp.max(jnp.maximum(s[-1], dW_cols) / col)

        out: dict[str, list[jax.Array]] = {"risk": [], "sigma_hat": []}
        gram, start = jnp.zeros((d, d), DTYPE), 0
        for ratio in n_ratios:  # increasing: each block of X's rows is added to the Gram matrix once
            n = ratio * d
            block = X[start:n]
            gram, start = gram + block.T @ block, n
            out["sigma_hat"].append(gram / n)
            Xn = X[:n]
            pre0 = Xn @ W0

            def run(kappa):
                s = target_spectrum(r_star, kappa, scale, DTYPE)
                problem = relu_instance(W0, U, s, V, Xn, pre0)  # noqa: B023 (run is traced in this iteration)
                init = initialise(problem, "spectral", rank=r_star, key=k_init, gamma=gamma)
                return train(problem, init, optimizer, steps=steps, log_every=log_every, observe=observe).metrics[
                    "risk"
                ]

            grid = jnp.concatenate([kappas, explore_kappas]) if ratio == explore_ratio else kappas
            risks = jax.vmap(run)(grid)
            out["risk"].append(risks[: kappas.shape[0]])
            if ratio == explore_ratio:
                out["explore_risk"] = risks[kappas.shape[0] :]
        return {
            "risk": jnp.stack(out["risk"]),
            "explore_risk": out["explore_risk"],
            "sigma_hat": jnp.stack(out["sigma_hat"]),
            "shift_ratio": jax.vmap(shift_ratio)(kappas),
            "explore_shift_ratio": jax.vmap(shift_ratio)(explore_kappas),
            "balance_ratio": jnp.linalg.norm(W0, ord=2) / jnp.min(col),
        }

    return lax.map(one_seed, keys)


def _explore_grid(p) -> tuple[list[float], list[float]]:
    """(kappas, the explore kappas not among them): the second are trained only at the explore N."""
    kappas = [float(v) for v in p["kappas"]]
    return kappas, [float(v) for v in p["explore_kappas"] if float(v) not in kappas]


def measure(p):
    """Run :func:`compute` at the claim's parameters; errors e_t = ||A_t B_t - dW||_F per logged step."""
    if p["explore_ratio"] not in p["n_ratios"]:
        raise ValueError(f"explore_ratio={p['explore_ratio']} must be one of n_ratios={p['n_ratios']}")
    kappas, extra = _explore_grid(p)
    shape = (
        p["d"],
        p["k"],
        p["r_star"],
        tuple(int(v) for v in p["n_ratios"]),
        int(p["explore_ratio"]),
        int(p["steps"]),
        int(p["log_every"]),
    )
    out = compute(
        seed_keys(seed_list(p)),
        f64(kappas),
        f64(np.asarray(extra, np.float64)),
        f64(p["target_scale"]),
        f64(p["eta"]),
        f64(p["gamma"]),
        shape=shape,
    )
    out = {name: np.asarray(value) for name, value in out.items()}
    steps = np.unique(np.append(np.arange(0, p["steps"] + 1, p["log_every"]), p["steps"])).astype(np.float64)

    def lam(ks):
        return np.asarray([float(target_spectrum(p["r_star"], kap, p["target_scale"], DTYPE)[-1]) for kap in ks])

    return {
        "kappa": np.asarray(kappas),
        "explore_kappa": np.asarray(extra, np.float64),
        "n_ratio": np.asarray(p["n_ratios"], np.float64),
        "steps": steps,
        "error": np.sqrt(2.0 * out["risk"]),  # (seeds, n_ratios, kappas, logs)
        "explore_error": np.sqrt(2.0 * out["explore_risk"]),  # (seeds, explore kappas, logs)
        "lambda_rstar": lam(kappas),
        "explore_lambda_rstar": lam(extra),
        # ||Sigma_hat - I||_op, (seeds, n_ratios): numpy's eigvalsh, not compiled
        "eps_hat": np.max(np.abs(np.linalg.eigvalsh(out["sigma_hat"] - np.eye(p["d"]))), axis=-1),
        "shift_ratio": out["shift_ratio"],  # (seeds, kappas)
        "explore_shift_ratio": out["explore_shift_ratio"],
        "balance_ratio": out["balance_ratio"],  # (seeds,)
    }


def error_rates(error, window) -> np.ndarray:
    """The per-step rate of the error per run: sqrt of the risk's :func:`tail_rate` (last axis: steps)."""
    rate = functools.partial(tail_rate, floor=window[0], ceiling=window[1])
    return np.sqrt(np.vectorize(rate, signature="(n)->()")(np.asarray(error) ** 2))


def premises(m, p) -> dict:
    """Each run's premises of Thm 4.2 (arrays (seeds, n_ratios, kappas)) and whether it is inside.

    ``rho0`` = e_0 / lambda*_r*; ``rho_ok``: rho0 <= ``premise_rho``; ``shift``: Assumption 4.1 (ii)'s
    ratio over its bound 1/(kappa r*) (<= 1 holds); ``eps``: ||Sigma_hat - I||_op over eps =
    1/(r* kappa sqrt(d)) (<= 1 holds); ``inside``: all three hold.
    """
    kappa = m["kappa"]
    rho0 = m["error"][..., 0] / m["lambda_rstar"]
    shift = m["shift_ratio"][:, None, :] / theory.assumption41_shift_bound(kappa, p["r_star"])
    shift = np.broadcast_to(shift, rho0.shape)
    eps = m["eps_hat"][:, :, None] / theory.thm42_sample_eps(kappa, p["r_star"], p["d"])
    rho_ok = rho0 <= p["premise_rho"]
    return dict(rho0=rho0, rho_ok=rho_ok, shift=shift, eps=eps, inside=rho_ok & (shift <= 1) & (eps <= 1))


def _envelope(error, steps, rate, rho_times_lambda):
    """max over logged t >= 1 of e_t / (rate^t rho lambda*) per run (last axis: steps)."""
    bound = theory.relu_precgd_error_bound(steps[1:], rate, np.asarray(rho_times_lambda)[..., None], 1.0)
    return np.max(error[..., 1:] / bound, axis=-1)


def _none(values):
    """The values, or [NaN] when there are none (a verdict row over no run must fail)."""
    return values if values.size else np.asarray([np.nan])


def _max(values) -> float:
    """The largest value, NaN when there are none."""
    return float(np.max(values)) if np.size(values) else math.nan


def _fmt_list(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def judge(m, p):
    """The rows of claim 7 from a :func:`measure` result.

    Verdicts: 1. absolute envelope (rho = ``bound_rho``), 2. relative envelope (rho = rho_0), 3. kappa
    exponent, all on the runs inside the premises (:func:`premises`; none inside: FAIL); 4. the
    population rate's intercept in d/N (N/d >= ``law_min_ratio``); 5. rho_0's log-log slope in N.
    Then info rows (the rate inside, rho_0 per N/d, Assumption 4.1 (i), (ii), eps) and explore rows
    (the sweep's runs outside; the N = ``explore_ratio`` d runs at ``explore_kappas``).  The
    envelopes use ``predicted_error_rate`` (default 1 - eta/4), the population row
    ``predicted_population_rate`` (default 1 - eta/2).
    """
    eta = float(p["eta"])
    q = (
        float(p["predicted_error_rate"])
        if p.get("predicted_error_rate") is not None
        else theory.relu_precgd_rate_bound(eta)
    )
    q_pop = (
        float(p["predicted_population_rate"])
        if p.get("predicted_population_rate") is not None
        else theory.relu_precgd_population_rate(eta)
    )
    kappa, n_ratio, steps = m["kappa"], m["n_ratio"], m["steps"]
    error, lam = m["error"], m["lambda_rstar"]
    prem = premises(m, p)
    inside = prem["inside"]
    n_in, n_all = int(inside.sum()), int(inside.size)
    rates = error_rates(error, p["rate_window"])  # (seeds, n_ratios, kappas)
    where_in = sorted({f"{n_ratio[j]:g}" for j in np.nonzero(inside.any(axis=(0, 2)))[0]})
    tag = f"{n_in} of {n_all} runs inside (N/d = {', '.join(where_in) or 'none'})"
    rows = []

    # (a) the absolute bound and (b) the relative bound, inside the premises
    absolute = _envelope(error, steps, q, p["bound_rho"] * lam)
    relative = _envelope(error, steps, q, error[..., 0])
    rows.append(
        at_most(
            "7",
            f"absolute bound e_t <= q^t rho lambda*_r*, q = 1 - eta/4 = {q:.4g}, rho = {p['bound_rho']:.3g}, every logged "
            f"step, runs inside the premises ({tag})",
            _none(absolute[inside]),
            1.0,
            rule="max over runs and t >= 1 of e_t / bound <= 1 (none inside: FAIL)",
        )
    )
    rows.append(
        at_most(
            "7",
            f"relative bound e_t <= q^t rho_0 lambda*_r* (= q^t e_0), q = {q:.4g}, every logged step, inside ({n_in} runs)",
            _none(relative[inside]),
            1.0,
            rule="max over runs and t >= 1 of e_t / bound <= 1 (none inside: FAIL)",
        )
    )

    # (c) kappa independence: 1 - rate ~ kappa^p on every (seed, N) with all kappas inside
    pairs = inside.all(axis=2)
    exponents = np.asarray(
        [fit_slope(np.log(kappa), np.log1p(-rates[s, j])) for s, j in zip(*np.nonzero(pairs), strict=True)]
    )
    spread = np.ptp(rates, axis=2)[pairs]
    rows.append(
        law(
            "7",
            f"rate independent of kappa in {_fmt_list(kappa)}: exponent p of 1 - rate ~ kappa^p, runs inside "
            f"({exponents.size} (seed, N) with every kappa inside; max |rate(kappa) - rate(kappa')| = "
            f"{_max(spread):.2g})",
            _none(exponents),
            float(p["kappa_exponent"]),
            float(p["kappa_tol"]),
            rule=f"|mean exponent - predicted| <= {p['kappa_tol']:g} (none inside: FAIL)",
        )
    )

    # the suite's population law: rate -> 1 - eta/2 as N/d -> infinity (every run of the sweep)
    use = n_ratio >= p["law_min_ratio"]
    x = 1.0 / n_ratio[use]
    per_seed = np.mean(rates[:, use, :], axis=2)  # (seeds, points): kappa-averaged
    intercepts = [_intercept(x, row) for row in per_seed]
    pooled = _intercept(x, np.mean(per_seed, axis=0))
    tol = float(p["population_tol"])
    rows.append(
        CheckResult(
            "7",
            f"suite's population law: error rate -> 1 - eta/2 (ReLU Hessian I/2 at the optimum) as N/d grows; "
            f"rate at N/d = {_fmt_list(n_ratio[use])}: {', '.join(f'{v:.4f}' for v in np.mean(per_seed, axis=0))}, "
            "extrapolated linearly in d/N to 0",
            f"|intercept of the seed-mean curve - predicted| <= {tol:g} (spread: per-seed intercepts)",
            q_pop,
            pooled,
            sample_std(intercepts),
            float(tol - abs(pooled - q_pop)) if np.isfinite(pooled) else math.nan,
            int(per_seed.shape[0]),
        )
    )

    # Lemma D.5's rho_0 against N: the sqrt(d/N) law (every run of the sweep)
    rows.append(
        pooled_law(
            "7",
            f"rho_0 = ||A_0 B_0 - dW||_F / lambda*_r* at step 0 (gamma = 2) vs N, N/d = {_fmt_list(n_ratio)} "
            "(mean of log over kappa): log-log slope (suite's sqrt(d/N) law)",
            np.log(n_ratio * p["d"]),
            np.mean(np.log(prem["rho0"]), axis=2),
            float(p["init_exponent"]),
            float(p["init_tol"]),
            statement="LoRA-One Lemma D.5",
        )
    )

    # reported: how tight, and the premises' numbers
    rows.append(
        report(
            "7",
            f"fitted error rate of the runs inside (eta = {eta:g}): against 1 - eta/4 = {q:.4g} (Thm 4.2) and "
            f"1 - eta/2 = {q_pop:.4g} (population); worst e_t / absolute bound = {_max(absolute[inside]):.2g}",
            _none(rates[inside]),
            predicted=q,
        )
    )
    rho_max = np.max(prem["rho0"], axis=(0,))  # (n_ratios, kappas)
    rows.append(
        report(
            "7",
            "rho_0 at step 0 (spectral init, gamma = 2), max over seeds per N/d (kappa = "
            + _fmt_list(kappa)
            + "): "
            + "; ".join(f"{n_ratio[j]:g}: {', '.join(f'{v:.3g}' for v in rho_max[j])}" for j in range(n_ratio.size))
            + f"; <= {p['premise_rho']:.3g} on {int(prem['rho_ok'].sum())} of {n_all} runs",
            prem["rho0"][:, -1, :],
            predicted=p["premise_rho"],
            rule="reported, no verdict (values: the largest N/d)",
            statement="LoRA-One Lemma D.5",
        )
    )
    rows.append(
        report(
            "7",
            "Assumption 4.1 (i): ||W0||_op / min_m ||w_m||_2 = O(1) (no constant named)",
            m["balance_ratio"],
            statement="LoRA-One Assumption 4.1",
        )
    )
    rows.append(
        report(
            "7",
            "Assumption 4.1 (ii): kappa r* max_m max{lambda*_r*, ||dW_m||} / ||w_m||_2 <= 1 (suite's reading of "
            f"O(1/(kappa r*))), s_1(dW) = {p['target_scale']:g}; per kappa {_fmt_list(kappa)}: max "
            + ", ".join(f"{v:.3g}" for v in np.max(prem["shift"][:, 0, :], axis=0)),
            prem["shift"][:, 0, :],
            predicted=1.0,
            statement="LoRA-One Assumption 4.1",
        )
    )
    eps_max = np.max(prem["eps"], axis=0)  # (n_ratios, kappas)
    rows.append(
        report(
            "7",
            "sample size: ||Sigma_hat - I||_op / eps, eps = 1/(r* kappa sqrt(d)) (suite's reading of O(.)), max over seeds per "
            "N/d: "
            + "; ".join(f"{n_ratio[j]:g}: {', '.join(f'{v:.2g}' for v in eps_max[j])}" for j in range(n_ratio.size)),
            prem["eps"][:, -1, :],
            predicted=1.0,
            rule="reported, no verdict (values: the largest N/d; <= 1 holds)",
        )
    )

    # explore: the sweep's runs outside the premises
    outside = ~inside
    fails = []
    for name, bad, value in (
        (f"rho_0 > {p['premise_rho']:.3g}", ~prem["rho_ok"], prem["rho0"] / p["premise_rho"]),
        ("Assumption 4.1 (ii) ratio > 1/(kappa r*)", prem["shift"] > 1, prem["shift"]),
        ("||Sigma_hat - I||_op > eps", prem["eps"] > 1, prem["eps"]),
    ):
        if bad.any():
            fails.append(f"{name} on {int(bad.sum())} (by {np.min(value[bad]):.3g}x .. {np.max(value[bad]):.3g}x)")
    rows.append(
        explore(
            "7",
            f"outside the hypotheses: {int(outside.sum())} runs of the N sweep ({'; '.join(fails) or 'none'}): "
            f"relative bound e_t <= q^t e_0 (q = {q:.4g}) held on {int((relative[outside] <= 1).sum())} of "
            f"{int(outside.sum())}, fitted rate <= q on {int((rates[outside] <= q).sum())}",
            _none(rates[outside]),
            predicted=q,
            rule="outside the hypotheses: reported, no verdict (values: the fitted error rates)",
        )
    )

    # explore: the setting claim 7 was judged in before (N = explore_ratio d, kappa = explore_kappas)
    j = int(np.nonzero(n_ratio == p["explore_ratio"])[0][0])
    eps_hat = m["eps_hat"][:, j]
    for kap in p["explore_kappas"]:
        kap = float(kap)
        if kap in list(kappa):
            i = list(kappa).index(kap)
            err, lam_k, shift_k = error[:, j, i], lam[i], m["shift_ratio"][:, i]
        else:
            i = list(m["explore_kappa"]).index(kap)
            err, lam_k, shift_k = m["explore_error"][:, i], m["explore_lambda_rstar"][i], m["explore_shift_ratio"][:, i]
        rho0 = err[:, 0] / lam_k
        shift_b = shift_k / theory.assumption41_shift_bound(kap, p["r_star"])
        eps_b = eps_hat / theory.thm42_sample_eps(kap, p["r_star"], p["d"])
        failures = [
            f"rho_0 = {np.mean(rho0):.3g} ({np.min(rho0):.3g} .. {np.max(rho0):.3g}) > {p['premise_rho']:.3g}"
            if np.any(rho0 > p["premise_rho"])
            else "",
            f"Assumption 4.1 (ii) ratio = {np.max(shift_b):.3g}x its bound" if np.any(shift_b > 1) else "",
            f"||Sigma_hat - I||_op = {np.max(eps_b):.3g}x eps" if np.any(eps_b > 1) else "",
        ]
        failed = "; ".join(f for f in failures if f)
        rel = _envelope(err, steps, q, err[:, 0])
        text = (
            f"N = {p['explore_ratio']:g} d, kappa = {kap:g}: {'outside' if failed else 'inside'} the hypotheses"
            + (f" ({failed})" if failed else "")
            + f": fitted error rate (vs q = 1 - eta/4 = {q:.4g}); "
            f"max e_t / (q^t e_0) = {np.max(rel):.3g}"
        )
        rows.append(
            (explore if failed else report)(
                "7",
                text,
                error_rates(err, p["rate_window"]),
                predicted=q,
                rule=("outside the hypotheses: " if failed else "")
                + "reported, no verdict (values: the fitted error rates)",
            )
        )
    return rows


def _intercept(x, y) -> float:
    """Intercept at x = 0 of the least-squares line through (x, y) (NaN if the slope is)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    slope = fit_slope(x, y)
    return float(np.mean(y) - slope * np.mean(x)) if np.isfinite(slope) else math.nan


_COMMON = dict(
    r_star=2,
    eta=0.5,
    gamma=2.0,
    kappas=(1.0, 2.0),
    explore_kappas=(1.0, 10.0, 100.0),
    explore_ratio=32,
    log_every=1,
    # a small shift: s_1(dW) = 0.1 against columns of W0 of norm ~ sqrt(d) keeps Assumption 4.1 (ii) at <= 0.11 of
    # its bound and the linearisation bias of G ~ dW/2 far below the sampling error (rho_0 keeps its sqrt(d/N) law)
    target_scale=0.1,
    premise_rho=theory.THM42_RHO,
    bound_rho=theory.THM42_RHO,
    predicted_error_rate=None,
    predicted_population_rate=None,  # None: theory.relu's 1 - eta/4 and 1 - eta/2
    rate_window=(1e-20, 1e-2),  # tail_rate of the risk from 1e-2 of its start (core modes gone) to the end
    # kappa_tol = 0.02: measured exponents -0.002 +- 0.001 (quick), -0.0001 +- 0.002 (full): 10x inside; it allows
    # 1 - rate to change by at most 1.4% between kappa = 1 and 2 and rejects gd's law (exponent -1) by 50x
    kappa_exponent=0.0,
    kappa_tol=0.02,
    # population_tol = 0.005: the intercept of the linear fit in d/N over N/d >= 512 is 0.7497 (quick), 0.7505
    # (full), per-seed spread 0.0003 / 0.0012; a fit in sqrt(d/N) instead gives 0.747-0.748, so 0.005 covers the
    # fit's form and 4 SE; it still rejects a curvature 4% off 1/2 (0.48: rate 0.76) and 1 - eta/4 by 25x
    population_tol=0.005,
    law_min_ratio=512,
    # init_tol = 0.1: pooled slopes -0.515 (quick, 3 seeds, per-seed sd 0.057: SE 0.033), -0.498 (full, sd 0.026);
    # 0.1 is 3 SE at quick and still rejects a 1/N law (-1) and an N-independent error (0) by 5x
    init_exponent=FINITE_SAMPLE_EXPONENT,
    init_tol=0.1,
)

CLAIM = Claim(
    id="7",
    paper="LoRA-One",
    theorem="Thm 4.2",
    statement="ReLU model, r = r*, spectral init (gamma = 2), precgd without damping: inside the premises "
    "(rho_0 <= 1/20 at step 0, Assumption 4.1 (ii) and eps read with constant 1), ||A_t B_t - dW||_F <= "
    "(1 - eta/4)^t rho lambda*_r* at every step, with rho = 1/20 and with rho = rho_0, at a rate independent of "
    "kappa; the rate tends to the population value 1 - eta/2 (the suite's law) and rho_0 falls like sqrt(d/N).",
    measured="Per run (seed x N/d x kappa): ||A_t B_t - dW||_F at every step, rho_0, Assumption 4.1's ratios, "
    "||Sigma_hat - I||_op; N/d nested in one draw per seed.",
    prediction="theory.relu: relu_precgd_rate_bound (1 - eta/4), relu_precgd_error_bound, THM42_RHO, "
    "assumption41_shift_bound, thm42_sample_eps (premises); relu_precgd_population_rate (1 - eta/2); "
    "theory.FINITE_SAMPLE_EXPONENT (-1/2) for rho_0.",
    verdict_rule="inside the premises: every envelope <= 1 (none inside: FAIL), kappa exponent within kappa_tol of 0; "
    "population intercept within population_tol of 1 - eta/2; rho_0 slope within init_tol of -1/2. Runs outside: explore rows.",
    quick=dict(_COMMON, d=10, k=10, n_ratios=(32, 512, 2048, 8192), steps=30, seeds=3),
    full=dict(_COMMON, d=20, k=20, n_ratios=(32, 128, 512, 2048, 8192), steps=40, seeds=8),
    measure=measure,
    judge=judge,
    covers=("LoRA-One Thm 4.2", "LoRA-One Assumption 4.1", "LoRA-One Lemma D.5"),
)
