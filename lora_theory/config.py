"""One run's configuration (every parameter of the SPEC), its field metadata, and its validation.

:class:`RunConfig` is a flat frozen dataclass.  **Its field metadata is the one source of truth**
about each parameter (a :class:`FieldSpec` under ``field.metadata["lora_theory"]``, listed in
:data:`FIELD_SPECS`): help text, group, whether it can be swept inside one compiled program
(``dynamic``: the float fields, traced scalars), whether it changes the problem, its valid range or
choices, its default when unset, its flag name, whether it is a results column.  Everything else is
derived from it:

* the flags of ``lora-theory train`` (:mod:`lora_theory.cli.train`);
* :data:`DYNAMIC_FIELDS` (what :func:`~lora_theory.engine.simulate` accepts in ``sweep=``) and
  :data:`PROBLEM_FIELDS`;
* the parameter columns of the results (:data:`RUN_COLUMNS` and the dynamic fields,
  :mod:`lora_theory.results`);
* the range and choice checks of :func:`validate`.  Checks that relate several fields stay code:
  in :func:`validate` (singular_values against r_star, variant against the init's variants, the
  dtype against jax's x64 flag) or declared by a registry entry (lora_ga's 2r <= min(d, k) by the
  init, no label noise in population mode by the model), so each lives beside what it constrains.

The choices of ``model``, ``init`` and ``optimizer`` are the live registries
(:data:`lora_theory.models.MODELS`, :data:`lora_theory.inits.INITS`,
:data:`lora_theory.optimizers.OPTIMIZERS`), read when a check runs, so a user's registered init or
optimizer is valid everywhere at once.  This module imports none of them at import time (they
import it, to check the fields their entries declare).

:func:`validate` raises :class:`ConfigError` naming the parameter and its valid range, before
anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
from jax.typing import DTypeLike

from .scaling import SCALINGS

__all__ = [
    "RunConfig",
    "FieldSpec",
    "FIELD_SPECS",
    "ConfigError",
    "validate",
    "invalid",
    "DTYPES",
    "DYNAMIC_FIELDS",
    "PROBLEM_FIELDS",
    "RUN_COLUMNS",
    "GROUPS",
    "field_type",
]

DTYPES = ("float64", "float32")

#: the field groups, in the order of ``lora-theory train --help``.
GROUPS = ("problem", "LoRA and init", "training")

_META = "lora_theory"


class ConfigError(ValueError):
    """A configuration value outside its valid range (raised before anything compiles)."""


def invalid(name: str, value: object, requirement: str) -> ConfigError:
    """The error every check raises: ``"{name}={value!r} is invalid: {requirement}"``."""
    return ConfigError(f"{name}={value!r} is invalid: {requirement}")


Bound = float | int | Callable[["RunConfig"], float | int] | None


@dataclass(frozen=True)
class FieldSpec:
    """What the package knows about one :class:`RunConfig` field.

    Attributes:
        help: one line for ``--help`` and the docs.
        group: one of :data:`GROUPS` (the ``--help`` section).
        dynamic: a float that may be swept inside one compiled program (a traced scalar);
            otherwise the field is static (it fixes shapes or control flow: a new value compiles
            a new program).
        problem: changes the problem itself (a model reads it), not only the init or optimizer.
        low, high: the valid range (a number or a function of the config, e.g. ``min(d, k)``).
        strict: ``low`` itself is excluded (``> low`` instead of ``>= low``).
        why: appended to the range in the error message, e.g. ``" (min(d, k))"``.
        choices: the valid names: a tuple, or a function returning the live registry.
        default_from: the value when the field is ``None`` (e.g. ``preheat_lr`` -> ``lr``); see
            :meth:`RunConfig.resolved`.
        only_if_read: checked only when the config's init declares it as a parameter (HRP's
            ``preheat_*``: their defaults need not be valid for the other inits).
        column: a column of the results (dynamic fields always are).
        flag: the ``lora-theory train`` flag (default ``--`` + the name with ``-`` for ``_``).
        cli_list: the flag takes a comma list of values, one config (one compile) each.
            Dynamic fields' flags always take comma lists: a sweep in one compiled program.
    """

    help: str
    group: str
    dynamic: bool = False
    problem: bool = False
    low: Bound = None
    high: Bound = None
    strict: bool = False
    why: str = ""
    choices: tuple[str, ...] | Callable[[], Any] | None = None
    default_from: Callable[[RunConfig], Any] | None = None
    only_if_read: bool = False
    column: bool = False
    flag: str | None = None
    cli_list: bool = False

    def valid_choices(self) -> tuple[str, ...] | None:
        """The valid names now (a registry's current entries), or ``None``."""
        if self.choices is None:
            return None
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def cli_flag(self, name: str) -> str:
        return self.flag or "--" + name.replace("_", "-")


def _field(default: Any, help: str, group: str, **spec: Any) -> Any:  # Any: a dataclass default
    return dataclasses.field(default=default, metadata={_META: FieldSpec(help, group, **spec)})


def _registry(module: str, name: str) -> Callable[[], Any]:
    """The live registry ``lora_theory.{module}.{name}``, imported when first asked for."""

    def choices() -> Any:
        return getattr(importlib.import_module(f".{module}", __package__), name)

    return choices


def _min_dk(c: RunConfig) -> int:
    return min(c.d, c.k)


def _default_variant(c: RunConfig) -> str | None:
    from .inits import INITS

    entry = INITS.get(c.init)
    return entry.default_variant if entry is not None else None


_P, _L, _T = GROUPS
_MODELS = _registry("models", "MODELS")
_INITS = _registry("inits", "INITS")
_OPTIMIZERS = _registry("optimizers", "OPTIMIZERS")
_TRAIN_FACTORS = _registry("optimizers", "TRAIN_FACTORS")
_ACTIVATIONS = _registry("models.relu", "ACTIVATIONS")
_TARGET_SUBSPACES = _registry("models.linear", "TARGET_SUBSPACES")


@dataclass(frozen=True)
class RunConfig:
    """Every parameter of one training configuration (the SPEC's notation).

    Problem: ``model`` (see :data:`lora_theory.models.MODELS`), ``d``, ``k``, ``r_star``, ``n_samples`` (N; ignored in
    population mode), target spectrum by ``kappa`` (geometric from 1 to 1/kappa, times
    ``target_scale``) or explicit ``singular_values`` (which then override kappa and
    target_scale), label ``noise`` (standard deviation), ``activation`` / ``leaky_slope`` for
    nonlinear models, ``target_subspace`` (random, or inside W0's top / bottom singular subspaces)
    and ``target_angle`` (the tilt away from them).

    LoRA: ``rank`` (r), ``init`` (see ``INITS``), ``variant``, ``alpha`` (std of random entries),
    ``gamma`` (spectral scale), ``s`` (LoRA-One / LoRA-GA scale), HRP's ``preheat_*``
    (``preheat_lr`` defaults to ``lr``, ``preheat_train_factors`` to ``train_factors``),
    ``scaling`` and ``lora_alpha`` (the branch's scale s, :mod:`lora_theory.scaling`).

    Training: ``optimizer`` (gd, precgd, or any registered one), ``lr`` (eta), ``damping`` (lam),
    ``lr_ratio`` (LoRA+: B's learning rate over A's),
    ``train_factors`` (both, A, B), ``steps``, ``log_every``, ``dtype``.

    Each field's metadata (:class:`FieldSpec`, :data:`FIELD_SPECS`) says what it is, where it may
    vary and what is valid.

    Components are named, not held: ``model``, ``init`` and ``optimizer`` are names in the
    registries (:func:`~lora_theory.models.register_model`,
    :func:`~lora_theory.inits.register_init`, :func:`~lora_theory.optimizers.register_optimizer`),
    never function objects.  A RunConfig is the serialisable description of a run: it is a static
    (hashable) argument of the compiled program, it is written to the results (the ``init`` and
    ``optimizer`` columns, the JSON sidecar) and hashed into a resumable sweep's fingerprint, and
    the CLI spells it as flags.  A name is stable across processes and meaningful in a Parquet
    column; a function's repr holds its address (a new fingerprint every process, a meaningless
    column) and a re-created closure would recompile.  A registered entry also declares the fields
    it reads, so they are validated and can be swept in one program (a ready-made
    ``optax.adam(1e-2)`` has its learning rate baked in).  To run a component object without a
    name, use :func:`lora_theory.engine.train` (problem, :class:`~lora_theory.inits.LoRAInit`, any
    optax transformation).

    Examples:
        >>> import lora_theory as lt
        >>> config = lt.RunConfig(d=6, k=5, r_star=2, rank=2, init="spectral", optimizer="precgd", lr=0.5)
        >>> config.replace(lr=0.25).lr, config.lr  # frozen: replace returns a new config
        (0.25, 0.5)
        >>> lt.validate(config.replace(rank=0))
        Traceback (most recent call last):
        ...
        lora_theory.config.ConfigError: rank=0 is invalid: must be an integer in [1, 5] (min(d, k))
    """

    model: str = _field("linear", "problem model", _P, problem=True, choices=_MODELS, column=True)
    d: int = _field(100, "input dimension d", _P, problem=True, low=1, column=True)
    k: int = _field(100, "output dimension k", _P, problem=True, low=1, column=True)
    r_star: int = _field(4, "rank r_star of dW", _P, problem=True, low=1, high=_min_dk, why=" (min(d, k))", column=True)
    n_samples: int = _field(1600, "N (linear/nonlinear models)", _P, problem=True, low=1, column=True)
    kappa: float = _field(1.0, "condition number of dW (>= 1)", _P, dynamic=True, problem=True, low=1.0)
    singular_values: tuple[float, ...] | None = _field(
        None, "explicit s_1,...,s_r* (overrides --kappa)", _P, problem=True
    )
    target_scale: float = _field(1.0, "s_1 of dW", _P, dynamic=True, problem=True, low=0.0, strict=True)
    noise: float = _field(0.0, "label noise std", _P, dynamic=True, problem=True, low=0.0)
    activation: str = _field("relu", "nonlinear models: activation", _P, problem=True, choices=_ACTIVATIONS)
    leaky_slope: float = _field(0.01, "leaky ReLU slope", _P, dynamic=True, problem=True, low=0.0)
    target_subspace: str = _field(
        "random",
        "where dW's singular subspaces lie: Haar, or in W0's top / bottom r_star ones",
        _P,
        problem=True,
        choices=_TARGET_SUBSPACES,
        column=True,
    )
    target_angle: float = _field(
        0.0,
        "tilt of dW's subspaces away from W0's (radians, 0..pi/2)",
        _P,
        dynamic=True,
        problem=True,
        low=0.0,
        high=math.pi / 2,
        why=" (radians, up to pi/2)",
    )
    rank: int = _field(8, "LoRA rank r", _L, low=1, high=_min_dk, why=" (min(d, k))", column=True)
    init: str = _field("random", "init name(s), comma-separated", _L, choices=_INITS, column=True, cli_list=True)
    variant: str | None = _field(None, "variant of the init", _L, default_from=_default_variant, column=True)
    alpha: float = _field(1e-2, "std of random init entries", _L, dynamic=True, low=0.0)
    gamma: float = _field(1.0, "spectral init scale", _L, dynamic=True, low=0.0, strict=True)
    s: float = _field(4.0, "LoRA-One / LoRA-GA scale s", _L, dynamic=True, low=0.0, strict=True)
    preheat_rank: int | None = _field(
        None,
        "HRP preheat rank p (default 2r)",
        _L,
        low=lambda c: c.rank,
        high=_min_dk,
        why=" (from rank to min(d, k))",
        default_from=lambda c: 2 * c.rank,
        only_if_read=True,
    )
    preheat_steps: int = _field(50, "HRP preheat steps", _L, low=0, only_if_read=True)
    preheat_optimizer: str = _field("gd", "HRP preheat optimizer", _L, choices=_OPTIMIZERS, only_if_read=True)
    preheat_lr: float | None = _field(
        None,
        "HRP preheat lr (default --lr)",
        _L,
        dynamic=True,
        low=0.0,
        default_from=lambda c: c.lr,
        only_if_read=True,
    )
    preheat_damping: float = _field(0.0, "HRP preheat damping", _L, dynamic=True, low=0.0, only_if_read=True)
    preheat_train_factors: str | None = _field(
        None,
        "HRP preheat factors (default --train-factors)",
        _L,
        choices=_TRAIN_FACTORS,
        default_from=lambda c: c.train_factors,
        only_if_read=True,
    )
    scaling: str = _field(
        "none",
        "scale s of the branch W0 + s A B: none, lora (alpha/r), rslora (alpha/sqrt r)",
        _L,
        choices=SCALINGS,
        column=True,
    )
    lora_alpha: float = _field(
        8.0, "PEFT's lora_alpha (read when --scaling is not none)", _L, dynamic=True, low=0.0, strict=True
    )
    optimizer: str = _field("gd", "optimizer name(s) (comma list)", _T, choices=_OPTIMIZERS, column=True, cli_list=True)
    lr: float = _field(0.015625, "learning rate eta", _T, dynamic=True, low=0.0)
    damping: float = _field(0.0, "precgd damping lam", _T, dynamic=True, low=0.0)
    lr_ratio: float = _field(1.0, "LoRA+: B's learning rate is lr_ratio x lr", _T, dynamic=True, low=0.0, strict=True)
    train_factors: str = _field("both", "factors that train", _T, choices=_TRAIN_FACTORS, column=True)
    steps: int = _field(1000, "optimizer steps", _T, low=0)
    log_every: int = _field(10, "log the metrics every this many steps", _T, low=1)
    dtype: str = _field("float64", "floating-point type", _T, problem=True, choices=DTYPES, column=True)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def resolved(self, name: str) -> Any:
        """The value of field ``name``, its ``default_from`` applied when it is ``None``."""
        value = getattr(self, name)
        spec = FIELD_SPECS[name]
        if value is None and spec.default_from is not None:
            return spec.default_from(self)
        return value

    @property
    def resolved_variant(self) -> str | None:
        return self.resolved("variant")

    @property
    def resolved_preheat_rank(self) -> int:
        return self.resolved("preheat_rank")

    @property
    def resolved_preheat_lr(self) -> float:
        return self.resolved("preheat_lr")

    @property
    def resolved_preheat_train_factors(self) -> str:
        return self.resolved("preheat_train_factors")

    @property
    def jnp_dtype(self) -> DTypeLike:
        return jnp.float64 if self.dtype == "float64" else jnp.float32

    def dynamic_values(self) -> dict[str, float]:
        """The dynamic fields with defaults resolved (preheat_lr -> lr)."""
        return {name: self.resolved(name) for name in DYNAMIC_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["singular_values"] = list(self.singular_values) if self.singular_values else None
        return out


#: field name -> :class:`FieldSpec`, in the order of the fields.
FIELD_SPECS: Mapping[str, FieldSpec] = types.MappingProxyType(
    {f.name: f.metadata[_META] for f in dataclasses.fields(RunConfig)}
)

#: float fields that can be swept inside one compiled program (derived from the metadata).
DYNAMIC_FIELDS: tuple[str, ...] = tuple(n for n, s in FIELD_SPECS.items() if s.dynamic)
#: dynamic fields that change the problem itself (the rest only change the init or the optimizer).
PROBLEM_FIELDS: tuple[str, ...] = tuple(n for n in DYNAMIC_FIELDS if FIELD_SPECS[n].problem)
#: static configuration columns repeated on every results row (besides the dynamic fields and the seed).
RUN_COLUMNS: tuple[str, ...] = tuple(n for n, s in FIELD_SPECS.items() if s.column and not s.dynamic)

_TYPES = typing.get_type_hints(RunConfig)


def field_type(name: str) -> type:
    """The field's type without ``None``: ``int``, ``float``, ``str`` or ``tuple``."""
    hint = _TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    return typing.get_origin(hint) or hint


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _fail(name: str, value: object, requirement: str) -> NoReturn:
    raise invalid(name, value, requirement)


def _check_choice(name: str, value: object, valid: Iterable[object]) -> None:
    if value not in valid:
        _fail(name, value, f"must be one of {', '.join(map(str, valid))}")


def _check_int(name: str, value: Any, low: float, high: float | None = None, why: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        _fail(name, value, f"must be {bound}{why}")


def _check_float(
    name: str, value: Any, *, low: float = 0.0, high: float | None = None, strict: bool = False, why: str = ""
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value <= high)
    if not ok:
        if high is not None:
            _fail(name, value, f"must be a finite number in {'(' if strict else '['}{low}, {high:.6g}]{why}")
        _fail(name, value, f"must be a finite number {'>' if strict else '>='} {low}{why}")


def _bound(bound: Bound, config: RunConfig) -> float | int | None:
    return bound(config) if callable(bound) else bound


def _check_field(config: RunConfig, name: str, spec: FieldSpec) -> None:
    """The range or choice check the field's metadata declares (none for fields without one)."""
    value = config.resolved(name)
    choices = spec.valid_choices()
    if choices is not None:
        _check_choice(name, value, choices)
    elif spec.low is not None:
        low, high = _bound(spec.low, config), _bound(spec.high, config)
        assert low is not None  # spec.low is set
        if field_type(name) is int:
            _check_int(name, value, low, high, spec.why)
        else:
            _check_float(name, value, low=low, high=high, strict=spec.strict, why=spec.why)


def validate(config: RunConfig, sweep: Mapping[str, Any] | None = None) -> RunConfig:
    """Check every parameter; raise :class:`ConfigError` naming the first bad one. Returns config.

    First each field's own check (from its :class:`FieldSpec`, in field order), then the checks
    that relate several fields, then those the config's init and model declare.  ``sweep`` maps
    field names to lists of values; each value is checked as if set in the config.
    """
    from .inits import INITS
    from .models import MODELS
    from .optimizers import OPTIMIZERS

    for name, values in (sweep or {}).items():
        if name not in FIELD_SPECS:
            _fail("sweep", name, "is not a RunConfig field")
        for value in values:
            validate(config.replace(**{name: value}))
    c = config
    init = INITS.get(c.init)
    reads = init.params if init is not None else ()
    for name, spec in FIELD_SPECS.items():
        if not spec.only_if_read or name in reads:
            _check_field(c, name, spec)
    if c.dtype == "float64" and not jax.config.jax_enable_x64:
        _fail(
            "dtype",
            c.dtype,
            "float64 needs jax_enable_x64: call jax.config.update('jax_enable_x64', True) at start-up",
        )
    if c.singular_values is not None:
        sv = tuple(c.singular_values)
        if len(sv) != c.r_star:
            _fail("singular_values", sv, f"must have r_star={c.r_star} entries")
        for value in sv:
            _check_float("singular_values", value, strict=True)
    assert init is not None  # the init field's check above rejected an unknown name
    if init.variants:
        if c.variant is not None:
            _check_choice("variant", c.variant, init.variants)
    elif c.variant is not None:
        with_variants = [name for name, entry in INITS.items() if entry.variants]
        _fail("variant", c.variant, f"init {c.init!r} has no variants (variants exist for {', '.join(with_variants)})")
    if c.lr_ratio != 1.0 and "lr_ratio" not in OPTIMIZERS[c.optimizer].params:
        _fail(
            "lr_ratio",
            c.lr_ratio,
            f"optimizer {c.optimizer!r} does not declare lr_ratio (register it with params=(..., 'lr_ratio'), "
            "e.g. chaining lt.scale_factors(1.0, lr_ratio))",
        )
    for entry in (MODELS[c.model], init):
        problem = entry.check(c) if entry.check is not None else None
        if problem is not None:
            name, requirement = problem
            _fail(name, c.resolved(name), requirement)
    return config
