"""F9: the practical inits through the theory's lens (PEFT's zoo, LoRA+, rsLoRA, targets in W0's subspaces).

Linear model, finite N, noiseless: d = k = 64, r_star = 4, r = 8, N = 16 d, dW's singular values
geometric from 1 to 1/kappa (kappa = 4), W0 with N(0, 1) entries.  Three target structures
(``target_subspace``): ``random`` (dW's singular vectors Haar, independent of W0), ``top`` (inside
W0's top-r_star singular subspaces, PiSSA's premise) and ``bottom`` (inside its bottom ones,
MiLoRA's).  In the linear model W0 drops out of the loss (G = Sigma_hat dW): it matters only to the
inits that read it (pissa, milora, olora) and to ``align_A_W0``.

(a) every init of the registry (random, random_b, spectral, lora_one, lora_ga, lora_sb, pissa,
    milora, olora, orthogonal, hrp, oracle; default variants) x target x optimizer (gd, eta = 1/32;
    precgd, eta = 0.5, lam = 1e-8): the relative error ||A_t B_t + offset - dW||_F / ||dW||_F at
    step 0 and after T steps, and span_A_dW at step 0 (sin of the largest angle between dW's left
    singular subspace and A_0's column space: 0 when span(A_0) contains it).
(b) LoRA+: the final error against lr_ratio in {1, 2, 4, 8, 16} for random and spectral init
    (gd, random target).
(c) rsLoRA: the final error against r in {4, 8, 16, 32} under ``lora`` (s = alpha / r) and
    ``rslora`` (s = alpha / sqrt(r)) scaling at the same eta, random init, gd, lora_alpha = 8.

The random-scale inits (random, random_b, orthogonal, hrp) use alpha = 1e-2; hrp preheats a rank-2r
LoRA for 100 gd steps at lr 0.25.

How it runs: one compiled program covers every panel for a chunk of seeds (12 x 3 x 2 runs would be
72 programs through :func:`lora_theory.simulate`, one per static config).  It builds each seed's
three problems (the keys of ``simulate``: a run here is ``simulate``'s run of the same config), all
inits on them in one ``lax.map``, the offsets padded with zero columns to rank r (an exact zero: the
model is the same), and trains them with the engine's :func:`lora_theory.train_batch` (``vmap``
over the inits with each problem shared), lora_sb apart (its projection), LoRA+'s ratios as a grid
of ``lr_ratio`` and each rank of (c) as its own ``train_batch``.  The logged quantities are
:func:`f9_metrics` (the ones the figure uses), every ``log_every`` steps.

Theory drawn (dashed): spectral init's start.  In the noiseless model with r >= r_star, A_0 B_0 =
G = Sigma_hat dW, so its relative error is ||(Sigma_hat - I) dW||_F / ||dW||_F <= ||Sigma_hat - I||_op
(LoRA-One Thm 3.3's argument, in the Frobenius norm: this suite's form); the mean bound over seeds
is drawn on spectral's and lora_sb's bars (lora_sb starts at the same product).  oracle starts at 0.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jax import lax

import lora_theory as lt
from lora_theory import plotting as P
from lora_theory.metrics import align_A_many, risk, span_contains

from .common import progress_bar, save

NAME = "f9"
TITLE = "practical inits (PEFT's zoo, LoRA+, rsLoRA) x targets in W0's subspaces: error and alignment"

#: the inits of panel (a), in legend order (each with its default variant).
INITS = (
    "random",
    "random_b",
    "spectral",
    "lora_one",
    "lora_ga",
    "lora_sb",
    "pissa",
    "milora",
    "olora",
    "orthogonal",
    "hrp",
    "oracle",
)
OPTIMIZERS = ("gd", "precgd")
#: the inits of the LoRA+ panel.
PLUS_INITS = ("random", "spectral")
SCALINGS = ("lora", "rslora")
#: the logged quantities (columns of the results).
METRICS = ("risk", "rel_err", "align_A_dW", "align_A_G", "align_A_W0", "span_A_dW")


@dataclass(frozen=True)
class Config:
    """F9's parameters."""

    seeds: int = 50
    d: int = 64
    r_star: int = 4
    rank: int = 8
    n_factor: int = 16
    kappa: float = 4.0
    alpha: float = 1e-2
    gd_lr: float = 0.03125
    precgd_lr: float = 0.5
    damping: float = 1e-8
    preheat_steps: int = 100
    preheat_lr: float = 0.25
    steps: int = 2000
    log_every: int = 100
    targets: tuple[str, ...] = ("random", "top", "bottom")
    lr_ratios: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    ranks: tuple[int, ...] = (4, 8, 16, 32)
    lora_alpha: float = 8.0
    chunk_seeds: int = 10

    @classmethod
    def full(cls) -> Config:
        return cls()

    @classmethod
    def quick(cls) -> Config:
        return cls(
            seeds=3,
            d=24,
            r_star=2,
            rank=4,
            steps=300,
            log_every=30,
            lr_ratios=(1.0, 4.0, 16.0),
            ranks=(2, 8),
            preheat_steps=40,
        )

    def run_config(
        self,
        init: str = "random",
        optimizer: str = "gd",
        target: str = "random",
        *,
        rank: int | None = None,
        scaling: str = "none",
    ) -> lt.RunConfig:
        """The RunConfig of one run (``simulate`` with it and ``seeds=[s]`` gives this figure's run)."""
        return lt.RunConfig(
            model="linear",
            d=self.d,
            k=self.d,
            r_star=self.r_star,
            rank=self.rank if rank is None else rank,
            n_samples=self.n_factor * self.d,
            kappa=self.kappa,
            target_subspace=target,
            init=init,
            alpha=self.alpha,
            preheat_steps=self.preheat_steps,
            preheat_lr=self.preheat_lr,
            optimizer=optimizer,
            lr=self.gd_lr if optimizer == "gd" else self.precgd_lr,
            damping=self.damping,
            scaling=scaling,
            lora_alpha=self.lora_alpha,
            steps=self.steps,
            log_every=self.log_every,
        )


