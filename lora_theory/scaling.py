"""The LoRA branch's scale: W = W0 + s (A B + offset), with PEFT's conventions for s.

PEFT (``LoraConfig(lora_alpha=..., use_rslora=...)``) multiplies the LoRA branch by

* ``lora``: s = lora_alpha / r (Hu et al., "LoRA", 2021, Sec. 4.1);
* ``rslora``: s = lora_alpha / sqrt(r) (Kalajdzievski, "A Rank Stabilization Scaling Factor for
  Fine-Tuning with LoRA", arXiv 2312.03732: its main theorem, 1/sqrt(r) is the rank exponent
  that keeps learning stable, neither exploding nor collapsing, as r grows);
* ``none``: no factor at all (this suite's default, and every result before scaling existed).

The init's offset is in the same units as A B (the branch is scaled as a whole), so an init that
keeps the model unchanged at step 0 (offset -A_0 B_0) still does under any scale: W0 + s (A_0 B_0 -
A_0 B_0) = W0, as PEFT's inits subtract ``scaling * B A`` from the base weight.

With the scale, the factor gradients of L(W0 + s (A B + offset)) are the unscaled objective's at
(s A, B), times s on A's side (:func:`scaled_factor_grads`):
grad_A = s grad_W L B^T, grad_B = s A^T grad_W L.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["SCALINGS", "lora_scale", "scaled_factor_grads"]

#: the values of ``RunConfig.scaling`` (``--scaling``).
SCALINGS = ("none", "lora", "rslora")


def lora_scale(scaling: str, lora_alpha: float | Float[Array, ""], rank: int) -> float | Float[Array, ""] | None:
    """The factor s of W = W0 + s A B, or ``None`` for ``scaling='none'`` (no factor is applied).

    Args:
        scaling: ``none``, ``lora`` (s = lora_alpha / r) or ``rslora`` (s = lora_alpha / sqrt(r)).
        lora_alpha: PEFT's ``lora_alpha`` (may be traced: a sweep over it is one program).
        rank: r (static).

    Returns:
        s (a scalar, traced if ``lora_alpha`` is) or ``None``.
    """
    if scaling == "none":
        return None
    if scaling == "lora":
        return lora_alpha / rank
    if scaling == "rslora":
        return lora_alpha / math.sqrt(rank)
    raise ValueError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")


def scaled_factor_grads(
    objective: Any, scale: float | Float[Array, ""], A: Float[Array, "d r"], B: Float[Array, "r k"]
) -> tuple[Float[Array, "d r"], Float[Array, "r k"]]:
    """(grad_A, grad_B) of L(W0 + offset + s A B), from the unscaled objective's gradients.

    ``objective.factor_grads(s A, B)`` returns (grad_W L B^T, s A^T grad_W L) at W0 + offset +
    s A B; the chain rule adds the factor s on A's side.  ``objective`` must hold the offset
    already scaled (s times the init's).

    Args:
        objective: the model's objective (``problem.objective(scaled offset)``).
        scale: s (a scalar, may be traced).
        A: the input-side factor.
        B: the output-side factor.

    Returns:
        (s grad_W L B^T, s A^T grad_W L).
    """
    s = jnp.asarray(scale, A.dtype)
    grad_A, grad_B = objective.factor_grads(s * A, B)
    return s * grad_A, grad_B
