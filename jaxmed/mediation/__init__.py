"""Dynamic mediation analysis in an MDP (Ge et al., ICML 2023; spec mediation.md).

The one call is :func:`mediation_effects`; :func:`mediation_estimator_spec` plugs it into the
study engine. The building blocks (nuisance models, Q-function LSTD, state ratios, estimator
rows, cluster SEs) are exported for users who assemble their own pipeline.
"""

from jaxmed._src.mediation.basis import deboor_fixed_span as deboor_fixed_span
from jaxmed._src.mediation.basis import fit_state_basis as fit_state_basis
from jaxmed._src.mediation.basis import state_basis as state_basis
from jaxmed._src.mediation.binary import bernoulli_expectation as bernoulli_expectation
from jaxmed._src.mediation.binary import binary_indicator_features as binary_indicator_features
from jaxmed._src.mediation.config import MediationConfig as MediationConfig
from jaxmed._src.mediation.effects import EFFECTS as EFFECTS
from jaxmed._src.mediation.effects import ESTIMATORS as ESTIMATORS
from jaxmed._src.mediation.effects import MediationResult as MediationResult
from jaxmed._src.mediation.effects import mediation_core as mediation_core
from jaxmed._src.mediation.effects import mediation_effects as mediation_effects
from jaxmed._src.mediation.effects import mediation_estimator_spec as mediation_estimator_spec
from jaxmed._src.mediation.estimators import estimator_rows as estimator_rows
from jaxmed._src.mediation.estimators import row_importance_weights as row_importance_weights
from jaxmed._src.mediation.gaussian_expectation import gaussian_expectation as gaussian_expectation
from jaxmed._src.mediation.influence import ij_influence as ij_influence
from jaxmed._src.mediation.influence import influence_se as influence_se
from jaxmed._src.mediation.gaussian_expectation import gaussian_raw_moments as gaussian_raw_moments
from jaxmed._src.mediation.nuisance import NuisanceModels as NuisanceModels
from jaxmed._src.mediation.nuisance import NuisancePredictions as NuisancePredictions
from jaxmed._src.mediation.nuisance import default_nuisance_models as default_nuisance_models
from jaxmed._src.mediation.nuisance import fit_nuisances as fit_nuisances
from jaxmed._src.mediation.nuisance import (
    nuisance_predictions_from_functions as nuisance_predictions_from_functions)
from jaxmed._src.mediation.nuisance_models import GaussianMediatorModel as GaussianMediatorModel
from jaxmed._src.mediation.nuisance_models import LogisticBehaviourModel as LogisticBehaviourModel
from jaxmed._src.mediation.nuisance_models import PolynomialRewardModel as PolynomialRewardModel
from jaxmed._src.mediation.pipeline import PipelineDiagnostics as PipelineDiagnostics
from jaxmed._src.mediation.pipeline import estimate_pipeline as estimate_pipeline
from jaxmed._src.mediation.q_function import fit_q_functions as fit_q_functions
from jaxmed._src.mediation.q_function import lstd_solve as lstd_solve
from jaxmed._src.mediation.q_function import q_temporal_differences as q_temporal_differences
from jaxmed._src.mediation.state_ratio import fit_state_ratio as fit_state_ratio
from jaxmed._src.mediation.tabular_models import TabularBehaviourModel as TabularBehaviourModel
from jaxmed._src.mediation.tabular_models import TabularMediatorModel as TabularMediatorModel
from jaxmed._src.mediation.tabular_models import TabularRewardModel as TabularRewardModel
from jaxmed._src.mediation.time_effects import mediation_effects_time as mediation_effects_time
from jaxmed._src.mediation.time_effects import (
    time_effects_estimator_spec as time_effects_estimator_spec)
from jaxmed._src.mediation.uncertainty import bootstrap_counts as bootstrap_counts
from jaxmed._src.status import MediationStatus as MediationStatus
from jaxmed._src.mediation.uncertainty import cluster_influence as cluster_influence
from jaxmed._src.mediation.uncertainty import cluster_se as cluster_se

__all__ = [
    "mediation_effects_time", "time_effects_estimator_spec",
    "MediationConfig", "MediationResult", "mediation_effects", "mediation_core",
    "mediation_estimator_spec", "ESTIMATORS", "EFFECTS", "NuisancePredictions", "NuisanceModels",
    "default_nuisance_models", "fit_nuisances", "nuisance_predictions_from_functions",
    "LogisticBehaviourModel", "GaussianMediatorModel", "PolynomialRewardModel",
    "PipelineDiagnostics", "estimate_pipeline", "fit_q_functions", "lstd_solve", "fit_state_ratio",
    "estimator_rows", "row_importance_weights", "gaussian_expectation", "gaussian_raw_moments",
    "state_basis", "fit_state_basis", "deboor_fixed_span", "cluster_influence", "cluster_se",
    "bootstrap_counts", "TabularBehaviourModel", "TabularMediatorModel", "TabularRewardModel",
    "q_temporal_differences", "bernoulli_expectation", "binary_indicator_features",
    "ij_influence", "influence_se", "MediationStatus",
]