def f9_metrics(problem, objective, factors) -> dict:
    """The logged quantities: risk, rel_err, align_A_dW, align_A_G, align_A_W0 (as in lora_metrics)
    and span_A_dW = ||(I - P_{span A}) U_dW||_2 (:func:`~lora_theory.metrics.span_contains`: 0 when
    A's column space contains dW's left subspace, whatever ties A's singular values have)."""
    excess = risk(problem, objective, factors)
    sines = align_A_many(factors.A, (problem.dW_left, problem.G_left, problem.W0_left))
    return {
        "risk": excess,
        "rel_err": jnp.sqrt(2.0 * excess) / jnp.linalg.norm(problem.dW_singular_values),
        "align_A_dW": sines[0],
        "align_A_G": sines[1],
        "align_A_W0": sines[2],
        "span_A_dW": span_contains(factors.A, problem.dW_left),
    }


# ---------------------------------------------------------------------------------------------
# the compiled program
# ---------------------------------------------------------------------------------------------


class Points(NamedTuple):
    """The runs trained on every problem, stacked (leading axes: problem, point)."""

    inits: lt.LoRAInit  # offsets padded to rank r, no A_basis
    bases: jax.Array  # d x d: A's updates are projected on bases bases^T (I, or [U_r | 0] for lora_sb)
    b_steps: jax.Array  # B's update factor: 1, or 0 (lora_sb's frozen V_r^T)
    floors: jax.Array  # the best relative error the init's parametrisation can reach (see reachable_floor)


