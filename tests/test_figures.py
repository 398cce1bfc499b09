"""The figure experiments and their CLI: presets valid, --set checked, run writes results, plot only reads."""

import dataclasses
import json
import math

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import lora_theory as lt
from experiments import MODULES, REGISTRY
from experiments.common import OverrideError, apply_overrides, per_seed, tail_rate
from lora_theory.cli import main

#: full presets with fewer seeds than the suite's 50, and why
FEWER_SEEDS = {"f8": 20}  # F8: 20 seeds, as its issue (#14) asks; each seed pretrains its own network

TINY_F1 = ["d=10", "k=10", "r_star=2", "rank=4", "n_factor=4", "steps=20", "log_every=5", "alpha2s=1,0.0001"]


def _run_configs(name, config):
    """Every RunConfig an engine-based experiment would simulate."""
    module = REGISTRY[name]
    if name == "f1":
        return [config.run_config()]
    if name == "f1b":
        return [config.run_config(d) for d in config.ds]
    if name == "f2":
        return [config.run_config(init, variant) for _, init, variant in module.INITS]
    if name in ("f4", "f6"):
        return [config.run_config(i, o) for i in module.INITS for o in module.OPTIMIZERS]
    if name == "f5":
        return [rc for _, rc, _ in module.jobs(config)]
    if name == "f7":
        return [config.spectral_config(n) for n in config.n_factors] + [config.alignment_config(d) for d in config.ds]
    if name == "f9":
        runs = [config.run_config(i, o, t) for i in module.INITS for o in module.OPTIMIZERS for t in config.targets]
        return runs + [config.run_config(rank=r, scaling=s) for r in config.ranks for s in module.SCALINGS]
    return []  # f3: the scalar toy has no RunConfig


@pytest.mark.parametrize("name", list(MODULES))
def test_presets_are_valid(name):
    module = REGISTRY[name]
    assert module.NAME == name and module.TITLE
    for preset in (module.Config.quick(), module.Config.full()):
        assert dataclasses.is_dataclass(preset)
        with pytest.raises(dataclasses.FrozenInstanceError):
            preset.seeds = 1
        for rc in _run_configs(name, preset):
            lt.validate(rc)
    assert module.Config.full().seeds >= FEWER_SEEDS.get(name, 50)
    assert module.Config.quick().seeds < module.Config.full().seeds


def test_set_overrides_are_parsed_and_checked():
    config = apply_overrides(REGISTRY["f1"].Config.quick(), ["steps=30", "lr=0.1", "alpha2s=1,0.01"])
    assert config.steps == 30 and config.lr == 0.1 and config.alpha2s == (1.0, 0.01)
    with pytest.raises(OverrideError, match="valid keys: .*alpha2s.*steps"):
        apply_overrides(config, ["stepz=3"])
    with pytest.raises(OverrideError, match="expected an integer"):
        apply_overrides(config, ["steps=2.5"])


