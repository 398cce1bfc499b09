"""The models (matrix-sensing problems) and the registry that builds one from a :class:`RunConfig`.

* :mod:`~lora_theory.models.linear`: the linear model (finite N) and population mode;
* :mod:`~lora_theory.models.relu`: the nonlinear (ReLU-type) model of LoRA-One Section 4;
* :mod:`~lora_theory.models.twolayer`: F8's two-layer ReLU network on scikit-learn's digits (not a
  matrix-sensing problem and not in :data:`MODELS`: :mod:`lora_theory.finetune` trains it).

:data:`MODELS` maps each model name (``RunConfig.model``) to a :class:`ModelSpec`: its builder
``builder(config, dynamic, *, key) -> problem``, the :class:`~lora_theory.config.RunConfig` fields
it reads (``fields``) and an optional cross-field check.  :func:`register_model` adds one and
:func:`make_problem` builds the problem of a config.  ``MODELS`` is a read-only live view of the
registry, so it always lists every registered model (``"relu" in MODELS`` after import, and a
model registered later shows up in it too).

The declared fields say which parameters make the problem: the engine builds one problem per
grid point only when a swept field is one of them, and ``experiments/common.py`` caches per-seed
problem quantities on exactly those fields.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..config import FIELD_SPECS
from .linear import LinearProblem, make_linear_problem, make_population_problem, target_spectrum
from .relu import NonlinearProblem, make_nonlinear_problem

if TYPE_CHECKING:
    from ..config import RunConfig

__all__ = ["MODELS", "ModelSpec", "register_model", "make_problem", "spectrum"]

#: a builder: ``builder(config, dynamic: dict of (possibly traced) values, *, key) -> problem``.
Builder = Callable[..., Any]

#: every field that may change a problem (the default ``fields`` of a model that declares none).
_ALL_PROBLEM_FIELDS = tuple(name for name, spec in FIELD_SPECS.items() if spec.problem and name != "model")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model (an entry of :data:`MODELS`).

    Attributes:
        name: its name (``RunConfig.model``, ``--model``, the results' ``model`` column).
        builder: ``builder(config, dynamic, *, key) -> problem``; ``dynamic`` holds the dynamic
            fields' (possibly traced) values, the static ones are read from ``config``.
        fields: the RunConfig fields the builder reads (besides ``model``).
        check: optional ``check(config) -> None | (field, requirement)``, run by ``validate``.
    """

    name: str
    builder: Builder
    fields: tuple[str, ...] = _ALL_PROBLEM_FIELDS
    check: Callable[[Any], tuple[str, str] | None] | None = None

    def __call__(self, config: RunConfig, dynamic: Mapping[str, Any], *, key: jax.Array) -> Any:
        return self.builder(config, dynamic, key=key)


_MODELS: dict[str, ModelSpec] = {}

#: model name -> :class:`ModelSpec`, read-only and live (it reflects every :func:`register_model` call).
MODELS: Mapping[str, ModelSpec] = types.MappingProxyType(_MODELS)


def register_model(
    name: str,
    builder: Builder,
    *,
    fields: tuple[str, ...] | None = None,
    check: Callable[[Any], tuple[str, str] | None] | None = None,
) -> ModelSpec:
    """Register a problem builder ``builder(config, dynamic: dict, *, key) -> problem``.

    ``fields``: the RunConfig fields it reads (default: every field that may change a problem);
    ``check``: an optional cross-field check, ``check(config) -> None | (field, requirement)``.
    """
    fields = _ALL_PROBLEM_FIELDS if fields is None else tuple(fields)
    for field in fields:
        if field not in FIELD_SPECS:
            raise ValueError(f"model {name!r}: {field!r} is not a RunConfig field")
    spec = ModelSpec(name, builder, fields, check)
    _MODELS[name] = spec
    return spec


