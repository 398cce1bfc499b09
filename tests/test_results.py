"""Results files you can trust later: the sidecar's schema_version, rows, columns and hash are checked on reading."""

import json

import numpy as np
import pandas as pd
import pytest

import lora_theory as lt
from lora_theory.cli import main


def _write(folder, name="f3", rows=12):
    df = pd.DataFrame(
        {
            "seed": np.repeat(np.arange(rows // 4), 4),
            "step": np.tile(np.arange(4), rows // 4),
            "risk": np.linspace(1.0, 0.1, rows),
            "init": ["random"] * rows,
        }
    )
    lt.write_results(df, folder, name, {"command": "test"})
    return df


def _edit_sidecar(folder, name="f3", **changes):
    path = folder / f"{name}.json"
    sidecar = json.loads(path.read_text())
    sidecar.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del sidecar[key]
    path.write_text(json.dumps(sidecar))


def test_the_sidecar_records_version_rows_columns_and_hash_and_reads_back(tmp_path):
    df = _write(tmp_path)
    read, sidecar = lt.read_results(tmp_path, "f3")
    pd.testing.assert_frame_equal(read, df)
    assert sidecar["schema_version"] == lt.SCHEMA_VERSION == 1
    assert sidecar["rows"] == 12 and sidecar["columns"] == ["seed", "step", "risk", "init"]
    assert len(sidecar["parquet_sha256"]) == 64


def test_a_sidecar_from_before_versioning_still_reads(tmp_path):
    _write(tmp_path)
    _edit_sidecar(tmp_path, schema_version=None, parquet_sha256=None)
    assert len(lt.read_results(tmp_path, "f3")[0]) == 12


@pytest.mark.parametrize("version", [2, 99, "1", True])
def test_an_unknown_schema_version_names_the_file_and_the_versions_read(tmp_path, version):
    _write(tmp_path)
    _edit_sidecar(tmp_path, schema_version=version)
    with pytest.raises(
        lt.ResultsError, match=rf"f3\.json: schema_version {version!r} is not one .* reads \(it reads 1\)"
    ):
        lt.read_results(tmp_path, "f3")


def test_a_truncated_parquet_file_names_the_file(tmp_path):
    _write(tmp_path)
    path = tmp_path / "f3.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(lt.ResultsError, match=r"f3\.parquet: not a readable Parquet file .*truncated or corrupt"):
        lt.read_results(tmp_path, "f3")


def test_a_truncated_sidecar_names_the_file(tmp_path):
    _write(tmp_path)
    path = tmp_path / "f3.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(lt.ResultsError, match=r"f3\.json: not a readable JSON sidecar"):
        lt.read_results(tmp_path, "f3")


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda folder: _edit_sidecar(folder, rows=13), "it has 12 rows, the sidecar records 13"),
        (
            lambda folder: _edit_sidecar(folder, columns=["seed", "step", "loss", "init"]),
            "missing loss; not recorded risk",
        ),
        (
            lambda folder: _write(folder / "other").to_parquet(folder / "f3.parquet", index=False, compression="gzip"),
            r"bytes differ .* \(sha256\)",
        ),
    ],
    ids=["rows", "columns", "replaced-parquet"],
)
def test_a_sidecar_that_does_not_match_its_parquet_names_the_file(tmp_path, corrupt, message):
    _write(tmp_path)
    corrupt(tmp_path)
    with pytest.raises(lt.ResultsError, match=rf"f3\.parquet: does not match its sidecar f3\.json \(.*{message}"):
        lt.read_results(tmp_path, "f3")


def test_a_missing_sidecar_names_the_file(tmp_path):
    _write(tmp_path)
    (tmp_path / "f3.json").unlink()
    with pytest.raises(lt.ResultsError, match=r"f3\.json: no such results file"):
        lt.read_results(tmp_path, "f3")


def _truncate(folder):
    path = folder / "f3.parquet"
    path.write_bytes(path.read_bytes()[:100])


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda folder: _edit_sidecar(folder, schema_version=7), "f3.json: schema_version 7"),
        (_truncate, "f3.parquet: not a readable Parquet file"),
        (lambda folder: _edit_sidecar(folder, rows=5), "f3.parquet: does not match its sidecar"),
    ],
    ids=["unknown-version", "truncated", "mismatch"],
)
def test_plot_on_an_untrustworthy_file_exits_2_with_one_line(tmp_path, capsys, corrupt, message):
    _write(tmp_path)
    corrupt(tmp_path)
    assert main(["plot", "f3", "--out", str(tmp_path), "--figures-dir", str(tmp_path / "figs")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lora-theory: error: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err and not (tmp_path / "figs").exists()
