"""Long-term treatment effects from short A/B tests (Tang et al.; spec longterm.md).

Primary estimand: the seed's unnormalised discounted effect
Δ = E[Σ_t γ^t R_t | D=1] − E[Σ_t γ^t R_t | D=0]; secondary: Δ_γ = (1−γ)Δ and the
average-reward effect ρ_1 − ρ_0.
"""

from jaxmed._src.longterm.api import EFFECTS as EFFECTS
from jaxmed._src.longterm.api import METHODS as METHODS
from jaxmed._src.longterm.api import STATS_METHODS as STATS_METHODS
from jaxmed._src.longterm.api import effects_from_stats as effects_from_stats
from jaxmed._src.longterm.api import LongtermDiagnostics as LongtermDiagnostics
from jaxmed._src.longterm.api import LongtermFit as LongtermFit
from jaxmed._src.longterm.api import LongtermResult as LongtermResult
from jaxmed._src.longterm.api import estimate_effects as estimate_effects
from jaxmed._src.longterm.api import longterm_effect as longterm_effect
from jaxmed._src.longterm.api import longterm_estimator_spec as longterm_estimator_spec
from jaxmed._src.longterm.baselines import BaselineFit as BaselineFit
from jaxmed._src.longterm.baselines import SurrogateModel as SurrogateModel
from jaxmed._src.longterm.baselines import detrended_stationary as detrended_stationary
from jaxmed._src.longterm.baselines import fit_surrogate_index as fit_surrogate_index
from jaxmed._src.longterm.baselines import naive_last as naive_last
from jaxmed._src.longterm.baselines import naive_scaling as naive_scaling
from jaxmed._src.longterm.baselines import naive_window as naive_window
from jaxmed._src.longterm.baselines import sieve_lstd as sieve_lstd
from jaxmed._src.longterm.baselines import stationary_rl as stationary_rl
from jaxmed._src.longterm.baselines import surrogate_index as surrogate_index
from jaxmed._src.longterm.bootstrap import BootstrapResult as BootstrapResult
from jaxmed._src.longterm.bootstrap import bootstrap as bootstrap
from jaxmed._src.longterm.bootstrap import bootstrap_weights as bootstrap_weights
from jaxmed._src.longterm.hash_bootstrap import hash_poisson_weights as hash_poisson_weights
from jaxmed._src.longterm.n2 import N2Fit as N2Fit
from jaxmed._src.longterm.n2 import n2_dynamics as n2_dynamics
from jaxmed._src.longterm.n2 import n2_estimate as n2_estimate
from jaxmed._src.longterm.nonstationary import BZ_SOLVERS as BZ_SOLVERS
from jaxmed._src.longterm.nonstationary import NonstationaryFit as NonstationaryFit
from jaxmed._src.longterm.nonstationary import nonstationary_estimate as nonstationary_estimate
from jaxmed._src.longterm.nonstationary import nonstationary_objective as nonstationary_objective
from jaxmed._src.longterm.nonstationary import solve_bz as solve_bz
from jaxmed._src.longterm.nonstationary import step_m as step_m
from jaxmed._src.longterm.nonstationary import within_dynamics as within_dynamics
from jaxmed._src.longterm.panel import Panel as Panel
from jaxmed._src.longterm.panel import panel_from_arrays as panel_from_arrays
from jaxmed._src.longterm.panel import panel_from_dataframe as panel_from_dataframe
from jaxmed._src.longterm.panel import panel_to_dataframe as panel_to_dataframe
from jaxmed._src.longterm.panel import validate_panel as validate_panel
from jaxmed._src.longterm.reward import LinearReward as LinearReward
from jaxmed._src.longterm.reward import fit_reward as fit_reward
from jaxmed._src.longterm.simulate import LongtermParams as LongtermParams
from jaxmed._src.longterm.simulate import design_params as design_params
from jaxmed._src.longterm.simulate import random_exogenous as random_exogenous
from jaxmed._src.longterm.simulate import random_stable_params as random_stable_params
from jaxmed._src.longterm.simulate import s2_exogenous as s2_exogenous
from jaxmed._src.longterm.simulate import simulate_longterm as simulate_longterm
from jaxmed._src.longterm.simulate import simulate_surrogate_data as simulate_surrogate_data
from jaxmed._src.longterm.simulate import steady_state_cov as steady_state_cov
from jaxmed._src.longterm.stationary import StationaryFit as StationaryFit
from jaxmed._src.longterm.stationary import fit_linear_dynamics as fit_linear_dynamics
from jaxmed._src.longterm.stationary import lstd_values as lstd_values
from jaxmed._src.longterm.stationary import stationary_estimate as stationary_estimate
from jaxmed._src.longterm.stats import PanelStats as PanelStats
from jaxmed._src.longterm.stats import panel_stats as panel_stats
from jaxmed._src.longterm.stats import panel_stats_many as panel_stats_many
from jaxmed._src.longterm.streaming import StreamedStats as StreamedStats
from jaxmed._src.longterm.streaming import stream_stats as stream_stats
from jaxmed._src.longterm.truth import longterm_truth as longterm_truth
from jaxmed._src.longterm.truth import longterm_truth_recursion as longterm_truth_recursion
from jaxmed._src.longterm.values import EffectValues as EffectValues
from jaxmed._src.longterm.values import longterm_values as longterm_values
from jaxmed._src.longterm.values import mean_path as mean_path

__all__ = [
    "EFFECTS", "METHODS", "LongtermDiagnostics", "LongtermFit", "LongtermResult", "estimate_effects",
    "longterm_effect", "longterm_estimator_spec", "BaselineFit", "SurrogateModel",
    "detrended_stationary", "fit_surrogate_index", "naive_last", "naive_scaling", "naive_window",
    "sieve_lstd", "stationary_rl", "surrogate_index", "BootstrapResult", "bootstrap",
    "bootstrap_weights", "NonstationaryFit", "nonstationary_estimate", "nonstationary_objective",
    "solve_bz", "step_m", "within_dynamics", "Panel", "panel_from_arrays", "panel_from_dataframe",
    "panel_to_dataframe", "validate_panel", "LinearReward", "fit_reward", "LongtermParams",
    "design_params", "random_exogenous", "random_stable_params", "s2_exogenous", "simulate_longterm",
    "simulate_surrogate_data", "steady_state_cov", "StationaryFit", "fit_linear_dynamics",
    "lstd_values", "stationary_estimate", "PanelStats", "panel_stats", "longterm_truth",
    "longterm_truth_recursion", "EffectValues", "longterm_values", "mean_path",
    "STATS_METHODS", "effects_from_stats", "hash_poisson_weights", "N2Fit", "n2_dynamics", "n2_estimate",
    "BZ_SOLVERS", "panel_stats_many", "StreamedStats", "stream_stats",
]
