"""The figure experiments: one module per figure of the SPEC (F1 to F9, F1b), by name in REGISTRY.

Each module has ``NAME``, ``TITLE``, a frozen ``Config`` dataclass with ``quick()`` and ``full()``
presets, ``run(config, out_dir, progress) -> DataFrame`` (through the engine; writes
``{out_dir}/{NAME}.parquet`` and ``.json``) and ``plot(df, metadata, figures_dir)`` (from saved
results only).  ``lora-theory run|plot|reproduce`` drive them (:mod:`lora_theory.cli.figures`).
"""

from __future__ import annotations

import importlib

__all__ = ["REGISTRY", "MODULES", "get"]

#: figure name -> module name (imported lazily, so ``lora-theory list`` stays fast).
MODULES = {
    "f1": "experiments.f1_random_init",
    "f1b": "experiments.f1b_alignment_vs_alpha",
    "f2": "experiments.f2_gradient_inits",
    "f3": "experiments.f3_scalar_toy",
    "f4": "experiments.f4_condition_number",
    "f5": "experiments.f5_hrp",
    "f6": "experiments.f6_relu",
    "f7": "experiments.f7_laws",
    "f8": "experiments.f8_digits",
    "f9": "experiments.f9_practical_inits",
}


class _Registry(dict):
    """name -> experiment module, imported on first access."""

    def __missing__(self, name):
        if name not in MODULES:
            raise KeyError(f"unknown experiment {name!r}; valid experiments: {', '.join(MODULES)}")
        module = importlib.import_module(MODULES[name])
        self[name] = module
        return module

    def __iter__(self):
        return iter(MODULES)

    def __len__(self):
        return len(MODULES)

    def keys(self):
        return MODULES.keys()

    def items(self):
        return [(name, self[name]) for name in MODULES]

    def values(self):
        return [self[name] for name in MODULES]

    def __contains__(self, name):
        return name in MODULES


#: figure name -> experiment module.
REGISTRY = _Registry()


def get(name: str):
    """The experiment module called ``name`` (KeyError listing the valid names otherwise)."""
    return REGISTRY[name]
