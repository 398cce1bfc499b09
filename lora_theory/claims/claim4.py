"""Claim 4 (LoRA-One App. C.2/C.3, both **unverified**): gd's rate degrades like 1/kappa, precgd's does not.

The appendices were not available (``THEOREMS.md``): what is checked is the suite's reading of
the main text's summary, "GD from spectral init converges linearly at a rate that degrades with
kappa; preconditioned GD removes the kappa dependence", and of the first version's abstract,
which places the preconditioner's benefit in the over-ranked case (r > r_star, damping lam > 0).

Measured: the per-step risk from spectral init, noiseless linear model, d = k, N = n_factor d,
kappa in {1, 10, 100, 1000}; its asymptotic per-step rate (:func:`tail_rate`) per seed and kappa.
Two settings: r = r_star with lam = 0 (the theory's), and r = 2 r_star with damped precgd
(lam = ``over_damping``) against gd at the same rank.  Verdicts, per setting:

* precgd's rate is independent of kappa: the spread (max - min over kappa) of each seed's rate
  is at most ``spread_tol`` = 0.02 on every seed (instance-wise), and the law: the exponent of
  1 - rate in kappa is 0 (within ``slope_tol``);
* gd's law: the exponent of 1 - rate in kappa is -1 (within ``slope_tol``);
* precgd's rate against a per-instance finite-N prediction (r = r_star; and r = 2 r_star, where
  lam << s_{r*} and the spectral init's extra columns are ~0, so the same prediction applies --
  the suite's reading of App. C.3): the linearisation at the optimum,
  :func:`~lora_theory.theory.linear.precgd_rate_linearised`, within ``linearised_tol`` relative
  on every instance; and the one-sided heuristic (1 - eta lambda_min(Sigma_hat))^2,
  :func:`~lora_theory.theory.linear.precgd_rate_heuristic`, as an upper bound on every instance.

The population law (1 - eta)^2 is reported (info): at N = 16 d it is far from the measured rate.
"""

from __future__ import annotations

import dataclasses
import functools

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
from ._verdicts import CheckResult, at_most, fit_slope, law, sample_mean, sample_std, tail_rate

__all__ = ["CLAIM", "compute", "measure", "judge", "SETTINGS"]

#: (label, rank multiple of r_star, damping parameter name) of the two settings.
SETTINGS = (("r = r*", 1, "damping"), ("r = 2 r*", 2, "over_damping"))


@functools.partial(jax.jit, static_argnames=("shape", "optimizer"))
def compute(keys, kappas, actives, lr, damping, *, shape, optimizer):
    """Risk per step, (actives, seeds, kappas, steps + 1), and each seed's (Sigma_hat, U) (kappa-free).

    ``actives``: numbers of spectral-init columns kept (the others are set to exactly 0).  gd keeps
    a zero column at zero (its gradient is -Sigma_hat E B_j^T = 0), so gd at rank 2 r_star with
    r_star active columns is gd at rank r_star: both settings share one compile.
    """
    d, k, r_star, rank, n_samples, steps = shape

    def run(key, kappa, active):
        key_problem, key_init = split_run_key(key)
        s = target_spectrum(r_star, kappa, 1.0, DTYPE)
        problem = make_linear_problem(d, k, r_star, n_samples, s, 0.0, key=key_problem)
        init = initialise(problem, "spectral", rank=rank, key=key_init)
        keep = (jnp.arange(rank) < active).astype(DTYPE)
        init = init._replace(A=init.A * keep, B=init.B * keep[:, None])
        opt = optimizer_from_config(optimizer, lr=lr, damping=damping)
        return train(problem, init, opt, steps=steps, observe=risk).metrics, problem.sigma_hat, problem.dW_left

    metrics, sigma_hat, U = jax.vmap(lambda a: grid_map(lambda key, kappa: run(key, kappa, a), keys, kappas))(actives)
    return metrics, sigma_hat[0, :, 0], U[0, :, 0]  # X and U depend on the key, not on kappa


