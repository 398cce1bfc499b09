"""The command line: train writes tidy Parquet + JSON and prints the summary; bad input exits 2."""

import json

import pandas as pd
import pytest

import lora_theory as lt
from lora_theory.cli import main


def test_train_writes_results_and_summary(tmp_path, capsys):
    code = main(
        [
            "train",
            "--model",
            "linear",
            "--d",
            "10",
            "--k",
            "8",
            "--r-star",
            "2",
            "--rank",
            "4",
            "--n-samples",
            "80",
            "--init",
            "random,spectral",
            "--alpha",
            "0.01,1",
            "--optimizer",
            "gd",
            "--lr",
            "0.05",
            "--steps",
            "30",
            "--log-every",
            "10",
            "--seeds",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "spectral" in out and "align_A_G_mean" in out and "risk_mean" in out
    df = pd.read_parquet(tmp_path / "train.parquet")
    assert len(df) == 2 * 2 * 3 * 4  # inits x alphas x seeds x logged steps
    for column in [
        "init",
        "alpha",
        "seed",
        "step",
        "risk",
        "rel_err",
        "align_A_G",
        "align_B_dW",
        "sv_1",
        "sv_4",
        "rate",
        "diverged",
    ]:
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
    assert "valid" not in "" and "random, random_b, spectral" in capsys.readouterr().err


def test_train_flags_are_generated_from_the_config_metadata():
    import lora_theory as lt
    from lora_theory.cli import build_parser

    args = build_parser().parse_args(["train"])
    for name, spec in lt.FIELD_SPECS.items():
        default = getattr(lt.RunConfig(), name)
        value = getattr(args, name)
        if spec.dynamic or spec.cli_list:
            assert value == (None if default is None else [default]), name
        else:
            assert value == default, name
    args = build_parser().parse_args(
        [
            "train",
            "--r-star",
            "3",
            "--alpha",
            "1,0.1",
            "--init",
            "random,spectral",
            "--singular-values",
            "2,1",
            "--preheat-lr",
            "0.2",
        ]
    )
    from lora_theory.cli.train import _configs_from_args

    configs, sweep = _configs_from_args(args)
    assert [c.init for c in configs] == ["random", "spectral"] and sweep == {"alpha": [1.0, 0.1]}
    assert configs[0].r_star == 3 and configs[0].singular_values == (2.0, 1.0) and configs[0].preheat_lr == 0.2
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    helps = {action.dest: action.help for action in train._actions}
    for name, spec in lt.FIELD_SPECS.items():
        assert helps[name].startswith(spec.help), name
    assert "random | random_b | spectral | lora_one" in helps["init"] and "LoRA and init" in train.format_help()
    for init in ("pissa", "milora", "olora", "orthogonal"):
        assert init in helps["init"]
    for flag in ("--scaling", "--lora-alpha", "--lr-ratio", "--target-subspace", "--target-angle"):
        assert flag in train.format_help()


@pytest.mark.parametrize(
    "flags,name",
    [
        (["--seeds", "0"], "seeds"),
        (["--seed", "-1"], "seed"),
        (["--model", "population", "--activation", "tanh"], "activation"),
        (["--model", "population", "--activation", "relu"], "activation"),  # the default, given: still rejected
        (["--chunk-seeds", "0"], "chunk_seeds"),
        (["--seed", "4294967296"], "seed"),  # jax.random.key takes a 32-bit seed: it would wrap
        (["--seeds", "4294967297"], "seeds"),  # the seed list alone would not fit in memory
        (["--name", "a/b"], "name"),
        (["--executor", "processes", "--workers", "0"], "workers"),
        (["--workers", "2"], "workers"),  # inline runs in this process
        (["--slurm-partition", "gpu"], "slurm_partition"),  # submitit's options need --executor submitit
        (["--submitit-cluster", "local"], "submitit_cluster"),
        (["--executor", "submitit", "--slurm-gpus", "0"], "slurm_gpus"),
        (["--executor", "submitit", "--submitit-option", "no-value"], "submitit_option"),
        (["--executor", "submitit", "--submitit-cluster", "local", "--submitit-option", "bogus=1"], "submitit_option"),
        (["--executor", "submitit", "--submitit-folder", "/proc/lora_theory_forbidden"], "submitit_folder"),
        (["--model", "population", "--n-samples", "50"], "n_samples"),
        (["--out", "/proc/lora_theory_forbidden"], "out"),
        (["--lr-ratio", "0"], "lr_ratio"),
        (["--lr-ratio", "1,inf"], "lr_ratio"),
        (["--scaling", "peft"], "scaling"),
        (["--target-subspace", "top", "--target-angle", "0.5,2"], "target_angle"),
        (["--target-angle", "0.5"], "target_angle"),
        (["--init", "orthogonal", "--rank", "3"], "rank"),
        # a parameter the chosen init / optimizer does not read is refused, not silently ignored
        (["--init", "spectral", "--alpha", "0.1"], "alpha"),
        (["--init", "random", "--gamma", "2"], "gamma"),
        (["--init", "spectral", "--variant", "orthonormal"], "variant"),
        (["--init", "random", "--preheat-steps", "5"], "preheat_steps"),
        (["--optimizer", "gd", "--damping", "0.1"], "damping"),
    ],
)
def test_bad_run_arguments_exit_2_naming_the_parameter_before_compiling(flags, name, tmp_path, capsys):
    """Each gives one line naming the parameter and exit code 2, and nothing is traced or compiled."""
    before = lt.TRACE_COUNTS["simulate"]
    base = ["train", "--d", "8", "--k", "6", "--r-star", "2", "--rank", "2", "--steps", "3", "--quiet"]
    out = [] if "--out" in flags else ["--out", str(tmp_path)]
    assert main([*base, *out, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lora-theory: error: {name}="), err
    assert lt.TRACE_COUNTS["simulate"] == before


@pytest.mark.parametrize(
    "flags,start",
    [
        (["--d", "x"], "lora-theory train: error: argument --d: invalid int value: 'x'"),
        (["--lr", ","], "lora-theory train: error: argument --lr: expected a number"),
        (["--init", ","], "lora-theory train: error: argument --init: expected a name"),
        (["--executor", "dask"], "lora-theory train: error: argument --executor: invalid choice: 'dask'"),
        (["--bogus", "1"], "lora-theory: error: unrecognized arguments: --bogus 1"),
    ],
)
def test_argparse_errors_are_one_line_too(flags, start, tmp_path, capsys):
    """argparse's errors: one line naming the flag, exit code 2, not the command's whole usage."""
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(tmp_path), *flags])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(start) and err[0].endswith("--help)"), err


def test_simulate_rejects_a_negative_seed():
    with pytest.raises(lt.ConfigError, match="seed=-1"):
        lt.simulate(lt.RunConfig(d=8, k=6, r_star=2, rank=2, steps=2), seeds=[3, -1])


def test_a_sweep_too_large_for_memory_is_refused_before_compiling_with_the_estimate(tmp_path, capsys):
    before = lt.TRACE_COUNTS["simulate"]
    flags = [
        "train",
        "--d",
        "100000",
        "--k",
        "100000",
        "--steps",
        "3",
        "--seeds",
        "2",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lora-theory: error: memory:"), err
    assert "GiB" in err[0] and "--chunk-seeds" in err[0] and "--log-every" in err[0] and "float32" in err[0]
    assert lt.TRACE_COUNTS["simulate"] == before


def test_memory_estimate_scales_with_seeds_problem_size_dtype_and_logged_steps():
    from lora_theory.memory import estimate_peak_bytes

    config = lt.RunConfig(d=200, k=100, n_samples=3200, steps=100, log_every=1)
    one, ten = estimate_peak_bytes(config, 1), estimate_peak_bytes(config, 10)
    assert ten.problems > 9 * (one.problems - estimate_peak_bytes(config, 0).problems)
    assert estimate_peak_bytes(config.replace(dtype="float32"), 10).problems * 2 == pytest.approx(
        ten.problems, rel=0.01
    )
    assert estimate_peak_bytes(config.replace(log_every=10), 10).logged < ten.logged / 5


def test_train_with_the_practical_init_flags(tmp_path, capsys):
    """--init pissa with --target-subspace, --target-angle, --scaling, --lora-alpha and --lr-ratio (swept)."""
    code = main(
        [
            "train",
            "--d",
            "10",
            "--k",
            "8",
            "--r-star",
            "2",
            "--rank",
            "4",
            "--n-samples",
            "80",
            "--init",
            "pissa",
            "--target-subspace",
            "top",
            "--target-angle",
            "0,0.5",
            "--scaling",
            "rslora",
            "--lora-alpha",
            "2",
            "--lr-ratio",
            "1,4",
            "--lr",
            "0.02",
            "--steps",
            "20",
            "--log-every",
            "10",
            "--seeds",
            "2",
            "--quiet",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    df = pd.read_parquet(tmp_path / "train.parquet")
    assert set(df["init"]) == {"pissa"} and set(df["scaling"]) == {"rslora"}
    assert sorted(set(df["lr_ratio"])) == [1.0, 4.0] and sorted(set(df["target_angle"])) == [0.0, 0.5]
    assert set(df["target_subspace"]) == {"top"} and "align_A_W0" in df.columns
    start = df[(df["step"] == 0) & (df["target_angle"] == 0.0)]
    assert (start["align_A_W0"] < 1e-10).all()  # PiSSA's A_0 spans W0's top subspace


def test_a_sweeps_whole_results_table_is_checked_against_memory(tmp_path, capsys):
    """Chunks bound the training's memory, not the table the sweep ends with: that is checked too."""
    flags = [
        "train",
        "--d",
        "8",
        "--k",
        "6",
        "--r-star",
        "2",
        "--rank",
        "2",
        "--steps",
        "100000",
        "--log-every",
        "1",
        "--seeds",
        "100000",
        "--chunk-seeds",
        "10",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lora-theory: error: memory: the results table of 100000 runs"), err
    assert "--seeds" in err[0] and "--log-every" in err[0]


def test_a_process_pools_memory_check_counts_every_worker(tmp_path, capsys, monkeypatch):
    import lora_theory.memory as memory
    from lora_theory.cli import build_parser
    from lora_theory.cli.train import _configs_from_args

    flags = [
        "train",
        "--d",
        "8",
        "--k",
        "6",
        "--r-star",
        "2",
        "--rank",
        "2",
        "--steps",
        "3",
        "--seeds",
        "8",
        "--chunk-seeds",
        "2",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    (config,), _ = _configs_from_args(build_parser().parse_args(flags))
    one_chunk = memory.estimate_peak_bytes(config, 2).total
    monkeypatch.setattr(memory, "available_bytes", lambda: int(2.5 * one_chunk))  # room for 2 chunks at once
    assert main([*flags, "--executor", "processes", "--workers", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lora-theory: error: memory: 3 workers at once, each with 2 seed(s)"), (
        err
    )
    assert "fewer --workers" in err[0]
