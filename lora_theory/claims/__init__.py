"""The claims registry: the statements of LoRA-One and HRP that a simulation can check, as measured checks.

Which statements of ``shared/THEOREMS.md`` are checked, by which rows, and which are not (and
why) is :data:`STATEMENTS` and the coverage table (:func:`coverage`, printed at the end of
``lora-theory verify``).

One :class:`Claim` per claim of the SPEC (section "Claims"), one module per claim
(:mod:`~lora_theory.claims.claim1` ... :mod:`~lora_theory.claims.claim8`): its paper, theorem, a
one-sentence statement, the measured quantity, the prediction (a function in
:mod:`lora_theory.theory`), the experiment at two sizes (``quick``: seconds, ``full``: minutes)
and the verdict rule.  Running a claim is two steps, kept apart so that a test can feed the
*same* measurement a deliberately wrong prediction and watch the verdict turn to FAIL:

* ``claim.measure(params) -> dict of numpy arrays`` runs the experiment (one compiled program per
  static shape, vmapped over seeds and over the swept values; every run trains with the
  package's one loop, :func:`~lora_theory.engine.train`, and a claim-specific ``observe``);
* ``claim.judge(measurement, params) -> list[CheckResult]`` compares it with the prediction, with
  the rules of :mod:`~lora_theory.claims._verdicts` (instance-wise bounds, fitted laws, Monte
  Carlo expectations; the margin of a row is signed: >= 0 passes).

The shared experiment helpers are in :mod:`~lora_theory.claims._common`, the verify table's
formatting in :mod:`~lora_theory.claims._report`, the statements and the coverage table in
:mod:`~lora_theory.claims._statements`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8
from ._registry import Claim as Claim
from ._report import format_table as format_table
from ._report import results_frame as results_frame
from ._statements import STATEMENTS as STATEMENTS
from ._statements import Statement as Statement
from ._statements import coverage as coverage
from ._statements import format_coverage as format_coverage
from ._statements import get_statement as get_statement
from ._verdicts import KINDS as KINDS
from ._verdicts import Z_MC as Z_MC
from ._verdicts import CheckResult as CheckResult
from ._verdicts import at_least as at_least
from ._verdicts import at_most as at_most
from ._verdicts import explore as explore
from ._verdicts import fit_slope as fit_slope
from ._verdicts import law as law
from ._verdicts import mc_at_most as mc_at_most
from ._verdicts import mc_equal as mc_equal
from ._verdicts import pooled_law as pooled_law
from ._verdicts import report as report
from ._verdicts import sign_law as sign_law
from ._verdicts import tail_rate as tail_rate

__all__ = [
    "CheckResult",
    "Claim",
    "ClaimRun",
    "CLAIMS",
    "claim_ids",
    "get_claim",
    "resolve_params",
    "label_rows",
    "run_claim",
    "verify",
    "results_frame",
    "format_table",
    "Statement",
    "STATEMENTS",
    "get_statement",
    "coverage",
    "format_coverage",
    "KINDS",
    "report",
    "explore",
    "Z_MC",
    "at_most",
    "at_least",
    "law",
    "pooled_law",
    "sign_law",
    "mc_equal",
    "mc_at_most",
    "tail_rate",
    "fit_slope",
]

#: the registered claims, in the SPEC's order.
CLAIMS: tuple[Claim, ...] = tuple(
    module.CLAIM for module in (claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8)
)


def claim_ids() -> tuple[str, ...]:
    """The registered claim ids, in order."""
    return tuple(c.id for c in CLAIMS)


def get_claim(claim_id: str) -> Claim:
    """The claim with this id (ValueError listing the valid ids otherwise)."""
    for claim in CLAIMS:
        if claim.id == str(claim_id):
            return claim
    raise ValueError(f"unknown claim {claim_id!r}; valid claims: {', '.join(claim_ids())}")


def resolve_params(claim: Claim, size: str = "quick", *, seeds: int | None = None, **overrides: Any) -> dict:
    """The parameters of ``claim`` at ``size`` ('quick' or 'full'), with ``seeds`` and overrides applied."""
    if size not in ("quick", "full"):
        raise ValueError(f"size must be 'quick' or 'full', got {size!r}")
    params = dict(claim.quick if size == "quick" else claim.full)
    unknown = set(overrides) - set(params) - {"first_seed"}
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


def label_rows(claim: Claim, rows: Sequence[CheckResult]) -> list[CheckResult]:
    """The rows with their statement filled in (``claim.covers[0]`` where a row names none), checked
    against :data:`STATEMENTS` (ValueError for an unknown id)."""
    default = claim.covers[0] if claim.covers else ""
    out = [row if row.statement else dataclasses.replace(row, statement=default) for row in rows]
    for row in out:
        if row.statement:
            get_statement(row.statement)
    return out


def run_claim(claim_id: str, size: str = "quick", *, seeds: int | None = None, **overrides: Any) -> ClaimRun:
    """Measure and judge one claim.

    Args:
        claim_id: "1" .. "8".
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
    rows = label_rows(claim, claim.judge(measurement, params))
    return ClaimRun(claim, params, measurement, rows, time.perf_counter() - start)


def verify(
    claims: Sequence[str] | None = None,
    size: str = "quick",
    *,
    seeds: int | None = None,
    progress: Callable[[Claim, ClaimRun], object] | None = None,
) -> list[ClaimRun]:
    """Run the given claims (default all) at ``size``; ``progress(claim, run)`` is called after each."""
    runs = []
    for claim_id in claims or claim_ids():
        run = run_claim(claim_id, size, seeds=seeds)
        runs.append(run)
        if progress is not None:
            progress(run.claim, run)
    return runs
