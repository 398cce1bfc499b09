"""``lora-theory verify``: run the claims registry and print the verdict table.

``verify [--quick] [--claim ID ...] [--seeds S] [--out DIR]`` measures every claim of
:mod:`lora_theory.claims` (or the chosen ones) at the quick or full size, prints one row per check
(claim, predicted, measured mean +- spread over seeds, margin, verdict), writes the table as
Parquet + JSON with :func:`lora_theory.results.write_results`, then the coverage table (each
statement of ``shared/THEOREMS.md`` and the rows that check it, or why none does), and exits 1 if
any check fails.  ``--quick`` compiles at XLA optimisation level 0
(:func:`~lora_theory.cache.quick_compile_flags`).
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["add_commands", "list_entries", "verify_command"]


def _claim_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` subcommand."""
    p = subparsers.add_parser(
        "verify",
        help="check the claims of LoRA-One and HRP numerically; prints the verdict and coverage tables",
        description="Measure each claim of the registry (lora_theory.claims) and compare it with the "
        "theory's prediction. Exits 1 if a check fails.",
    )
    p.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes on 2 CPU cores)")
    p.add_argument(
        "--claim",
        type=_claim_list,
        action="extend",
        default=None,
        help="claim id(s) to check, e.g. --claim 3 or --claim 1,6 (default: all; see `lora-theory list`)",
    )
    p.add_argument("--seeds", type=int, default=None, help="number of seeds for every claim (default: each claim's)")
    p.add_argument("--out", default="results/verify", help="output folder for verify.parquet / verify.json")
    p.add_argument("--name", default=None, help="results file stem (default: verify or verify_quick)")
    p.set_defaults(func=verify_command)


def verify_command(args: argparse.Namespace) -> int:
    """``lora-theory verify``: run the claims, print the verdict and coverage tables, write the results; 1 if a check fails."""
    from ..cache import enable_compilation_cache, quick_compile_flags

    if args.quick:
        quick_compile_flags()
    import jax

    from ..claims import claim_ids, coverage, format_coverage, format_table, get_claim, results_frame, run_claim
    from ..config import ConfigError
    from ..results import write_results

    enable_compilation_cache()
    size = "quick" if args.quick else "full"
    ids = args.claim or list(claim_ids())
    for claim_id in ids:  # every error before anything compiles
        try:
            get_claim(claim_id)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"seeds={args.seeds!r} is invalid: must be at least 1")
    start = time.perf_counter()
    runs = []
    for claim_id in ids:
        run = run_claim(claim_id, size, seeds=args.seeds)
        runs.append(run)
        status = "PASS" if run.passed else "FAIL"
        print(f"claim {claim_id}: {status} ({run.wall_time:.1f} s)", file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    df = results_frame(runs)
    metadata = {
        "command": "verify",
        "argv": sys.argv[1:],
        "size": size,
        "claims": ids,
        "params": {run.claim.id: run.params for run in runs},
        "wall_time_s": wall,
        "passed": bool(all(run.passed for run in runs)),
        "coverage": coverage(runs),
    }
    name = args.name or ("verify_quick" if args.quick else "verify")
    parquet, _ = write_results(df, args.out, name, metadata)
    print(format_table(runs))
    print("\ncoverage: the statements of shared/THEOREMS.md and the rows that check them")
    print(format_coverage(runs))
    failed = df[df["verdict"] == "FAIL"]
    summary = (
        "all checks pass"
        if failed.empty
        else f"{len(failed)} check(s) FAIL (claims {', '.join(sorted(set(failed['claim'])))})"
    )
    print(f"\n{summary}; {len(ids)} claim(s), {size} size, {wall:.1f} s on {jax.default_backend()}; results: {parquet}")
    return 0 if failed.empty else 1


def list_entries() -> None:
    """Print the claims of the registry (for ``lora-theory list``)."""
    from ..claims import CLAIMS

    print("claims (lora-theory verify --claim ID):")
    for claim in CLAIMS:
        print(f"  {claim.id}  {claim.paper} {claim.theorem}: {claim.statement}")
