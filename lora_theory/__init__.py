"""lora_theory: numerical checks, at scale, of the theory of LoRA initialisation (LoRA-One, HRP).

The public API.  Enable float64 before use for theory checks::

    import jax
    jax.config.update("jax_enable_x64", True)
    import lora_theory as lt

    batch = lt.simulate(lt.RunConfig(init="spectral", optimizer="precgd", lr=0.5), seeds=10)
    df = batch.to_dataframe()
"""

__version__ = "0.1.0"

from .config import (
    DTYPES,
    DYNAMIC_FIELDS,
    MODELS,
    ConfigError,
    RunConfig,
    make_problem,
    register_model,
    spectrum,
    validate,
)
from .sweep import progress_bar, run_sweep, sweep_fingerprint
from .engine import (
    TRACE_COUNTS,
    Batch,
    Trajectory,
    build,
    logged_steps,
    make_grid,
    no_metrics,
    problem_key,
    seed_mesh,
    simulate,
    split_run_key,
    train,
    train_batch,
)
from .inits import INITS, VARIANTS, LoRAInit, initialise, preheat
from .metrics import (
    align_A,
    align_B,
    balance,
    fit_linear_rate,
    product_singular_values,
    sin_largest_angle,
    stable_rank,
    top_left_subspace,
    lora_metrics,
    top_right_subspace,
)
from .optimizers import (
    OPTIMIZERS,
    TRAIN_FACTORS,
    LoRAFactors,
    freeze_factors,
    gd,
    gd_update,
    optimizer_from_config,
    precgd,
    precgd_update,
    precondition,
    project_A,
    scale_by_lora_preconditioner,
)
from .problems import (
    LinearObjective,
    LinearProblem,
    LowRank,
    haar_orthonormal,
    make_linear_problem,
    make_population_problem,
    sample_linear_data,
    target_spectrum,
    top_singular_subspaces,
)
from .results import batch_to_dataframe, read_results, run_summary, write_results
from .nonlinear import (
    ACTIVATIONS,
    NonlinearObjective,
    NonlinearProblem,
    activate,
    activation_derivative,
    make_nonlinear_problem,
    sample_nonlinear_data,
)
from .theory_nonlinear import (
    CLAIM7_KAPPAS,
    Claim7Measurement,
    claim7_config,
    measure_claim7,
    relu_precgd_rate_bound,
)
from .config import MODELS  # noqa: E402,F811  re-read: importing .nonlinear registered 'relu'

from . import theory
from .claims import CLAIMS, CheckResult, Claim, ClaimRun, claim_ids, get_claim, run_claim

__all__ = [name for name in dir() if not name.startswith("_")]
