"""The verdict rules: how a measurement becomes a :class:`CheckResult` (one row of the verify table).

Kinds of checks (each :class:`CheckResult` says which rule it applies):

* instance-wise (:func:`at_most`, :func:`at_least`: Thm 3.1, Thm 3.3's inequality, exact limits):
  the worst instance over every seed, swept value and logged step must satisfy the bound;
* laws (:func:`law`, :func:`pooled_law`, :func:`sign_law`: an order O(.) or "<~" with unnamed
  constants): an exponent or slope is fitted per seed across a sweep, and the seeds' mean must be
  within a stated tolerance of the predicted one (as diffrax checks the order of a solver);
* expectations (:func:`mc_equal`, :func:`mc_at_most`: HRP): a Monte Carlo mean over seeds against
  the prediction, with a margin of ``z`` standard errors (``z = 4``: a correct prediction fails
  with probability < 1e-4).

The margin of a row is signed, in the units of the rule: >= 0 passes, < 0 (or NaN) fails.  The
estimators the rules use (:func:`fit_slope`, :func:`tail_rate`) are here too.

Every row has a ``kind``: ``"verdict"`` (PASS or FAIL), ``"info"`` (a reported quantity with no
verdict, e.g. the constant hidden in a "<~": :func:`report`) or ``"explore"`` (a run outside the
theorem's hypotheses, reported with its numbers and never counted as PASS: :func:`explore`).  A
row may name the statement of ``shared/THEOREMS.md`` it checks (``statement``, an id of
:data:`lora_theory.claims.STATEMENTS`); without one it checks its claim's first statement.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CheckResult",
    "KINDS",
    "Z_MC",
    "report",
    "explore",
    "at_most",
    "at_least",
    "law",
    "pooled_law",
    "sign_law",
    "mc_equal",
    "mc_at_most",
    "fit_slope",
    "tail_rate",
    "first_step_at_or_below",
    "sample_mean",
    "sample_std",
    "nan_to_inf",
]

#: the kinds of rows: judged, reported, and reported from outside the theorem's hypotheses.
KINDS = ("verdict", "info", "explore")

#: standard errors of margin in the Monte Carlo checks (two-sided p < 1e-4 for a true prediction).
Z_MC = 4.0


@dataclass(frozen=True)
class CheckResult:
    """One row of the verify table.

    Attributes:
        claim: claim id ("1" .. "8").
        check: what is checked, in words.
        rule: the verdict rule (what ``margin`` measures).
        predicted: the predicted value (a bound, a rate, an exponent, or the threshold).
        mean: the measured quantity, mean over seeds (per-seed values are first reduced over
            the swept values and steps as the rule says).
        spread: standard deviation of the per-seed values (0 with one seed).
        margin: signed distance to failing, in the units of the rule; >= 0 passes.
        n: number of instances (runs or per-seed fits) behind the measurement.
        kind: "verdict" (judged), "info" (reported, no verdict) or "explore" (outside the
            theorem's hypotheses: reported, never PASS); see :data:`KINDS`.
        statement: the id of the statement of ``shared/THEOREMS.md`` the row checks
            (:data:`lora_theory.claims.STATEMENTS`); "" means the claim's first statement.
    """

    claim: str
    check: str
    rule: str
    predicted: float
    mean: float
    spread: float
    margin: float
    n: int
    kind: str = "verdict"
    statement: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def informative(self) -> bool:
        """True for rows without a verdict ("info" and "explore")."""
        return self.kind != "verdict"

    @property
    def passed(self) -> bool:
        """Rows without a verdict do not block; verdict rows pass iff margin >= 0 (NaN fails)."""
        return self.informative or bool(np.isfinite(self.margin) and self.margin >= 0)

    @property
    def verdict(self) -> str:
        """ "PASS" / "FAIL" for verdict rows, else the kind ("info" or "explore")."""
        return self.kind if self.informative else ("PASS" if self.passed else "FAIL")


def report(
    claim: str,
    check: str,
    values: ArrayLike,
    *,
    predicted: float = math.nan,
    rule: str = "reported, no verdict",
    n: int | None = None,
    statement: str = "",
) -> CheckResult:
    """A reported row (kind "info"): mean and spread of ``values``, no verdict."""
    values = np.asarray(values, np.float64)
    return CheckResult(
        claim,
        check,
        rule,
        float(predicted),
        sample_mean(values) if values.size else math.nan,
        sample_std(values),
        math.nan,
        int(values.size if n is None else n),
        kind="info",
        statement=statement,
    )


def explore(
    claim: str,
    check: str,
    values: ArrayLike,
    *,
    predicted: float = math.nan,
    rule: str = "outside the hypotheses: reported, no verdict",
    n: int | None = None,
    statement: str = "",
) -> CheckResult:
    """A row measured outside the theorem's hypotheses (kind "explore"): reported, never PASS.

    ``check`` should say which hypothesis fails and by how much (e.g. "rho = 0.19 > 1/20")."""
    row = report(claim, check, values, predicted=predicted, rule=rule, n=n, statement=statement)
    return dataclasses.replace(row, kind="explore")


def _tagged(rule: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """The rule with a keyword ``statement`` (the THEOREMS.md statement its row checks)."""

    @functools.wraps(rule)
    def tagged(*args: Any, statement: str = "", **kwargs: Any) -> CheckResult:
        row = rule(*args, **kwargs)
        return dataclasses.replace(row, statement=statement) if statement else row

    return tagged


def sample_std(values: ArrayLike) -> float:
    """Standard deviation (ddof = 1) of all the values; 0 for a single value."""
    values = np.asarray(values, np.float64).ravel()
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def sample_mean(values: ArrayLike) -> float:
    """Mean of all the values, as a float."""
    return float(np.mean(np.asarray(values, np.float64)))


def nan_to_inf(value: float, sign: float = 1.0) -> float:
    """``value``, or ``sign`` * inf if it is not finite (a margin that must fail, not be NaN)."""
    return float(value) if np.isfinite(value) else sign * math.inf


@_tagged
def at_most(
    claim: str,
    check: str,
    per_seed: ArrayLike,
    bound: float,
    *,
    predicted: float | None = None,
    rule: str | None = None,
) -> CheckResult:
    """Instance-wise: every value must be <= bound (NaN counts as a failure); margin = bound - max."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else float(np.max(values))
    return CheckResult(
        claim,
        check,
        rule or f"max <= {bound:.3g}",
        float(bound if predicted is None else predicted),
        sample_mean(values),
        sample_std(values),
        float(bound - worst),
        int(values.size),
    )


@_tagged
def at_least(
    claim: str,
    check: str,
    per_seed: ArrayLike,
    bound: float,
    *,
    predicted: float | None = None,
    rule: str | None = None,
) -> CheckResult:
    """Instance-wise: every value must be >= bound (NaN fails); margin = min - bound."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else float(np.min(values))
    return CheckResult(
        claim,
        check,
        rule or f"min >= {bound:.3g}",
        float(bound if predicted is None else predicted),
        sample_mean(values),
        sample_std(values),
        float(worst - bound),
        int(values.size),
    )


@_tagged
def law(
    claim: str, check: str, per_seed: ArrayLike, predicted: float, tol: float, *, rule: str | None = None
) -> CheckResult:
    """A fitted exponent/slope per seed; the seeds' mean must be within ``tol`` of the prediction."""
    values = np.asarray(per_seed, np.float64)
    mean = sample_mean(values)
    return CheckResult(
        claim,
        check,
        rule or f"|mean - predicted| <= {tol:g}",
        float(predicted),
        mean,
        sample_std(values),
        float(tol - abs(mean - predicted)) if np.isfinite(mean) else math.nan,
        int(values.size),
    )


@_tagged
def pooled_law(
    claim: str, check: str, x: ArrayLike, y: ArrayLike, predicted: float, tol: float, *, rule: str | None = None
) -> CheckResult:
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
        sample_std(per_seed),
        float(tol - abs(pooled - predicted)) if np.isfinite(pooled) else math.nan,
        int(y.shape[0]),
    )


