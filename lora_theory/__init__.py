"""lora_theory: numerical checks, at scale, of the theory of LoRA initialisation (LoRA-One, HRP).

The public API.  Enable float64 before use for theory checks::

    import jax
    jax.config.update("jax_enable_x64", True)
    import lora_theory as lt

    batch = lt.simulate(lt.RunConfig(init="spectral", optimizer="precgd", lr=0.5), seeds=10)
    df = batch.to_dataframe()

Every name below is re-exported explicitly (``from .x import name as name``); the subpackages
:mod:`lora_theory.models`, :mod:`lora_theory.scaling`, :mod:`lora_theory.theory` and :mod:`lora_theory.claims` are
importable as attributes too (``lt.theory.precgd_rate``).
"""

__version__ = "0.1.0"

from . import claims as claims
from . import models as models
from . import scaling as scaling
from . import theory as theory
from .cache import enable_compilation_cache as enable_compilation_cache
from .claims import CLAIMS as CLAIMS
from .claims import CheckResult as CheckResult
from .claims import Claim as Claim
from .claims import ClaimRun as ClaimRun
from .claims import claim_ids as claim_ids
from .claims import get_claim as get_claim
from .claims import run_claim as run_claim
from .config import DTYPES as DTYPES
from .config import DYNAMIC_FIELDS as DYNAMIC_FIELDS
from .config import FIELD_SPECS as FIELD_SPECS
from .config import PROBLEM_FIELDS as PROBLEM_FIELDS
from .config import ConfigError as ConfigError
from .config import FieldSpec as FieldSpec
from .config import RunConfig as RunConfig
from .config import validate as validate
from .engine import TRACE_COUNTS as TRACE_COUNTS
from .engine import Batch as Batch
from .engine import Trajectory as Trajectory
from .engine import build as build
from .engine import logged_steps as logged_steps
from .engine import make_grid as make_grid
from .engine import no_metrics as no_metrics
from .engine import problem_key as problem_key
from .engine import seed_mesh as seed_mesh
from .engine import simulate as simulate
from .engine import split_run_key as split_run_key
from .engine import train as train
from .engine import train_batch as train_batch
from .executors import process_pool as process_pool
from .executors import submitit_executor as submitit_executor
from .inits import INITS as INITS
from .inits import VARIANTS as VARIANTS
from .inits import InitSpec as InitSpec
from .inits import LoRAInit as LoRAInit
from .inits import get_init as get_init
from .inits import initialise as initialise
from .inits import preheat as preheat
from .inits import register_init as register_init
from .metrics import align_A as align_A
from .metrics import align_B as align_B
from .metrics import balance as balance
from .metrics import fit_linear_rate as fit_linear_rate
from .metrics import lora_metrics as lora_metrics
from .metrics import product_singular_values as product_singular_values
from .metrics import sin_largest_angle as sin_largest_angle
from .metrics import stable_rank as stable_rank
from .metrics import top_left_subspace as top_left_subspace
from .metrics import top_right_subspace as top_right_subspace
from .models import MODELS as MODELS
from .models import ModelSpec as ModelSpec
from .models import make_problem as make_problem
from .models import register_model as register_model
from .models import spectrum as spectrum
from .models.linear import TARGET_SUBSPACES as TARGET_SUBSPACES
from .models.linear import LinearObjective as LinearObjective
from .models.linear import LinearProblem as LinearProblem
from .models.linear import LowRank as LowRank
from .models.linear import haar_orthonormal as haar_orthonormal
from .models.linear import make_linear_problem as make_linear_problem
from .models.linear import make_population_problem as make_population_problem
from .models.linear import sample_linear_data as sample_linear_data
from .models.linear import target_spectrum as target_spectrum
from .models.linear import tilt_subspace as tilt_subspace
from .models.linear import top_singular_subspaces as top_singular_subspaces
from .models.relu import ACTIVATIONS as ACTIVATIONS
from .models.relu import NonlinearObjective as NonlinearObjective
from .models.relu import NonlinearProblem as NonlinearProblem
from .models.relu import activate as activate
from .models.relu import activation_derivative as activation_derivative
from .models.relu import make_nonlinear_problem as make_nonlinear_problem
from .models.relu import sample_nonlinear_data as sample_nonlinear_data
from .optimizers import OPTIMIZERS as OPTIMIZERS
from .optimizers import TRAIN_FACTORS as TRAIN_FACTORS
from .optimizers import LoRAFactors as LoRAFactors
from .optimizers import OptimizerSpec as OptimizerSpec
from .optimizers import freeze_factors as freeze_factors
from .optimizers import gd as gd
from .optimizers import gd_update as gd_update
from .optimizers import get_optimizer as get_optimizer
from .optimizers import layerwise as layerwise
from .optimizers import maybe as maybe
from .optimizers import optimizer_from_config as optimizer_from_config
from .optimizers import precgd as precgd
from .optimizers import precgd_update as precgd_update
from .optimizers import precondition as precondition
from .optimizers import project_A as project_A
from .optimizers import register_optimizer as register_optimizer
from .optimizers import scale_by_lora_preconditioner as scale_by_lora_preconditioner
from .optimizers import scale_factors as scale_factors
from .optimizers import standard_promotion as standard_promotion
from .results import SCHEMA_VERSION as SCHEMA_VERSION
from .results import ResultsError as ResultsError
from .results import batch_to_dataframe as batch_to_dataframe
from .results import read_results as read_results
from .results import run_summary as run_summary
from .results import write_results as write_results
from .scaling import SCALINGS as SCALINGS
from .scaling import lora_scale as lora_scale
from .sweep import SweepError as SweepError
from .sweep import progress_bar as progress_bar
from .sweep import run_sweep as run_sweep
from .sweep import sweep_fingerprint as sweep_fingerprint
from .theory import relu_precgd_population_rate as relu_precgd_population_rate
from .theory import relu_precgd_rate_bound as relu_precgd_rate_bound