def _rates(curves, window):
    rate = functools.partial(tail_rate, floor=window[0], ceiling=window[1]) if window else tail_rate
    return np.vectorize(rate, signature="(n)->()")(np.asarray(curves))  # (seeds, kappas)


def measure(p):
    out = {"kappa": np.asarray(p["kappas"], np.float64)}
    keys, kappas, r_star = seed_keys(seed_list(p)), f64(p["kappas"]), p["r_star"]
    # gd: both settings in one run at rank 2 r_star (r_star active columns, then all)
    d = p["gd_d"]
    curves, _, _ = compute(keys, kappas, jnp.asarray([r_star, 2 * r_star]), f64(p["lr"]), f64(0.0),
                           shape=(d, d, r_star, 2 * r_star, p["n_factor"] * d, p["gd_steps"]), optimizer="gd")
    out["gd_rate"], out["over_gd_rate"] = _rates(curves[0], None), _rates(curves[1], None)
    d = p["precgd_d"]
    for tag, multiple, damping, window in (("", 1, p["damping"], p["precgd_window"]),
                                           ("over_", 2, p["over_damping"], p["over_window"])):
        rank = multiple * r_star
        curves, sigma_hat, U = compute(keys, kappas, jnp.asarray([rank]), f64(p["lr"]), f64(damping),
                                       shape=(d, d, r_star, rank, p["n_factor"] * d, p["precgd_steps"]),
                                       optimizer="precgd")
        out[f"{tag}precgd_rate"] = _rates(curves[0], window)
    out["sigma_hat"], out["U"] = np.asarray(sigma_hat), np.asarray(U)  # (seeds, d, d), (seeds, d, r*)
    return out


def _linearised_row(setting, reading, rel, tol, *, explore):
    row = at_most("4", f"precgd ({setting}): |rate - linearised rate| / linearised rate (finite-N linearisation "
                  f"at the optimum with Sigma_hat, r = r*, per instance){reading}", rel, tol, predicted=0.0,
                  rule=f"max over instances <= {tol:g}")
    if not explore:
        return row
    # r = 2 r*: the damped extra columns are not at rest (the 1/lam preconditioner moves them), so the
    # r = r* linearisation does not describe the run; reported as an exploration, no verdict
    return dataclasses.replace(row, check="explore: " + row.check, rule="reported, no verdict",
                               margin=float("nan"), informative=True)


def judge(m, p):
    log_kappa = np.log(m["kappa"])
    kappas = ", ".join(f"{k:g}" for k in m["kappa"])
    eta = p.get("predicted_lr", p["lr"])
    linearised = np.asarray(
        [float(theory.precgd_rate_linearised(eta, S, U)) for S, U in zip(m["sigma_hat"], m["U"])]
    )[:, None]  # per seed, the same for every kappa
    heuristic = np.asarray([float(theory.precgd_rate_heuristic(eta, S)) for S in m["sigma_hat"]])[:, None]
    rows = []
    for label, multiple, damping in SETTINGS:
        tag = "" if multiple == 1 else "over_"
        setting = f"{label}, lam = {p[damping]:g}" if multiple > 1 else f"{label}, lam = 0"
        reading = " [suite's reading of App. C.3]" if multiple > 1 else ""
        precgd = m[tag + p.get("precgd_check_uses", "precgd") + "_rate"]
        gd = m[tag + "gd_rate"]
        spread = np.max(precgd, axis=1) - np.min(precgd, axis=1)
        rel = np.abs(precgd - linearised) / linearised
        rows += [
            at_most("4", f"precgd ({setting}): max - min of the rate over kappa in {{{kappas}}}, per seed{reading}",
                    spread, p["spread_tol"], predicted=0.0, rule=f"max over seeds <= {p['spread_tol']:g}"),
            law("4", f"precgd ({setting}): slope of log(1 - rate) vs log kappa (rate independent of kappa){reading}",
                [fit_slope(log_kappa, np.log1p(-row)) for row in precgd], p["precgd_exponent"], p["slope_tol"]),
            _linearised_row(setting, reading, rel, p["linearised_tol"], explore=multiple > 1),
            at_most("4", f"precgd ({setting}): rate - (1 - eta lambda_min(Sigma_hat))^2 (one-sided heuristic, "
                    f"per instance){reading}", precgd - heuristic, 0.0, predicted=0.0, rule="max over instances <= 0"),
            law("4", f"gd ({label}, lam = 0): slope of log(1 - rate) vs log kappa (1 - rate ~ 1/kappa){reading}",
                [fit_slope(log_kappa, np.log1p(-row)) for row in gd], p["gd_exponent"], p["slope_tol"]),
        ]
    population = float(theory.precgd_rate(p["lr"]))
    rows.append(CheckResult("4", "precgd (r = r*): the rate against the population law (1 - eta)^2 and the "
                            f"linearised prediction (predicted column: its mean {sample_mean(linearised):.3g} "
                            "+- sd over seeds)", "reported, no verdict", population, sample_mean(m["precgd_rate"]),
                            sample_std(m["precgd_rate"]), float("nan"), int(m["precgd_rate"].size), informative=True))
    return rows


