"""LoRA initialisations: the papers' (random, spectral, lora_one, lora_ga, lora_sb, hrp, oracle) and
the practical ones of PEFT's zoo (pissa, milora, olora, orthogonal) and the mirrored vanilla init
(random_b).

``G = U S V^T`` is the SVD of the one-step full gradient ``G = -grad_W L(W0)``; ``U_r, S_r, V_r``
its top r.  Every strategy returns a :class:`LoRAInit`: the initial factors, a low-rank ``offset``
added to W0 (zero except for the inits that keep the model unchanged at step 0) and, for
``lora_sb`` only, the fixed left basis onto which A's updates are projected.

**Orientation.**  This suite writes W = W0 + A B with W0 in R^{d x k}, A (d x r) on the input
side and y = W^T x.  PEFT stores the PyTorch weight W0^T (out x in) and adds B_peft A_peft, so
A = A_peft^T and B = B_peft^T: every PEFT formula below is transposed into this orientation.
With a scale s (``RunConfig.scaling``) the model is W0 + s (A B + offset), so an offset of
-A_0 B_0 keeps the model unchanged at step 0 under any scale (see :mod:`lora_theory.scaling`).

**The registry.**  :data:`INITS` maps each name (``RunConfig.init``, ``--init``) to an
:class:`InitSpec`: the function ``fn(problem, rank, *, key, **params) -> LoRAInit``, the
:class:`~lora_theory.config.RunConfig` fields it reads (``params``), its variants and an optional
cross-field check; the function's docstring is the init's paper and formula.
:func:`register_init` adds one (a user's own init, without editing the package), and
:func:`initialise` and the engine dispatch through it: there is no other list of inits.

Float parameters (alpha, gamma, s, preheat_lr, preheat_damping) may be traced, so a grid over
them is one ``vmap``; names, variants, ranks and step counts are static.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .config import DYNAMIC_FIELDS, FIELD_SPECS, RunConfig, invalid
from .models.linear import LowRank
from .optimizers import LoRAFactors, Scalar, optimizer_from_config
from .scaling import lora_scale

__all__ = [
    "LoRAInit",
    "InitSpec",
    "INITS",
    "VARIANTS",
    "register_init",
    "get_init",
    "initialise",
    "random_init",
    "spectral_init",
    "lora_one_init",
    "lora_ga_init",
    "lora_sb_init",
    "hrp_init",
    "hrp_init_over_ranks",
    "oracle_init",
    "random_b_init",
    "pissa_init",
    "milora_init",
    "olora_init",
    "orthogonal_init",
    "preheat",
]


_LORA_ONE_VARIANTS = ("normalized", "orthonormal")
_HRP_VARIANTS = ("directions", "singular_values")
_ORACLE_VARIANTS = ("spectral", "directions")
_OLORA_VARIANTS = ("peft", "qr")


class LoRAInit(NamedTuple):
    """Initial LoRA state.

    Attributes:
        A: A_0, d x r.
        B: B_0, r x k.
        offset: low-rank matrix added to W0 for the whole run (``-A_0 B_0`` for the inits that
            leave the model unchanged at step 0; rank 0, i.e. nothing, otherwise).  ``None``
            (the default, for a user's own init) means nothing: :func:`~lora_theory.engine.train`
            reads it as a rank-0 offset (:meth:`with_offset`).
        A_basis: for ``lora_sb`` the fixed d x r orthonormal basis U_r: A = U_r R stays in its span
            and B = V_r^T is frozen, so only the r x r core R trains. ``None`` for the others.
    """

    A: Float[Array, "d r"]
    B: Float[Array, "r k"]
    offset: LowRank | None = None
    A_basis: Float[Array, "d r"] | None = None

    @property
    def factors(self) -> LoRAFactors:
        return LoRAFactors(self.A, self.B)

    def with_offset(self) -> LoRAInit:
        """This init with ``offset=None`` replaced by the rank-0 offset (shapes (d, 0), (0, k))."""
        return self if self.offset is not None else self._replace(offset=_no_offset(self.A, self.B))


def _no_offset(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> LowRank:
    """A rank-0 offset: shapes (d, 0) and (0, k), so every product with it costs nothing."""
    return LowRank(jnp.zeros((A.shape[0], 0), A.dtype), jnp.zeros((0, B.shape[1]), B.dtype))


def _keep_model_unchanged(A: Float[Array, "d r"], B: Float[Array, "r k"]) -> LowRank:
    return LowRank(-A, B)


def _svd(M: Float[Array, "d k"]) -> tuple[Array, Array, Array]:
    return jnp.linalg.svd(M, full_matrices=False, compute_uv=True)


def random_init(problem: Any, rank: int, *, key: jax.Array, alpha: Scalar) -> LoRAInit:
    """Vanilla LoRA: A_0 with N(0, alpha^2) entries, B_0 = 0 (alpha is a standard deviation)."""
    d, k = problem.W0.shape
    dtype = problem.W0.dtype
    A = jnp.asarray(alpha, dtype) * jax.random.normal(key, (d, rank), dtype)
    B = jnp.zeros((rank, k), dtype)
    return LoRAInit(A, B, _no_offset(A, B))


def random_b_init(problem: Any, rank: int, *, key: jax.Array, alpha: Scalar) -> LoRAInit:
    """The mirrored vanilla init: A_0 = 0, B_0 with N(0, alpha^2) entries ("which factor to zero").

    Thm 3.1's invariance does not simply mirror.  Under GD, A_1 = eta G B_0^T lies in G's column
    space, but at finite N the gradient grad_A L = (Sigma_hat A B - G) B^T leaves it (Sigma_hat
    acts on the input side, where A lives); in population mode (Sigma = I, G = dW) A_t stays in
    dW's column space for every t.  (With ``random``, B_0 = 0, B_t stays in G's row space at any
    N: Sigma_hat never acts on B's side.)  Same key, same draws as ``random`` (on B's shape).
    """
    d, k = problem.W0.shape
    dtype = problem.W0.dtype
    A = jnp.zeros((d, rank), dtype)
    B = jnp.asarray(alpha, dtype) * jax.random.normal(key, (rank, k), dtype)
    return LoRAInit(A, B, _no_offset(A, B))


def _spectral_factors(M: Float[Array, "d k"], rank: int, gamma: Scalar) -> tuple[Array, Array]:
    U, s, Vt = _svd(M)
    root = jnp.sqrt(jnp.asarray(gamma, M.dtype) * s[:rank])
    return U[:, :rank] * root, root[:, None] * Vt[:rank]


def spectral_init(problem: Any, rank: int, *, key: jax.Array | None = None, gamma: Scalar = 1.0) -> LoRAInit:
    """LoRA-One's spectral init: A_0 = sqrt(gamma) U_r S_r^{1/2}, B_0 = sqrt(gamma) S_r^{1/2} V_r^T.

    A_0 B_0 = gamma U_r S_r V_r^T is gamma times the best rank-r approximation of G (LoRA-One
    eq. (7)); with r >= r_star and gamma = 1 it is G itself in the noiseless linear model.
    Thm 4.2 (ReLU) uses gamma = 2, since there G is about dW / 2.

    Examples:
        >>> from lora_theory.inits import spectral_init
        >>> problem = lt.make_problem(lt.RunConfig(d=6, k=5, r_star=2, n_samples=40), key=jax.random.key(0))
        >>> init = spectral_init(problem, 2)
        >>> U, s, Vt = jnp.linalg.svd(problem.G)
        >>> bool(jnp.allclose(init.A @ init.B, (U[:, :2] * s[:2]) @ Vt[:2]))  # best rank-2 of G
        True
    """
    A, B = _spectral_factors(problem.G, rank, gamma)
    return LoRAInit(A, B, _no_offset(A, B))


def lora_one_init(
    problem: Any, rank: int, *, key: jax.Array | None = None, variant: str = "normalized", s: Scalar = 4.0
) -> LoRAInit:
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
    raise ValueError(f"lora_one variant must be one of {_LORA_ONE_VARIANTS}, got {variant!r}")


def lora_ga_init(problem: Any, rank: int, *, key: jax.Array | None = None, s: Scalar = 4.0) -> LoRAInit:
    """LoRA-GA ("ArB2r"): A_0 = c U_{:, 1..r}, B_0 = c V_{:, r+1..2r}^T, W0 offset by -A_0 B_0.

    c = d^{1/4} / sqrt(s) (the same stable scale as lora_one 'orthonormal').  Needs 2r <= min(d, k).
    LoRA-One Sec. 5 argues that B_0 lies outside G's top right subspace, so training stalls.
    """
    U, _, Vt = _svd(problem.G)
    c = problem.W0.shape[0] ** 0.25 / jnp.sqrt(jnp.asarray(s, problem.G.dtype))
    A, B = c * U[:, :rank], c * Vt[rank : 2 * rank]
    return LoRAInit(A, B, _keep_model_unchanged(A, B))


def lora_sb_init(problem: Any, rank: int, *, key: jax.Array | None = None, gamma: Scalar = 1.0) -> LoRAInit:
    """LoRA-SB: W = W0 + U_r R V_r^T with U_r, V_r fixed and R_0 = gamma U_r^T G V_r.

    Represented as A = U_r R (A_basis = U_r) and B = V_r^T (frozen), so only the r x r core R
    trains; no offset.
    """
    U, sv, Vt = _svd(problem.G)
    U_r = U[:, :rank]
    A = U_r * (jnp.asarray(gamma, sv.dtype) * sv[:rank])  # U_r R_0 with R_0 = gamma diag(S_r)
    B = Vt[:rank]
    return LoRAInit(A, B, _no_offset(A, B), A_basis=U_r)


def oracle_init(
    problem: Any,
    rank: int,
    *,
    key: jax.Array | None = None,
    variant: str = "spectral",
    gamma: Scalar = 1.0,
    alpha: Scalar = 1e-2,
) -> LoRAInit:
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
        raise ValueError(f"oracle variant must be one of {_ORACLE_VARIANTS}, got {variant!r}")
    return LoRAInit(A, B, _no_offset(A, B))


def _w0_components(W0: Float[Array, "d k"], components: slice, scale: Scalar | None) -> LoRAInit:
    """A = U S^{1/2}, B = S^{1/2} V^T from the chosen singular components of W0, S divided by s."""
    U, s, Vt = _svd(W0)
    s_sel = s[components] if scale is None else s[components] / scale
    root = jnp.sqrt(s_sel)
    A, B = U[:, components] * root, root[:, None] * Vt[components]
    return LoRAInit(A, B, _keep_model_unchanged(A, B))


def pissa_init(
    problem: Any, rank: int, *, key: jax.Array | None = None, scaling: str = "none", lora_alpha: Scalar = 8.0
) -> LoRAInit:
    """PiSSA: A_0 = U_r S_r^{1/2}, B_0 = S_r^{1/2} V_r^T from W0's top-r SVD, W0 offset by -A_0 B_0.

    Meng, Wang, Zhang, "PiSSA: Principal Singular Values and Singular Vectors Adaptation of Large
    Language Models", NeurIPS 2024 (arXiv 2404.02948), its method section: W0 = U S V^T; the branch
    gets W0's principal part U_r S_r V_r^T and the frozen residual W0 - U_r S_r V_r^T, so the
    model is unchanged at step 0.  Here W0 = U S V^T is this suite's d x k W0 (so U_r is the
    input side).

    PEFT (``init_lora_weights="pissa"``, ``LoraLayer.pissa_init``): the SVD of the PyTorch weight
    W0^T = V S U^T, lora_A = (S_r / s)^{1/2} U_r^T, lora_B = V_r (S_r / s)^{1/2} with s the
    layer's scaling, and the base weight minus s lora_B lora_A; transposed, that is the formula
    above with S_r divided by the scale s (under ``scaling='none'``, s = 1).  ("pissa_niter_n",
    a randomised SVD, is not reproduced: the exact SVD is the n -> infinity limit.)
    """
    return _w0_components(problem.W0, slice(0, rank), lora_scale(scaling, lora_alpha, rank))


def milora_init(
    problem: Any, rank: int, *, key: jax.Array | None = None, scaling: str = "none", lora_alpha: Scalar = 8.0
) -> LoRAInit:
    """MiLoRA: PiSSA's formula with W0's r smallest singular components (m = min(d, k) in all).

    Wang, Li, Wang, Chen, Chen, "MiLoRA: Harnessing Minor Singular Components for Parameter-
    Efficient LLM Finetuning", NAACL 2025 (arXiv 2406.09044), its method section: A_0 = U_{m-r+1..m} S^{1/2},
    B_0 = S^{1/2} V_{m-r+1..m}^T, W0 offset by -A_0 B_0 (model unchanged at step 0): training is
    steered into the "less-optimised" minor subspace.

    PEFT has no MiLoRA option (its ``init_lora_weights`` are True, False, "gaussian", "eva",
    "olora", "pissa", "pissa_niter_n", "corda", "loftq", "orthogonal"); the authors' code is a
    PiSSA-style change of the SVD slice, so this init follows ``pissa``'s convention (S divided
    by the scale s).
    """
    m = min(problem.W0.shape)
    return _w0_components(problem.W0, slice(m - rank, m), lora_scale(scaling, lora_alpha, rank))


def olora_init(problem: Any, rank: int, *, key: jax.Array | None = None, variant: str = "peft") -> LoRAInit:
    """OLoRA: the LoRA factors from a QR decomposition of W0, W0 offset by -A_0 B_0.

    Büyükakyüz, "OLoRA: Orthonormal Low-Rank Adaptation of Large Language Models", arXiv
    2406.01775, its method section: W = Q R, the adapter starts at Q_r R_r (first r columns of Q, rows
    of R), the frozen weight is W - Q_r R_r (model unchanged at step 0).  The paper's W is the
    PyTorch weight (out x in), so which side is orthonormal depends on the orientation:

    * ``peft`` (default; PEFT's ``init_lora_weights="olora"``, ``LoraLayer.olora_init``): the QR
      of the PyTorch weight W0^T = Q R (Q: k x m, R: m x d), lora_B = Q_r, lora_A = R_r, base
      weight minus s lora_B lora_A.  Transposed: A_0 = R_r^T (d x r), B_0 = Q_r^T (r x k), an LQ
      decomposition of this suite's W0: the orthonormal factor is the output side B_0.
    * ``qr``: the QR of this suite's W0 = Q R (Q: d x m), A_0 = Q_{:, 1..r}, B_0 = R_{1..r, :} (the
      orthonormal factor on the input side, as the issue that asked for OLoRA wrote it).

    PEFT applies no 1/s to the factors (unlike pissa): the scale multiplies Q_r R_r, and the
    offset -A_0 B_0 cancels it (the branch is scaled as a whole).
    """
    if variant == "peft":
        Q, R = jnp.linalg.qr(problem.W0.T)
        A, B = R[:rank].T, Q[:, :rank].T
    elif variant == "qr":
        Q, R = jnp.linalg.qr(problem.W0)
        A, B = Q[:, :rank], R[:rank]
    else:
        raise ValueError(f"olora variant must be one of {_OLORA_VARIANTS}, got {variant!r}")
    return LoRAInit(A, B, _keep_model_unchanged(A, B))


def orthogonal_init(problem: Any, rank: int, *, key: jax.Array, alpha: Scalar) -> LoRAInit:
    """PEFT's orthogonal init: both factors non-zero, their product zero (to rounding) at step 0.

    PEFT (``init_lora_weights="orthogonal"``, ``LoraLayer.orthogonal_init``, after the blog post
    datta0.github.io/posts/rethink-lora-init, which PEFT cites): r even; Q is the orthogonal factor of an
    r x r Gaussian, q_odd its rows 1, 3, 5, ... and q_even its rows 2, 4, ...  (r/2 x r each);
    lora_A = (Z_A q_odd)^T / 10, lora_B = Z_B^T q_even / 10 with Z_A (in x r/2), Z_B (r/2 x out)
    Gaussian.  Transposed into this orientation: A_0 = alpha Z_A q_odd (d x r), B_0 = alpha q_even^T
    Z_B (r x k), so A_0 B_0 = alpha^2 Z_A (q_odd q_even^T) Z_B = 0 (distinct rows of Q are
    orthogonal).  Each factor has rank r/2.  No offset is needed.

    PEFT's factor is 1/10; here it is ``alpha`` (default 1e-2, the suite's random-init std, so
    ``orthogonal`` and ``random`` start at comparable scales; ``--alpha 0.1`` gives PEFT's).  The
    entries of A_0 then have standard deviation about alpha / sqrt(2).
    """
    d, k = problem.W0.shape
    dtype = problem.W0.dtype
    key_q, key_a, key_b = jax.random.split(key, 3)
    Q, _ = jnp.linalg.qr(jax.random.normal(key_q, (rank, rank), dtype))
    half = rank // 2
    scale = jnp.asarray(alpha, dtype)
    A = scale * (jax.random.normal(key_a, (d, half), dtype) @ Q[0::2])
    B = scale * (Q[1::2].T @ jax.random.normal(key_b, (half, k), dtype))
    return LoRAInit(A, B, _no_offset(A, B))


def _directions(U_r: Float[Array, "d r"], k: int, alpha: Scalar) -> tuple[Array, Array]:
    d, rank = U_r.shape
    scale = jnp.asarray(alpha, U_r.dtype) * jnp.sqrt(jnp.asarray(d, U_r.dtype))
    return scale * U_r, jnp.zeros((rank, k), U_r.dtype)


def preheat(
    problem: Any,
    factors: LoRAFactors,
    *,
    steps: int,
    optimizer: str,
    lr: Scalar,
    damping: Scalar = 0.0,
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
    problem: Any,
    rank: int,
    *,
    key: jax.Array,
    alpha: Scalar,
    preheat_rank: int,
    preheat_steps: int,
    preheat_lr: Scalar,
    preheat_optimizer: str = "gd",
    preheat_damping: Scalar = 0.0,
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
    if variant not in _HRP_VARIANTS:
        raise ValueError(f"hrp variant must be one of {_HRP_VARIANTS}, got {variant!r}")
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
    return _hrp_from_preheated(hot, rank, alpha, variant)


def _hrp_from_preheated(hot: LoRAFactors, rank: int, alpha: Scalar, variant: str) -> LoRAInit:
    """HRP's rank-r init from the preheated factors: the SVD of A_p B_p from thin QRs of A_p, B_p^T."""
    Q_A, R_A = jnp.linalg.qr(hot.A)
    Q_B, R_B = jnp.linalg.qr(hot.B.T)
    u, s, vt = _svd(R_A @ R_B.T)
    U_r, s_r, V_r = Q_A @ u[:, :rank], s[:rank], Q_B @ vt[:rank].T
    if variant == "directions":
        A, B = _directions(U_r, hot.B.shape[1], alpha)
    else:  # "singular_values"
        root = jnp.sqrt(s_r)
        A, B = U_r * root, root[:, None] * V_r.T
    return LoRAInit(A, B, _no_offset(A, B))