def _padded(init: lt.LoRAInit, rank: int) -> lt.LoRAInit:
    """The init with its offset padded by zero columns to rank ``rank`` (the same matrix) and no
    A_basis, so that every init stacks into one batch."""
    init = init.with_offset()
    missing = rank - init.offset.left.shape[1]
    left = jnp.pad(init.offset.left, ((0, 0), (0, missing)))
    right = jnp.pad(init.offset.right, ((0, missing), (0, 0)))
    return lt.LoRAInit(init.A, init.B, lt.LowRank(left, right))


def reachable_floor(problem, init: lt.LoRAInit, rank: int):
    """min ||M - dW||_F / ||dW||_F over the updates M the init's parametrisation can reach.

    With an offset O the model's update is A B + O with rank(A B) <= r, so by Eckart-Young the
    floor is the tail sqrt(sum_{i > r} sigma_i^2) of dW - O (for O = -A_0 B_0: of dW + A_0 B_0):
    PiSSA's branch must keep holding W0's top-r part, so a target outside it is out of reach.
    lora_sb reaches only U_r R V_r^T: its floor is ||dW - U_r U_r^T dW V_r V_r^T||_F.  The other
    inits reach every rank-r matrix: 0 (r >= r_star).  This suite's derivation; exact lower bounds.
    """
    norm = jnp.linalg.norm(problem.dW)
    if init.A_basis is not None:
        U, V = init.A_basis, init.B.T
        return jnp.linalg.norm(problem.dW - U @ (U.T @ problem.dW @ V) @ V.T) / norm
    sv = jnp.linalg.svd(problem.dW - init.with_offset().offset.dense(), compute_uv=False)
    return jnp.sqrt(jnp.sum(sv[rank:] ** 2)) / norm


def _points(config: Config, problems, keys) -> Points:
    """Panel (a)'s inits and panel (b)'s LoRA+ copies of random and spectral, on every problem."""
    base = config.run_config()
    d, rank = config.d, config.rank

    def one(args):
        problem, key = args
        made = {}
        for name in INITS:
            spec = lt.get_init(name)
            c = base.replace(init=name)
            made[name] = spec(problem, rank, key=key, **spec.arguments(c))
        names = [*INITS, *(name for name in PLUS_INITS for _ in config.lr_ratios)]
        sb_basis = jnp.pad(made["lora_sb"].A_basis, ((0, 0), (0, d - rank)))
        eye = jnp.eye(d, dtype=problem.W0.dtype)
        return Points(
            inits=jax.tree.map(lambda *xs: jnp.stack(xs), *(_padded(made[n], rank) for n in names)),
            bases=jnp.stack([sb_basis if n == "lora_sb" else eye for n in names]),
            b_steps=jnp.asarray([0.0 if n == "lora_sb" else 1.0 for n in names], problem.W0.dtype),
            floors=jnp.stack([reachable_floor(problem, made[n], rank) for n in names]),
        )

    return lax.map(one, (problems, keys))


def _train_points(config: lt.RunConfig, problems, points: Points, ratios):
    """Every point on every problem: config's optimizer (``lr_ratio`` per point, traced), then A's
    update projected on the point's basis and B's scaled by its b_step (as ``optimizer_from_config``
    does for lora_sb with ``project_A`` and ``freeze_factors``; the identity and 1 change nothing).
    """

    def one(problem, init, basis, b_step, ratio):
        optimizer = optax.chain(
            lt.optimizer_from_config(config.optimizer, lr=config.lr, damping=config.damping, lr_ratio=ratio),
            lt.project_A(basis),
            lt.scale_factors(1.0, b_step),
        )
        traj = lt.train(problem, init, optimizer, steps=config.steps, log_every=config.log_every, observe=f9_metrics)
        return {**traj.metrics, "diverged_step": traj.diverged_step}

    per_point = jax.vmap(one, in_axes=(None, 0, 0, 0, 0))
    return jax.vmap(per_point, in_axes=(0, 0, 0, 0, None))(problems, points.inits, points.bases, points.b_steps, ratios)


