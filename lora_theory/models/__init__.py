"""The models (matrix-sensing problems) and the registry that builds one from a :class:`RunConfig`.

* :mod:`~lora_theory.models.linear`: the linear model (finite N) and population mode;
* :mod:`~lora_theory.models.relu`: the nonlinear (ReLU-type) model of LoRA-One Section 4.

:data:`MODELS` maps each model name (``RunConfig.model``) to its builder
``builder(config, dynamic, *, key) -> problem``; :func:`register_model` adds one and
:func:`make_problem` builds the problem of a config.  ``MODELS`` is a read-only live view of the
registry, so it always lists every registered model (``"relu" in MODELS`` after import, and a
model registered later shows up in it too).

This package reads a config only through its attributes (it does not import
:mod:`lora_theory.config`), so :func:`lora_theory.config.validate` can check ``model`` against
``MODELS`` without an import cycle.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Callable, Mapping

import jax
import jax.numpy as jnp

from .linear import make_linear_problem, make_population_problem, target_spectrum
from .relu import make_nonlinear_problem

if TYPE_CHECKING:
    from ..config import RunConfig

__all__ = ["MODELS", "register_model", "make_problem", "spectrum"]

#: a builder: ``builder(config, dynamic: dict of (possibly traced) values, *, key) -> problem``.
Builder = Callable[..., Any]

_BUILDERS: dict[str, Builder] = {}

#: model name -> builder, read-only and live (it reflects every :func:`register_model` call).
MODELS: Mapping[str, Builder] = types.MappingProxyType(_BUILDERS)


def register_model(name: str, builder: Builder) -> None:
    """Register a problem builder ``builder(config, dynamic: dict, *, key) -> problem``."""
    _BUILDERS[name] = builder


def spectrum(config: RunConfig, dynamic: Mapping[str, Any]):
    """dW's singular values: explicit ``singular_values`` or geometric from kappa (see target_spectrum)."""
    if config.singular_values is not None:
        return jnp.asarray(config.singular_values, config.jnp_dtype)
    return target_spectrum(config.r_star, dynamic["kappa"], dynamic["target_scale"], config.jnp_dtype)


def _build_linear(config, dynamic, *, key):
    return make_linear_problem(
        config.d,
        config.k,
        config.r_star,
        config.n_samples,
        spectrum(config, dynamic),
        dynamic["noise"],
        key=key,
        dtype=config.jnp_dtype,
    )


def _build_population(config, dynamic, *, key):
    return make_population_problem(
        config.d, config.k, config.r_star, spectrum(config, dynamic), key=key, dtype=config.jnp_dtype
    )


def _build_relu(config, dynamic, *, key):
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
    )


register_model("linear", _build_linear)
register_model("population", _build_population)
register_model("relu", _build_relu)


def make_problem(config: RunConfig, dynamic: Mapping[str, Any] | None = None, *, key: jax.Array):
    """Build the problem of ``config`` (dynamic values, possibly traced, override the config's)."""
    values = config.dynamic_values()
    if dynamic:
        values.update(dynamic)
    return _BUILDERS[config.model](config, values, key=key)
