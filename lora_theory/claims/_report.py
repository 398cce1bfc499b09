"""The verify table: the judged rows of claim runs as a DataFrame or as text."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from . import ClaimRun

__all__ = ["results_frame", "format_table"]


def results_frame(runs: Sequence[ClaimRun]) -> pd.DataFrame:
    """The verify table as a pandas DataFrame, one row per check."""
    import pandas as pd

    records = []
    for run in runs:
        for index, row in enumerate(run.rows, start=1):
            record = dataclasses.asdict(row)
            record["row"] = f"{row.claim}.{index}"
            record["verdict"] = row.verdict
            record["paper"] = run.claim.paper
            record["theorem"] = run.claim.theorem
            record["wall_time_s"] = run.wall_time
            records.append(record)
    columns = [
        "claim",
        "row",
        "kind",
        "statement",
        "paper",
        "theorem",
        "check",
        "rule",
        "predicted",
        "mean",
        "spread",
        "margin",
        "verdict",
        "n",
        "wall_time_s",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "nan" if value is None or np.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.3g}"


def format_table(runs: Sequence[ClaimRun]) -> str:
    """The verify table as text, one row per check.

    Columns: row label (claim.row), verdict (PASS, FAIL, info or explore), predicted, measured mean
    +- spread over seeds, margin (>= 0 passes), and what is checked [verdict rule; number of
    instances]."""
    header = f"{'row':<5} {'verdict':<7} {'predicted':>9} {'measured (mean +- sd)':>21} {'margin':>9}  check [rule; n]"
    lines = [header, "-" * len(header)]
    for run in runs:
        for index, row in enumerate(run.rows, start=1):
            measured = f"{_fmt(row.mean)} +- {_fmt(row.spread)}"
            lines.append(
                f"{f'{row.claim}.{index}':<5} {row.verdict:<7} {_fmt(row.predicted):>9} {measured:>21} {_fmt(row.margin):>9}  "
                f"{row.check} [{row.rule}; n={row.n}]"
            )
    return "\n".join(lines)