def _rank_padded(init: lt.LoRAInit, rank: int) -> lt.LoRAInit:
    """A rank-r init with B_0 = 0 as a rank-``rank`` one: zero columns of A, zero rows of B.

    Under gd (scaled or not) they stay zero (grad_A's column j is s grad_W B_j^T, grad_B's row j
    is s A_j^T grad_W), so the run is the rank-r LoRA's, and runs of several ranks share a batch.
    """
    missing = rank - init.A.shape[1]
    return lt.LoRAInit(jnp.pad(init.A, ((0, 0), (0, missing))), jnp.pad(init.B, ((0, missing), (0, 0))))


def _rslora_runs(config: Config, problems, keys):
    """Panel (c): random init at every rank (padded to the largest) x scaling, gd with the scale
    s = lora_alpha / r or lora_alpha / sqrt(r) traced per run (``lt.train(..., scale=s)``)."""
    top = max(config.ranks)
    random = lt.get_init("random")
    c = config.run_config(rank=top)
    optimizer = lt.optimizer_from_config(c.optimizer, lr=c.lr)

    def make(args):
        problem, key = args
        inits = [
            _rank_padded(random(problem, rank, key=key, alpha=config.alpha), top)
            for rank in config.ranks
            for _ in SCALINGS
        ]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *inits)

    def one(problem, init, scale):
        traj = lt.train(problem, init, optimizer, steps=c.steps, log_every=c.log_every, observe=f9_metrics, scale=scale)
        return {**traj.metrics, "diverged_step": traj.diverged_step}

    scales = jnp.asarray([lt.lora_scale(s, config.lora_alpha, rank) for rank in config.ranks for s in SCALINGS])
    inits = lax.map(make, (problems, keys))
    return jax.vmap(jax.vmap(one, in_axes=(None, 0, 0)), in_axes=(0, 0, None))(problems, inits, scales)


@jax.jit
def _sigma_gap(problems):
    """||Sigma_hat - I||_op per problem (Thm 3.3's factor)."""
    eye = jnp.eye(problems.sigma_hat.shape[-1], dtype=problems.sigma_hat.dtype)
    return jnp.max(jnp.abs(jnp.linalg.eigvalsh(problems.sigma_hat - eye)), axis=-1)


@functools.partial(jax.jit, static_argnames=("config",))
def compute(seeds, *, config: Config):
    """Every run of F9 for ``seeds``: one compiled program per Config and number of seeds.

    Returns a dict: ``"gd"``, ``"precgd"`` (panels a and b: leading axes (target x seed, point,
    logged step), the points being INITS then PLUS_INITS x lr_ratios), ``"floors"`` ((target x
    seed, point)), ``"rslora"`` (panel c: (seed, rank x scaling, step)) and ``"sigma_gap"``
    (per seed).
    """
    keys = jax.vmap(lambda s: lt.split_run_key(jax.random.key(s)))(seeds)
    problem_keys, init_keys = keys[:, 0], keys[:, 1]
    base = config.run_config()

    def build(target_config):
        return lax.map(lambda k: lt.make_problem(target_config, key=k), problem_keys)

    problems = [build(base.replace(target_subspace=t)) for t in config.targets]
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs), *problems)
    points = _points(config, stacked, jnp.concatenate([init_keys] * len(config.targets)))
    ratios = jnp.asarray([1.0] * len(INITS) + [r for _ in PLUS_INITS for r in config.lr_ratios], base.jnp_dtype)
    out = {opt: _train_points(config.run_config(optimizer=opt), stacked, points, ratios) for opt in OPTIMIZERS}
    out["floors"] = points.floors
    out["rslora"] = _rslora_runs(config, problems[0], init_keys)
    out["sigma_gap"] = _sigma_gap(problems[0])
    return out


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


