"""``lora-theory train`` (one configuration, every parameter a flag) and ``lora-theory list``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_commands", "list_entries", "train_command", "list_command"]


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or comma-separated numbers, got {text!r}")


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _add_train(sub) -> None:
    from ..config import RunConfig

    defaults = RunConfig()
    p = sub.add_parser(
        "train",
        help="train one configuration over seeds (comma lists sweep: --init a,b --alpha 1,0.01)",
        description="Train LoRA on one problem configuration for --seeds seeds. Float flags accept "
        "comma-separated lists, swept inside one compiled program; --init and --optimizer accept "
        "lists too (one compile each).",
    )
    g = p.add_argument_group("problem")
    g.add_argument("--model", default=defaults.model, help="linear | population | ... (see `list`)")
    g.add_argument("--d", type=int, default=defaults.d, help="input dimension d")
    g.add_argument("--k", type=int, default=defaults.k, help="output dimension k")
    g.add_argument("--r-star", type=int, default=defaults.r_star, help="rank r_star of dW")
    g.add_argument("--n-samples", type=int, default=defaults.n_samples, help="N (linear/nonlinear models)")
    g.add_argument("--kappa", type=_floats, default=[defaults.kappa], help="condition number of dW (>= 1)")
    g.add_argument("--singular-values", type=_floats, default=None, help="explicit s_1,...,s_r* (overrides --kappa)")
    g.add_argument("--target-scale", type=_floats, default=[defaults.target_scale], help="s_1 of dW")
    g.add_argument("--noise", type=_floats, default=[defaults.noise], help="label noise std")
    g.add_argument("--activation", default=defaults.activation, help="nonlinear models: activation")
    g.add_argument("--leaky-slope", type=_floats, default=[defaults.leaky_slope], help="leaky ReLU slope")
    g = p.add_argument_group("LoRA and init")
    g.add_argument("--rank", type=int, default=defaults.rank, help="LoRA rank r")
    g.add_argument("--init", type=_names, default=[defaults.init], help="init name(s), comma-separated")
    g.add_argument("--variant", default=None, help="variant of lora_one / hrp / oracle")
    g.add_argument("--alpha", type=_floats, default=[defaults.alpha], help="std of random init entries")
    g.add_argument("--gamma", type=_floats, default=[defaults.gamma], help="spectral init scale")
    g.add_argument("--s", type=_floats, default=[defaults.s], help="LoRA-One / LoRA-GA scale s")
    g.add_argument("--preheat-rank", type=int, default=None, help="HRP preheat rank p (default 2r)")
    g.add_argument("--preheat-steps", type=int, default=defaults.preheat_steps, help="HRP preheat steps")
    g.add_argument("--preheat-optimizer", default=defaults.preheat_optimizer, help="HRP preheat optimizer")
    g.add_argument("--preheat-lr", type=_floats, default=None, help="HRP preheat lr (default --lr)")
    g.add_argument("--preheat-damping", type=_floats, default=[defaults.preheat_damping])
    g.add_argument("--preheat-train-factors", default=None, help="HRP preheat factors (default --train-factors)")
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", type=_names, default=[defaults.optimizer], help="gd | precgd (comma list)")
    g.add_argument("--lr", type=_floats, default=[defaults.lr], help="learning rate eta")
    g.add_argument("--damping", type=_floats, default=[defaults.damping], help="precgd damping lam")
    g.add_argument("--train-factors", default=defaults.train_factors, help="both | A | B")
    g.add_argument("--steps", type=int, default=defaults.steps)
    g.add_argument("--log-every", type=int, default=defaults.log_every)
    g.add_argument("--dtype", default=defaults.dtype, help="float64 | float32")
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
    p.set_defaults(func=train_command)


_FLOAT_FLAGS = (
    "kappa",
    "target_scale",
    "noise",
    "leaky_slope",
    "alpha",
    "gamma",
    "s",
    "preheat_lr",
    "preheat_damping",
    "lr",
    "damping",
)


def _configs_from_args(args) -> tuple[list, dict[str, list[float]]]:
    """(one RunConfig per init x optimizer, sweep of the float flags given several values)."""
    from ..config import RunConfig

    base = dict(
        model=args.model,
        d=args.d,
        k=args.k,
        r_star=args.r_star,
        n_samples=args.n_samples,
        singular_values=tuple(args.singular_values) if args.singular_values else None,
        activation=args.activation,
        rank=args.rank,
        variant=args.variant,
        preheat_rank=args.preheat_rank,
        preheat_steps=args.preheat_steps,
        preheat_optimizer=args.preheat_optimizer,
        preheat_train_factors=args.preheat_train_factors,
        train_factors=args.train_factors,
        steps=args.steps,
        log_every=args.log_every,
        dtype=args.dtype,
    )
    sweep: dict[str, list[float]] = {}
    for name in _FLOAT_FLAGS:
        values = getattr(args, name)
        if values is None:
            continue
        if len(values) == 1:
            base[name] = values[0]
        else:
            sweep[name] = values
    configs = [
        RunConfig(**base, init=init, optimizer=optimizer) for init in args.init for optimizer in args.optimizer
    ]
    return configs, sweep


def train_command(args) -> int:
    import jax
    import pandas as pd

    from ..cache import enable_compilation_cache
    from ..results import run_summary
    from ..sweep import grid_size, run_sweep

    enable_compilation_cache()
    configs, sweep = _configs_from_args(args)
    jobs = [({}, config, sweep) for config in configs]
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
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
    )
    wall = sidecar["wall_time_s"]
    parquet = f"{args.out}/{args.name}.parquet"
    if not args.quiet:
        by = ["init", "optimizer", *sweep]
        summary = run_summary(df, by=by)
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3g}".format):
            print(summary.to_string(index=False))
        n_runs = len(configs) * args.seeds * grid_size(sweep)
        print(f"\n{n_runs} runs x {configs[0].steps} steps in {wall:.2f} s on {jax.default_backend()}; results: {parquet}")
    return 0


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list models, inits, optimizers, experiments and claims")
    p.set_defaults(func=list_command)


def list_command(args) -> int:
    from . import COMMAND_MODULES

    for module in COMMAND_MODULES:
        module.list_entries()
    return 0


def list_entries() -> None:
    """Print the models, inits, variants and optimizers (for ``lora-theory list``)."""
    from ..inits import INITS, VARIANTS
    from ..models import MODELS
    from ..optimizers import OPTIMIZERS

    print("models:     " + ", ".join(MODELS))
    print("inits:      " + ", ".join(INITS))
    print("variants:   " + "; ".join(f"{k}: {', '.join(v)}" for k, v in VARIANTS.items()))
    print("optimizers: " + ", ".join(OPTIMIZERS))


def add_commands(subparsers) -> None:
    """Add ``list`` and ``train`` to the ``lora-theory`` parser."""
    _add_list(subparsers)
    _add_train(subparsers)
