"""The theory's predictions, as plain functions of the problem's parameters (predictions only).

* :mod:`~lora_theory.theory.linear`: LoRA-One's linear-model theorems and Sec. 2's
  generalisation (claims 2-4, 8);
* :mod:`~lora_theory.theory.hrp`: HRP's asymmetric LoRA with a frozen factor (claim 6);
* :mod:`~lora_theory.theory.relu`: LoRA-One Thm 4.2 for the ReLU model, and Sec. 2's bound on
  its test loss (claims 7, 8).

The measurements that these predictions are compared with are in :mod:`lora_theory.claims`.
"""

from .hrp import classic_wise_init_rate as classic_wise_init_rate
from .hrp import eckart_young_loss as eckart_young_loss
from .hrp import frozen_orthonormal_factor_rate as frozen_orthonormal_factor_rate
from .hrp import hrp_loss_bound as hrp_loss_bound
from .hrp import projection_limit as projection_limit
from .hrp import random_frozen_factor_loss as random_frozen_factor_loss
from .linear import FINITE_SAMPLE_EXPONENT as FINITE_SAMPLE_EXPONENT
from .linear import GD_RATE_KAPPA_EXPONENT as GD_RATE_KAPPA_EXPONENT
from .linear import SAMPLE_SIZE_EXPONENT_LAW as SAMPLE_SIZE_EXPONENT_LAW
from .linear import SAMPLE_SIZE_EXPONENT_SUFFICIENT as SAMPLE_SIZE_EXPONENT_SUFFICIENT
from .linear import THM32_D_EXPONENT as THM32_D_EXPONENT
from .linear import THM32_THETA_EXPONENT as THM32_THETA_EXPONENT
from .linear import alignment_time_bound as alignment_time_bound
from .linear import escape_time_slope as escape_time_slope
from .linear import finite_sample_error_law as finite_sample_error_law
from .linear import gd_rate as gd_rate
from .linear import linear_test_loss as linear_test_loss
from .linear import power_iteration_alpha_exponent as power_iteration_alpha_exponent
from .linear import precgd_linearised_risk as precgd_linearised_risk
from .linear import precgd_rate as precgd_rate
from .linear import precgd_rate_linearised as precgd_rate_linearised
from .linear import sample_size_exponent as sample_size_exponent
from .linear import spectral_init_error_bound as spectral_init_error_bound
from .linear import thm32_alpha_exponent as thm32_alpha_exponent
from .linear import thm32_alpha_max as thm32_alpha_max
from .linear import thm32_theta as thm32_theta
from .linear import thm33_conclusion as thm33_conclusion
from .linear import thm33_premise_eps as thm33_premise_eps
from .relu import relu_precgd_population_rate as relu_precgd_population_rate
from .relu import relu_precgd_rate_bound as relu_precgd_rate_bound
from .relu import relu_test_loss_bound as relu_test_loss_bound

__all__ = [
    "alignment_time_bound",
    "escape_time_slope",
    "THM32_THETA_EXPONENT",
    "THM32_D_EXPONENT",
    "thm32_alpha_max",
    "thm32_theta",
    "thm32_alpha_exponent",
    "power_iteration_alpha_exponent",
    "spectral_init_error_bound",
    "finite_sample_error_law",
    "FINITE_SAMPLE_EXPONENT",
    "thm33_premise_eps",
    "thm33_conclusion",
    "sample_size_exponent",
    "SAMPLE_SIZE_EXPONENT_LAW",
    "SAMPLE_SIZE_EXPONENT_SUFFICIENT",
    "linear_test_loss",
    "precgd_rate",
    "precgd_rate_linearised",
    "precgd_linearised_risk",
    "gd_rate",
    "GD_RATE_KAPPA_EXPONENT",
    "frozen_orthonormal_factor_rate",
    "projection_limit",
    "random_frozen_factor_loss",
    "eckart_young_loss",
    "hrp_loss_bound",
    "classic_wise_init_rate",
    "relu_precgd_rate_bound",
    "relu_precgd_population_rate",
    "relu_test_loss_bound",
]