CLAIM = Claim(
    id="4",
    paper="LoRA-One",
    theorem="App. C.2/C.3",
    statement="[unverified: App. C.2/C.3 not available; the main text's summary] From spectral init in the "
    "linear model, gd converges linearly at a rate that degrades like 1/kappa while precgd's rate does not "
    "depend on kappa, also over-ranked (r > r_star, damped precgd).",
    measured="per-step risk; the asymptotic rate (exp of the slope of log risk over the tail) per seed and kappa "
    "in {1, 10, 100, 1000}; d = k, N = 16 d, noiseless; r = r_star with lam = 0, and r = 2 r_star with damped "
    "precgd (over_damping) against gd (gd at d = gd_d: its slow runs need ~kappa/eta steps; precgd at "
    "d = precgd_d). Sigma_hat and dW's column space per seed, for the finite-N prediction.",
    prediction="precgd: spread over kappa 0 and exponent of 1 - rate 0; rate = the linearisation at the optimum "
    "(theory.precgd_rate_linearised, this suite's derivation: kappa-free, set by Sigma_hat) and <= (1 - eta "
    "lambda_min(Sigma_hat))^2; gd: exponent -1 (theory.gd_rate). The r = 2 r_star rows are the suite's reading "
    "of the unverified App. C.3.",
    verdict_rule="instance-wise: each seed's spread <= spread_tol = 0.02; each instance's relative deviation from "
    "the linearised rate <= linearised_tol = 0.03 (the tail fit mixes the slowest mode with the nearby edge "
    "modes of Sigma_hat's spectrum; deviations up to 2.2% seen at quick size); rate <= heuristic; laws: fitted exponent "
    "(seed mean) within slope_tol = 0.1.",
    quick=dict(gd_d=20, precgd_d=50, r_star=4, n_factor=16, kappas=(1.0, 10.0, 100.0, 1000.0), lr=0.5,
               damping=0.0, over_damping=1e-8, gd_steps=20000, precgd_steps=100, precgd_window=(1e-25, 1e-13),
               over_window=(1e-25, 1e-13),
               seeds=3, precgd_exponent=0.0, gd_exponent=theory.GD_RATE_KAPPA_EXPONENT, slope_tol=0.1,
               spread_tol=0.02, linearised_tol=0.03),
    full=dict(gd_d=50, precgd_d=100, r_star=4, n_factor=16, kappas=(1.0, 10.0, 100.0, 1000.0), lr=0.5,
              damping=0.0, over_damping=1e-8, gd_steps=60000, precgd_steps=100, precgd_window=(1e-25, 1e-13),
              over_window=(1e-25, 1e-13),
              seeds=8, precgd_exponent=0.0, gd_exponent=theory.GD_RATE_KAPPA_EXPONENT, slope_tol=0.1,
              spread_tol=0.02, linearised_tol=0.03),
    measure=measure,
    judge=judge,
)
