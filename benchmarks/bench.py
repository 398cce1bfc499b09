"""Issue-7 benchmark: throughput, FLOP/s, memory and the eager baseline of the batched engine.

Never part of ``make test``.  Every measurement runs in its own subprocess (so each has its own
peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``), one after another:

* ``machine``: the machine's measured float64 / float32 matmul rate (NumPy BLAS and XLA) and its
  memory bandwidth (a large NumPy array copy, counted as read + write bytes, and a large sum);
* ``cell``: the engine (``lt.build``: ``lax.map`` construction, then ``lt.train_batch``: the
  seeds -- in cache-sized chunks on CPU, ``vmap`` within a chunk -- of ``vmap`` over a grid of
  alphas of the ``lax.scan`` training loop) for one (model, d, seeds, grid, steps, log_every); the
  two phases are compiled and timed separately (AOT ``lower().compile()``), so compile time,
  construction time and training time are reported apart (``check`` compares with
  ``lt.simulate``).  Run-steps/s = runs x steps / training seconds.  ``vmap_all`` forces one
  ``vmap`` over all seeds (the engine before its CPU chunking).
* ``eager``: the same math as a plain eager per-step NumPy loop, one run (its throughput in
  run-steps/s does not depend on how many seeds are run one after the other); for the linear
  model both the same sufficient-statistics math as the engine and the papers' raw-X loop.

Operation counts per optimizer step (one run; d, k, r, N; random init, whose offset is a zero
LowRank of rank r that the engine's gradient still multiplies through):

* linear (``LinearObjective.factor_grads`` + GD update):
  2 d^2 r (Sigma A) + 4 d k r (G B^T, A^T G) + 8 r^2 (d + k) (the r x r products and the offset
  terms) + 5 r (d + k) (sums, update, finite check);
  bytes at least 8 (d^2 + d k) per step per *problem* (Sigma_hat and G read once), shared by
  every grid point of that problem;
* relu (``NonlinearObjective.factor_grads`` + GD update): 4 N d r (X A, X^T (R B^T)) + 6 N k r
  ((X A) B, R B^T, (X A)^T R) + 6 N k (activation, derivative, residual) + 5 r (d + k);
  bytes at least 8 N (d + 2k) per step per problem (X, X (W0 + offset), Y).

Metrics (every ``log_every`` steps) are not in the count; their cost is measured instead
(``log_every`` 1 against 100).

    python benchmarks/bench.py --quick   # linear d = 100 (1/10/100 seeds), 256 (1/10), 200 steps; < 2 min
    python benchmarks/bench.py           # the full table (about 30 min on the loaded 2-core CPU)
    python benchmarks/bench.py --extra   # the eager loops again with one OpenBLAS thread

Prints a table and writes ``benchmarks/results/bench_{quick,full,extra}.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
R, R_STAR = 8, 4
LR = {"linear": 1 / 64, "relu": 0.5}


# ---------------------------------------------------------------------------------------------
# operation counts
# ---------------------------------------------------------------------------------------------


def n_samples(model: str, d: int) -> int:
    # relu: N = 16 d.  linear: N = 2 d -- its per-step cost does not depend on N (sufficient
    # statistics), while the one-off construction (X^T X, X W0, X^T residual, ...) costs about
    # 8 N d^2 flops per seed (9 TFLOP at d = 4096 with N = 16 d).  The raw-X eager loop uses 16 d.
    return 2 * d if model == "linear" else 16 * d


def flops_per_step(model: str, d: int, k: int, r: int = R) -> float:
    if model == "linear":
        return 2 * d * d * r + 4 * d * k * r + 8 * r * r * (d + k) + 5 * r * (d + k)
    N = n_samples(model, d)
    return 4 * N * d * r + 6 * N * k * r + 6 * N * k + 5 * r * (d + k)


def bytes_per_problem_step(model: str, d: int, k: int, itemsize: int = 8) -> float:
    if model == "linear":
        return itemsize * (d * d + d * k)
    return itemsize * n_samples(model, d) * (d + 2 * k)


def problem_bytes(model: str, d: int, k: int, itemsize: int = 8) -> float:
    """Bytes a built problem holds (what stays in memory per seed)."""
    if model == "linear":
        return itemsize * (d * d + 3 * d * k)
    N = n_samples(model, d)
    return itemsize * (3 * d * k + 2 * N * d + 3 * N * k)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def load() -> float:
    return os.getloadavg()[0]


# ---------------------------------------------------------------------------------------------
# workers (each runs in its own subprocess)
# ---------------------------------------------------------------------------------------------


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def worker_machine(spec: dict) -> dict:
    import numpy as np

    out = {"load_start": load()}
    n = spec["matmul_n"]
    rng = np.random.default_rng(0)
    for dtype in ("float64", "float32"):
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        a @ b
        out[f"numpy_matmul_{dtype}_gflops"] = 2 * n**3 / _best(lambda a=a, b=b: a @ b, 3) / 1e9
    m = spec["stream_mb"] * 2**20 // 8
    src = rng.standard_normal(m)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    out["copy_gbs"] = 2 * src.nbytes / _best(lambda: np.copyto(dst, src), 5) / 1e9
    out["sum_gbs"] = src.nbytes / _best(lambda: src.sum(), 5) / 1e9
    out["stream_array_mb"] = src.nbytes / 2**20
    src = dst = None  # free the stream arrays before jax allocates
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    for dtype in ("float64", "float32"):
        a = jnp.asarray(rng.standard_normal((n, n)), dtype)
        f = jax.jit(lambda x, y: x @ y)
        f(a, a).block_until_ready()
        out[f"jax_matmul_{dtype}_gflops"] = 2 * n**3 / _best(lambda f=f, a=a: f(a, a).block_until_ready(), 3) / 1e9
    out["matmul_n"] = n
    out["load_end"] = load()
    return out


def worker_cell(spec: dict) -> dict:
    """One engine configuration; construction and training compiled and timed apart."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    import lora_theory as lt
    from lora_theory import engine

    model, d, n_seeds, n_grid = spec["model"], spec["d"], spec["seeds"], spec["grid"]
    config = lt.RunConfig(
        model=model,
        d=d,
        k=d,
        r_star=R_STAR,
        rank=R,
        n_samples=n_samples(model, d),
        init="random",
        optimizer="gd",
        lr=LR[model],
        steps=spec["steps"],
        log_every=spec["log_every"],
        dtype=spec["dtype"],
        alpha=0.01,
    )
    alphas = list(np.geomspace(0.1, 0.001, n_grid)) if n_grid > 1 else [0.01]
    lt.validate(config, {"alpha": alphas})
    grid = lt.make_grid({"alpha": alphas}, config.jnp_dtype)
    chunk = n_seeds if spec.get("vmap_all") else None  # None: the engine chooses (CPU chunks)

    # The two public phases of lt.simulate (lt.build, lt.train_batch), jitted apart.
    def build(keys, grid):
        return lt.build(config, keys, grid, swept=("alpha",))

    def train_all(problems, inits, grid):
        return lt.train_batch(config, problems, inits, grid, swept=("alpha",), chunk=chunk)

    out = {"load_start": load(), "backend": jax.default_backend(), "devices": jax.device_count()}
    keys = jax.vmap(jax.random.key)(jnp.arange(n_seeds, dtype=jnp.uint32) + spec.get("seed", 0))
    t = time.perf_counter()
    build_c = jax.jit(build).lower(keys, grid).compile()
    out["compile_build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    problems, inits = jax.block_until_ready(build_c(keys, grid))
    out["build_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out["chunk"] = chunk if spec.get("vmap_all") else engine._cpu_chunk(n_seeds, problems)
    train_c = jax.jit(train_all).lower(problems, inits, grid).compile()
    out["compile_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    traj = jax.block_until_ready(train_c(problems, inits, grid))
    out["train_s"] = time.perf_counter() - t
    if spec.get("repeat"):  # a second timing of the same compiled program
        t = time.perf_counter()
        jax.block_until_ready(train_c(problems, inits, grid))
        out["train_s_2"] = time.perf_counter() - t
    risk = np.asarray(traj.metrics["risk"])
    out["final_risk_median"] = float(np.nanmedian(risk[..., -1]))
    out["diverged"] = int(np.sum(np.asarray(traj.diverged_step) >= 0))
    out["n_logs"] = int(risk.shape[-1])
    out["history_mb"] = sum(np.asarray(v).nbytes for v in traj.metrics.values()) / 2**20
    if spec.get("check"):  # the split phases give what lt.simulate gives
        b = lt.simulate(config, seeds=n_seeds, seed=spec.get("seed", 0), sweep={"alpha": alphas}, mesh=None)
        out["check_max_abs_diff_risk"] = float(np.max(np.abs(np.asarray(b.trajectory.metrics["risk"]) - risk)))
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_end"] = load()
    return out


def _eager_metrics(np, A, B, L, Rt, dW, G_left, G_right, dW_left, dW_right, m):
    """The engine's metric set (lora_metrics), in NumPy/LAPACK."""
    D = A @ B + L @ Rt
    err = D - dW
    risk = 0.5 * np.sum(err**2)
    gA, gB = A.T @ A, B @ B.T
    wA, VA = np.linalg.eigh(gA)
    wB, VB = np.linalg.eigh(gB)
    AV, BV = A @ VA[:, -m:], B.T @ VB[:, -m:]
    out = [risk, np.sqrt(2 * risk) / np.linalg.norm(dW)]
    for M, ref in ((AV, G_left), (BV, G_right), (AV, dW_left), (BV, dW_right)):
        Q = np.linalg.qr(M)[0]
        P = Q - ref @ (ref.T @ Q)
        out.append(np.sqrt(max(np.linalg.eigvalsh(P.T @ P)[-1], 0.0)))
    out += [np.linalg.norm(A), np.linalg.norm(B), np.linalg.norm(gA - gB), wA.sum() / wA[-1]]
    out.append(np.linalg.svd(np.linalg.qr(A)[1] @ np.linalg.qr(B.T)[1].T, compute_uv=False))
    return out


def worker_eager(spec: dict) -> dict:
    """One run as a plain eager per-step NumPy loop, for up to ``seconds`` (whole log chunks)."""
    import numpy as np

    model, d, variant = spec["model"], spec["d"], spec["variant"]
    k, r, lr, log_every = d, R, LR[model], spec["log_every"]
    N = 16 * d if variant == "raw_X" else n_samples(model, d)  # raw X: F1's N = 16 d, as in the papers
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((d, k))
    U = np.linalg.qr(rng.standard_normal((d, R_STAR)))[0]
    V = np.linalg.qr(rng.standard_normal((k, R_STAR)))[0]
    dW = U @ V.T
    X = rng.standard_normal((N, d))
    if model == "linear":
        Y = X @ (W0 + dW)
        res0 = Y - X @ W0
        G = X.T @ res0 / N
        Sigma = X.T @ X / N
    else:
        Y = np.maximum(X @ (W0 + dW), 0)
        pre0 = X @ W0
        G = X.T @ ((Y - np.maximum(pre0, 0)) * (pre0 > 0)) / N
        X_test = rng.standard_normal((N, d))
        Y_test = np.maximum(X_test @ (W0 + dW), 0)
        pre_test = X_test @ W0
    Ug, _, Vgt = np.linalg.svd(G)
    G_left, G_right = Ug[:, :R_STAR], Vgt[:R_STAR].T
    A = 0.01 * rng.standard_normal((d, r))
    B = np.zeros((r, k))
    L, Rt = np.zeros((d, r)), np.zeros((r, k))  # the random init's zero offset, as in the engine
    if model == "linear":
        SL = Sigma @ L
    else:
        pre_offset = X @ W0 + (X @ L) @ Rt

    def step(A, B):
        if model == "relu":
            XA = X @ A
            pre = pre_offset + XA @ B
            Rm = (np.maximum(pre, 0) - Y) * (pre > 0) / N
            return A - lr * (X.T @ (Rm @ B.T)), B - lr * (XA.T @ Rm)
        if variant == "raw_X":  # the papers' toy code: the full residual over the data every step
            grad_W = X.T @ (X @ (W0 + A @ B) - Y) / N
            return A - lr * grad_W @ B.T, B - lr * A.T @ grad_W
        sA = Sigma @ A
        gA = -G @ B.T + sA @ (B @ B.T) + SL @ (Rt @ B.T)
        gB = -A.T @ G + (A.T @ sA) @ B + (A.T @ SL) @ Rt
        A, B = A - lr * gA, B - lr * gB
        if not np.isfinite(A.sum() + B.sum()):
            raise FloatingPointError
        return A, B

    def measure(A, B):
        extra = []
        if model == "linear":
            sA = Sigma @ A
            extra.append(-np.sum((A.T @ G) * B) + 0.5 * np.sum((A.T @ sA) * (B @ B.T)))
        else:
            D_pre = pre_test + (X_test @ A) @ B
            extra.append(0.5 * np.sum((np.maximum(D_pre, 0) - Y_test) ** 2) / N)
        return extra + _eager_metrics(np, A, B, L, Rt, dW, G_left, G_right, U, V, R_STAR)

    measure(A, B)
    steps, start = 0, time.perf_counter()
    while steps < spec["steps"] and time.perf_counter() - start < spec["seconds"]:
        for _ in range(log_every):
            A, B = step(A, B)
        measure(A, B)
        steps += log_every
    seconds = time.perf_counter() - start
    return {
        "steps": steps,
        "seconds": seconds,
        "run_steps_per_s": steps / seconds,
        "load_end": load(),
        "peak_rss_mb": peak_rss_mb(),
        "N": N,
    }


WORKERS = {"machine": worker_machine, "cell": worker_cell, "eager": worker_eager}


def spawn(kind: str, spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, json.dumps(spec)]
    env = dict(os.environ)
    env.update(spec.get("env", {}))  # e.g. OPENBLAS_NUM_THREADS=1 for an eager loop
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (proc.stderr or proc.stdout)[-800:]}


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------


def engine_cell(model, d, seeds, grid=1, steps=1000, log_every=100, dtype="float64", **extra):
    return {
        "model": model,
        "d": d,
        "seeds": seeds,
        "grid": grid,
        "steps": steps,
        "log_every": log_every,
        "dtype": dtype,
        **extra,
    }


def plan(quick: bool) -> dict:
    if quick:
        steps = 200
        # d = 256 stops at 10 seeds: its construction grows faster than linearly with the seeds
        # (10 seeds 0.3 s, 64 seeds 32 s, 100 seeds 96 s; see NOTES.md), too slow for --quick.
        sweeps = [("linear", 100, [1, 10, 100]), ("linear", 256, [1, 10])]
        return {
            "machine": {"matmul_n": 1024, "stream_mb": 128},
            "sweeps": [(m, d, [engine_cell(m, d, s, steps=steps, log_every=100) for s in ss]) for m, d, ss in sweeps],
            "shared": [],
            "vmap_all": [],
            "logging": [],
            "memory": [],
            "eager": [("linear", 100, "suff_stats"), ("linear", 100, "raw_X"), ("linear", 256, "suff_stats")],
            "eager_env": {"OPENBLAS_NUM_THREADS": "1"},
            "eager_seconds": 1.0,
            "budget_s": 30.0,
            "max_problem_gb": 4.0,
        }
    sweeps = [
        ("linear", 100, [1, 10, 100, 1000]),
        ("linear", 256, [1, 10, 100, 1000]),
        ("linear", 1024, [1, 10]),
        ("linear", 4096, [1]),
        ("relu", 100, [1, 10, 100]),
        ("relu", 256, [1, 10]),
    ]
    return {
        "machine": {"matmul_n": 2048, "stream_mb": 512},
        "sweeps": [(m, d, [engine_cell(m, d, s) for s in ss]) for m, d, ss in sweeps],
        "shared": [("linear", 100, 64, 1000), ("linear", 256, 64, 1000)],
        "vmap_all": [engine_cell("linear", 100, 100, vmap_all=True), engine_cell("linear", 256, 100, vmap_all=True)],
        "logging": [engine_cell("linear", 100, 100, log_every=1)],
        "memory": [
            engine_cell("linear", 100, 200, steps=1000, log_every=10),
            engine_cell("linear", 100, 200, steps=4000, log_every=40),
            engine_cell("linear", 100, 200, steps=1000, log_every=1),
        ],
        "eager": [("linear", d, "suff_stats") for d in (100, 256, 1024, 4096)]
        + [("linear", 100, "raw_X"), ("linear", 256, "raw_X"), ("relu", 100, "factored"), ("relu", 256, "factored")],
        "eager_seconds": 4.0,
        "budget_s": 120.0,
        "max_problem_gb": 5.0,
    }


#: ``--extra``: the eager loops again with single-threaded OpenBLAS (on a loaded 2-core machine
#: OpenBLAS's second thread mostly waits for a core, which can make the eager loop 30x slower).
EXTRA = {
    "machine": {"matmul_n": 2048, "stream_mb": 512},
    "sweeps": [],
    "shared": [],
    "vmap_all": [],
    "logging": [],
    "memory": [],
    "eager": [("linear", d, "suff_stats") for d in (100, 256, 1024)]
    + [("linear", 100, "raw_X"), ("linear", 256, "raw_X"), ("relu", 100, "factored"), ("relu", 256, "factored")],
    "eager_env": {"OPENBLAS_NUM_THREADS": "1"},
    "eager_seconds": 4.0,
    "budget_s": 120.0,
    "max_problem_gb": 5.0,
}


def summarise(cell: dict, res: dict) -> dict:
    row = dict(cell)
    row.update(res)
    if "train_s" in res:
        runs = cell["seeds"] * cell["grid"]
        train_s = min(res["train_s"], res.get("train_s_2", float("inf")))
        row["runs"] = runs
        row["run_steps_per_s"] = runs * cell["steps"] / train_s
        row["flops_per_step"] = flops_per_step(cell["model"], cell["d"], cell["d"])
        row["gflops"] = row["run_steps_per_s"] * row["flops_per_step"] / 1e9
        row["min_gb_per_s"] = (
            cell["seeds"] * cell["steps"] * bytes_per_problem_step(cell["model"], cell["d"], cell["d"]) / train_s / 1e9
        )
        row["compile_s"] = res["compile_build_s"] + res["compile_train_s"]
    return row


def fmt_row(row: dict) -> str:
    if "run_steps_per_s" not in row:
        why = row.get("skipped") or row.get("error", "")[-120:].replace("\n", " ")
        return f"{row['model']:<7}{row['d']:>6}{row['seeds']:>6}{row['grid']:>5}{row['steps']:>6}{row['log_every']:>5}   skipped: {why}"
    return (
        f"{row['model']:<7}{row['d']:>6}{row['seeds']:>6}{row['grid']:>5}{row['steps']:>6}{row['log_every']:>5}"
        f"{row['compile_s']:>9.1f}{row['build_s']:>8.2f}{min(row['train_s'], row.get('train_s_2', 1e99)):>9.2f}"
        f"{row['run_steps_per_s']:>11.3g}{row['gflops']:>8.2f}{row['min_gb_per_s']:>8.2f}{row['peak_rss_mb']:>9.0f}"
        f"{row['load_end']:>6.1f}{row.get('chunk', 0):>6}"
    )


HEADER = (
    f"{'model':<7}{'d':>6}{'seeds':>6}{'grid':>5}{'steps':>6}{'log':>5}{'compile':>9}{'build':>8}{'train s':>9}"
    f"{'run-st/s':>11}{'GFLOP/s':>8}{'GB/s':>8}{'rss MB':>9}{'load':>6}{'chunk':>6}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small subset: ~90-130 s on the 2-core CPU (load 2.6-4)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", default=None, help="JSON output (default benchmarks/results/bench_{quick,full,extra}.json)"
    )
    parser.add_argument("--extra", action="store_true", help="only the eager loops, with one OpenBLAS thread")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker[0]](json.loads(args.worker[1]))))
        return
    start = time.perf_counter()
    p = EXTRA if args.extra else plan(args.quick)
    try:
        import torch  # noqa: F401

        torch_note = "PyTorch is installed but not benchmarked here"
    except ImportError:
        torch_note = "PyTorch is not installed: no PyTorch eager baseline"
    report = {
        "mode": "quick" if args.quick else "full",
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_start": os.getloadavg(),
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "gpu": "No GPU was lent in this task",
        "torch": torch_note,
        "counts": "see the module docstring of benchmarks/bench.py",
    }
    machine = spawn("machine", p["machine"], 300)
    report["machine"] = machine
    print(
        f"machine: matmul float64 {machine.get('numpy_matmul_float64_gflops', 0):.1f} GFLOP/s (NumPy), "
        f"{machine.get('jax_matmul_float64_gflops', 0):.1f} (XLA); float32 {machine.get('numpy_matmul_float32_gflops', 0):.1f} / "
        f"{machine.get('jax_matmul_float32_gflops', 0):.1f}; copy {machine.get('copy_gbs', 0):.1f} GB/s (read+write), "
        f"sum {machine.get('sum_gbs', 0):.1f} GB/s; load {machine.get('load_end', 0):.2f}",
        flush=True,
    )

    print(HEADER, flush=True)
    rows = []

    def run_cell(cell, group, prev=None):
        gb = cell["seeds"] * problem_bytes(cell["model"], cell["d"], cell["d"]) / 1e9
        if gb > p["max_problem_gb"]:
            row = dict(cell, skipped=f"problems alone need {gb:.1f} GB > {p['max_problem_gb']} GB budget")
        elif (
            prev is not None
            and "train_s" in prev
            and (prev["train_s"] + prev["build_s"]) * cell["seeds"] / prev["seeds"] > p["budget_s"]
        ):
            est = (prev["train_s"] + prev["build_s"]) * cell["seeds"] / prev["seeds"]
            row = dict(
                cell,
                skipped=f"predicted construction + training {est:.0f} s > {p['budget_s']:.0f} s budget "
                f"(from {prev['seeds']} seeds at load {prev['load_end']:.1f})",
            )
        else:
            row = summarise(cell, spawn("cell", cell, 600))
        row["group"] = group
        rows.append(row)
        print(fmt_row(row), flush=True)
        return row

    for _model, _d, cells in p["sweeps"]:
        prev = None
        for cell in cells:
            row = run_cell(cell, "seeds", prev)
            if "train_s" in row:
                prev = row
            elif prev is not None:
                prev = dict(prev, train_s=float("inf"))  # skip the larger ones too
    print("shared problem: 1 seed x G alphas (Sigma_hat, G read once per step for all) against G seeds x 1", flush=True)
    for model, d, g, steps in p["shared"]:
        run_cell(engine_cell(model, d, 1, grid=g, steps=steps), "shared")
        run_cell(engine_cell(model, d, g, grid=1, steps=steps), "shared")
    if p["vmap_all"]:
        print("one vmap over all seeds (the engine before its CPU chunking) against the chunked rows above", flush=True)
        for cell in p["vmap_all"]:
            run_cell(cell, "vmap_all")
    if p["logging"]:
        print(
            "metric logging cost (d = 100, 100 seeds): log every step (against every 100 in the sweep above)",
            flush=True,
        )
        for cell in p["logging"]:
            run_cell(cell, "logging")
    if p["memory"]:
        print(
            "peak memory (200 seeds, d = 100): 1000 vs 4000 steps at 101 logged points, and 1001 logged points",
            flush=True,
        )
        for cell in p["memory"]:
            run_cell(cell, "memory")

    print(f"eager NumPy per-step loops (one run; {torch_note})", flush=True)
    eager = []
    for model, d, variant in p["eager"]:
        res = spawn(
            "eager",
            {
                "model": model,
                "d": d,
                "variant": variant,
                "log_every": 100,
                "steps": 1000,
                "seconds": p["eager_seconds"],
                "env": p.get("eager_env", {}),
            },
            300,
        )
        res["env"] = p.get("eager_env", {})
        res.update(model=model, d=d, variant=variant)
        eager.append(res)
        print(
            f"  {model:<7}{d:>6} {variant:<11} {res.get('run_steps_per_s', float('nan')):>10.3g} run-steps/s "
            f"({res.get('steps', 0)} steps in {res.get('seconds', 0):.2f} s, load {res.get('load_end', 0):.1f})",
            flush=True,
        )

    # engine / eager ratio at 100 seeds (same math: sufficient statistics for linear)
    ratios = []
    for row in rows:
        if row["group"] == "seeds" and row["seeds"] == 100 and "run_steps_per_s" in row:
            for e in eager:
                if e["model"] == row["model"] and e["d"] == row["d"] and "run_steps_per_s" in e:
                    ratios.append(
                        {
                            "model": row["model"],
                            "d": row["d"],
                            "eager": e["variant"],
                            "ratio": row["run_steps_per_s"] / e["run_steps_per_s"],
                        }
                    )
    print("engine (100 seeds) / eager loop throughput:", flush=True)
    for x in ratios:
        print(f"  {x['model']:<7}{x['d']:>6} vs {x['eager']:<11} {x['ratio']:>8.1f}x", flush=True)
    report.update(rows=rows, eager=eager, ratios=ratios, load_end=os.getloadavg(), wall_s=time.perf_counter() - start)
    out = args.out or os.path.join(HERE, "results", f"bench_{'extra' if args.extra else report['mode']}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(f"wrote {out}; wall {report['wall_s']:.0f} s; load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