def test_cli_set_unknown_key_lists_valid_keys(tmp_path, capsys):
    code = main(["run", "f2", "--quick", "--set", "nonsense=1", "--out", str(tmp_path), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown key 'nonsense'" in err and "valid keys:" in err and "singular_values" in err
    assert main(["run", "f99", "--out", str(tmp_path)]) == 2
    assert "valid experiments: f1, f1b" in capsys.readouterr().err


def test_run_writes_parquet_and_json_and_plot_only_reads(tmp_path, monkeypatch):
    out, figs = tmp_path / "results", tmp_path / "figs"
    args = ["run", "f1", "--seeds", "2", "--out", str(out), "--quiet"]
    for item in TINY_F1:
        args += ["--set", item]
    assert main(args) == 0
    df = pd.read_parquet(out / "f1.parquet")
    meta = json.loads((out / "f1.json").read_text())
    assert set(df["seed"]) == {0, 1} and len(df) == 2 * 2 * 5  # seeds x alphas x logged steps
    for column in ("alpha2", "risk", "align_A_G", "lambda_rstar_G", "angle_G_dW", "step"):
        assert column in df.columns
    assert meta["experiment"] == "f1" and meta["config"]["steps"] == 20 and "wall_time_s" in meta
    assert "jax_version" in meta and "git_commit" in meta

    def no_compute(*_, **__):
        raise AssertionError("plot must not recompute")

    import experiments.common as common

    monkeypatch.setattr(lt, "simulate", no_compute)
    monkeypatch.setattr(common, "simulate_chunked", no_compute)
    monkeypatch.setattr(common, "per_seed", no_compute)
    assert main(["plot", "f1", "--out", str(out), "--figures-dir", str(figs)]) == 0
    assert (figs / "f1.png").stat().st_size > 10_000 and (figs / "f1.pdf").exists()
    assert main(["plot", "f2", "--out", str(out), "--figures-dir", str(figs)]) == 2  # no results: clear error


def test_scalar_toy_reaches_the_minimiser_curve(tmp_path):
    module = REGISTRY["f3"]
    config = dataclasses.replace(module.Config.quick(), seeds=3, steps=400, log_every=20)
    df = module.run(config, tmp_path, progress=False)
    last = df[df["step"] == 400]
    assert len(last) == 4 and set(last["init"]) == {"random", "spectral"}
    assert (last["dist_to_minimisers"] < 1e-3).all()  # b a = beta at the end
    X, y = module.toy_data(config)
    a0, b0 = module.spectral_toy_init(X, y, 1.0)
    G = X.T @ y / y.shape[0]
    np.testing.assert_allclose(np.asarray(b0 * a0), np.asarray(G), rtol=1e-12)  # a_0 b_0 = G (gamma = 1)
    paths = module.plot(*lt.read_results(tmp_path, "f3"), tmp_path / "figs")
    assert all(p.exists() for p in paths)


def test_per_seed_rebuilds_the_engines_problems():
    rc = lt.RunConfig(d=8, k=6, r_star=2, rank=2, n_samples=40, init="spectral", steps=0, log_every=1)
    batch = lt.simulate(rc, seeds=[3, 4])
    risk0 = np.asarray(batch.trajectory.metrics["risk"])[:, 0, 0]

    def quantities(problem):
        U, s, Vt = jnp.linalg.svd(problem.G, full_matrices=False)
        G_r = (U[:, :2] * s[:2]) @ Vt[:2]
        return {"risk0": 0.5 * jnp.sum((G_r - problem.dW) ** 2)}

    np.testing.assert_allclose(per_seed(rc, [3, 4], quantities)["risk0"], risk0, rtol=1e-10)


def test_tail_rate_recovers_a_geometric_rate():
    steps = np.arange(0, 200, 5)
    risk = 3.0 * 0.9**steps + 0.0
    assert tail_rate(steps, risk) == pytest.approx(0.9, rel=1e-9)
    assert math.isnan(tail_rate(steps[:2], risk[:2]))


def test_tail_rate_stops_at_a_rounding_plateau_but_not_before_convergence():
    steps = np.arange(0, 1000, 10, dtype=np.float64)
    rng = np.random.default_rng(0)
    # converged: 0.5^t down to a noisy rounding plateau near 1e-24, above the 1e-24 floor's cut
    plateau = np.maximum(0.5**steps, 1e-24 * np.exp(rng.normal(0.0, 0.5, steps.size)) + 1e-24)
    assert abs(tail_rate(steps, plateau) - 0.5) < 1e-6
    # still converging at the end (smallest risk 1e-9): every point is usable, the tail's rate is kept
    slow = 0.9**steps + 0.98**steps * 1e-2
    assert abs(tail_rate(steps, slow) - 0.98) < 1e-3


def test_run_compiles_once_per_static_config(tmp_path, monkeypatch):
    """Chunks of seeds and grid points share one program; figures with the same static config too."""
    import experiments.common as common

    monkeypatch.setattr(common, "CHUNK_SEEDS", 2)  # 3 seeds -> 2 chunks, the second one padded
    tiny = ["seeds=3", "r_star=2", "rank=4", "n_factor=4", "steps=30", "log_every=5", "alpha2s=1,0.01,0.0001"]
    before = lt.TRACE_COUNTS["simulate"]
    f1 = REGISTRY["f1"]
    df = f1.run(apply_overrides(f1.Config.quick(), tiny + ["d=11", "k=11"]), tmp_path, progress=False)
    assert lt.TRACE_COUNTS["simulate"] - before == 1  # 2 chunks x 3 alphas: one compile
    assert sorted(df["seed"].unique()) == [0, 1, 2] and df["alpha2"].nunique() == 3
    f1b = REGISTRY["f1b"]
    f1b.run(apply_overrides(f1b.Config.quick(), tiny + ["ds=11,9"]), tmp_path, progress=False)
    assert lt.TRACE_COUNTS["simulate"] - before == 2  # d = 11 is F1's program again; d = 9 is new
    assert not list(tmp_path.glob("*.chunks"))  # the chunk folders are cleaned up


def test_f9_quick_runs_through_the_cli_and_its_runs_are_simulates(tmp_path):
    """`lora-theory run f9 --quick` then `plot f9`: every init x target x optimizer, the defining
    outcomes (PiSSA exact inside W0's top subspace and at its floor outside it, offset inits start at
    W0, oracle at 0), and F9's batched runs equal lt.simulate's runs of the same configs."""
    out, figs = tmp_path / "results", tmp_path / "figs"
    assert main(["run", "f9", "--quick", "--out", str(out), "--quiet"]) == 0
    assert main(["plot", "f9", "--out", str(out), "--figures-dir", str(figs)]) == 0
    assert (figs / "f9.png").stat().st_size > 10_000
    module = REGISTRY["f9"]
    config = module.Config.quick()
    df, _ = lt.read_results(out, "f9")
    s = module.summary(df).set_index(["init", "target", "optimizer"])
    assert len(s) == len(module.INITS) * 3 * 2 and set(df["panel"]) == {"inits", "lora_plus", "rslora"}
    assert s.loc[("pissa", "top", "precgd"), "final"] < 1e-8 and s.loc[("milora", "bottom", "precgd"), "final"] < 1e-8
    assert s.loc[("pissa", "bottom", "precgd"), "final"] > 0.9 * s.loc[("pissa", "bottom", "precgd"), "floor"] > 0.5
    for init in ("pissa", "milora", "olora", "lora_ga"):
        assert abs(s.loc[(init, "random", "gd"), "start"] - 1.0) < 1e-10  # the model starts at W0
    assert s.loc[("oracle", "random", "gd"), "start"] < 1e-12 and s.loc[("pissa", "top", "gd"), "span0"] < 1e-10
    assert "| `pissa` |" in module.tables(df)
    last = df[(df["panel"] == "inits") & (df["step"] == config.steps) & ~df["diverged"]]
    assert (last["rel_err"] >= last["floor"] * (1 - 1e-8) - 1e-13).all()  # the floors are lower bounds
    # the batched runs (padded offsets, identity projections, rank padding) are simulate's runs
    for init, optimizer, target, rank, scaling, panel in (
        ("lora_sb", "precgd", "top", config.rank, "none", "inits"),
        ("random", "gd", "random", 8, "rslora", "rslora"),
    ):
        rc = config.run_config(init, optimizer, target, rank=rank, scaling=scaling)
        batch = lt.simulate(rc, seeds=[1])
        mine = df[
            (df["panel"] == panel)
            & (df["init"] == init)
            & (df["optimizer"] == optimizer)
            & (df["target"] == target)
            & (df["rank"] == rank)
            & (df["scaling"] == scaling)
            & (df["seed"] == 1)
        ].sort_values("step")
        ours = np.asarray(batch.trajectory.metrics["rel_err"])[0, 0]
        np.testing.assert_allclose(mine["rel_err"].to_numpy(), ours, rtol=1e-8, atol=1e-13)