def _frame(metrics: dict, steps, seeds, labels: list[dict], **columns) -> pd.DataFrame:
    """Tidy rows from arrays (seed, point, step); ``labels[j]`` are the columns of point j."""
    n_seeds, n_points, n_logs = np.shape(metrics["rel_err"])
    frame = {
        "seed": np.repeat(np.asarray(seeds), n_points * n_logs),
        "step": np.tile(steps, n_seeds * n_points),
        **{name: np.asarray(metrics[name]).reshape(-1) for name in METRICS},
        "diverged_step": np.repeat(np.asarray(metrics["diverged_step"]).reshape(-1), n_logs),
    }
    if "floor" in metrics:
        frame["floor"] = np.repeat(np.asarray(metrics["floor"]).reshape(-1), n_logs)
    for key in labels[0]:
        frame[key] = np.tile(np.repeat([label[key] for label in labels], n_logs), n_seeds)
    df = pd.DataFrame(frame)
    for key, value in columns.items():
        df[key] = value
    return df


def point_labels(config: Config) -> list[dict]:
    """The columns of each point of panels (a) and (b), in the order of :func:`compute`."""
    labels = [{"panel": "inits", "init": name, "lr_ratio": 1.0} for name in INITS]
    labels += [{"panel": "lora_plus", "init": name, "lr_ratio": r} for name in PLUS_INITS for r in config.lr_ratios]
    return labels


def _chunk_frames(config: Config, out: dict, seeds: np.ndarray) -> list[pd.DataFrame]:
    """The rows of one chunk of seeds (every panel), with ||Sigma_hat - I||_op per seed."""
    steps = lt.logged_steps(config.steps, config.log_every)
    n = len(seeds)
    frames = []
    for opt in OPTIMIZERS:
        for t, target in enumerate(config.targets):
            rows = slice(t * n, (t + 1) * n)
            part = {
                **jax.tree.map(lambda x, rows=rows: np.asarray(x)[rows], out[opt]),
                "floor": np.asarray(out["floors"])[rows],
            }
            frames.append(
                _frame(
                    part,
                    steps,
                    seeds,
                    point_labels(config),
                    target=target,
                    optimizer=opt,
                    rank=config.rank,
                    scaling="none",
                )
            )
    labels = [{"rank": rank, "scaling": scaling} for rank in config.ranks for scaling in SCALINGS]
    frames.append(
        _frame(
            out["rslora"],
            steps,
            seeds,
            labels,
            panel="rslora",
            init="random",
            target="random",
            optimizer="gd",
            lr_ratio=1.0,
            floor=0.0,
        )
    )
    gap = pd.DataFrame({"seed": seeds, "sigma_gap": np.asarray(out["sigma_gap"])})
    return [frame.merge(gap, on="seed") for frame in frames]


