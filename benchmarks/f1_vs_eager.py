"""Issue-2 benchmark: the batched engine on SPEC F1 against a plain eager per-step NumPy loop.

F1: linear model, d = k = 100, r = 8, r_star = 4, N = 16 d = 1600, GD, eta = 1/64, 1500 steps,
metrics every 10 steps.  The engine runs ``--seeds`` seeds x 5 alphas (alpha^2 = 1 ... 1e-4) in one
compiled program; the eager loop runs one seed the way the papers' toy code does (NumPy, raw X,
a Python loop per step, the same metrics every 10 steps).  Prints run-steps per second of both and
their ratio.  Never part of the test run.

    python benchmarks/f1_vs_eager.py [--seeds 100] [--eager-steps 1500]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import lora_theory as lt  # noqa: E402

ALPHAS = [1.0, 0.1**0.5, 0.1, 0.1**1.5, 0.01]


def eager_numpy_run(steps: int, seed: int = 0, *, alpha: float = 0.01, log_every: int = 10) -> float:
    """One run of F1 as the papers' toy code: a plain eager per-step NumPy loop over the raw X, the
    loss, the risk and the alignment (an SVD of A) every ``log_every`` steps; returns seconds."""
    rng = np.random.default_rng(seed)
    d = k = 100
    r, r_star, N, lr = 8, 4, 1600, 1 / 64
    W0 = rng.standard_normal((d, k))
    U = np.linalg.qr(rng.standard_normal((d, r_star)))[0]
    V = np.linalg.qr(rng.standard_normal((k, r_star)))[0]
    dW = U @ V.T
    X = rng.standard_normal((N, d))
    Y = X @ (W0 + dW)
    G = X.T @ (Y - X @ W0) / N
    G_left = np.linalg.svd(G)[0][:, :r_star]
    A = alpha * rng.standard_normal((d, r))
    B = np.zeros((r, k))
    start = time.perf_counter()
    for t in range(steps):
        residual = X @ (W0 + A @ B) - Y
        grad_W = X.T @ residual / N
        A, B = A - lr * grad_W @ B.T, B - lr * A.T @ grad_W
        if (t + 1) % log_every == 0:
            _ = 0.5 * np.sum(residual**2) / N, 0.5 * np.sum((A @ B - dW) ** 2)
            U_A = np.linalg.svd(A, full_matrices=False)[0][:, :r_star]
            _ = np.linalg.norm(U_A - G_left @ (G_left.T @ U_A), 2)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--eager-steps", type=int, default=1500)
    args = parser.parse_args()
    config = lt.RunConfig(
        model="linear",
        d=100,
        k=100,
        r_star=4,
        rank=8,
        n_samples=1600,
        init="random",
        optimizer="gd",
        lr=1 / 64,
        steps=1500,
        log_every=10,
    )
    first = lt.simulate(config, seeds=args.seeds, sweep={"alpha": ALPHAS})  # compile + run
    again = lt.simulate(config, seeds=args.seeds, seed=10_000, sweep={"alpha": ALPHAS})  # run only
    runs = args.seeds * len(ALPHAS)
    engine_rate = runs * config.steps / again.wall_time
    eager_seconds = eager_numpy_run(args.eager_steps)
    eager_rate = args.eager_steps / eager_seconds
    print(f"{'path':<34}{'runs':>6}{'wall s':>10}{'run-steps/s':>14}")
    print(
        f"{'engine (compile + run)':<34}{runs:>6}{first.wall_time:>10.2f}{runs * config.steps / first.wall_time:>14.3g}"
    )
    print(f"{'engine (compiled)':<34}{runs:>6}{again.wall_time:>10.2f}{engine_rate:>14.3g}")
    print(
        f"{'eager NumPy loop, raw X, 1 seed':<34}{1:>6}{eager_seconds * 1500 / args.eager_steps:>10.2f}{eager_rate:>14.3g}"
    )
    print(
        f"throughput ratio engine / eager: {engine_rate / eager_rate:.0f}x (compile included: "
        f"{runs * config.steps / first.wall_time / eager_rate:.0f}x); backend {jax.default_backend()}"
    )


if __name__ == "__main__":
    main()
