"""``lora-theory run | plot | reproduce``: the paper figures (experiments/), one command each.

* ``run NAME [--seeds S] [--quick] [--set key=value ...] [--out DIR] [--quiet]``: run one figure's
  experiment (full preset unless ``--quick``) and write ``DIR/NAME.parquet`` + ``.json``.
* ``plot NAME [--out DIR] [--figures-dir DIR]``: draw the figure from the saved results in DIR,
  never recomputing anything.
* ``reproduce [--quick] [--out DIR] [--figures-dir DIR] [--quiet]``: run and plot every figure.

``--set`` overrides are checked against the experiment's config dataclass: an unknown key is an
error that lists the valid keys, and values are parsed to the field's type (tuples take
comma-separated values).  Every command turns on JAX's persistent compilation cache
(:func:`lora_theory.cache.enable_compilation_cache`: a per-user folder, not ``OUT``), so a second
run of a figure skips compilation, which dominates the quick presets; with ``--quick`` XLA compiles
at optimisation level 0 (half the compile time; the programs run for well under a second each).  Progress bars (tqdm, on stderr) tick over each figure's chunks of work;
they are silent with ``--quiet`` or when stderr is not a terminal.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..cache import enable_compilation_cache

__all__ = ["add_commands", "list_entries", "run_experiment", "plot_experiment", "reproduce"]

DEFAULT_OUT = "results"
DEFAULT_FIGURES = "figures"


def _experiment(name: str) -> Any:
    from experiments import MODULES, REGISTRY

    if name not in MODULES:
        raise KeyError(f"unknown experiment {name!r}; valid experiments: {', '.join(MODULES)}")
    return REGISTRY[name]


def make_config(name: str, *, quick: bool = False, seeds: int | None = None, overrides: Sequence[str] = ()) -> Any:
    """The config of experiment ``name``: its preset, ``seeds`` and ``--set`` overrides applied."""
    from experiments.common import apply_overrides

    module = _experiment(name)
    config = module.Config.quick() if quick else module.Config.full()
    if seeds is not None:
        if seeds < 1:
            from experiments.common import OverrideError

            raise OverrideError(f"--seeds {seeds}: must be at least 1")
        config = dataclasses.replace(config, seeds=seeds)
    return apply_overrides(config, overrides)


def run_experiment(name: str, config: Any, out_dir: str | Path, *, progress: bool = True) -> Any:
    """Run experiment ``name`` with ``config``; results go to ``out_dir``. Returns the DataFrame."""
    return _experiment(name).run(config, out_dir, progress=progress)


def plot_experiment(name: str, out_dir: str | Path, figures_dir: str | Path) -> list[Path]:
    """Draw experiment ``name``'s figure from ``out_dir``'s saved results only."""
    from ..results import read_results

    module = _experiment(name)
    parquet = Path(out_dir) / f"{name}.parquet"
    if not parquet.exists():
        raise FileNotFoundError(
            f"no results for {name!r} in {out_dir} (run `lora-theory run {name} --out {out_dir}` first)"
        )
    df, metadata = read_results(out_dir, name)
    return module.plot(df, metadata, figures_dir)


def reproduce(
    *,
    quick: bool = False,
    out_dir: str | Path = DEFAULT_OUT,
    figures_dir: str | Path = DEFAULT_FIGURES,
    progress: bool = True,
    names: Sequence[str] | None = None,
    log: Callable[[str], object] = print,
) -> dict[str, float]:
    """Run and plot every experiment (or ``names``); returns name -> wall seconds (run + plot)."""
    from experiments import MODULES

    times = {}
    total = time.perf_counter()
    for name in names or list(MODULES):
        start = time.perf_counter()
        config = make_config(name, quick=quick)
        run_experiment(name, config, out_dir, progress=progress)
        paths = plot_experiment(name, out_dir, figures_dir)
        times[name] = time.perf_counter() - start
        log(f"{name}: {times[name]:.1f} s -> {', '.join(str(p) for p in paths)}")
    log(f"reproduce{' --quick' if quick else ''}: {len(times)} figures in {time.perf_counter() - total:.1f} s")
    return times


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _run_command(args: argparse.Namespace) -> int:
    if args.quick:
        from ..cache import quick_compile_flags

        quick_compile_flags()
    enable_compilation_cache()
    config = make_config(args.name, quick=args.quick, seeds=args.seeds, overrides=args.set or ())
    start = time.perf_counter()
    df = run_experiment(args.name, config, args.out, progress=_progress(args))
    if not args.quiet:
        print(
            f"{args.name}: {len(df)} rows in {time.perf_counter() - start:.1f} s -> {Path(args.out) / args.name}.parquet"
        )
    return 0


def _plot_command(args: argparse.Namespace) -> int:
    enable_compilation_cache()  # a figure's plot may evaluate the theory's jnp formulas
    paths = plot_experiment(args.name, args.out, args.figures_dir)
    print("\n".join(str(p) for p in paths))
    return 0


def _reproduce_command(args: argparse.Namespace) -> int:
    if args.quick:
        from ..cache import quick_compile_flags

        quick_compile_flags()
    enable_compilation_cache()
    log = (lambda *a, **k: None) if args.quiet else print
    reproduce(quick=args.quick, out_dir=args.out, figures_dir=args.figures_dir, progress=_progress(args), log=log)
    return 0


def _guard(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn bad names, overrides and untrustworthy results files into the CLI's clear error (exit 2)."""

    def wrapped(args: argparse.Namespace) -> int:
        from experiments.common import OverrideError

        from ..results import ResultsError

        try:
            return command(args)
        except (OverrideError, KeyError, FileNotFoundError, ResultsError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"lora-theory: error: {message}", file=sys.stderr)
            return 2

    return wrapped


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run``, ``plot`` and ``reproduce`` to the ``lora-theory`` parser."""
    p = subparsers.add_parser(
        "run",
        help="run one figure's experiment (see `lora-theory list`)",
        description="Run one figure's experiment through the engine and write "
        "DIR/NAME.parquet + DIR/NAME.json (full preset unless --quick).",
    )
    p.add_argument("name", help="experiment name (f1, f1b, f2, ..., f9)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    p.add_argument("--quick", action="store_true", help="the quick preset (a fast look)")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field (repeatable; tuples comma-separated)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT}/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    p.set_defaults(func=_guard(_run_command))

    p = subparsers.add_parser("plot", help="draw one figure from saved results (never recomputes)")
    p.add_argument("name", help="experiment name")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"results folder to read (default {DEFAULT_OUT}/)")
    p.add_argument("--figures-dir", default=DEFAULT_FIGURES, help=f"where PNG + PDF go (default {DEFAULT_FIGURES}/)")
    p.set_defaults(func=_guard(_plot_command))

    p = subparsers.add_parser("reproduce", help="run and plot every figure")
    p.add_argument("--quick", action="store_true", help="quick presets (under 3 minutes on 2 cores)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT}/)")
    p.add_argument("--figures-dir", default=DEFAULT_FIGURES, help=f"where PNG + PDF go (default {DEFAULT_FIGURES}/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no log")
    p.set_defaults(func=_guard(_reproduce_command))


def list_entries() -> None:
    """Print the experiments (for ``lora-theory list``)."""
    from experiments import MODULES

    print("experiments (lora-theory run|plot NAME; reproduce):")
    for name in MODULES:
        module = _experiment(name)
        print(f"  {name:<4} {module.TITLE}")
