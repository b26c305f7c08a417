"""Simulation designs (spec mediation.md §7), their true nuisances and ground truths."""

from jaxmed._src.sim.designs import Design as Design
from jaxmed._src.sim.designs import get_design as get_design
from jaxmed._src.sim.designs import list_designs as list_designs
from jaxmed._src.sim.designs import load_cached_truths as load_cached_truths
from jaxmed._src.sim.designs import policy_value as policy_value
from jaxmed._src.sim.designs import register_design as register_design
from jaxmed._src.sim.designs import truth as truth
from jaxmed._src.sim.drift import drift_truth as drift_truth
from jaxmed._src.sim.drift import simulate_semi_synthetic_drift as simulate_semi_synthetic_drift
from jaxmed._src.sim.multidim import simulate_multidim as simulate_multidim
from jaxmed._src.sim.quadrature import expected_sqrt_abs_sum as expected_sqrt_abs_sum
from jaxmed._src.sim.quadrature import gaussian_expectation as gaussian_expectation
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic as simulate_semi_synthetic
from jaxmed._src.sim.toy import simulate_toy as simulate_toy
from jaxmed._src.sim.truth import EFFECT_NAMES as EFFECT_NAMES
from jaxmed._src.sim.truth import ETA_NAMES as ETA_NAMES
from jaxmed._src.sim.truth import MediationTruth as MediationTruth
from jaxmed._src.sim.truth import simulated_truth as simulated_truth

__all__ = [
    "simulate_semi_synthetic_drift", "drift_truth",
    "Design", "get_design", "list_designs", "register_design", "truth", "policy_value",
    "load_cached_truths", "MediationTruth", "EFFECT_NAMES", "ETA_NAMES", "simulated_truth",
    "simulate_semi_synthetic", "simulate_multidim", "simulate_toy", "expected_sqrt_abs_sum",
    "gaussian_expectation",
]
