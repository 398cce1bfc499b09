"""``lora-theory``: the command line.

Each command module adds its subcommands with ``add_commands(subparsers)`` and prints its part of
``lora-theory list`` with ``list_entries()``:

* :mod:`~lora_theory.cli.train`: ``train`` (one configuration, every parameter a flag) and ``list``;
* :mod:`~lora_theory.cli.verify`: ``verify`` (the claims registry and its verdict table);
* :mod:`~lora_theory.cli.figures`: ``run``, ``plot``, ``reproduce`` (the paper figures of
  ``experiments/``, the only part of the package that imports it).

float64 is enabled here, at the entry point (never inside library modules).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import figures, train, verify

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: the command modules, in the order of ``lora-theory --help`` and ``lora-theory list``.
COMMAND_MODULES = (train, verify, figures)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors (a bad type, an unknown choice or flag) on one line, as the
    package's own: ``lora-theory train: error: argument --d: invalid int value: 'x' (see ...)``,
    exit code 2, instead of the command's whole usage and then the error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``lora-theory`` argument parser: every command module's subcommands (:data:`COMMAND_MODULES`)."""
    parser = _Parser(
        prog="lora-theory",
        description="Numerical checks of the theory of LoRA initialisation (LoRA-One, HRP).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lora-theory`` on ``argv`` (default: ``sys.argv[1:]``) and return its exit code (2: bad input, 1: a failed chunk)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from ..config import ConfigError
    from ..results import ResultsError
    from ..sweep import SweepError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ResultsError) as error:
        print(f"lora-theory: error: {error}", file=sys.stderr)
        return 2
    except SweepError as error:  # a worker failed: not the user's input, but no traceback either
        print(f"lora-theory: error: {error}", file=sys.stderr)
        return 1
