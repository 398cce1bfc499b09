"""``lora-theory train`` (one configuration, every parameter a flag) and ``lora-theory list``.

The configuration flags are generated from :class:`~lora_theory.config.RunConfig`'s field
metadata (:func:`add_config_flags`); their valid names are the live registries, so an init or
optimizer registered in the same process (``lt.register_init``) works with
``lora_theory.cli.main(["train", "--init", "my_init", ...])``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import FieldSpec, RunConfig
    from ..sweep import SweepJob

__all__ = ["add_commands", "add_config_flags", "list_entries", "train_command", "list_command"]


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a name or comma-separated names, got {text!r}")
    return names


def _flag_help(name: str, spec: FieldSpec) -> str:
    """The field's help, with its valid names (read now: registered inits and optimizers show)."""
    choices = spec.valid_choices()
    text = spec.help
    if choices is not None:
        text += f" ({' | '.join(map(str, choices))})"
    if name == "variant":
        from ..inits import VARIANTS

        text += " (" + "; ".join(f"{init}: {', '.join(v)}" for init, v in VARIANTS.items()) + ")"
    return text


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`~lora_theory.config.RunConfig` field, generated from its metadata.

    In groups (``FieldSpec.group``), named ``FieldSpec.cli_flag`` (``--r-star`` for ``r_star``),
    with the field's default.  Dynamic floats take comma lists (a sweep in one compiled program),
    as do the ``cli_list`` fields (``--init``, ``--optimizer``: one config each); the tuple field
    (``--singular-values``) takes a comma list as one value.
    """
    from ..config import FIELD_SPECS, GROUPS, RunConfig, field_type

    defaults = RunConfig()
    groups = {group: parser.add_argument_group(group) for group in GROUPS}
    for name, spec in FIELD_SPECS.items():
        default = getattr(defaults, name)
        kind = field_type(name)
        kwargs: dict[str, Any]
        if spec.dynamic or kind is tuple:
            kwargs = dict(type=_floats, default=None if default is None else [default])
        elif spec.cli_list:
            kwargs = dict(type=_names, default=[default])
        else:
            kwargs = dict(type=kind, default=default)
        groups[spec.group].add_argument(
            spec.cli_flag(name), dest=name, help=_flag_help(name, spec), action=_Given, **kwargs
        )


class _Given(argparse.Action):
    """Store the value and record that the flag was given (``namespace.given``): a flag given for
    a field the chosen model does not read is an error, not silently ignored."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        given = getattr(namespace, "given", None) or set()
        given.add(self.dest)
        namespace.given = given


#: read for every init: the model is W0 + scale (A B + offset) (:mod:`lora_theory.scaling`); pissa and
#: milora declare them too, because their factors divide by the scale
_READ_BY_EVERY_RUN = frozenset({"scaling", "lora_alpha"})