def hrp_init_over_ranks(
    problem: Any,
    rank: int,
    *,
    key: jax.Array,
    alpha: Scalar,
    preheat_ranks: tuple[int, ...],
    preheat_steps: int,
    preheat_lr: Scalar,
    preheat_optimizer: str = "gd",
    preheat_damping: Scalar = 0.0,
    preheat_train_factors: str = "both",
    variant: str = "directions",
) -> LoRAInit:
    """:func:`hrp_init` for several preheat ranks p at once, in one compiled preheat loop.

    One random start at p_max = max(preheat_ranks) (A_p_max with N(0, alpha^2) entries: the same
    draw as ``hrp_init(..., preheat_rank=p_max)``); the rank-p start is its first p columns, the
    others zeroed, and B = 0.  Zero columns of A with the matching zero rows of B stay zero under
    gd and precgd (their gradients and preconditioned updates vanish), so each preheat is exactly
    a rank-p preheat, and one loop, vmapped over the ranks' masks, runs them all.  The starts are
    nested (common random numbers across p); at p = p_max the result is ``hrp_init``'s.

    Returns:
        A :class:`LoRAInit` whose arrays have a leading axis, one entry per preheat rank.
    """
    if variant not in _HRP_VARIANTS:
        raise ValueError(f"hrp variant must be one of {_HRP_VARIANTS}, got {variant!r}")
    ranks = tuple(int(p) for p in preheat_ranks)
    if not ranks or min(ranks) < rank:
        raise ValueError(f"preheat_ranks must be non-empty and each >= rank = {rank}, got {ranks}")
    start = random_init(problem, max(ranks), key=key, alpha=alpha)
    masks = jnp.asarray([[float(j < p) for j in range(max(ranks))] for p in ranks], start.A.dtype)

    def one(mask: Float[Array, " p_max"]) -> LoRAInit:
        hot = preheat(
            problem,
            LoRAFactors(start.A * mask, start.B * mask[:, None]),
            steps=preheat_steps,
            optimizer=preheat_optimizer,
            lr=preheat_lr,
            damping=preheat_damping,
            train_factors=preheat_train_factors,
        )
        return _hrp_from_preheated(hot, rank, alpha, variant)

    return jax.vmap(one)(masks)


