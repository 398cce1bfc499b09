"""The papers' statements, one record per statement of ``shared/THEOREMS.md``, and the coverage table.

A row of the verify table names the statement it checks (``CheckResult.statement``, an id of
:data:`STATEMENTS`; a row without one checks its claim's first statement, ``Claim.covers[0]``).
:func:`coverage` lists, for every statement, the claims and rows that check it, or why nothing
does; a statement transcribed from an abstract or a summary rather than the theorem's text is
marked ``verified=False``, and every row resting on it says so in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import ClaimRun

__all__ = ["Statement", "STATEMENTS", "get_statement", "coverage", "format_coverage"]


@dataclass(frozen=True)
class Statement:
    """One statement of LoRA-One or HRP as ``shared/THEOREMS.md`` transcribes it.

    Attributes:
        id: short id, used by rows (e.g. "LoRA-One Thm 3.3").
        summary: the statement in one line.
        verified: False where THEOREMS.md marks it [unverified] (only a summary or the abstract
            was available).
        unchecked: why no claim checks it ("" when a claim does).
    """

    id: str
    summary: str
    verified: bool = True
    unchecked: str = ""


#: every statement of ``shared/THEOREMS.md``, in its order.
STATEMENTS: tuple[Statement, ...] = (
    Statement(
        "LoRA-One Sec. 2 (linear)", "generalisation: fresh-sample test error = ||A_t B_t - dW||_F^2 (linear model)"
    ),
    Statement("LoRA-One Sec. 2 (ReLU)", "generalisation: fresh-sample test error <= ||A_t B_t - dW||_F^2 (ReLU model)"),
    Statement("LoRA-One Thm 3.1", "GD from LoRA-init: B_t stays in G's top-r* row space for every t >= 1"),
    Statement(
        "LoRA-One Thm 3.2",
        "GD, r >= 2 r*, small alpha: ||U_perp(G)^T U(A_t*)||_op <~ theta at t* <~ ln(sqrt(d)/theta) / ln(1 + eta lambda_r*(G))",
    ),
    Statement("LoRA-One Thm C.9 (r* <= r < 2 r*)", "A-alignment in the under-2r* case", verified=False),
    Statement(
        "LoRA-One Eq. (8)",
        "||Sigma_hat - I||_op <= eps = min{1/(2 kappa), c/kappa^3} with probability >= 1 - 2C exp(-eps^2 N)",
    ),
    Statement("LoRA-One Thm 3.3", "spectral init (gamma = 1): ||A_0 B_0 - dW||_op <= eps ||dW||_op <= lambda*_r*/2"),
    Statement(
        "LoRA-One App. C.2",
        "GD from spectral init converges linearly, at a rate that degrades with kappa",
        verified=False,
    ),
    Statement(
        "LoRA-One App. C.3",
        "preconditioned GD removes the kappa dependence (the benefit placed in the over-ranked case r > r*)",
        verified=False,
    ),
    Statement(
        "LoRA-One Assumption 4.1", "balanced neurons, and a shift small against the pretrained columns by kappa r*"
    ),
    Statement(
        "LoRA-One Lemma D.5",
        "spectral init with gamma = 2 (ReLU): ||A_0 B_0 - dW||_F <= rho lambda*_r*",
        verified=False,
    ),
    Statement(
        "LoRA-One Thm 4.2",
        "ReLU, precgd, spectral init gamma = 2, rho <= 1/20: ||A_t B_t - dW||_F <= (1 - eta/4)^t rho lambda*_r*, independent of kappa",
    ),
    Statement(
        "LoRA-One Sec. 5 (LoRA-GA)",
        "LoRA-GA's init and offset give a biased estimate of dW; B_t may stay trapped outside G's top subspace",
    ),
    Statement("LoRA-One Sec. 5 (LoRA-SB)", "LoRA-SB's fixed subspaces of G cannot reach dW"),
    Statement(
        "LoRA-One App. F",
        "LoRA-GA's bias scales with the model size",
        verified=False,
        unchecked="claim 5 sweeps N at one d (its floor ~ sqrt(d/N) implies growth like sqrt(d) at fixed N), no d sweep",
    ),
    Statement(
        "LoRA-One Fig. 1(c)",
        "two-layer network, odd MNIST classes -> even: LoRA-One stays close to full fine-tuning",
        unchecked="explored by figure F8 (scikit-learn digits, `lora-theory run f8`), no verdict row: a figure, not a theorem",
    ),
    Statement(
        "LoRA-One Fig. 1(b)",
        "T5 on MRPC: principal angles to the one-step gradient fall from ~1 to 0.2-0.4",
        unchecked="T5 / MRPC is outside a CPU suite; F8 measures the same angles on the digits network (a figure, no verdict)",
    ),
    Statement("HRP H1", "asymmetric LoRA converges to M projected onto the frozen factor's span", verified=False),
    Statement(
        "HRP H2",
        "a wise init along M's top-r directions converges exponentially to Eckart-Young (asymmetric and classic)",
        verified=False,
    ),
    Statement(
        "HRP H3",
        "random frozen init: E[final loss] = (1 - r/n) ||M||_F^2 / 2 (the suite's closed form)",
        verified=False,
    ),
    Statement("HRP H4", "classic LoRA from random init can be trapped near random results for long", verified=False),
    Statement(
        "HRP H5",
        "HRP (a short high-rank preheat) improves the expected loss over random init, more so at low effective rank",
        verified=False,
    ),
)


def get_statement(statement_id: str) -> Statement:
    """The statement with this id (ValueError listing the ids otherwise)."""
    for statement in STATEMENTS:
        if statement.id == statement_id:
            return statement
    raise ValueError(f"unknown statement {statement_id!r}; known: {', '.join(s.id for s in STATEMENTS)}")


def coverage(runs: Sequence[ClaimRun]) -> list[dict]:
    """One record per statement: the rows of ``runs`` that check it, by kind.

    Returns:
        Dicts with keys ``statement``, ``verified``, ``verdict`` (row labels "claim.row" of the
        verdict rows), ``other`` (info and explore rows), ``passed`` (all verdict rows pass; None
        without any) and ``note`` (why it is not checked, or that it rests on an unverified
        transcription).
    """
    records = []
    for statement in STATEMENTS:
        verdict, other, passed = [], [], []
        for run in runs:
            for index, row in enumerate(run.rows, start=1):
                if row.statement != statement.id:
                    continue
                label = f"{row.claim}.{index}"
                if row.informative:
                    other.append(f"{label}({row.kind})")
                else:
                    verdict.append(label)
                    passed.append(row.passed)
        if not verdict and not other:
            note = statement.unchecked or "not checked by the claims that were run"
        elif not verdict:
            note = "reported only (no verdict row)"
        else:
            note = ""
        if not statement.verified:
            note = "; ".join(filter(None, [note, "rests on an unverified transcription (THEOREMS.md)"]))
        records.append(
            dict(
                statement=statement.id,
                summary=statement.summary,
                verified=statement.verified,
                verdict=verdict,
                other=other,
                passed=all(passed) if passed else None,
                note=note,
            )
        )
    return records


def format_coverage(runs: Sequence[ClaimRun]) -> str:
    """The coverage table as text: one line per statement of THEOREMS.md."""
    lines = [f"{'statement':<35} {'status':<9} rows (claim.row)", "-" * 79]
    for rec in coverage(runs):
        status = (
            "-"
            if rec["passed"] is None and not rec["other"]
            else ("reported" if rec["passed"] is None else ("PASS" if rec["passed"] else "FAIL"))
        )
        rows = ", ".join(rec["verdict"] + rec["other"]) or "none"
        note = f"  [{rec['note']}]" if rec["note"] else ""
        lines.append(f"{rec['statement']:<35} {status:<9} {rows}{note}")
    return "\n".join(lines)
