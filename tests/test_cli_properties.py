"""No traceback for a user error: a property test over ``lora-theory train``'s argument vectors.

Hypothesis draws argument vectors: a tiny base command (d = 6, k = 5, rank 2, 2 steps, 1 seed) and
on top of it a static combination (model, init, optimizer, train_factors), up to four more flags
and sometimes an executor's flag, drawn from every flag of ``train`` (a test checks that the table
covers them all), each with a valid value, an out-of-range one or one of the wrong type.  (The
executors that start processes are drawn only with a flag that makes the command an error.)  Each case, run in-process through
``lora_theory.cli.main``, must either succeed (exit 0 and a results file whose rows are the runs
times the logged steps) or exit 2 with exactly one line on stderr that names a parameter
(``name=...`` or ``argument --flag``, or the memory estimate); anything else (a traceback, an
exception escaping ``main``, several lines) fails the test.

* ``make test`` (CI size): 150 cases over a pairwise-covering set of the static combinations
  (21 of them: every pair of model, init, optimizer, train_factors values occurs; ``--dtype``
  is one of the drawn flags); the engine's
  program is *traced* (every shape, dtype and Python branch of the model, init and optimizer
  code; ``jax.jit(...).trace``), not compiled, and the results hold zeros: compiling each new
  combination would take 2-8 s, tracing it 0.4 s.  Everything around it (the CLI, validation,
  ``run_sweep``, the chunk and results files) runs for real.
* ``-m slow``: 400 cases over the full product (252 combinations, dtype included), every
  program compiled and run.
"""

import collections
import itertools
import re

import jax
import jax.numpy as jnp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lora_theory as lt
from lora_theory import engine
from lora_theory.cli import build_parser, main

BASE = [
    "train",
    "--d",
    "6",
    "--k",
    "5",
    "--r-star",
    "2",
    "--rank",
    "2",
    "--steps",
    "2",
    "--log-every",
    "1",
    "--seeds",
    "1",
]

WRONG_INT = ["abc", "1.5", "", "nan", "1e3", "0x10", "2,3"]
WRONG_FLOAT = ["abc", "", ",", "1,,x", "0.1;0.2", "--"]
BAD_FLOAT = ["-1", "-0.5", "nan", "inf", "-inf", "1e400", "0.1,-1"]
GOOD_FLOAT = ["0", "0.01", "0.1", "1", "2", "1e-3"]
GOOD_SWEEP = GOOD_FLOAT + ["0.05,0.2"]  # a comma list sweeps in one program: a new program each
BAD_NAME = ["nope", "", "RELU", " random"]


def _ints(good, bad=("0", "-1", "-7", "99", "4294967296", str(10**30))):
    return {"good": list(good), "bad": list(bad), "wrong": WRONG_INT}


def _choices(good):
    return {"good": list(good), "bad": BAD_NAME, "wrong": []}


