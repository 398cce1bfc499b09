"""Results I/O: tidy long-format Parquet (one row per run and logged step) plus a JSON sidecar.

Every write is atomic (a temporary file in the same folder, then ``os.replace``), so a killed
process never leaves a half-written results file behind.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import jax
import numpy as np
import pandas as pd

from .config import DYNAMIC_FIELDS, RUN_COLUMNS  # derived from RunConfig's field metadata

__all__ = [
    "RUN_COLUMNS",
    "batch_to_dataframe",
    "run_summary",
    "environment_metadata",
    "atomic_write_bytes",
    "write_results",
    "read_results",
]

def batch_to_dataframe(batch, **constant_columns) -> pd.DataFrame:
    """Flatten a :class:`~lora_theory.engine.Batch` to one row per (seed, grid point, logged step).

    Columns: the configuration (``RUN_COLUMNS``: the static fields whose metadata marks them as
    columns, resolved, e.g. the default variant), every dynamic field (its swept or fixed value),
    ``seed``, ``step``, every scalar metric, ``sv_1..sv_r`` (singular values of A B), and per run
    ``rate``, ``diverged``, ``diverged_step``.  Extra keyword arguments become constant columns.
    """
    traj = batch.trajectory
    config = batch.config
    n_seeds, n_grid = np.shape(traj.rate)[:2]
    steps = np.asarray(traj.steps)[0, 0]
    n_logs = steps.size
    rows = n_seeds * n_grid * n_logs

    def per_run(values):  # (n_seeds, n_grid) -> (rows,)
        return np.repeat(np.asarray(values).reshape(n_seeds * n_grid), n_logs)

    columns: dict[str, Any] = {}
    for name in RUN_COLUMNS:
        value = config.resolved(name)
        columns[name] = np.full(rows, value, dtype=object if isinstance(value, (str, type(None))) else None)
    dynamic = config.dynamic_values()
    for name in DYNAMIC_FIELDS:
        if name in batch.grid:
            columns[name] = per_run(np.broadcast_to(batch.grid[name][None, :], (n_seeds, n_grid)))
        else:
            columns[name] = np.full(rows, float(dynamic[name]))
    for name, value in constant_columns.items():
        columns[name] = np.full(rows, value)
    columns["seed"] = per_run(np.broadcast_to(np.asarray(batch.seeds)[:, None], (n_seeds, n_grid)))
    columns["step"] = np.tile(steps, n_seeds * n_grid)
    for name, values in traj.metrics.items():
        values = np.asarray(values)
        if values.ndim == 3:
            columns[name] = values.reshape(rows)
        else:
            prefix = "sv" if name == "sv_AB" else name
            for i in range(values.shape[-1]):
                columns[f"{prefix}_{i + 1}"] = values[..., i].reshape(rows)
    columns["rate"] = per_run(traj.rate)
    columns["diverged"] = per_run(np.asarray(traj.diverged_step) >= 0)
    columns["diverged_step"] = per_run(traj.diverged_step)
    return pd.DataFrame(columns)


def run_summary(df: pd.DataFrame, by: Iterable[str] = ("init",)) -> pd.DataFrame:
    """Per group: final risk, final align_A_G and fitted rate, mean and std over seeds; diverged runs."""
    by = [c for c in by if c in df.columns]
    run_id = [c for c in (*RUN_COLUMNS, *DYNAMIC_FIELDS, "seed") if c in df.columns]
    last = df[df["step"] == df.groupby(run_id, dropna=False)["step"].transform("max")]
    agg = last.groupby(by, dropna=False).agg(
        runs=("seed", "size"),
        risk_mean=("risk", "mean"),
        risk_std=("risk", "std"),
        align_A_G_mean=("align_A_G", "mean"),
        align_A_G_std=("align_A_G", "std"),
        rate_mean=("rate", "mean"),
        rate_std=("rate", "std"),
        diverged=("diverged", "sum"),
    )
    return agg.reset_index()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_metadata() -> dict[str, Any]:
    """Package and JAX versions, git commit, devices, platform, time (for the JSON sidecar)."""
    from . import __version__

    return {
        "lora_theory_version": __version__,
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "pandas_version": pd.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "devices": [str(d) for d in jax.devices()],
        "default_backend": jax.default_backend(),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results(
    df: pd.DataFrame, out_dir: str | os.PathLike, name: str, metadata: Mapping[str, Any]
) -> tuple[Path, Path]:
    """Write ``{out_dir}/{name}.parquet`` and ``{name}.json`` (metadata + environment), atomically.

    Returns:
        The two paths.
    """
    out_dir = Path(out_dir)
    parquet_path = out_dir / f"{name}.parquet"
    json_path = out_dir / f"{name}.json"
    atomic_write_bytes(parquet_path, df.to_parquet(index=False))
    sidecar = {**environment_metadata(), **metadata, "rows": int(len(df)), "columns": list(df.columns)}
    atomic_write_bytes(json_path, json.dumps(sidecar, indent=2, default=_json_default).encode())
    return parquet_path, json_path


def read_results(out_dir: str | os.PathLike, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read back what :func:`write_results` wrote."""
    out_dir = Path(out_dir)
    df = pd.read_parquet(out_dir / f"{name}.parquet")
    metadata = json.loads((out_dir / f"{name}.json").read_text())
    return df, metadata


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
