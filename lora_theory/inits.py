"""LoRA initialisations: random, spectral (LoRA-One), lora_one variants, lora_ga, lora_sb, hrp, oracle.

``G = U S V^T`` is the SVD of the one-step full gradient ``G = -grad_W L(W0)``; ``U_r, S_r, V_r``
its top r.  Every strategy returns a :class:`LoRAInit`: the initial factors, a low-rank ``offset``
added to W0 (zero except for the inits that keep the model unchanged at step 0) and, for
``lora_sb`` only, the fixed left basis onto which A's updates are projected.

Float parameters (alpha, gamma, s, preheat_lr, preheat_damping) may be traced, so a grid over
them is one ``vmap``; names, variants, ranks and step counts are static.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from .models.linear import LowRank
from .optimizers import LoRAFactors, optimizer_from_config

__all__ = [
    "LoRAInit",
    "INITS",
    "VARIANTS",
    "DEFAULT_VARIANT",
    "initialise",
    "random_init",
    "spectral_init",
    "lora_one_init",
    "lora_ga_init",
    "lora_sb_init",
    "hrp_init",
    "oracle_init",
    "preheat",
]

INITS = ("random", "spectral", "lora_one", "lora_ga", "lora_sb", "hrp", "oracle")
VARIANTS = {
    "lora_one": ("normalized", "orthonormal"),
    "hrp": ("directions", "singular_values"),
    "oracle": ("spectral", "directions"),
}
DEFAULT_VARIANT = {name: variants[0] for name, variants in VARIANTS.items()}


class LoRAInit(NamedTuple):
    """Initial LoRA state.

    Attributes:
        A: A_0, d x r.
        B: B_0, r x k.
        offset: low-rank matrix added to W0 for the whole run (``-A_0 B_0`` for the inits that
            leave the model unchanged at step 0; rank 0, i.e. nothing, otherwise).
        A_basis: for ``lora_sb`` the fixed d x r orthonormal basis U_r: A = U_r R stays in its span
            and B = V_r^T is frozen, so only the r x r core R trains. ``None`` for the others.
    """

    A: Float[Array, "d r"]
    B: Float[Array, "r k"]
    offset: LowRank
    A_basis: Float[Array, "d r"] | None = None

    @property
    def factors(self) -> LoRAFactors:
        return LoRAFactors(self.A, self.B)


def _no_offset(A, B) -> LowRank:
    """A rank-0 offset: shapes (d, 0) and (0, k), so every product with it costs nothing."""
    return LowRank(jnp.zeros((A.shape[0], 0), A.dtype), jnp.zeros((0, B.shape[1]), B.dtype))


def _keep_model_unchanged(A, B) -> LowRank:
    return LowRank(-A, B)


def _svd(M):
    return jnp.linalg.svd(M, full_matrices=False)


def random_init(problem, rank: int, *, key: jax.Array, alpha) -> LoRAInit:
    """Vanilla LoRA: A_0 with N(0, alpha^2) entries, B_0 = 0 (alpha is a standard deviation)."""
    d, k = problem.W0.shape
    dtype = problem.W0.dtype
    A = jnp.asarray(alpha, dtype) * jax.random.normal(key, (d, rank), dtype)
    B = jnp.zeros((rank, k), dtype)
    return LoRAInit(A, B, _no_offset(A, B))


def _spectral_factors(M, rank: int, gamma):
    U, s, Vt = _svd(M)
    root = jnp.sqrt(jnp.asarray(gamma, M.dtype) * s[:rank])
    return U[:, :rank] * root, root[:, None] * Vt[:rank]


def spectral_init(problem, rank: int, *, gamma=1.0) -> LoRAInit:
    """LoRA-One's spectral init: A_0 = sqrt(gamma) U_r S_r^{1/2}, B_0 = sqrt(gamma) S_r^{1/2} V_r^T.

    A_0 B_0 = gamma U_r S_r V_r^T is gamma times the best rank-r approximation of G (LoRA-One
    eq. (7)); with r >= r_star and gamma = 1 it is G itself in the noiseless linear model.
    Thm 4.2 (ReLU) uses gamma = 2, since there G is about dW / 2.
    """
    A, B = _spectral_factors(problem.G, rank, gamma)
    return LoRAInit(A, B, _no_offset(A, B))


def lora_one_init(problem, rank: int, *, variant: str = "normalized", s=4.0) -> LoRAInit:
    """The two scalings of LoRA-One's own code.

    * ``normalized`` (the paper's Algorithm 1 and its LLM code): S <- S / s_1, gamma = 1 / s,
      A_0 = U_r (S_r / s_1)^{1/2} / sqrt(s), B_0 = (S_r / s_1)^{1/2} V_r^T / sqrt(s); no offset.
    * ``orthonormal`` (the authors' older toy notebook): A_0 = c U_r, B_0 = c V_r^T with
      c = d^{1/4} / sqrt(s), and W0 offset by -A_0 B_0 so the model is unchanged at step 0.
    """
    U, sv, Vt = _svd(problem.G)
    dtype = problem.G.dtype
    s = jnp.asarray(s, dtype)
    if variant == "normalized":
        root = jnp.sqrt(sv[:rank] / sv[0] / s)
        A, B = U[:, :rank] * root, root[:, None] * Vt[:rank]
        return LoRAInit(A, B, _no_offset(A, B))
    if variant == "orthonormal":
        c = problem.W0.shape[0] ** 0.25 / jnp.sqrt(s)
        A, B = c * U[:, :rank], c * Vt[:rank]
        return LoRAInit(A, B, _keep_model_unchanged(A, B))
    raise ValueError(f"lora_one variant must be one of {VARIANTS['lora_one']}, got {variant!r}")


def lora_ga_init(problem, rank: int, *, s=4.0) -> LoRAInit:
    """LoRA-GA ("ArB2r"): A_0 = c U_{:, 1..r}, B_0 = c V_{:, r+1..2r}^T, W0 offset by -A_0 B_0.

    c = d^{1/4} / sqrt(s) (the same stable scale as lora_one 'orthonormal').  Needs 2r <= min(d, k).
    LoRA-One Sec. 5 argues that B_0 lies outside G's top right subspace, so training stalls.
    """
    U, _, Vt = _svd(problem.G)
    c = problem.W0.shape[0] ** 0.25 / jnp.sqrt(jnp.asarray(s, problem.G.dtype))
    A, B = c * U[:, :rank], c * Vt[rank : 2 * rank]
    return LoRAInit(A, B, _keep_model_unchanged(A, B))


def lora_sb_init(problem, rank: int, *, gamma=1.0) -> LoRAInit:
    """LoRA-SB: W = W0 + U_r R V_r^T with U_r, V_r fixed and R_0 = gamma U_r^T G V_r.

    Represented as A = U_r R (A_basis = U_r) and B = V_r^T (frozen), so only the r x r core R
    trains; no offset.
    """
    U, sv, Vt = _svd(problem.G)
    U_r = U[:, :rank]
    A = U_r * (jnp.asarray(gamma, sv.dtype) * sv[:rank])  # U_r R_0 with R_0 = gamma diag(S_r)
    B = Vt[:rank]
    return LoRAInit(A, B, _no_offset(A, B), A_basis=U_r)


def oracle_init(problem, rank: int, *, variant: str = "spectral", gamma=1.0, alpha=1e-2) -> LoRAInit:
    """The "wise" upper reference, from dW itself instead of G.

    * ``spectral``: as :func:`spectral_init` with dW in place of G (A_0 B_0 = gamma dW_r).
    * ``directions``: A_0 = alpha sqrt(d) U_r(dW) (columns of the norm a random column would have),
      B_0 = 0: HRP's wise init along the target's top singular directions.
    """
    if variant == "spectral":
        A, B = _spectral_factors(problem.dW, rank, gamma)
    elif variant == "directions":
        A, B = _directions(_svd(problem.dW)[0][:, :rank], problem.dW.shape[1], alpha)
    else:
        raise ValueError(f"oracle variant must be one of {VARIANTS['oracle']}, got {variant!r}")
    return LoRAInit(A, B, _no_offset(A, B))


def _directions(U_r, k: int, alpha):
    d, rank = U_r.shape
    scale = jnp.asarray(alpha, U_r.dtype) * jnp.sqrt(jnp.asarray(d, U_r.dtype))
    return scale * U_r, jnp.zeros((rank, k), U_r.dtype)


def preheat(
    problem,
    factors: LoRAFactors,
    *,
    steps: int,
    optimizer: str,
    lr,
    damping=0.0,
    train_factors: str = "both",
) -> LoRAFactors:
    """HRP's preheating phase: ``steps`` of ``optimizer`` on the LoRA factors, nothing logged.

    Runs :func:`lora_theory.engine.train` (the package's one loop) with
    :func:`~lora_theory.optimizers.optimizer_from_config`.  At preheat ranks above 12 the precgd
    solves go to LAPACK (see :mod:`lora_theory._linalg`).
    """
    from .engine import no_metrics, train  # the engine imports this module

    start = LoRAInit(factors.A, factors.B, _no_offset(factors.A, factors.B))
    opt = optimizer_from_config(optimizer, lr=lr, damping=damping, train_factors=train_factors)
    return train(problem, start, opt, steps=steps, log_every=max(steps, 1), observe=no_metrics).final


def hrp_init(
    problem,
    rank: int,
    *,
    key: jax.Array,
    alpha,
    preheat_rank: int,
    preheat_steps: int,
    preheat_lr,
    preheat_optimizer: str = "gd",
    preheat_damping=0.0,
    preheat_train_factors: str = "both",
    variant: str = "directions",
) -> LoRAInit:
    """HRP: preheat a rank-p LoRA from ``random``, SVD its product, init the rank-r LoRA from it.

    Preheat: ``preheat_steps`` of ``preheat_optimizer`` (lr ``preheat_lr``) on A_p (d x p, N(0,
    alpha^2)), B_p = 0, training ``preheat_train_factors``.  Then A_p B_p = U S V^T (from thin QRs
    of A_p and B_p^T, so no d x k SVD).

    * ``directions`` (default): A_0 = alpha sqrt(d) U_r (the top-r left singular vectors scaled to
      a random column's norm), B_0 = 0: the preheated update is discarded.
    * ``singular_values``: A_0 = U_r S_r^{1/2}, B_0 = S_r^{1/2} V_r^T (the preheated product's best
      rank-r approximation is kept).

    HRP has no public code; these choices (the scaling, the preheat learning rate, discarding the
    preheated update) are this suite's, and are parameters.
    """
    d, k = problem.W0.shape
    start = random_init(problem, preheat_rank, key=key, alpha=alpha)
    hot = preheat(
        problem,
        start.factors,
        steps=preheat_steps,
        optimizer=preheat_optimizer,
        lr=preheat_lr,
        damping=preheat_damping,
        train_factors=preheat_train_factors,
    )
    Q_A, R_A = jnp.linalg.qr(hot.A)
    Q_B, R_B = jnp.linalg.qr(hot.B.T)
    u, s, vt = _svd(R_A @ R_B.T)
    U_r, s_r, V_r = Q_A @ u[:, :rank], s[:rank], Q_B @ vt[:rank].T
    if variant == "directions":
        A, B = _directions(U_r, k, alpha)
    elif variant == "singular_values":
        root = jnp.sqrt(s_r)
        A, B = U_r * root, root[:, None] * V_r.T
    else:
        raise ValueError(f"hrp variant must be one of {VARIANTS['hrp']}, got {variant!r}")
    return LoRAInit(A, B, _no_offset(A, B))


def initialise(
    problem,
    name: str,
    *,
    rank: int,
    key: jax.Array,
    alpha=1e-2,
    gamma=1.0,
    variant: str | None = None,
    s=4.0,
    preheat_rank: int | None = None,
    preheat_steps: int = 50,
    preheat_optimizer: str = "gd",
    preheat_lr=None,
    preheat_damping=0.0,
    preheat_train_factors: str = "both",
) -> LoRAInit:
    """Initialise a rank-``rank`` LoRA on ``problem`` with the strategy ``name`` (see ``INITS``).

    Args:
        problem: a problem (e.g. :class:`~lora_theory.models.linear.LinearProblem`).
        name: one of ``INITS``.
        rank: r.
        key: a ``jax.random.key`` (used by ``random`` and ``hrp``).
        alpha: standard deviation of the random entries (``random``, ``hrp``, direction variants).
        gamma: spectral scale (``spectral``, ``oracle``, ``lora_sb``).
        variant: see ``VARIANTS``; default the first listed.
        s: LoRA-One / LoRA-GA scale parameter (``lora_one``, ``lora_ga``).
        preheat_*: HRP's preheating (rank p >= r, steps, optimizer, learning rate, damping, factors).
            ``preheat_lr`` is required for ``hrp``.

    Returns:
        A :class:`LoRAInit`.
    """
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; valid inits: {', '.join(INITS)}")
    variant = variant or DEFAULT_VARIANT.get(name)
    if name == "random":
        return random_init(problem, rank, key=key, alpha=alpha)
    if name == "spectral":
        return spectral_init(problem, rank, gamma=gamma)
    if name == "lora_one":
        return lora_one_init(problem, rank, variant=variant, s=s)
    if name == "lora_ga":
        return lora_ga_init(problem, rank, s=s)
    if name == "lora_sb":
        return lora_sb_init(problem, rank, gamma=gamma)
    if name == "oracle":
        return oracle_init(problem, rank, variant=variant, gamma=gamma, alpha=alpha)
    if preheat_lr is None:
        raise ValueError("hrp needs preheat_lr")
    return hrp_init(
        problem,
        rank,
        key=key,
        alpha=alpha,
        preheat_rank=preheat_rank if preheat_rank is not None else 2 * rank,
        preheat_steps=preheat_steps,
        preheat_lr=preheat_lr,
        preheat_optimizer=preheat_optimizer,
        preheat_damping=preheat_damping,
        preheat_train_factors=preheat_train_factors,
        variant=variant,
    )