#: flag -> values: "good" (valid on their own), "bad" (out of range), "wrong" (wrong type).
FLAGS = {
    "--model": _choices(lt.MODELS),
    # valid sizes: the base's, so that the cases share programs (SLOW_FLAGS: other sizes too)
    "--d": _ints(["6"]),
    "--k": _ints(["5"]),
    "--r-star": _ints(["2"]),
    "--n-samples": _ints(["12"]),
    "--kappa": {"good": ["1", "4"], "bad": ["0.5", "-1", "nan", "inf"], "wrong": WRONG_FLOAT},
    "--singular-values": {"good": ["2,1", "1,1"], "bad": ["3,2,1", "-1,1", "0,1", "1"], "wrong": ["a,b", ","]},
    "--target-scale": {"good": ["1", "0.5"], "bad": ["0", "-1", "nan"], "wrong": WRONG_FLOAT},
    "--noise": {"good": GOOD_FLOAT, "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--target-subspace": _choices(["random", "top", "bottom"]),
    "--target-angle": {"good": ["0", "0.5", "0,1.2"], "bad": ["-0.1", "2", "nan", "inf"], "wrong": WRONG_FLOAT},
    "--activation": _choices(["relu", "leaky_relu", "tanh", "gelu", "identity"]),
    "--leaky-slope": {"good": ["0.01", "0.3"], "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--rank": _ints(["2"]),
    "--init": {"good": list(lt.INITS) + ["random,spectral"], "bad": BAD_NAME + ["random,nope"], "wrong": [","]},
    "--variant": _choices(sorted({v for vs in lt.VARIANTS.values() for v in vs})),
    "--alpha": {"good": GOOD_SWEEP, "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--gamma": {"good": ["1", "2"], "bad": ["0"] + BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--s": {"good": ["4", "1"], "bad": ["0"] + BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--preheat-rank": _ints(["4"]),
    "--preheat-steps": _ints(["1"], bad=("-1", "-5")),
    "--preheat-optimizer": _choices(lt.OPTIMIZERS),
    "--preheat-lr": {"good": GOOD_FLOAT, "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--preheat-damping": {"good": GOOD_FLOAT, "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--preheat-train-factors": _choices(["both", "A", "B"]),
    "--optimizer": {"good": list(lt.OPTIMIZERS) + ["gd,precgd"], "bad": BAD_NAME + ["gd,adam"], "wrong": [","]},
    "--lr": {"good": GOOD_SWEEP + ["1e300"], "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--damping": {"good": GOOD_FLOAT, "bad": BAD_FLOAT, "wrong": WRONG_FLOAT},
    "--scaling": _choices(list(lt.SCALINGS)),
    "--lora-alpha": {"good": ["1", "8", "2,4"], "bad": ["0", "-1", "nan", "inf"], "wrong": WRONG_FLOAT},
    # lr_ratio != 1 with an optimizer that does not declare it (adam) is an error naming lr_ratio
    "--lr-ratio": {"good": ["1", "4", "1,2"], "bad": ["0", "-1", "nan", "inf"], "wrong": WRONG_FLOAT},
    "--train-factors": _choices(["both", "A", "B"]),
    "--steps": _ints(["2"], bad=("-1", "-100")),
    "--log-every": _ints(["1"]),
    "--dtype": _choices(["float64", "float32"]),
    "--seeds": _ints(["1", "2"], bad=("0", "-1", "4294967297", "2147483648")),
    "--seed": _ints(["0", "3", "4294967295"], bad=("-1", "4294967296")),
    "--chunk-seeds": _ints(["1"], bad=("0", "-3")),
    "--out": {"good": ["{tmp}/out"], "bad": ["/proc/lora_theory_forbidden", "{tmp}/a_file"], "wrong": []},
    "--name": {"good": ["run", "a-b_1"], "bad": ["", "a/b", ".", "x\0y"], "wrong": []},
    "--quiet": {"good": [None], "bad": [], "wrong": []},
    "--executor": {"good": ["inline"], "bad": ["dask", ""], "wrong": []},
    # the other executors start processes: drawn only with a flag that makes the command an error
    "--workers": {"good": [], "bad": ["2", "0", "-1"], "wrong": WRONG_INT},
    "--submitit-folder": {"good": [], "bad": ["{tmp}/jobs"], "wrong": []},
    "--submitit-cluster": {"good": [], "bad": ["local", "slurm", "nope"], "wrong": []},
    "--slurm-partition": {"good": [], "bad": ["gpu"], "wrong": []},
    "--slurm-time": {"good": [], "bad": ["10", "0"], "wrong": WRONG_INT},
    "--slurm-gpus": {"good": [], "bad": ["1"], "wrong": WRONG_INT},
    "--slurm-cpus": {"good": [], "bad": ["2"], "wrong": WRONG_INT},
    "--slurm-mem-gb": {"good": [], "bad": ["4", "nan"], "wrong": ["x"]},
    "--submitit-option": {"good": [], "bad": ["slurm_account=abc", "novalue", "=1"], "wrong": []},
}
#: the slow variant's valid sizes (each a program of its own): the CI size keeps the base's.
SLOW_FLAGS = {
    **FLAGS,
    **{
        flag: {**FLAGS[flag], "good": good}
        for flag, good in {
            "--d": ["6", "4", "8"],
            "--k": ["5", "4", "8"],
            "--r-star": ["2", "1", "3"],
            "--rank": ["2", "1", "3", "4"],
            "--n-samples": ["12", "1", "30"],
            "--steps": ["2", "0", "3"],
            "--log-every": ["1", "2", "5"],
            "--preheat-rank": ["2", "4", "5"],
            "--preheat-steps": ["0", "1", "2"],
            "--chunk-seeds": ["1", "2"],
        }.items()
    },
}

#: with --executor submitit, these make the command an error before any job starts.
SUBMITIT_ERRORS = [
    ["--submitit-option", "novalue"],
    ["--slurm-time", "0"],
    ["--slurm-mem-gb", "nan"],
    ["--submitit-folder", "/proc/lora_theory_forbidden"],
    ["--submitit-option", "bogus=1"],
]

STATIC = {
    "--model": list(lt.MODELS),
    "--init": list(lt.INITS),
    "--optimizer": list(lt.OPTIMIZERS),
    "--train-factors": ["both", "A", "B"],
    "--dtype": ["float64", "float32"],
}


def _pairwise(factors: dict[str, list[str]]) -> list[dict[str, str]]:
    """A small set of combinations in which every pair of values of two factors occurs (greedy)."""
    names = list(factors)
    uncovered = {((a, x), (b, y)) for a, b in itertools.combinations(names, 2) for x in factors[a] for y in factors[b]}
    rows = []
    while uncovered:
        best, best_covered = None, set()
        for row in itertools.product(*factors.values()):
            row = dict(zip(names, row, strict=True))
            covered = {p for p in uncovered if row[p[0][0]] == p[0][1] and row[p[1][0]] == p[1][1]}
            if len(covered) > len(best_covered):
                best, best_covered = row, covered
        rows.append(best)
        uncovered -= best_covered
    return rows


PAIRWISE = _pairwise({flag: values for flag, values in STATIC.items() if flag != "--dtype"})  # 21 rows
FULL = [dict(zip(STATIC, row, strict=True)) for row in itertools.product(*STATIC.values())]  # 252
CI_CASES, SLOW_CASES = 150, 400


def _value(table, flag: str):
    weights = {"good": 4, "bad": 2, "wrong": 1}  # valid values most often, so that many cases run
    pools = [kind for kind in ("good", "bad", "wrong") for _ in range(weights[kind]) if table[flag][kind]]
    return st.sampled_from(pools).flatmap(lambda kind: st.sampled_from(table[flag][kind]))


def _flag(table, flag: str):
    return _value(table, flag).map(lambda value: [flag] if value is None else [flag, value])


EXECUTOR_FLAGS = sorted(f for f in FLAGS if f in ("--executor", "--workers") or f.startswith(("--submitit", "--slurm")))
CORE_FLAGS = sorted(set(FLAGS) - set(EXECUTOR_FLAGS))


@st.composite
def argument_vectors(draw, combinations, table=FLAGS):
    """The base command, a static combination, up to 4 more flags, sometimes an executor's."""
    argv = list(BASE)
    for flag, value in draw(st.sampled_from(combinations)).items():
        argv += [flag, value]
    for flag in draw(st.lists(st.sampled_from(CORE_FLAGS), max_size=4, unique=True)):
        argv += draw(_flag(table, flag))
    kind = draw(st.integers(0, 9))
    if kind == 0:
        argv += draw(_flag(table, draw(st.sampled_from(EXECUTOR_FLAGS))))
    elif kind == 1:
        argv += ["--executor", "submitit", *draw(st.sampled_from(SUBMITIT_ERRORS))]
    return argv


OUTCOMES: collections.Counter = collections.Counter()
TRACED: dict = {}  # the traced programs, shared by the cases of the CI-size test
_KNOWN = {action.dest for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
_ERROR = re.compile(r"^lora-theory(?: train)?: error: (?:argument (--[\w-]+)|(\w+)=|(memory): )")


def _check(argv: list[str], tmp, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp)) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp / "out")]
    (tmp / "a_file").write_text("")  # an --out that is a file
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out, (argv, captured.err)
    if code == 0:
        args = build_parser().parse_args(argv)
        df, sidecar = lt.read_results(args.out, args.name)
        n_logs = len(lt.logged_steps(args.steps, args.log_every))
        runs = sidecar["chunks"] // max(1, -(-args.seeds // (args.chunk_seeds or args.seeds))) * args.seeds
        assert len(df) == runs * lt.sweep.grid_size(sidecar["sweeps"][0]) * n_logs, argv
        OUTCOMES["ran"] += 1
        return
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, (argv, code, captured.err)
    match = _ERROR.match(lines[0])
    assert match, (argv, lines[0])
    flag, name, memory = match.groups()
    assert memory or (flag and flag.lstrip("-").replace("-", "_") in _KNOWN) or name in _KNOWN | {"sweep"}, lines[0]
    OUTCOMES["memory" if memory else (flag or name)] += 1


def test_the_strategy_covers_every_flag_of_train():
    flags = {
        opt
        for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    assert flags == set(FLAGS)
    factors = [flag for flag in STATIC if flag != "--dtype"]
    pairs = {((a, row[a]), (b, row[b])) for row in PAIRWISE for a, b in itertools.combinations(factors, 2)}
    assert len(pairs) == sum(len(STATIC[a]) * len(STATIC[b]) for a, b in itertools.combinations(factors, 2))
    assert len(PAIRWISE) == len(lt.INITS) * len(lt.MODELS)  # the largest pair of factors: as small as it can be


@pytest.fixture
def traced_only(monkeypatch):
    """The engine's compiled program replaced by its trace (shapes and dtypes), results zeros."""
    real, shapes, default = engine._simulate_compiled, TRACED, lt.RunConfig()

    def unread(config):
        """The fields whose value cannot change the trace: the dynamic ones (traced scalars or
        constants: no Python branch reads them), the init's unread ``only_if_read`` fields and the
        problem fields the model does not read."""
        reads = set(lt.INITS[config.init].params) | set(lt.MODELS[config.model].fields)
        return {
            name: getattr(default, name)
            for name, spec in lt.FIELD_SPECS.items()
            if spec.dynamic
            or (spec.only_if_read and name not in reads)
            or (spec.problem and name not in reads)
            and name != "model"
        }

    def program(config, swept, keys, grid, mesh, observe=lt.lora_metrics, components=()):
        key = (
            config.replace(**unread(config)),
            swept,
            keys.shape,
            tuple((k, v.shape) for k, v in sorted(grid.items())),
            mesh,
            observe,
            components,
        )
        if key not in shapes:
            shapes[key] = real.trace(config, swept, keys, grid, mesh, observe, components).out_info
        return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[key])

    monkeypatch.setattr(engine, "_simulate_compiled", program)
    yield shapes


@settings(max_examples=CI_CASES, suppress_health_check=list(HealthCheck))
@given(argv=argument_vectors(PAIRWISE))
def test_train_runs_or_exits_2_with_one_line_naming_the_parameter(argv, tmp_path_factory, capsys, traced_only):
    _check(argv, tmp_path_factory.mktemp("case"), capsys)


@pytest.mark.slow
@pytest.mark.timeout(7200)  # a compile per new combination: about 30 min on 2 cores, cold
@settings(max_examples=SLOW_CASES, suppress_health_check=list(HealthCheck))
@given(argv=argument_vectors(FULL, SLOW_FLAGS))
def test_train_runs_or_exits_2_with_every_program_compiled_and_run(argv, tmp_path_factory, capsys):
    _check(argv, tmp_path_factory.mktemp("case"), capsys)


def test_zz_report_the_outcomes(capsys):
    """Prints how the cases ended (``pytest -s``); at least some of each kind."""
    with capsys.disabled():
        total = sum(OUTCOMES.values())
        print(
            f"\nlora-theory train property cases: {total} ({OUTCOMES['ran']} ran, {total - OUTCOMES['ran']} exited 2 "
            f"with one line); {len(TRACED)} programs traced; errors by parameter: "
            f"{dict(sorted(((k, v) for k, v in OUTCOMES.items() if k != 'ran'), key=lambda kv: -kv[1]))}"
        )
    if OUTCOMES:
        assert OUTCOMES["ran"] > 0 and sum(OUTCOMES.values()) > OUTCOMES["ran"]
