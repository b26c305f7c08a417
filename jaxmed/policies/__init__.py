"""Policies over a binary action (``from jaxmed.policies import LogisticPolicy``).

>>> from jaxmed.policies import parse_policy
>>> float(parse_policy("logistic:0.7", 1).prob_one([0.0]))
0.5
"""

from jaxmed._src.policies import CallablePolicy as CallablePolicy
from jaxmed._src.policies import ConstantPolicy as ConstantPolicy
from jaxmed._src.policies import LogisticPolicy as LogisticPolicy
from jaxmed._src.policies import always_control as always_control
from jaxmed._src.policies import always_treat as always_treat
from jaxmed._src.policies import as_policy as as_policy
from jaxmed._src.policies import behaviour_policy_semi_synthetic as behaviour_policy_semi_synthetic
from jaxmed._src.policies import bernoulli_policy as bernoulli_policy
from jaxmed._src.policies import control_policy as control_policy
from jaxmed._src.policies import multidim_target_policy as multidim_target_policy
from jaxmed._src.policies import multidim_truth_target_policy as multidim_truth_target_policy
from jaxmed._src.policies import parse_policy as parse_policy
from jaxmed._src.policies import semi_synthetic_target_policy as semi_synthetic_target_policy
from jaxmed._src.policies import toy_target_policy as toy_target_policy

__all__ = [
    "ConstantPolicy", "LogisticPolicy", "CallablePolicy", "always_control", "always_treat",
    "bernoulli_policy", "semi_synthetic_target_policy", "multidim_target_policy",
    "multidim_truth_target_policy", "toy_target_policy", "behaviour_policy_semi_synthetic",
    "control_policy", "parse_policy", "as_policy",
]