def _refuse_unread_component_flags(args: argparse.Namespace, given: Sequence[str], shown: Callable[[str], Any]) -> None:
    """A flag for an init's or optimizer's parameter that none of the chosen inits / optimizers reads
    (``--alpha`` with ``--init spectral``, ``--damping`` with ``--optimizer gd``) is an error.

    With comma lists (``--init random,spectral``) a parameter read by any of them is accepted.
    """
    from ..config import invalid
    from ..inits import INITS
    from ..optimizers import OPTIMIZERS

    inits = [INITS[n] for n in _as_list(args.init) if n in INITS]
    optimizers = [OPTIMIZERS[n] for n in _as_list(args.optimizer) if n in OPTIMIZERS]
    if not inits or not optimizers:
        return  # an unknown name: validate's error names it
    any_init_reads = {p for spec in INITS.values() for p in spec.params} - _READ_BY_EVERY_RUN | {"variant"}
    init_reads = {p for spec in inits for p in spec.params} | ({"variant"} if any(s.variants for s in inits) else set())
    any_optimizer_reads = {p for spec in OPTIMIZERS.values() for p in spec.params} - {"lr"}  # every one reads lr
    optimizer_reads = {p for spec in optimizers for p in spec.params}
    for kind, chosen, declared, reads in (
        ("init", inits, any_init_reads, init_reads),
        ("optimizer", optimizers, any_optimizer_reads, optimizer_reads),
    ):
        for field in given:
            if field in declared and field not in reads:
                names = ", ".join(repr(spec.name) for spec in chosen)
                read = ", ".join(sorted(reads)) or "nothing"
                raise invalid(field, shown(field), f"{kind} {names} does not read it (it reads: {read})")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def preflight(args: argparse.Namespace) -> None:
    """The checks of ``train``'s arguments that only the command line can make, before anything
    compiles: no flag for a problem field the model does not read (``--activation`` with
    ``--model population``) nor for a parameter the init or optimizer does not read (``--alpha``
    with ``--init spectral``, ``--damping`` with ``--optimizer gd``), a file name for ``--name``,
    executor flags that fit ``--executor``, and output folders (``--out``, submitit's) that can be
    created and written (so a sweep never runs to the end and then fails to save).  ``--seeds``
    and ``--seed`` are checked by :func:`~lora_theory.engine.seed_count`, as for every sweep.

    Raises:
        ConfigError: naming the parameter.
    """
    import tempfile

    from ..config import FIELD_SPECS, ConfigError, invalid
    from ..models import MODELS

    given = sorted(getattr(args, "given", set()))

    def shown(name: str) -> Any:
        value = getattr(args, name)
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    if args.model in MODELS:
        reads = set(MODELS[args.model].fields)
        for name in given:
            if FIELD_SPECS[name].problem and name != "model" and name not in reads:
                raise invalid(
                    name, shown(name), f"model {args.model!r} does not use it (it reads: {', '.join(sorted(reads))})"
                )
    _refuse_unread_component_flags(args, given, shown)
    name = args.name
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise invalid("name", name, "must be a file name (no '/'; the folder is --out)")
    _check_executor_flags(args)
    folders = [("out", args.out)]
    if args.executor == "submitit":
        folders.append(("submitit_folder", args.submitit_folder or str(Path(args.out) / f"{args.name}.submitit")))
    for name, folder in folders:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as error:
            raise ConfigError(
                f"{name}={folder!r} is invalid: cannot create or write the folder ({error.strerror or error})"
            ) from error


def _check_executor_flags(args: argparse.Namespace) -> None:
    """``--workers`` >= 1 and only with an executor it sizes; submitit's flags only with submitit."""
    from ..config import invalid

    if args.workers is not None:
        if args.workers < 1:
            raise invalid("workers", args.workers, "must be at least 1")
        if args.executor == "inline":
            raise invalid(
                "workers", args.workers, "applies to --executor processes or submitit (inline runs in this process)"
            )
    if args.executor != "submitit":
        for dest in ("submitit_folder", *SUBMITIT_FLAGS, "submitit_option"):
            if getattr(args, dest) is not None:
                raise invalid(dest, getattr(args, dest), "applies to --executor submitit only")
        if args.submitit_cluster != "auto":
            raise invalid("submitit_cluster", args.submitit_cluster, "applies to --executor submitit only")
    else:
        submitit_parameters(args)  # malformed options fail here, before anything runs


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train",
        help="train one configuration over seeds (comma lists sweep: --init a,b --alpha 1,0.01)",
        description="Train LoRA on one problem configuration for --seeds seeds. Float flags accept "
        "comma-separated lists, swept inside one compiled program; --init and --optimizer accept "
        "lists too (one compile each).",
    )
    add_config_flags(p)
    g = p.add_argument_group("runs and output")
    g.add_argument("--seeds", type=int, default=5, help="number of seeds")
    g.add_argument("--seed", type=int, default=0, help="first seed")
    g.add_argument(
        "--chunk-seeds",
        type=int,
        default=None,
        help="seeds per chunk: each chunk is written as it finishes and a re-run skips finished chunks "
        "(default: all seeds in one chunk)",
    )
    g.add_argument("--out", default="results/train", help="output folder")
    g.add_argument("--name", default="train", help="results file stem")
    g.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_executor_flags(p)
    p.set_defaults(func=train_command)


