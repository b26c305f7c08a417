"""Differentiable estimation: Jacobians of mediation and long-term estimates, the most
influential trajectories, and policy optimisation of an estimated effect (see
docs/differentiable.md)."""

from jaxmed._src.differentiable.policy_optimisation import OBJECTIVES as OBJECTIVES
from jaxmed._src.differentiable.policy_optimisation import (
    PolicyOptimisationResult as PolicyOptimisationResult)
from jaxmed._src.differentiable.policy_optimisation import optimize_policy as optimize_policy
from jaxmed._src.differentiable.policy_optimisation import policy_objective as policy_objective
from jaxmed._src.differentiable.sensitivity import Influence as Influence
from jaxmed._src.differentiable.sensitivity import LongtermSensitivity as LongtermSensitivity
from jaxmed._src.differentiable.sensitivity import MediationSensitivity as MediationSensitivity
from jaxmed._src.differentiable.sensitivity import defined_cells as defined_cells
from jaxmed._src.differentiable.sensitivity import influential_trajectories as influential_trajectories
from jaxmed._src.differentiable.sensitivity import longterm_sensitivity as longterm_sensitivity
from jaxmed._src.differentiable.sensitivity import mediation_estimates as mediation_estimates
from jaxmed._src.differentiable.sensitivity import mediation_sensitivity as mediation_sensitivity

__all__ = ["OBJECTIVES", "PolicyOptimisationResult", "optimize_policy", "policy_objective",
           "Influence", "LongtermSensitivity", "MediationSensitivity", "defined_cells",
           "influential_trajectories", "longterm_sensitivity", "mediation_estimates",
           "mediation_sensitivity"]
