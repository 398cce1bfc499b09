"""Correctness at width: one program over more than 16,385 runs gives each run its own numbers.

jax 0.10.2 miscompiled vmapped small matmuls at a batch of 16,385 or more (jax issue 39103): the
wide program's results were wrong, not merely rounded differently.  Whatever jax the project runs,
these tests train 16,400 tiny runs (4 seeds x 4,100 target scales; a problem field is swept, so
every run has its own problem) in ONE vmap of one compiled program, and compare them with the
same runs done one at a time by ``lt.simulate``:

* in ``make test``, logging the product A B and the residual A B - dW at every step (small
  matmuls, the miscompiled kind): every logged array, the trained factors and the divergence
  flags, bit for bit;
* in the slow variant, with the full default metric set, also against the first 16,384 = 2**14
  runs in a program just below the threshold (every array bit for bit: crossing the width
  changes nothing), and against the runs alone: the factors bit for bit, the metrics to 1e-15.
  Not the metrics bit for bit, because XLA's CPU backend sums a small matrix (the risk's
  ||A B - dW||^2, the alignments' Gram matrices) in another order in a one-run program than in a
  16,000-run one: measured on jax 0.12, at width 1 the risk and the alignments differ in their
  last bits in the population, linear and ReLU models (in the ReLU model, the trained B too),
  while at widths of 8,000 and more every array is equal bit for bit.  A miscompile is wrong by
  far more than that.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lora_theory as lt

CONFIG = lt.RunConfig(
    model="population",
    d=4,
    k=3,
    r_star=1,
    rank=2,
    init="random",
    alpha=0.3,
    optimizer="gd",
    lr=0.2,
    steps=4,
    log_every=1,
)
SEEDS, POINTS = 4, 4100  # 16,400 runs
SCALES = np.linspace(0.5, 2.0, POINTS)
SWEPT = ("target_scale",)  # a problem field: every run has its own problem, one flat vmap
SAMPLE = [0, 1, 4099, 8191, 12345, 16383, 16384, 16385, 16386, 16399]  # flat run indices


def products(problem, objective, factors):
    """An ``observe`` of small matmuls only: A B and A B - dW."""
    del objective
    AB = factors.A @ factors.B
    return {"AB": AB, "residual": AB - problem.dW}


def _one_program(n_seeds: int, n_points: int, observe) -> lt.Trajectory:
    """Every run of n_seeds x n_points in one vmap of one compiled program (no chunking)."""
    grid = lt.make_grid({"target_scale": SCALES[:n_points]})
    keys = jax.vmap(jax.random.key)(jnp.arange(n_seeds, dtype=jnp.uint32))

    @jax.jit
    def program(keys, grid):
        problems, inits = lt.build(CONFIG, keys, grid, swept=SWEPT)
        return lt.train_batch(CONFIG, problems, inits, grid, swept=SWEPT, chunk=n_seeds * n_points, observe=observe)

    trajectory = jax.block_until_ready(program(keys, grid))
    assert trajectory.final.A.shape[:2] == (n_seeds, n_points)
    return trajectory


def _leaves(trajectory, index) -> dict[str, np.ndarray]:
    return {
        jax.tree_util.keystr(path): np.asarray(x[index])
        for path, x in jax.tree_util.tree_flatten_with_path(trajectory)[0]
    }


def _alone(index: int, observe) -> dict[str, np.ndarray]:
    seed, point = divmod(index, POINTS)
    batch = lt.simulate(CONFIG, seeds=[seed], sweep={"target_scale": [SCALES[point]]}, mesh=None, observe=observe)
    return _leaves(batch.trajectory, (0, 0))


def test_a_program_of_16400_runs_equals_the_runs_done_one_at_a_time_bit_for_bit():
    assert SEEDS * POINTS > 16_385
    wide = _one_program(SEEDS, POINTS, products)
    for index in SAMPLE:
        batched, alone = _leaves(wide, divmod(index, POINTS)), _alone(index, products)
        assert batched.keys() == alone.keys() and ".metrics['AB']" in batched
        for name in batched:
            np.testing.assert_array_equal(batched[name], alone[name], err_msg=f"run {index}: {name}")


@pytest.mark.slow
def test_with_every_metric_a_program_of_16400_runs_equals_narrower_programs():
    wide = _one_program(SEEDS, POINTS, lt.lora_metrics)
    narrow = _one_program(SEEDS, 4096, lt.lora_metrics)  # 16,384 runs
    below = _leaves(wide, np.s_[:, :4096])
    for name, values in _leaves(narrow, np.s_[:]).items():
        np.testing.assert_array_equal(below[name], values, err_msg=name)
    exact = (".steps", ".final.A", ".final.B", ".diverged_step")
    for index in SAMPLE:
        batched, alone = _leaves(wide, divmod(index, POINTS)), _alone(index, lt.lora_metrics)
        assert batched.keys() == alone.keys()
        for name in batched:
            if name in exact:
                np.testing.assert_array_equal(batched[name], alone[name], err_msg=f"run {index}: {name}")
            else:
                finite = np.isfinite(alone[name])
                np.testing.assert_array_equal(np.isfinite(batched[name]), finite, err_msg=f"run {index}: {name}")
                np.testing.assert_allclose(
                    batched[name][finite], alone[name][finite], rtol=1e-15, atol=1e-15, err_msg=f"run {index}: {name}"
                )
