"""One run's configuration (every parameter of the SPEC) and its validation.

:class:`RunConfig` is a flat frozen dataclass: every field is a command-line flag of
``lora-theory train``.  Its float fields listed in :data:`DYNAMIC_FIELDS` may be swept inside one
compiled program (they become traced scalars); every other field fixes shapes or control flow and
is static (a new value means a new compile).  The problem of a config is built by
:func:`lora_theory.models.make_problem`.

:func:`validate` raises :class:`ConfigError` naming the parameter and its valid range, before
anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from .inits import DEFAULT_VARIANT, INITS, VARIANTS
from .models import MODELS
from .models.relu import ACTIVATIONS
from .optimizers import OPTIMIZERS, TRAIN_FACTORS

__all__ = [
    "RunConfig",
    "ConfigError",
    "validate",
    "DTYPES",
    "DYNAMIC_FIELDS",
    "PROBLEM_FIELDS",
]

DTYPES = ("float64", "float32")

#: float fields that can be swept inside one compiled program.
DYNAMIC_FIELDS = (
    "kappa",
    "target_scale",
    "noise",
    "leaky_slope",
    "alpha",
    "gamma",
    "s",
    "lr",
    "damping",
    "preheat_lr",
    "preheat_damping",
)
#: dynamic fields that change the problem itself (the rest only change the init or the optimizer).
PROBLEM_FIELDS = ("kappa", "target_scale", "noise", "leaky_slope")


class ConfigError(ValueError):
    """A configuration value outside its valid range (raised before anything compiles)."""


@dataclass(frozen=True)
class RunConfig:
    """Every parameter of one training configuration (the SPEC's notation).

    Problem: ``model`` (see :data:`lora_theory.models.MODELS`), ``d``, ``k``, ``r_star``, ``n_samples`` (N; ignored in
    population mode), target spectrum by ``kappa`` (geometric from 1 to 1/kappa, times
    ``target_scale``) or explicit ``singular_values`` (which then override kappa and
    target_scale), label ``noise`` (standard deviation), ``activation`` / ``leaky_slope`` for
    nonlinear models.

    LoRA: ``rank`` (r), ``init`` (see ``INITS``), ``variant``, ``alpha`` (std of random entries),
    ``gamma`` (spectral scale), ``s`` (LoRA-One / LoRA-GA scale), HRP's ``preheat_*``
    (``preheat_lr`` defaults to ``lr``, ``preheat_train_factors`` to ``train_factors``).

    Training: ``optimizer`` (gd, precgd), ``lr`` (eta), ``damping`` (lam), ``train_factors``
    (both, A, B), ``steps``, ``log_every``, ``dtype``.
    """

    model: str = "linear"
    d: int = 100
    k: int = 100
    r_star: int = 4
    n_samples: int = 1600
    kappa: float = 1.0
    singular_values: tuple[float, ...] | None = None
    target_scale: float = 1.0
    noise: float = 0.0
    activation: str = "relu"
    leaky_slope: float = 0.01
    rank: int = 8
    init: str = "random"
    variant: str | None = None
    alpha: float = 1e-2
    gamma: float = 1.0
    s: float = 4.0
    preheat_rank: int | None = None
    preheat_steps: int = 50
    preheat_optimizer: str = "gd"
    preheat_lr: float | None = None
    preheat_damping: float = 0.0
    preheat_train_factors: str | None = None
    optimizer: str = "gd"
    lr: float = 0.015625
    damping: float = 0.0
    train_factors: str = "both"
    steps: int = 1000
    log_every: int = 10
    dtype: str = "float64"

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @property
    def resolved_variant(self) -> str | None:
        return self.variant or DEFAULT_VARIANT.get(self.init)

    @property
    def resolved_preheat_rank(self) -> int:
        return self.preheat_rank if self.preheat_rank is not None else 2 * self.rank

    @property
    def resolved_preheat_lr(self) -> float:
        return self.lr if self.preheat_lr is None else self.preheat_lr

    @property
    def resolved_preheat_train_factors(self) -> str:
        return self.preheat_train_factors or self.train_factors

    @property
    def jnp_dtype(self):
        return jnp.float64 if self.dtype == "float64" else jnp.float32

    def dynamic_values(self) -> dict[str, float]:
        """The dynamic fields with defaults resolved (preheat_lr -> lr)."""
        values = {name: getattr(self, name) for name in DYNAMIC_FIELDS}
        values["preheat_lr"] = self.resolved_preheat_lr
        return values

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["singular_values"] = list(self.singular_values) if self.singular_values else None
        return out


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _fail(name: str, value, requirement: str):
    raise ConfigError(f"{name}={value!r} is invalid: {requirement}")


def _check_choice(name: str, value, valid):
    if value not in valid:
        _fail(name, value, f"must be one of {', '.join(map(str, valid))}")


def _check_int(name: str, value, low: int, high: int | None = None, why: str = ""):
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        bound = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
        _fail(name, value, f"must be {bound}{why}")


def _check_float(name: str, value, *, low: float = 0.0, strict: bool = False, why: str = ""):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        _fail(name, value, f"must be a finite number {'>' if strict else '>='} {low}{why}")


def validate(config: RunConfig, sweep: Mapping[str, Any] | None = None) -> RunConfig:
    """Check every parameter; raise :class:`ConfigError` naming the first bad one. Returns config.

    ``sweep`` maps field names to lists of values; each value is checked as if set in the config.
    """
    for name, values in (sweep or {}).items():
        if name not in {f.name for f in dataclasses.fields(config)}:
            _fail("sweep", name, "is not a RunConfig field")
        for value in values:
            validate(config.replace(**{name: value}))
    c = config
    _check_choice("model", c.model, MODELS)
    _check_choice("dtype", c.dtype, DTYPES)
    if c.dtype == "float64" and not jax.config.jax_enable_x64:
        _fail(
            "dtype",
            c.dtype,
            "float64 needs jax_enable_x64: call jax.config.update('jax_enable_x64', True) at start-up",
        )
    _check_int("d", c.d, 1)
    _check_int("k", c.k, 1)
    m = min(c.d, c.k)
    _check_int("r_star", c.r_star, 1, m, " (min(d, k))")
    _check_int("rank", c.rank, 1, m, " (min(d, k))")
    _check_int("n_samples", c.n_samples, 1)
    _check_float("kappa", c.kappa, low=1.0)
    _check_float("target_scale", c.target_scale, strict=True)
    if c.singular_values is not None:
        sv = tuple(c.singular_values)
        if len(sv) != c.r_star:
            _fail("singular_values", sv, f"must have r_star={c.r_star} entries")
        for value in sv:
            _check_float("singular_values", value, strict=True)
    _check_float("noise", c.noise)
    if c.model == "population" and c.noise != 0:
        _fail("noise", c.noise, "population mode has no label noise (use model='linear')")
    _check_float("leaky_slope", c.leaky_slope)
    _check_choice("activation", c.activation, ACTIVATIONS)
    _check_choice("init", c.init, INITS)
    if c.init in VARIANTS:
        if c.variant is not None:
            _check_choice("variant", c.variant, VARIANTS[c.init])
    elif c.variant is not None:
        _fail("variant", c.variant, f"init {c.init!r} has no variants (variants exist for {', '.join(VARIANTS)})")
    _check_float("alpha", c.alpha)
    _check_float("gamma", c.gamma, strict=True)
    _check_float("s", c.s, strict=True)
    if c.init == "lora_ga" and 2 * c.rank > m:
        _fail("rank", c.rank, f"lora_ga uses singular directions r+1..2r, so 2*rank must be <= min(d, k) = {m}")
    if c.init == "hrp":
        _check_int("preheat_rank", c.resolved_preheat_rank, c.rank, m, " (from rank to min(d, k))")
        _check_int("preheat_steps", c.preheat_steps, 0)
        _check_choice("preheat_optimizer", c.preheat_optimizer, OPTIMIZERS)
        _check_float("preheat_lr", c.resolved_preheat_lr)
        _check_float("preheat_damping", c.preheat_damping)
        _check_choice("preheat_train_factors", c.resolved_preheat_train_factors, TRAIN_FACTORS)
    _check_choice("optimizer", c.optimizer, OPTIMIZERS)
    _check_float("lr", c.lr)
    _check_float("damping", c.damping)
    _check_choice("train_factors", c.train_factors, TRAIN_FACTORS)
    if c.init == "lora_sb" and c.train_factors == "B":
        _fail("train_factors", c.train_factors, "lora_sb trains only its r x r core (use 'both' or 'A')")
    _check_int("steps", c.steps, 0)
    _check_int("log_every", c.log_every, 1)
    return config