def run(config: Config, out_dir, progress: bool = True) -> pd.DataFrame:
    """Run F9 (one compile; seeds in chunks of ``chunk_seeds``) and write ``f9.parquet`` / ``f9.json``."""
    for rank in (config.rank, *config.ranks):
        lt.validate(config.run_config(rank=rank, scaling="rslora"))
    for init in INITS:
        for target in config.targets:
            lt.validate(config.run_config(init, target=target))
    start = time.perf_counter()
    size = min(config.chunk_seeds, config.seeds)
    frames = []
    with progress_bar(math.ceil(config.seeds / size), NAME, progress, unit="chunk") as bar:
        for first in range(0, config.seeds, size):
            seeds = np.arange(first, first + size)  # a short last chunk is padded: one compile
            out = jax.device_get(compute(jnp.asarray(seeds, jnp.uint32), config=config))
            keep = seeds < config.seeds
            out = jax.tree.map(lambda x, keep=keep: x[np.concatenate([keep] * (x.shape[0] // size))], out)
            frames += _chunk_frames(config, out, seeds[keep])
            bar.update(1)
    df = pd.concat(frames, ignore_index=True)
    df["diverged"] = df["diverged_step"] >= 0
    return save(df, out_dir, NAME, config, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# summaries and the figure
# ---------------------------------------------------------------------------------------------

OPT_COLORS = {"gd": "#4c72b0", "precgd": "#dd8452"}


def _geomean(values) -> float:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.mean(np.log(values)))) if values.size else math.nan


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Panel (a) per init x target x optimizer: the relative error at step 0 and at the last step
    (geometric means over seeds), its floor (mean), span_A_dW at step 0 (mean) and diverged runs."""
    inits = df[df["panel"] == "inits"]
    last, first = inits[inits["step"] == inits["step"].max()], inits[inits["step"] == 0]
    keys = ["init", "target", "optimizer"]
    table = last.groupby(keys).agg(final=("rel_err", _geomean), floor=("floor", "mean"), diverged=("diverged", "sum"))
    start = first.groupby(keys).agg(start=("rel_err", _geomean), span0=("span_A_dW", "mean"))
    return table.join(start).reset_index()


def _fmt(value: float) -> str:
    """Two significant digits; below 1e-12 (rounding) "0"."""
    if not np.isfinite(value):
        return "n/a"
    if abs(value) < 1e-12:
        return "0"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.0e}"


def tables(df: pd.DataFrame) -> str:
    """The README's findings tables (markdown) from F9's results."""
    s = summary(df)
    targets = list(dict.fromkeys(df["target"]))
    lines = [
        "| init | "
        + " | ".join(f"{t}: gd / precgd (floor)" for t in targets)
        + " | step 0 (span_A_dW: "
        + ", ".join(targets)
        + ") |",
        "|---|" + "---|" * (len(targets) + 1),
    ]
    for init in INITS:
        row = s[s["init"] == init]
        cells = []
        for t in targets:
            gd, pre = (row[(row["target"] == t) & (row["optimizer"] == o)].iloc[0] for o in OPTIMIZERS)
            div = (
                f" [{int(gd['diverged'])} + {int(pre['diverged'])} diverged]"
                if gd["diverged"] + pre["diverged"]
                else ""
            )
            cells.append(f"{_fmt(gd['final'])} / {_fmt(pre['final'])} ({_fmt(gd['floor'])}){div}")
        at0 = row[row["optimizer"] == "gd"].set_index("target")
        start = f"{_fmt(at0['start'].iloc[0])} ({', '.join(_fmt(at0.loc[t, 'span0']) for t in targets)})"
        lines.append(f"| `{init}` | " + " | ".join(cells) + f" | {start} |")
    last = df[df["step"] == df["step"].max()]
    plus = last[(last["panel"] == "lora_plus") & (last["target"] == "random")]
    ratios = sorted(plus["lr_ratio"].unique())
    lines += [
        "",
        "| LoRA+ (random target) | " + " | ".join(f"ratio {r:g}" for r in ratios) + " |",
        "|---|" + "---|" * len(ratios),
    ]
    for opt in OPTIMIZERS:
        for init in PLUS_INITS:
            sub = plus[(plus["optimizer"] == opt) & (plus["init"] == init)]
            cells = []
            for r in ratios:
                runs = sub[sub["lr_ratio"] == r]
                n_div = int(runs["diverged"].sum())
                cells.append(_fmt(_geomean(runs["rel_err"])) + (f" [{n_div}/{len(runs)} diverged]" if n_div else ""))
            lines.append(f"| `{init}`, {opt} | " + " | ".join(cells) + " |")
    rs = last[last["panel"] == "rslora"]
    ranks = sorted(rs["rank"].unique())
    lines += [
        "",
        "| rsLoRA (random init, gd) | " + " | ".join(f"r = {r}" for r in ranks) + " |",
        "|---|" + "---|" * len(ranks),
    ]
    for scaling in SCALINGS:
        sub = rs[rs["scaling"] == scaling]
        lines.append(
            f"| `{scaling}` | " + " | ".join(_fmt(_geomean(sub[sub["rank"] == r]["rel_err"])) for r in ranks) + " |"
        )
    return "\n".join(lines)


def _bars(ax, s: pd.DataFrame, target: str, df: pd.DataFrame, cfg: dict) -> None:
    """Panel (a) for one target: final error per init and optimizer, the start and the floor."""
    x = np.arange(len(INITS))
    bottom = 1e-17
    for j, opt in enumerate(OPTIMIZERS):
        sub = s[(s["target"] == target) & (s["optimizer"] == opt)].set_index("init").loc[list(INITS)]
        last = df[
            (df["panel"] == "inits")
            & (df["target"] == target)
            & (df["optimizer"] == opt)
            & (df["step"] == df["step"].max())
        ]
        q = last.groupby("init")["rel_err"].quantile([0.25, 0.75]).unstack().loc[list(INITS)]
        height = sub["final"].to_numpy()
        pos = x + (j - 0.5) * 0.38
        ax.bar(pos, height - bottom, 0.38, bottom=bottom, color=OPT_COLORS[opt], label=f"{opt}, step {cfg['steps']}")
        ax.errorbar(
            pos,
            height,
            yerr=[np.maximum(height - q[0.25], 0), np.maximum(q[0.75] - height, 0)],
            fmt="none",
            ecolor="0.2",
            elinewidth=0.8,
            capsize=1.5,
        )
        diverged = (sub["diverged"] > 0.5 * last.groupby("init")["seed"].size().loc[list(INITS)]).to_numpy()
        if diverged.any():
            ax.scatter(
                pos[diverged],
                np.full(diverged.sum(), 1.5),
                marker="x",
                s=30,
                color=OPT_COLORS[opt],
                zorder=4,
                label="x: most runs diverged" if j == 0 else None,
            )
    start = s[(s["target"] == target) & (s["optimizer"] == "gd")].set_index("init").loc[list(INITS)]
    ax.scatter(x, start["start"], marker="_", s=160, color="black", zorder=3, label="step 0")
    floor = start["floor"].to_numpy()
    for xi, f in zip(x, floor, strict=True):
        if f > 1e-12:
            P.theory(
                ax,
                [xi - 0.5, xi + 0.5],
                [f, f],
                color="#c44e52",
                linewidth=1.8,
                label="floor: best error the init's parametrisation can reach" if xi == x[floor > 1e-12][0] else None,
            )
    gap = float(df.drop_duplicates("seed")["sigma_gap"].mean())
    for name in ("spectral", "lora_sb"):
        xi = INITS.index(name)
        P.theory(
            ax,
            [xi - 0.45, xi + 0.45],
            [gap, gap],
            color="black",
            linestyle=":",
            label=r"Thm 3.3: step 0 $\leq\|\hat\Sigma-I\|_{op}$" if name == "spectral" else None,
        )
    ax.set_yscale("log")
    ax.set_ylim(bottom, 3.0)
    ax.set_xticks(x, INITS, rotation=60, ha="right")
    ax.set(
        ylabel=r"relative error $\|A_tB_t+O-\Delta W\|_F/\|\Delta W\|_F$",
        title=f"target subspace: {target}" + {"top": " (W0's top)", "bottom": " (W0's bottom)"}.get(target, " (Haar)"),
    )


def _heatmap(ax, s: pd.DataFrame, targets) -> None:
    """span_A_dW at step 0 per init x target (mean over seeds; 1 for A_0 = 0)."""
    table = s[s["optimizer"] == "gd"].pivot(index="init", columns="target", values="span0").loc[list(INITS), targets]
    values = table.to_numpy(np.float64)
    ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(
                j,
                i,
                f"{values[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if values[i, j] < 0.6 else "black",
            )
    ax.set_xticks(range(len(targets)), targets)
    ax.set_yticks(range(len(INITS)), INITS)
    ax.grid(False)
    ax.set_title(
        "step 0: does span($A_0$) contain $U_{\\Delta W}$?\n"
        r"$\|(I-P_{A_0})U_{\Delta W}\|_2$ (0: yes; 1: a direction is missing)"
    )


def _lora_plus(ax, df: pd.DataFrame) -> None:
    last = df[(df["panel"] == "lora_plus") & (df["target"] == "random") & (df["step"] == df["step"].max())]
    for opt in OPTIMIZERS:
        for init, marker in zip(PLUS_INITS, ("o", "s"), strict=True):
            sub = last[(last["optimizer"] == opt) & (last["init"] == init)]
            table = sub.pivot(index="seed", columns="lr_ratio", values="rel_err")
            ratios = table.columns.to_numpy()
            P.band(
                ax,
                ratios,
                table.to_numpy(),
                label=f"{init}, {opt}",
                color=OPT_COLORS[opt],
                marker=marker,
                markersize=4,
                linestyle=P.OPTIMIZER_STYLES[opt],
                log=True,
            )
            diverged = sub.groupby("lr_ratio")["diverged"].mean()
            bad = diverged[diverged > 0.5].index.to_numpy()
            if bad.size:
                ax.scatter(bad, np.full(bad.size, 2.0), marker="x", color=OPT_COLORS[opt], s=25)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set(
        xlabel=r"lr_ratio ($\eta_B/\eta_A$, LoRA+)",
        ylabel="relative error at the last step",
        title="LoRA+ (random target); x: most runs diverged",
    )
    P.legend(ax, loc="center right", fontsize=6.5)


def _rslora(ax, df: pd.DataFrame, cfg: dict) -> None:
    last = df[(df["panel"] == "rslora") & (df["step"] == df["step"].max())]
    for scaling, color in zip(SCALINGS, ("#55a868", "#8172b2"), strict=True):
        table = last[last["scaling"] == scaling].pivot(index="seed", columns="rank", values="rel_err")
        label = r"lora: $s=\alpha/r$" if scaling == "lora" else r"rslora: $s=\alpha/\sqrt{r}$"
        P.band(
            ax, table.columns.to_numpy(), table.to_numpy(), label=label, color=color, marker="o", markersize=4, log=True
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set(
        xlabel="LoRA rank $r$",
        ylabel="relative error at the last step",
        title=f"rsLoRA: random init, gd ($\\eta$ = {cfg['gd_lr']:g}), lora_alpha = {cfg['lora_alpha']:g}",
    )
    P.legend(ax, loc="best")


def plot(df: pd.DataFrame, metadata: dict, figures_dir) -> list:
    """(a) final and initial error per init for each target; (b) step-0 alignment; (c) LoRA+; (d) rsLoRA."""
    cfg = metadata["config"]
    targets = list(cfg["targets"])
    s = summary(df)
    fig, axes = P.figure(3, 2, width=5.0, height=3.9)
    for j, target in enumerate(targets[:3]):
        _bars(axes[0, j], s, target, df, cfg)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), fontsize=7.5)
    _heatmap(axes[1, 0], s, targets)
    _lora_plus(axes[1, 1], df)
    _rslora(axes[1, 2], df, cfg)
    P.caption(
        fig,
        f"linear model, d = k = {cfg['d']}, r = {cfg['rank']}, r* = {cfg['r_star']}, N = {cfg['n_factor']}d, "
        f"$\\kappa$ = {cfg['kappa']:g}, {cfg['steps']} steps; gd $\\eta$ = {cfg['gd_lr']:g}, precgd $\\eta$ = "
        f"{cfg['precgd_lr']:g} ($\\lambda$ = {cfg['damping']:g}); $\\alpha$ = {cfg['alpha']:g}; "
        f"geometric mean over {df['seed'].nunique()} seeds, bars/bands: interquartile; "
        "dashed: the floors (Eckart-Young, derived here), dotted: Thm 3.3's bound on spectral's start",
    )
    return P.save_figure(fig, figures_dir, NAME)
