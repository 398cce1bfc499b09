"""The :class:`Claim` record: one theorem of LoRA-One or HRP as a measured check."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Claim"]


@dataclass(frozen=True)
class Claim:
    """One claim of the papers as a measured check.

    Attributes:
        id: "1" .. "8" (the SPEC's numbering).
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
        covers: ids of the statements (:data:`lora_theory.claims.STATEMENTS`) the claim checks;
            a row that names none checks ``covers[0]``.
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
    covers: tuple[str, ...] = ()
