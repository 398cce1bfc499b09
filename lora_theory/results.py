"""Results I/O: tidy long-format Parquet (one row per run and logged step) plus a JSON sidecar.

Every write is atomic (a temporary file in the same folder, then ``os.replace``), so a killed
process never leaves a half-written results file behind.

The sidecar records what the Parquet file must be: ``schema_version`` (:data:`SCHEMA_VERSION`,
the layout of both files), ``rows``, ``columns`` and ``parquet_sha256`` (the Parquet file's
bytes).  :func:`read_results` checks all four and raises :class:`ResultsError`, naming the file,
for an unknown version, a truncated or unreadable file, or a pair that do not belong together
(e.g. a Parquet file replaced by another run's after its sidecar was written).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import pandas as pd

from .config import DYNAMIC_FIELDS, RUN_COLUMNS  # derived from RunConfig's field metadata

if TYPE_CHECKING:
    from .engine import Batch

#: the layout of a results file pair (the Parquet columns' meaning and the sidecar's keys).
#: Version 1 added ``schema_version`` and ``parquet_sha256``; a sidecar without
#: ``schema_version`` predates versioning and has version 1's layout otherwise, so it is read.
#: Bump it when a column or a sidecar key changes meaning, and teach :func:`read_results` the
#: old versions it can still read.
SCHEMA_VERSION = 1
_READABLE_VERSIONS = (1,)


class ResultsError(ValueError):
    """A results file that cannot be trusted: missing, truncated, of an unknown schema version,
    or not matching its sidecar.  The message names the file."""


__all__ = [
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "ResultsError",
    "batch_to_dataframe",
    "run_summary",
    "environment_metadata",
    "atomic_write_bytes",
    "write_results",
    "read_results",
]


def batch_to_dataframe(batch: Batch, **constant_columns: Any) -> pd.DataFrame:
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

    def per_run(values: Any) -> np.ndarray:  # (n_seeds, n_grid) -> (rows,)
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
    data = df.to_parquet(index=False)
    atomic_write_bytes(parquet_path, data)
    sidecar = {
        "schema_version": SCHEMA_VERSION,
        **environment_metadata(),
        **metadata,
        "rows": int(len(df)),
        "columns": [str(c) for c in df.columns],
        "parquet_sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write_bytes(json_path, json.dumps(sidecar, indent=2, default=_json_default).encode())
    return parquet_path, json_path


def read_results(out_dir: str | os.PathLike, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read back what :func:`write_results` wrote, checking that the two files belong together.

    Args:
        out_dir: the results folder.
        name: the file stem (``{name}.parquet`` and ``{name}.json``).

    Returns:
        (the DataFrame, the sidecar's metadata).

    Raises:
        ResultsError: naming the file, when either file is missing or unreadable (truncated,
            not JSON / not Parquet), the sidecar's ``schema_version`` is not one this version of
            the package reads, or the Parquet file's rows, columns or bytes differ from those
            the sidecar records.
    """
    out_dir = Path(out_dir)
    parquet_path, json_path = out_dir / f"{name}.parquet", out_dir / f"{name}.json"
    for path in (parquet_path, json_path):
        if not path.is_file():
            raise ResultsError(
                f"{path}: no such results file (a results file is {name}.parquet with its sidecar {name}.json)"
            )
    try:
        metadata = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(
            f"{json_path}: not a readable JSON sidecar (truncated or corrupt: {_one_line(error)})"
        ) from None
    if not isinstance(metadata, dict):
        raise ResultsError(
            f"{json_path}: not a results sidecar (a JSON object is expected, got {type(metadata).__name__})"
        )
    version = metadata.get("schema_version", 1)  # no key: written before versioning, version 1's layout
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
        from . import __version__

        readable = ", ".join(map(str, _READABLE_VERSIONS))
        raise ResultsError(
            f"{json_path}: schema_version {version!r} is not one lora_theory {__version__} reads "
            f"(it reads {readable}); it was written by another version of lora_theory"
            f"{' (' + str(metadata['lora_theory_version']) + ')' if 'lora_theory_version' in metadata else ''}: "
            "read it with that version, or re-run the command that made it"
        )
    data = parquet_path.read_bytes()
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # pyarrow's errors (ArrowInvalid, OSError, ...) for a cut or damaged file
        raise ResultsError(
            f"{parquet_path}: not a readable Parquet file ({len(data)} bytes; truncated or corrupt: {_one_line(error)}); "
            "re-run the command that made it"
        ) from None
    mismatch = _mismatch(df, data, metadata)
    if mismatch:
        raise ResultsError(
            f"{parquet_path}: does not match its sidecar {json_path.name} ({mismatch}); one of the two was "
            "replaced or edited after they were written: re-run the command that made them"
        )
    return df, metadata


def _mismatch(df: pd.DataFrame, data: bytes, metadata: Mapping[str, Any]) -> str | None:
    """What differs between a Parquet file and the rows / columns / hash its sidecar records."""
    if "rows" in metadata and metadata["rows"] != len(df):
        return f"it has {len(df)} rows, the sidecar records {metadata['rows']}"
    if "columns" in metadata and list(metadata["columns"]) != [str(c) for c in df.columns]:
        recorded, found = list(metadata["columns"]), [str(c) for c in df.columns]
        missing = [c for c in recorded if c not in found]
        extra = [c for c in found if c not in recorded]
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"not recorded {', '.join(extra[:5])}" if extra else "",
            )
            if part
        )
        return f"its columns differ from those the sidecar records ({detail or 'same names, another order'})"
    recorded_hash = metadata.get("parquet_sha256")
    if recorded_hash is not None and recorded_hash != hashlib.sha256(data).hexdigest():
        return "its bytes differ from those the sidecar records (sha256)"
    return None


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:200] + ("..." if len(text) > 200 else "")


def _json_default(value: object) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