def spectrum(config: RunConfig, dynamic: Mapping[str, Any]) -> Float[Array, " r_star"]:
    """dW's singular values: explicit ``singular_values`` or geometric from kappa (see target_spectrum)."""
    if config.singular_values is not None:
        return jnp.asarray(config.singular_values, config.jnp_dtype)
    return target_spectrum(config.r_star, dynamic["kappa"], dynamic["target_scale"], config.jnp_dtype)


def _build_linear(config: RunConfig, dynamic: Mapping[str, Any], *, key: jax.Array) -> LinearProblem:
    return make_linear_problem(
        config.d,
        config.k,
        config.r_star,
        config.n_samples,
        spectrum(config, dynamic),
        dynamic["noise"],
        key=key,
        dtype=config.jnp_dtype,
        **_target(config, dynamic),
    )


def _target(config: RunConfig, dynamic: Mapping[str, Any]) -> dict[str, Any]:
    return {"target_subspace": config.target_subspace, "target_angle": dynamic["target_angle"]}


def _build_population(config: RunConfig, dynamic: Mapping[str, Any], *, key: jax.Array) -> LinearProblem:
    return make_population_problem(
        config.d,
        config.k,
        config.r_star,
        spectrum(config, dynamic),
        key=key,
        dtype=config.jnp_dtype,
        **_target(config, dynamic),
    )


def _build_relu(config: RunConfig, dynamic: Mapping[str, Any], *, key: jax.Array) -> NonlinearProblem:
    return make_nonlinear_problem(
        config.d,
        config.k,
        config.r_star,
        config.n_samples,
        spectrum(config, dynamic),
        dynamic["noise"],
        activation=config.activation,
        leaky_slope=dynamic["leaky_slope"],
        key=key,
        dtype=config.jnp_dtype,
        **_target(config, dynamic),
    )


def _target_check(config: RunConfig) -> tuple[str, str] | None:
    """A tilt needs W0's subspaces (top or bottom) and room for r_star directions orthogonal to them."""
    if config.target_subspace == "random":
        if config.target_angle != 0:
            return "target_angle", "tilts dW away from W0's subspaces: needs target_subspace 'top' or 'bottom'"
    elif config.target_angle > 0 and 2 * config.r_star > min(config.d, config.k):
        m = min(config.d, config.k)
        return "target_angle", f"a tilt needs r_star directions orthogonal to W0's: 2*r_star <= min(d, k) = {m}"
    return None


def _population_check(config: RunConfig) -> tuple[str, str] | None:
    if config.noise != 0:
        return "noise", "population mode has no label noise (use model='linear')"
    return _target_check(config)


_TARGET = ("r_star", "kappa", "singular_values", "target_scale", "target_subspace", "target_angle")
register_model("linear", _build_linear, fields=("d", "k", *_TARGET, "n_samples", "noise", "dtype"), check=_target_check)
register_model("population", _build_population, fields=("d", "k", *_TARGET, "dtype"), check=_population_check)
register_model(
    "relu",
    _build_relu,
    fields=("d", "k", *_TARGET, "n_samples", "noise", "activation", "leaky_slope", "dtype"),
    check=_target_check,
)


def make_problem(config: RunConfig, dynamic: Mapping[str, Any] | None = None, *, key: jax.Array) -> Any:
    """Build the problem of ``config`` (dynamic values, possibly traced, override the config's).

    Examples:
        >>> import jax
        >>> import lora_theory as lt
        >>> jax.config.update("jax_enable_x64", True)  # the default dtype is float64
        >>> config = lt.RunConfig(d=6, k=5, r_star=2, n_samples=40)
        >>> problem = lt.make_problem(config, key=jax.random.key(0))
        >>> type(problem).__name__, problem.W0.shape, problem.dW.shape
        ('LinearProblem', (6, 5), (6, 5))
        >>> int(jax.numpy.linalg.matrix_rank(problem.dW))
        2
    """
    values = config.dynamic_values()
    if dynamic:
        values.update(dynamic)
    return _MODELS[config.model](config, values, key=key)