@_tagged
def sign_law(
    claim: str, check: str, per_seed: ArrayLike, *, positive: bool = True, rule: str | None = None
) -> CheckResult:
    """A fitted slope whose sign is predicted: every seed's slope must have that sign."""
    values = np.asarray(per_seed, np.float64)
    worst = np.nan if np.isnan(values).any() else (np.min(values) if positive else -np.max(values))
    return CheckResult(
        claim,
        check,
        rule or ("every seed's slope > 0" if positive else "every seed's slope < 0"),
        0.0,
        sample_mean(values),
        sample_std(values),
        float(worst),
        int(values.size),
    )


@_tagged
def mc_equal(
    claim: str,
    check: str,
    samples: ArrayLike,
    predicted: float,
    *,
    z: float = Z_MC,
    rel_floor: float = 1e-9,
    rule: str | None = None,
) -> CheckResult:
    """Monte Carlo: |mean - predicted| <= z SE + rel_floor |predicted| (SE over seeds)."""
    samples = np.asarray(samples, np.float64)
    mean, sd = sample_mean(samples), sample_std(samples)
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


@_tagged
def mc_at_most(
    claim: str,
    check: str,
    samples: ArrayLike,
    bound: float,
    *,
    z: float = Z_MC,
    rel_floor: float = 1e-9,
    rule: str | None = None,
) -> CheckResult:
    """Monte Carlo one-sided: mean <= bound + z SE + rel_floor |bound|."""
    samples = np.asarray(samples, np.float64)
    mean, sd = sample_mean(samples), sample_std(samples)
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


def fit_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of y against x (NaN if any value is not finite or x is constant)."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()) or np.ptp(x) == 0:
        return math.nan
    xc = x - x.mean()
    return float(np.sum(xc * (y - y.mean())) / np.sum(xc**2))


def tail_rate(
    risk: ArrayLike, *, floor: float = 1e-20, ceiling: float | None = None, tail_fraction: float = 0.5
) -> float:
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


def first_step_at_or_below(values: ArrayLike, level: ArrayLike) -> np.ndarray:
    """Index of the first entry <= level along the last axis (NaN if none)."""
    values = np.asarray(values)
    hit = values <= level
    first = np.argmax(hit, axis=-1).astype(np.float64)
    return np.where(hit.any(axis=-1), first, np.nan)
