"""The command line: train writes tidy Parquet + JSON and prints the summary; bad input exits 2."""

import json

import pandas as pd

from lora_theory.cli import main


def test_train_writes_results_and_summary(tmp_path, capsys):
    code = main(
        [
            "train", "--model", "linear", "--d", "10", "--k", "8", "--r-star", "2", "--rank", "4",
            "--n-samples", "80", "--init", "random,spectral", "--alpha", "0.01,1", "--optimizer", "gd",
            "--lr", "0.05", "--steps", "30", "--log-every", "10", "--seeds", "3", "--out", str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "spectral" in out and "align_A_G_mean" in out and "risk_mean" in out
    df = pd.read_parquet(tmp_path / "train.parquet")
    assert len(df) == 2 * 2 * 3 * 4  # inits x alphas x seeds x logged steps
    for column in ["init", "alpha", "seed", "step", "risk", "rel_err", "align_A_G", "align_B_dW", "sv_1", "sv_4", "rate", "diverged"]:
        assert column in df.columns
    meta = json.loads((tmp_path / "train.json").read_text())
    for field in ["jax_version", "git_commit", "devices", "wall_time_s", "configs", "lora_theory_version"]:
        assert field in meta


def test_bad_input_exits_with_a_clear_message(tmp_path, capsys):
    code = main(["train", "--rank", "0", "--out", str(tmp_path)])
    assert code == 2
    assert "rank=0 is invalid" in capsys.readouterr().err
    code = main(["train", "--init", "kaiming", "--out", str(tmp_path)])
    assert code == 2
    assert "valid" not in "" and "random, spectral" in capsys.readouterr().err
