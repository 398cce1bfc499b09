"""Engine v2 benchmark (issue 11): old against new in one run, and the engine against an eager loop.

Never part of ``make test``.  Sections (each prints a table):

* ``kernels``: the small decompositions at LoRA's sizes, hand-written (``lora_theory._linalg``)
  against LAPACK (``jnp.linalg`` / ``jax.scipy.linalg``), a vmapped batch of 500: the measurement
  behind ``_linalg``'s size dispatch.
* ``metrics``: F1's setting (d = k = 100, r = 8, r_star = 4, N = 1600, gd, 1500 steps, seeds x 5
  alphas) trained by ``lt.train_batch`` with the old metric set (``lora_theory/metrics.py`` of
  commit ``OLD_COMMIT``, loaded from git) and the new one (``lt.lora_metrics``) logged every
  step, against no metrics and the new set every 100 steps: compile and run seconds apart.
* ``f1``: the issue's command, ``lora-theory train ... --log-every 1`` over 100 seeds x 5 alphas
  in a subprocess with an empty compilation cache (cold: compile included), against the papers'
  kind of code: an eager NumPy loop over the raw X, one seed x 5 alphas, the same metrics every
  step (an SVD of A for the alignment).  Throughput ratio = (500 / engine s) / (5 / eager s).
* ``example``: the README's 20-seed ``train`` example, cold and then warm (a second identical call).

    python benchmarks/engine_v2.py [--quick] [--sections kernels,metrics,f1,example]

``--quick``: 20 seeds in ``metrics`` and 300 eager steps (scaled to 1500) in ``f1``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OLD_COMMIT = "4582a20"  # main before Engine v2
ALPHAS = [1.0, 0.316227766, 0.1, 0.0316227766, 0.01]
F1_FLAGS = (
    "--model linear --d 100 --k 100 --r-star 4 --rank 8 --n-samples 1600 --init random "
    "--alpha 1,0.316227766,0.1,0.0316227766,0.01 --optimizer gd --lr 0.015625 --steps 1500"
).split()
EXAMPLE_FLAGS = [
    *F1_FLAGS[: F1_FLAGS.index("--alpha")],
    "--alpha",
    "0.01",
    *F1_FLAGS[F1_FLAGS.index("--optimizer") :],
    "--seeds",
    "20",
]


def _load():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _best(fn, repeats=5):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def section_kernels(args):
    import jax
    import jax.numpy as jnp
    from jax.scipy.linalg import cho_factor, cho_solve

    from lora_theory import _linalg

    b = 500
    X = jax.random.normal(jax.random.key(0), (b, 100, 16), jnp.float64)
    M = jnp.einsum("bdi,bdj->bij", X, X)
    print(f"\n## kernels (us per matrix, vmapped batch of {b}, float64; load {_load():.1f})")
    print(f"{'n':>4}{'jacobi eigh':>14}{'LAPACK eigh':>14}{'unrolled solve':>16}{'LAPACK solve':>14}")
    for n in (2, 3, 4, 5, 6, 8, 12, 16):
        Mn, R = M[:, :n, :n], X[:, :n, :]
        fns = [
            jax.jit(jax.vmap(_linalg.jacobi_eigh)),
            jax.jit(jax.vmap(jnp.linalg.eigh)),
            jax.jit(jax.vmap(_linalg.cholesky_solve)),
            jax.jit(jax.vmap(lambda m, r: cho_solve(cho_factor(m), r))),
        ]
        argsets = [(Mn,), (Mn,), (Mn, R), (Mn, R)]
        times = [
            1e6 * _best(lambda f=f, a=a: jax.block_until_ready(f(*a))) / b for f, a in zip(fns, argsets, strict=True)
        ]
        print(f"{n:>4}" + "".join(f"{t:>{w}.2f}" for t, w in zip(times, (14, 14, 16, 14), strict=True)))


def _old_metrics_module():
    source = subprocess.run(
        ["git", "show", f"{OLD_COMMIT}:lora_theory/metrics.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType("old_metrics")
    exec(compile(source.replace("from __future__ import annotations\n", ""), "old_metrics.py", "exec"), module.__dict__)
    return module


def section_metrics(args):
    import jax

    import lora_theory as lt

    old = _old_metrics_module()
    seeds = 20 if args.quick else 100

    def old_observe(problem, objective, factors):
        return old.trajectory_metrics(problem, objective, factors.A, factors.B)

    config = lt.RunConfig(d=100, k=100, r_star=4, rank=8, n_samples=1600, init="random", lr=0.015625, steps=1500)
    grid = lt.make_grid({"alpha": ALPHAS})
    keys = jax.vmap(jax.random.key)(np.arange(seeds, dtype=np.uint32))
    problems, inits = jax.jit(lambda k, g: lt.build(config, k, g, swept=("alpha",)))(keys, grid)
    print(f"\n## metrics: F1, {seeds} seeds x 5 alphas x 1500 steps (load {_load():.1f})")
    print(f"{'observe':<34}{'log_every':>10}{'compile s':>11}{'run s':>9}{'us/run-step':>13}")
    rows = [
        ("none (lt.no_metrics)", lt.no_metrics, 100),
        ("new lt.lora_metrics", lt.lora_metrics, 100),
        ("new lt.lora_metrics", lt.lora_metrics, 1),
        (f"old ({OLD_COMMIT})", old_observe, 1),
    ]
    results = {}
    for label, observe, log_every in rows:
        cfg = config.replace(log_every=log_every)

        def run(p, i, g, observe=observe, cfg=cfg):
            return lt.train_batch(cfg, p, i, g, swept=("alpha",), observe=observe)

        t = time.perf_counter()
        compiled = jax.jit(run).lower(problems, inits, grid).compile()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        out = jax.block_until_ready(compiled(problems, inits, grid))
        run_s = time.perf_counter() - t
        results[(label, log_every)] = (run_s, out)
        print(f"{label:<34}{log_every:>10}{compile_s:>11.2f}{run_s:>9.2f}{1e6 * run_s / (seeds * 5 * 1500):>13.2f}")
    new1, old1 = results[("new lt.lora_metrics", 1)], results[(f"old ({OLD_COMMIT})", 1)]
    new100 = results[("new lt.lora_metrics", 100)]
    print(
        f"every step / every 100 steps (new): {new1[0] / new100[0]:.2f}x;  old / new, every step: {old1[0] / new1[0]:.2f}x"
    )
    # normwise per metric: |new - old| against the largest |old| of that metric in the same run;
    # the sines (align_*, in [0, 1]) absolutely: one that is 0 in exact arithmetic (align_B_G
    # under Thm 3.1) sits at rounding level, 1e-15, in both
    worst = {}
    for name, values in new1[1].metrics.items():
        a, b = np.asarray(values), np.asarray(old1[1].metrics[name])
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), name
        scale = np.nanmax(
            np.abs(np.where(np.isfinite(b), b, np.nan)), axis=-1 if a.ndim == 3 else (-2, -1), keepdims=True
        )
        if name.startswith("align_"):
            scale = np.ones_like(scale)
        diff = np.where(np.isfinite(a), np.abs(a - b), 0.0) / np.maximum(scale, 1e-300)
        worst[name] = float(np.nanmax(diff))
    print(
        "new against old, max |difference| / max |old| per run: "
        + ", ".join(f"{name} {value:.1e}" for name, value in worst.items())
    )


def _cli(flags, cache_dir, out_dir):
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache_dir}
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lora_theory.cli", "train", *flags, "--out", out_dir, "--quiet"],
        env=env,
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - t


def section_f1(args):
    eager_steps = 300 if args.quick else 1500
    with tempfile.TemporaryDirectory() as tmp:
        print(f"\n## f1: the issue's command against the eager raw-X loop (load {_load():.1f})")
        engine_s = _cli(
            [*F1_FLAGS, "--seeds", "100", "--log-every", "1"], os.path.join(tmp, "cache"), os.path.join(tmp, "out")
        )
        sys.path.insert(0, HERE)
        from f1_vs_eager import eager_numpy_run  # the papers' kind of loop, shared with issue 2's benchmark

        eager_s = sum(eager_numpy_run(eager_steps, alpha=a, log_every=1) for a in ALPHAS) * 1500 / eager_steps
        print(f"{'path':<52}{'runs':>6}{'wall s':>9}")
        print(f"{'lora-theory train (cold cache, compile included)':<52}{500:>6}{engine_s:>9.1f}")
        print(f"{'eager NumPy loop, raw X, metrics every step':<52}{5:>6}{eager_s:>9.1f}")
        print(f"throughput ratio: {(500 / engine_s) / (5 / eager_s):.0f}x (load {_load():.1f})")


def section_example(args):
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = os.path.join(tmp, "cache"), os.path.join(tmp, "out")
        cold = _cli(EXAMPLE_FLAGS, cache, out)
        warm = _cli(EXAMPLE_FLAGS, cache, out)
        print(f"\n## example: lora-theory train {' '.join(EXAMPLE_FLAGS)}")
        print(f"cold {cold:.1f} s, warm {warm:.1f} s (wall, interpreter start included; load {_load():.1f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default="kernels,metrics,f1,example")
    args = parser.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    for name in args.sections.split(","):
        globals()[f"section_{name}"](args)


if __name__ == "__main__":
    main()