# ---------------------------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------------------------

#: a cross-field check: ``check(config) -> None`` when valid, else ``(field, requirement)``.
Check = Callable[[RunConfig], "tuple[str, str] | None"]


@dataclass(frozen=True)
class InitSpec:
    """A registered initialisation (an entry of :data:`INITS`).

    Attributes:
        name: its name: ``RunConfig.init``, ``--init``, the results' ``init`` column.
        fn: ``fn(problem, rank, *, key, **params) -> LoRAInit``.  ``params`` are the declared
            fields' values (the dynamic ones possibly traced: a sweep over them is one ``vmap``),
            plus ``variant=`` when the init has variants.  A deterministic init takes ``key`` and
            ignores it.  Its docstring is the init's documentation (paper, formula).
        params: the :class:`~lora_theory.config.RunConfig` fields ``fn`` reads; :func:`validate`
            checks them (HRP's ``preheat_*`` only for the inits that read them).
        variants: the init's variants, the first the default (``RunConfig.variant``).
        check: an optional cross-field check, ``check(config) -> None`` or ``(field,
            requirement)`` (e.g. lora_ga's ``2 rank <= min(d, k)``), run by ``validate``.
    """

    name: str
    fn: Callable[..., LoRAInit]
    params: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    check: Check | None = None

    @property
    def default_variant(self) -> str | None:
        return self.variants[0] if self.variants else None

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    def arguments(self, config: RunConfig, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The keyword arguments of ``fn`` for ``config``: each declared field's value, from
        ``values`` (the possibly traced dynamic values) for a dynamic field and resolved from the
        config otherwise, and ``variant`` (the config's, or the default) when there are variants."""
        values = config.dynamic_values() if values is None else values
        out = {name: values[name] if name in DYNAMIC_FIELDS else config.resolved(name) for name in self.params}
        if self.variants:
            out["variant"] = config.variant or self.default_variant
        return out

    def __call__(self, problem: Any, rank: int, *, key: jax.Array, **params: Any) -> LoRAInit:
        return self.fn(problem, rank, key=key, **params)


_INITS: dict[str, InitSpec] = {}
_BUILTIN: set[str] = set()

#: init name -> :class:`InitSpec`, read-only and live (it reflects every :func:`register_init`).
INITS: Mapping[str, InitSpec] = types.MappingProxyType(_INITS)


class _Variants(Mapping):
    """init name -> its variants, for the inits that have some (a live view of :data:`INITS`)."""

    def __getitem__(self, name: str) -> tuple[str, ...]:
        if name not in _INITS or not _INITS[name].variants:
            raise KeyError(name)
        return _INITS[name].variants

    def __iter__(self) -> Iterator[str]:
        return (name for name, entry in _INITS.items() if entry.variants)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


#: init name -> variants (the first the default), for the inits with variants; live.
VARIANTS: Mapping[str, tuple[str, ...]] = _Variants()

_NOT_PARAMS = ("init", "rank", "variant")


def register_init(
    name: str,
    fn: Callable[..., LoRAInit],
    *,
    params: tuple[str, ...] = (),
    variants: tuple[str, ...] = (),
    check: Check | None = None,
    replace: bool = False,
) -> InitSpec:
    """Register an initialisation under ``name``: then ``RunConfig(init=name)``, ``--init name``,
    :func:`initialise`, :func:`~lora_theory.engine.simulate` and ``lora-theory list`` know it.

    Args:
        name: the init's name (what the config, the CLI and the results' ``init`` column say).
        fn: ``fn(problem, rank, *, key, **params) -> LoRAInit`` (``key``: a ``jax.random.key``;
            the problem has ``W0``, ``G``, ``dW``; see :class:`LoRAInit` for the offset).
        params: the :class:`~lora_theory.config.RunConfig` fields ``fn`` takes as keyword
            arguments, e.g. ``("alpha",)``; dynamic ones (alpha, gamma, s, ...) arrive as traced
            scalars and can be swept in one compiled program.
        variants: the init's variant names, the first the default; ``fn`` then gets ``variant=``.
        check: optional ``check(config) -> None | (field, requirement)``, run by ``validate``.
        replace: allow replacing a built-in init (a user's own name may be registered again:
            the new entry replaces the old, and the next :func:`~lora_theory.engine.simulate`
            compiles afresh, since the entry is part of the compiled program's cache key).

    Returns:
        The :class:`InitSpec` (also callable: ``spec(problem, rank, key=key, **params)``).

    Why a name and not the function in the RunConfig: see :class:`~lora_theory.config.RunConfig`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"init name must be a non-empty string, got {name!r}")
    if name in _BUILTIN and not replace:
        raise ValueError(f"{name!r} is a built-in init; pass replace=True to replace it")
    if not callable(fn):
        raise TypeError(f"init {name!r}: fn must be callable, got {fn!r}")
    params, variants = tuple(params), tuple(variants)
    for param in params:
        if param not in FIELD_SPECS or param in _NOT_PARAMS:
            valid = ", ".join(n for n in FIELD_SPECS if n not in _NOT_PARAMS)
            raise ValueError(f"init {name!r}: parameter {param!r} is not a RunConfig field; valid: {valid}")
    spec = InitSpec(name, fn, params, variants, check)
    _INITS[name] = spec
    return spec


def get_init(init: str | InitSpec) -> InitSpec:
    """The :class:`InitSpec` named ``init`` (an ``InitSpec`` is returned as is).

    Raises:
        ConfigError: (a ``ValueError``) for an unknown name, listing the valid ones; the same
            message as :func:`~lora_theory.config.validate`'s.
    """
    if isinstance(init, InitSpec):
        return init
    if init not in _INITS:
        raise invalid("init", init, f"must be one of {', '.join(_INITS)}")
    return _INITS[init]


def _lora_ga_check(c: RunConfig) -> tuple[str, str] | None:
    m = min(c.d, c.k)
    if 2 * c.rank > m:
        return "rank", f"lora_ga uses singular directions r+1..2r, so 2*rank must be <= min(d, k) = {m}"
    return None


def _lora_sb_check(c: RunConfig) -> tuple[str, str] | None:
    if c.train_factors == "B":
        return "train_factors", "lora_sb trains only its r x r core (use 'both' or 'A')"
    return None


_HRP_PARAMS = (
    "alpha",
    "preheat_rank",
    "preheat_steps",
    "preheat_optimizer",
    "preheat_lr",
    "preheat_damping",
    "preheat_train_factors",
)


def _orthogonal_check(c: RunConfig) -> tuple[str, str] | None:
    if c.rank % 2:
        return "rank", "orthogonal splits Q's rows into odd and even ones, so the rank must be even"
    return None


register_init("random", random_init, params=("alpha",))
register_init("random_b", random_b_init, params=("alpha",))
register_init("spectral", spectral_init, params=("gamma",))
register_init("lora_one", lora_one_init, params=("s",), variants=_LORA_ONE_VARIANTS)
register_init("lora_ga", lora_ga_init, params=("s",), check=_lora_ga_check)
register_init("lora_sb", lora_sb_init, params=("gamma",), check=_lora_sb_check)
register_init("pissa", pissa_init, params=("scaling", "lora_alpha"))
register_init("milora", milora_init, params=("scaling", "lora_alpha"))
register_init("olora", olora_init, variants=_OLORA_VARIANTS)
register_init("orthogonal", orthogonal_init, params=("alpha",), check=_orthogonal_check)
register_init("hrp", hrp_init, params=_HRP_PARAMS, variants=_HRP_VARIANTS)
register_init("oracle", oracle_init, params=("gamma", "alpha"), variants=_ORACLE_VARIANTS)
_BUILTIN.update(_INITS)


def initialise(problem: Any, init: str | InitSpec, *, rank: int, key: jax.Array, **params: Any) -> LoRAInit:
    """Initialise a rank-``rank`` LoRA on ``problem`` with the strategy ``init`` (see :data:`INITS`).

    Dispatches through the registry: ``get_init(init)(problem, rank, key=key, **arguments)``,
    with the arguments the init declares taken from ``params`` and, for the others, the
    :class:`~lora_theory.config.RunConfig` defaults (so ``preheat_lr`` defaults to ``lr``, and
    ``preheat_rank`` to 2 ``rank``).  Parameters the init does not read are ignored.

    Args:
        problem: a problem (e.g. :class:`~lora_theory.models.linear.LinearProblem`).
        init: a name of ``INITS`` or an :class:`InitSpec`.
        rank: r.
        key: a ``jax.random.key`` (used by ``random`` and ``hrp``).
        params: RunConfig fields, e.g. ``alpha`` (standard deviation of the random entries:
            ``random``, ``hrp``, direction variants), ``gamma`` (spectral scale: ``spectral``,
            ``oracle``, ``lora_sb``), ``variant`` (see ``VARIANTS``; default the first listed),
            ``s`` (LoRA-One / LoRA-GA scale), HRP's ``preheat_*`` (rank p >= r, steps,
            optimizer, learning rate, damping, factors).  Float values may be traced.

    Returns:
        A :class:`LoRAInit`.

    Examples:
        >>> problem = lt.make_problem(lt.RunConfig(d=6, k=5, r_star=2, n_samples=40), key=jax.random.key(0))
        >>> init = lt.initialise(problem, "random", rank=2, key=jax.random.key(1), alpha=0.1)
        >>> init.A.shape, init.B.shape, bool((init.B == 0).all())  # B_0 = 0: the model starts at W0
        ((6, 2), (2, 5), True)
        >>> lt.initialise(problem, "lora_one", rank=2, key=jax.random.key(1), variant="normalized").A.shape
        (6, 2)
    """
    spec = get_init(init)
    unknown = sorted(set(params) - set(FIELD_SPECS) | set(params) & {"init", "rank"})
    if unknown:
        raise TypeError(f"initialise() got unexpected parameters {unknown}; parameters are RunConfig fields")
    if params.get("variant") is not None and params["variant"] not in spec.variants:
        valid = f"must be one of {', '.join(spec.variants)}" if spec.variants else f"init {spec.name!r} has no variants"
        raise invalid("variant", params["variant"], valid)
    config = RunConfig(init=spec.name, rank=rank, **params)  # a holder: values may be traced
    return spec(problem, rank, key=key, **spec.arguments(config))