#: submitit-only flags: dest -> (submitit parameter, type, help).
SUBMITIT_FLAGS = {
    "slurm_partition": ("slurm_partition", str, "SLURM partition"),
    "slurm_time": ("timeout_min", int, "time limit of each job, in minutes"),
    "slurm_gpus": ("gpus_per_node", int, "GPUs per job"),
    "slurm_cpus": ("cpus_per_task", int, "CPUs per job"),
    "slurm_mem_gb": ("mem_gb", float, "memory per job, in GB"),
}


def _add_executor_flags(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--workers`` and the submitit options (see lora_theory.executors)."""
    from ..executors import EXECUTORS

    g = parser.add_argument_group(
        "where the chunks run",
        "each chunk (--chunk-seeds seeds of one config) is one unit of work, written atomically; the "
        "files are the same whichever executor ran them, and a sweep resumes under another one",
    )
    g.add_argument(
        "--executor",
        default="inline",
        choices=EXECUTORS,
        help="inline: this process; processes: a local pool of --workers processes; "
        "submitit: SLURM job arrays through submitit (local processes where SLURM is absent)",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes: the pool's size (default: the CPUs, at most one per chunk); "
        "submitit: jobs running at once (slurm_array_parallelism)",
    )
    g.add_argument(
        "--submitit-folder",
        default=None,
        metavar="DIR",
        help="submitit's job folder (pickles, logs; default OUT/NAME.submitit)",
    )
    g.add_argument(
        "--submitit-cluster",
        default="auto",
        choices=("auto", "slurm", "local", "debug"),
        help="auto: SLURM where sbatch exists, else local processes",
    )
    for dest, (_, kind, text) in SUBMITIT_FLAGS.items():
        g.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, default=None, help=text)
    g.add_argument(
        "--submitit-option",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="any other submitit parameter (repeatable), e.g. slurm_account=abc, slurm_qos=high",
    )


def _option_value(text: str) -> int | float | bool | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def submitit_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The submitit parameters the flags give (``--slurm-*``, ``--workers``, ``--submitit-option``).

    Raises:
        ConfigError: for a malformed ``--submitit-option`` or an out-of-range value, naming it.
    """
    from ..config import invalid

    parameters: dict[str, Any] = {"name": f"lora-theory-{args.name}"}
    for dest, (key, kind, _) in SUBMITIT_FLAGS.items():
        value = getattr(args, dest)
        if value is not None:
            if kind in (int, float) and not value > 0:
                raise invalid(dest, value, "must be positive")
            parameters[key] = value
    if args.workers is not None:
        parameters["slurm_array_parallelism"] = args.workers
    for text in args.submitit_option or ():
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise invalid("submitit_option", text, "must be KEY=VALUE (a submitit parameter, e.g. slurm_account=abc)")
        parameters[key.strip()] = _option_value(value.strip())
    return parameters


def _configs_from_args(args: argparse.Namespace) -> tuple[list[RunConfig], dict[str, list[float]]]:
    """(one RunConfig per combination of the list flags, sweep of the float flags given several values)."""
    from ..config import FIELD_SPECS, RunConfig, field_type

    base: dict = {}
    lists: dict[str, list] = {}
    sweep: dict[str, list[float]] = {}
    for name, spec in FIELD_SPECS.items():
        value = getattr(args, name)
        if spec.dynamic:
            if value is None:
                continue
            if len(value) == 1:
                base[name] = value[0]
            else:
                sweep[name] = value
        elif spec.cli_list:
            lists[name] = value
        elif field_type(name) is tuple:
            base[name] = tuple(value) if value else None
        else:
            base[name] = value
    configs = [
        RunConfig(**base, **dict(zip(lists, combo, strict=True))) for combo in itertools.product(*lists.values())
    ]
    return configs, sweep


def train_command(args: argparse.Namespace) -> int:
    """``lora-theory train``: simulate one configuration (its grids in one program), write the results, print the summary."""
    import jax
    import pandas as pd

    from ..cache import enable_compilation_cache
    from ..config import FIELD_SPECS
    from ..results import run_summary
    from ..sweep import grid_size, run_sweep

    preflight(args)
    enable_compilation_cache()
    configs, sweep = _configs_from_args(args)
    jobs: list[SweepJob] = [({}, config, sweep) for config in configs]
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
    with _executor(args, jobs, sweep) as executor:
        df, sidecar = run_sweep(
            jobs,
            out_dir=args.out,
            name=args.name,
            seeds=args.seeds,
            seed=args.seed,
            chunk_seeds=args.chunk_seeds,
            metadata={"command": "train", "argv": sys.argv[1:], "sweep": sweep},
            progress=not args.quiet,
            log=log,
            executor=executor,
        )
    wall = sidecar["wall_time_s"]
    parquet = f"{args.out}/{args.name}.parquet"
    if not args.quiet:
        by = [*(name for name, spec in FIELD_SPECS.items() if spec.cli_list), *sweep]
        summary = run_summary(df, by=by)
        with pd.option_context(
            "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3g}".format
        ):
            print(summary.to_string(index=False))
        n_runs = len(configs) * args.seeds * grid_size(sweep)
        print(
            f"\n{n_runs} runs x {configs[0].steps} steps in {wall:.2f} s on {jax.default_backend()}; results: {parquet}"
        )
    return 0


@contextlib.contextmanager
def _executor(
    args: argparse.Namespace, jobs: Sequence[SweepJob], sweep: Mapping[str, Sequence[float]]
) -> Iterator[Any]:
    """The executor ``--executor`` names (None for inline), shut down afterwards.

    For a process pool the memory check counts every worker's chunk at once (they share this
    machine); submitit's workers check their own node's memory.
    """
    from ..engine import _per_run_problems, seed_count
    from ..executors import process_pool, submitit_executor
    from ..memory import check_memory
    from ..sweep import grid_size

    if args.executor == "inline":
        yield None
        return
    if args.executor == "submitit":
        folder = args.submitit_folder or str(Path(args.out) / f"{args.name}.submitit")
        cluster = None if args.submitit_cluster == "auto" else args.submitit_cluster
        yield submitit_executor(folder, cluster=cluster, parameters=submitit_parameters(args))
        return
    n_seeds = seed_count(args.seeds, args.seed)
    chunk_seeds = n_seeds if args.chunk_seeds is None else max(args.chunk_seeds, 1)
    n_chunks = len(jobs) * -(-n_seeds // chunk_seeds)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = args.workers or max(1, min(cpus, n_chunks))
    for _, config, job_sweep in jobs:
        check_memory(
            config,
            min(chunk_seeds, n_seeds),
            grid_size(job_sweep),
            per_run_problems=_per_run_problems(config, tuple(job_sweep)),
            copies=workers,
        )
    pool = process_pool(workers)
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _add_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="list models, inits, optimizers, experiments and claims")
    p.set_defaults(func=list_command)


def list_command(args: argparse.Namespace) -> int:
    """``lora-theory list``: print each command module's entries (the experiments and the claims)."""
    from . import COMMAND_MODULES

    for module in COMMAND_MODULES:
        module.list_entries()
    return 0


def list_entries() -> None:
    """Print the models, inits (with the fields they read and their variants) and optimizers."""
    from ..inits import INITS, VARIANTS
    from ..models import MODELS
    from ..optimizers import OPTIMIZERS

    def described(registry: Mapping[str, Any]) -> str:
        return ", ".join(f"{name}({', '.join(spec.params)})" for name, spec in registry.items())

    print("models:     " + ", ".join(MODELS))
    print("inits:      " + described(INITS))
    print("variants:   " + "; ".join(f"{k}: {', '.join(v)}" for k, v in VARIANTS.items()))
    print("optimizers: " + described(OPTIMIZERS))


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``list`` and ``train`` to the ``lora-theory`` parser."""
    _add_list(subparsers)
    _add_train(subparsers)
