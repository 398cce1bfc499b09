"""Claim 4 (LoRA-One App. C.2/C.3, both **unverified**): gd's rate degrades like 1/kappa, precgd's does not.

The appendices were not available (``shared/THEOREMS.md``): what is checked is the suite's
reading of the main text's summary, "GD from spectral init converges linearly at a rate that
degrades with kappa; preconditioned GD removes the kappa dependence", and of the first version's
abstract, which places the preconditioner's benefit in the over-ranked case (r > r_star, where
precgd needs damping lam > 0: the factors are rank-deficient).

Measured: the per-step risk from spectral init (gamma = 1), noiseless linear model, d = k,
N = n_factor d, kappa in {1, 10, 100, 1000} (dW's singular values 1 .. 1/kappa, geometric), and
its rate (:func:`tail_rate` over a window deep in the linear regime) per instance.  The instance
of a seed (X, hence Sigma_hat, and dW's singular vectors) is the same at every kappa: only dW's
singular values change.

r = r_star, lam = 0 (the theory's setting; run as a lane of the rank-2 r_star program, with zero
extra columns and lam = 1e-300, which is that run to rounding: see ``rstar_damping``):

* precgd's rate is independent of kappa: the spread (max - min over kappa) of the seed-mean rate
  is at most ``spread_tol`` = 0.02 (verdict).  Seed means, not each seed: one instance's fitted
  rate moves with kappa by up to 0.03 (d = 50) even on the linearised map iterated exactly,
  whose rate is kappa-free by construction.  The window (about 40 steps) cannot resolve the
  modes at Sigma_hat's lower spectral edge, a few eigenvalues within a few percent of each
  other, and their mix is set by the initial error (Sigma_hat - I) dW, which does depend on
  kappa.  That is the estimator's effect, and the seed mean averages it out.  Each instance's
  fitted rate, kappa by kappa, is predicted by the next row.
* the finite-N prediction, per instance (verdict): precgd's linearisation at the optimum with
  this Sigma_hat (:func:`~lora_theory.theory.linear.precgd_linearised_risk`), iterated exactly
  from the run's own error at the start of its fit window and fitted with the same estimator
  over the same window, gives the fitted rate within ``linearised_tol``.  Iterated from
  E_0 = (Sigma_hat - I) dW instead (an a-priori prediction, reported) it is off by up to 2%
  at kappa = 1000: the early phase is nonlinear while ||E|| > lambda*_r*, and it reshapes the
  mix of the edge modes;
* its slowest mode rho^2 (:func:`~lora_theory.theory.linear.precgd_rate_linearised`, from
  Sigma_hat and dW's column space, kappa-free) bounds each fitted rate from above (verdict).  The
  gap below it is the estimator's own error, measured on the exactly iterated map (info): up to
  6% at d = 50 and 5% at d = 100.  That gap, not a wrong prediction, is why the fitted rate sits
  below rho^2 (the previous version checked |rate - rho^2| <= 3% and failed at full size);
* reported: the population law (1 - eta)^2 = 0.25 (the measured rate at N = 16 d is about 0.5),
  the exponent of 1 - rate in kappa, and the per-seed spreads.

gd at r = r_star, which is also gd at r = 2 r_star from the exact spectral init (below: a zero
column pair gets a zero gradient and stays zero; a test checks the identity): the law
1 - rate ~ 1/kappa, the exponent fitted per seed within ``slope_tol`` of -1 (verdict, App. C.2).

r = 2 r_star, damped precgd (the suite's reading of App. C.3's over-ranked case): in the
noiseless model G = Sigma_hat dW has rank r_star, so the spectral init's extra columns are zero
in exact arithmetic.  The package's SVD leaves them at the square root of rounding (~1e-8); the
*exact* init sets them to 0.  Rows:

* exact init, lam = 1e-6 (``over_lanes[over_verdict_lane]``): the spread of the seed-mean rate
  over kappa <= spread_tol (verdict), inside the premises exact init and 0 < lam <= lambda*_r* /
  100 on every instance (the suite's damping premise: the damped preconditioner
  (B B^T + lam I)^{-1} is (B B^T)^{-1} on dW's directions to within 1%; a judged lane outside
  them is an exploration and the verdict a FAIL); and the rate against the same instance's
  r = r_star rate (info: the extra columns stay exactly zero, so the dynamics are r = r_star's
  with the damped preconditioner);
* explorations, outside the premises (never PASS): lam = 0, where B B^T is singular (the fraction
  of runs finite after one step: "precgd needs damping"); the package's SVD init, whose
  rounding-level extra columns are amplified by eta / lam (per-seed spreads up to 0.3 and
  non-finite rates were seen at lam = 1e-8 .. 1e-10); the authors' toy-code damping lam = 1e-3,
  not small against lambda*_r* = 1/kappa at kappa >= 100.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ..engine import split_run_key, train
from ..inits import initialise
from ..models.linear import make_linear_problem, target_spectrum
from ..optimizers import optimizer_from_config
from ..theory import linear as theory
from ._common import DTYPE, f64, grid_map, risk, seed_keys, seed_list
from ._registry import Claim
from ._verdicts import at_most, explore, fit_slope, law, report, sample_mean, tail_rate

__all__ = ["CLAIM", "compute", "measure", "judge", "linearised_rates"]

C2, C3 = "LoRA-One App. C.2", "LoRA-One App. C.3"


def observe_error(problem, objective, factors):
    """The risk and the error's column block X = (A B - dW) V (d x r_star; spectral init: no offset).

    The rows of E = A B - dW stay in dW's row space under precgd from spectral init in the noiseless
    model (B_0 = S^{1/2} V_G^T with row(G) = row(dW), and B's update A^T Sigma_hat E keeps it
    there), so E = X V^T: X is the whole error, in the block that
    :func:`~lora_theory.theory.linear.precgd_linearised_risk` iterates.
    """
    return {
        "risk": risk(problem, objective, factors),
        "X": factors.A @ (factors.B @ problem.dW_right) - problem.dW_left * problem.dW_singular_values,
    }


@functools.partial(jax.jit, static_argnames=("shape", "optimizer", "ceiling"))
def compute(keys, kappas, exact, damping, lr, *, shape, optimizer, ceiling=None):
    """Risk per step, (lanes, seeds, kappas, steps + 1), each seed's Sigma_hat, U, V, and lane 0's window errors.

    A lane is one (``exact``, ``damping``) pair: ``exact`` = 1 sets the spectral init's columns
    beyond r_star to exactly 0 (G has rank r_star: its trailing singular values are zero in exact
    arithmetic), 0 keeps the SVD's rounding-level ones.  The problem depends on the seed only
    through its key, and X and dW's singular vectors do not depend on kappa, so Sigma_hat, U
    and V are returned once per seed.  With a ``ceiling`` (the fit window's, relative to risk_0)
    the last output is lane 0's first step at or below it, (seeds, kappas), and the error's
    column block there (:func:`observe_error`), (seeds, kappas, d, r_star); else None.
    """
    d, k, r_star, rank, n_samples, steps = shape
    extra = jnp.arange(rank) >= r_star

    def run(key, kappa, exact, lam):
        key_problem, key_init = split_run_key(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, 0.0, key=key_problem)
        init = initialise(problem, "spectral", rank=rank, key=key_init)
        keep = jnp.where(extra, 1.0 - exact, 1.0).astype(DTYPE)
        init = init._replace(A=init.A * keep, B=init.B * keep[:, None])
        opt = optimizer_from_config(optimizer, lr=lr, damping=lam)
        metrics = train(problem, init, opt, steps=steps, observe=risk if ceiling is None else observe_error).metrics
        return metrics, problem.sigma_hat, problem.dW_left, problem.dW_right

    def lane(exact, lam):
        return grid_map(lambda key, kappa: run(key, kappa, exact, lam), keys, kappas)

    metrics, sigma_hat, U, V = jax.vmap(lane)(exact, damping)
    shared = sigma_hat[0, :, 0], U[0, :, 0], V[0, :, 0]
    if ceiling is None:
        return (metrics, *shared, None)
    curves = metrics["risk"]
    start = jnp.argmax(curves[0] <= ceiling * curves[0, ..., :1], axis=-1)  # (seeds, kappas); 0 if never
    X = jnp.take_along_axis(metrics["X"][0], start[..., None, None, None], axis=2)[:, :, 0]
    return (curves, *shared, (start, X))


def _rates(curves, window):
    rate = functools.partial(tail_rate, floor=window[0], ceiling=window[1]) if window else tail_rate
    return np.vectorize(rate, signature="(n)->()")(np.asarray(curves))


def measure(p):
    """Run claim 4's experiment at the parameters ``p`` (``CLAIM.quick`` or ``CLAIM.full``): the fitted rates of gd and precgd per kappa, with their linearised predictions."""
    kappas, r_star, lr = f64(p["kappas"]), p["r_star"], f64(p["lr"])
    out = {"kappa": np.asarray(p["kappas"], np.float64)}
    out["s"] = np.asarray(target_spectrum(r_star, kappas[:, None], 1.0, DTYPE))  # (kappas, r_star)
    # gd at r = r_star (= gd at r = 2 r_star from the exact init: a zero column pair gets a zero gradient;
    # a test checks it); its slow runs need ~kappa/eta steps
    d = p["gd_d"]
    gd_keys = seed_keys(list(range(int(p.get("first_seed", 0)), int(p.get("first_seed", 0)) + int(p["gd_seeds"]))))
    curves, *_ = compute(
        gd_keys,
        kappas,
        f64([1.0]),
        f64([0.0]),
        lr,
        shape=(d, d, r_star, r_star, p["n_factor"] * d, p["gd_steps"]),
        optimizer="gd",
    )
    out["gd_rate"] = _rates(curves[0], None)  # (gd seeds, kappas)
    # precgd, one program at rank 2 r_star: lane 0 is r = r_star with lam = 0 (exact init, rstar_damping:
    # see _COMMON), then the over-ranked lanes
    d, keys = p["precgd_d"], seed_keys(seed_list(p))
    lanes = (("exact", p["rstar_damping"]),) + tuple(p["over_lanes"])
    curves, sigma_hat, U, V, (start, X) = compute(
        keys,
        kappas,
        f64([float(init == "exact") for init, _ in lanes]),
        f64([lam for _, lam in lanes]),
        lr,
        shape=(d, d, r_star, 2 * r_star, p["n_factor"] * d, p["precgd_steps"]),
        optimizer="precgd",
        ceiling=float(p["window"][1]),
    )
    curves = np.asarray(curves)
    out["precgd_risk"], out["over_risk"] = curves[0], curves[1:]  # (seeds, kappas, steps + 1), (lanes, ...)
    # lane 0's error at the first step of each run's fit window, for the one-window-ahead prediction
    out["window_start"], out["X_start"] = np.asarray(start), np.asarray(X)
    out["sigma_hat"], out["U"], out["V"] = np.asarray(sigma_hat), np.asarray(U), np.asarray(V)
    return out


@functools.partial(jax.jit, static_argnames=("steps",))
def _linearised(eta, sigma, U, V, error0, *, steps):
    """Per seed rho^2 (seeds,), and the linearised map's risk from each error0 (seeds, n, steps + 1)."""

    def per_seed(S, U, V, errors):
        curves = jax.vmap(lambda E: theory.precgd_linearised_risk(eta, S, U, V, E, steps))(errors)
        return theory.precgd_rate_linearised(eta, S, U), curves

    return jax.vmap(per_seed)(sigma, U, V, error0)


def linearised_rates(m, eta, window, *, identity=False):
    """The predictions of each r = r_star instance's rate from precgd's linearisation at the optimum.

    Returns (rho2, from_start, from_window): rho^2, the slowest mode, per seed; the fitted rate of
    the linearised map iterated exactly from E_0 = (Sigma_hat - I) dW (spectral init, gamma = 1,
    noiseless), per seed and kappa; and the same from the run's own error at the start of its fit
    window (the measured steps before it, the map's after it), per seed and kappa.  ``identity``:
    linearise with Sigma = I instead of Sigma_hat (the population law: a wrong prediction, for the
    tests).
    """
    S_hat, U, V, s = m["sigma_hat"], m["U"], m["V"], m["s"]
    eye = np.eye(S_hat.shape[1])
    dW = np.einsum("nir,kr,njr->nkij", U, s, V)  # (seeds, kappas, d, k)
    error0 = np.einsum("nil,nklj->nkij", S_hat - eye, dW)
    error_start = np.einsum("nkir,njr->nkij", m["X_start"], V)  # E = X V^T (observe_error)
    sigma = np.broadcast_to(eye, S_hat.shape) if identity else S_hat
    measured = m["precgd_risk"]
    steps = measured.shape[-1] - 1
    rho2, curves = _linearised(
        f64(eta), f64(sigma), f64(U), f64(V), f64(np.concatenate([error0, error_start], axis=1)), steps=steps
    )
    curves = np.asarray(curves)
    n_kappa = s.shape[0]
    spliced = np.empty_like(measured)
    for i, j in np.ndindex(measured.shape[:2]):
        t0 = m["window_start"][i, j]
        spliced[i, j, :t0] = measured[i, j, :t0]
        spliced[i, j, t0:] = curves[i, n_kappa + j, : steps + 1 - t0]
    return np.asarray(rho2), _rates(curves[:, :n_kappa], window), _rates(spliced, window)


def _spread_of_means(rates, *, finite_only=False):
    """max - min over kappa of the seed-mean rate (NaN if one is not finite), and the means.

    ``finite_only`` (explorations): the means over the finite rates only."""
    with warnings.catch_warnings():  # a kappa with no finite rate (lam = 0) gives NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.nanmean(rates, axis=0) if finite_only else np.mean(rates, axis=0)  # per kappa, over seeds
    return float(np.max(means) - np.min(means)) if np.isfinite(means).all() else math.nan, means


def _fmt(values):
    return ", ".join(f"{v:.3g}" for v in values)


def judge(m, p):
    """Claim 4's rows of the verify table (:class:`~lora_theory.claims.CheckResult`) from a :func:`measure` result ``m``."""
    kappa, window, tol = m["kappa"], p["window"], p["spread_tol"]
    log_kappa = np.log(kappa)
    kappas = ", ".join(f"{k:g}" for k in kappa)
    eta = p.get("predicted_lr", p["lr"])
    precgd = _rates(m["precgd_risk"], window)  # (seeds, kappas)
    gd = m["gd_rate"]
    rows = []

    # r = r*, lam = 0: kappa-independence
    spread, means = _spread_of_means(precgd)
    rows.append(
        at_most(
            "4",
            f"precgd (r = r*, lam = 0): max - min over kappa in {{{kappas}}} of the seed-mean rate "
            f"(seed means {_fmt(means)})",
            [spread],
            tol,
            predicted=0.0,
            rule=f"spread of the seed means <= {tol:g}",
        )
    )
    rho2, lin_start, lin = linearised_rates(m, eta, window, identity=p.get("predicted_sigma") == "identity")
    per_seed, lin_per_seed = np.ptp(precgd, axis=1), np.ptp(lin_start, axis=1)
    rows.append(
        report(
            "4",
            f"precgd (r = r*): max - min over kappa per seed (max {np.max(per_seed):.3g}; the linearised "
            f"map from E_0, kappa-free, gives max {np.max(lin_per_seed):.3g}: an estimator effect)",
            per_seed,
            predicted=0.0,
        )
    )
    rows.append(
        report(
            "4",
            "precgd (r = r*): slope of log(1 - rate) vs log kappa (kappa-free: 0)",
            [fit_slope(log_kappa, np.log1p(-row)) for row in precgd],
            predicted=0.0,
        )
    )

    # r = r*: the finite-N prediction, per instance
    rel = np.abs(precgd / lin - 1.0)
    rows.append(
        at_most(
            "4",
            "precgd (r = r*): |rate / predicted - 1| per instance; predicted: the same fit on precgd's "
            "linearisation at the optimum with Sigma_hat, iterated exactly from the run's error at the start "
            f"of its fit window (mean predicted {sample_mean(lin):.3g})",
            rel,
            p["linearised_tol"],
            predicted=0.0,
            rule=f"max over instances <= {p['linearised_tol']:g}",
        )
    )
    rel_start = precgd / lin_start - 1.0
    rows.append(
        report(
            "4",
            "precgd (r = r*): rate / predicted - 1 with the map iterated from E_0 = (Sigma_hat - I) dW "
            f"(a priori; max |.| {np.max(np.abs(rel_start)):.3g}: the early phase is nonlinear while "
            "||E|| > lambda*_r*)",
            rel_start,
        )
    )
    above = precgd / rho2[:, None] - 1.0
    rows.append(
        at_most(
            "4",
            "precgd (r = r*): rate / rho^2 - 1 per instance; rho^2 = the linearised map's slowest mode "
            f"(theory.precgd_rate_linearised, kappa-free; mean {sample_mean(rho2):.3g}): a bound on any fit",
            above,
            p["slowest_tol"],
            predicted=0.0,
            rule=f"max over instances <= {p['slowest_tol']:g}",
        )
    )
    bias = 1.0 - lin / rho2[:, None]
    rows.append(
        report(
            "4",
            "precgd (r = r*): the estimator's own error, 1 - (fit of the linearised map) / rho^2 "
            f"(max {np.max(bias):.3g}; the measured rate: at most {np.max(-above):.3g} below rho^2)",
            bias,
        )
    )
    rows.append(
        report(
            "4",
            "precgd (r = r*): the rate against the population law (1 - eta)^2 (ScaledGD's; N = infinity)",
            precgd,
            predicted=float(theory.precgd_rate(p["lr"])),
        )
    )

    # gd: the 1/kappa law (r = r*; the same run is gd at r = 2 r*)
    rows.append(
        law(
            "4",
            "gd (r = r*; the same run as r = 2 r* from the exact init): slope of log(1 - rate) vs log kappa "
            f"(1 - rate ~ 1/kappa; seed-mean rates {_fmt(np.mean(gd, axis=0))})",
            [fit_slope(log_kappa, np.log1p(-row)) for row in gd],
            p["gd_exponent"],
            p["slope_tol"],
            statement=C2,
        )
    )

    # r = 2 r*: damped precgd, judged inside the premises (exact init, 0 < lam <= damping_premise lambda*_r*)
    over = _rates(m["over_risk"], window)  # (lanes, seeds, kappas)
    s_rstar, premise = m["s"][:, -1], p["damping_premise"]
    for i, (init, lam) in enumerate(p["over_lanes"]):
        setting = f"precgd (r = 2 r*, {init} spectral init, lam = {lam:g})"
        ratio = lam / s_rstar
        outside = []
        if init != "exact":
            outside.append(f"extra columns at SVD rounding, not 0, amplified by eta / lam = {p['lr'] / lam:.3g}")
        if lam == 0:
            outside.append("lam = 0: B B^T is singular")
        elif np.any(ratio > premise):
            outside.append(
                f"lam / lambda*_r* = {_fmt(ratio[ratio > premise])} > {premise:g} at kappa = "
                f"{', '.join(f'{k:g}' for k in kappa[ratio > premise])}"
            )
        why = f"outside the hypotheses ({'; '.join(outside)})"
        spread, means = _spread_of_means(over[i], finite_only=bool(outside))
        if lam == 0:
            finite = np.isfinite(m["over_risk"][i][..., 1])
            rows.append(
                explore(
                    "4",
                    f"{setting}: {why}: fraction of runs finite after one step (precgd needs damping)",
                    [float(np.mean(finite))],
                )
            )
        elif outside:
            rows.append(
                explore(
                    "4",
                    f"{setting}: {why}: max - min over kappa of the seed-mean rate (seed means "
                    f"{_fmt(means)}; per seed: max {np.nanmax(np.ptp(over[i], axis=1)):.3g}; "
                    f"{int(np.sum(~np.isfinite(over[i])))} rates not finite, left out)",
                    [spread],
                )
            )
        elif i != p["over_verdict_lane"]:
            rows.append(
                report(
                    "4",
                    f"{setting}: max - min over kappa of the seed-mean rate (seed means {_fmt(means)})",
                    [spread],
                    predicted=0.0,
                )
            )
        if i == p["over_verdict_lane"]:  # the verdict; none possible outside the premises: FAIL
            rows.append(
                at_most(
                    "4",
                    f"{setting}: max - min over kappa of the seed-mean rate (seed means {_fmt(means)}; "
                    f"premises: exact init, 0 < lam <= {premise:g} lambda*_r*: max lam / lambda*_r* "
                    f"{np.max(ratio):.3g})",
                    [math.nan if outside else spread],
                    tol,
                    predicted=0.0,
                    rule=f"spread of the seed means <= {tol:g} (outside the premises: FAIL)",
                )
            )
            if not outside:
                rows.append(
                    report(
                        "4",
                        f"{setting}: |rate - the r = r* rate of the same instance| (the extra columns "
                        "stay 0: r = r*'s dynamics with the damped preconditioner)",
                        np.abs(over[i] - precgd),
                    )
                )
    return rows


_COMMON = dict(
    r_star=4,
    n_factor=16,
    kappas=(1.0, 10.0, 100.0, 1000.0),
    lr=0.5,
    precgd_steps=100,
    # the fit window, relative to risk_0: below 1e-13 the second-order terms are negligible even at
    # kappa = 1000 (||E|| / lambda*_r* < 1e-3 there); above 1e-25 the float64 floor (~1e-27
    # relative on the smallest instances) is not reached
    window=(1e-25, 1e-13),
    # r = r_star, lam = 0 runs as a lane of the rank-2 r_star program (one compile for all of precgd):
    # the exact init's extra columns are 0 and stay 0 (zero gradient, and the solve of a zero block
    # with lam = 1e-300 returns 0), and on the active block lam = 1e-300 is a no-op in float64
    # (lambda*_r* >= 1e-3): the run is the rank-r_star, lam = 0 run (a test compares them)
    rstar_damping=1e-300,
    # (init, lam) per over-ranked lane; lane over_verdict_lane is judged, the others are reported
    over_lanes=(("exact", 1e-6), ("svd", 1e-8), ("exact", 1e-3), ("exact", 0.0)),
    over_verdict_lane=0,
    # the suite's damping premise: lam <= lambda*_r* / 100
    damping_premise=1e-2,
    gd_exponent=theory.GD_RATE_KAPPA_EXPONENT,
    # slope_tol = 0.1: gd's measured exponent is -0.96 (bent at kappa = 1, where eta s_r* is not
    # small); 0.1 rejects a kappa-free rate (0) and 1/sqrt(kappa) (-0.5)
    slope_tol=0.1,
    # spread_tol = 0.02 (the issue's): the spread of the seed means is at most 0.009 over 12 batches of
    # 8 seeds at d = 50 and 0.004 over 6 batches of 16 at d = 100 (on 4000 resamples of 64 seeds:
    # at most 0.013 for 8 seeds at d = 50; 0.023 for 3, hence 8 at quick size); a systematic drop of
    # ~0.003 from kappa = 1 to 1000 is included.  Per seed the spread reaches 0.031 (d = 50), on the
    # exactly iterated kappa-free map too: the estimator's, see the docstring.  A 2x change of
    # 1 - rate (0.5 -> 0.75) is a spread of 0.25
    spread_tol=0.02,
    # linearised_tol = 3e-3: over 384 instances per size (seeds 1000-1095 at d = 50, 5000-5095 at
    # d = 100) the fitted rate differs from the fit of the linearised map started at the window's
    # first step by at most 6.2e-4 and 3.8e-4 (q99 1.2e-4 and 1.5e-4, mean 3e-5): the in-window
    # second-order terms, ~||E|| / lambda*_r* ~ 1e-4 at kappa = 1000.  A wrong eta (0.45: +10%;
    # 0.6: -13%) or the population linearisation Sigma = I (-50%) is far outside
    linearised_tol=3e-3,
    # slowest_tol = 3e-3, the same in-window allowance: no fit exceeded rho^2 on those 768 instances
    # (the largest, 1.1e-5 and 7.4e-4 below it); rho^2 with eta = 0.6 (0.43) or Sigma = I (0.25) is
    # 15-100% below the measured rates
    slowest_tol=3e-3,
)

CLAIM = Claim(
    id="4",
    paper="LoRA-One",
    theorem="App. C.2/C.3",
    statement="[unverified: App. C.2/C.3 not available; the main text's summary] From spectral init in the noiseless "
    "linear model, gd converges linearly at a rate whose 1 - rate falls like 1/kappa, while precgd's rate does not "
    "depend on kappa (at finite N it is set by Sigma_hat: the linearisation at the optimum), also over-ranked "
    "(r = 2 r_star) with damping lam small against lambda*_r*.",
    measured="per-step risk; the rate (exp of the slope of log risk over a window deep in the linear regime) per seed "
    "and kappa in {1, 10, 100, 1000}; d = k, N = 16 d; precgd at d = precgd_d (r = r_star with lam = 0, and r = 2 "
    "r_star with the lanes over_lanes), gd at d = gd_d (its slow runs need ~kappa/eta steps). Sigma_hat and dW's "
    "singular vectors per seed, for the finite-N prediction.",
    prediction="precgd: spread over kappa 0; per instance the fit of theory.precgd_linearised_risk (the linearised map "
    "at the optimum with Sigma_hat, iterated exactly from the run's error at the window start, through the same "
    "estimator), and at most its slowest mode theory.precgd_rate_linearised (kappa-free); gd: exponent -1 "
    "(theory.gd_rate). This suite's derivations.",
    verdict_rule="spread of the seed-mean rates over kappa <= spread_tol = 0.02 (r = r*, and r = 2 r* inside the "
    "premises: exact init, 0 < lam <= lambda*_r* / 100); per instance |rate / linearised fit - 1| <= linearised_tol "
    "= 3e-3 (the map started at the window's first step) and rate <= rho^2 (1 + slowest_tol), slowest_tol = 3e-3; "
    "gd's fitted exponent (seed mean) within slope_tol = 0.1 of -1.",
    quick=dict(_COMMON, gd_d=20, precgd_d=50, gd_steps=20000, seeds=8, gd_seeds=3),
    full=dict(_COMMON, gd_d=50, precgd_d=100, gd_steps=60000, seeds=16, gd_seeds=8),
    measure=measure,
    judge=judge,
    covers=(C3, C2),
)
