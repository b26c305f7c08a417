"""``StateSlicePolicy``: a policy of the first coordinates of a longer (augmented) state.

Calendar-time estimators (``jaxmed._src.mediation.time_effects``) and the drift simulator
(``jaxmed._src.sim.drift``) append calendar time to the state; the policies of the estimand
stay functions of the original state only.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

__all__ = ["StateSlicePolicy"]


@dataclasses.dataclass(frozen=True)
class StateSlicePolicy:
    """``policy`` applied to ``state[:dim]``; the remaining coordinates are invisible to it.

    ``policy`` is a pytree child (its numeric parameters stay traced); ``dim`` is static.

    >>> from jaxmed._src.policies import LogisticPolicy
    >>> p = StateSlicePolicy(LogisticPolicy(jnp.array([0.7])), 1)
    >>> float(p.prob_one(jnp.array([0.0, 5.0])))
    0.5
    """

    policy: object
    dim: int = 1

    def prob_one(self, state):
        return self.policy.prob_one(jnp.asarray(state)[..., :self.dim])

    def prob(self, action, state):
        return self.policy.prob(action, jnp.asarray(state)[..., :self.dim])


jax.tree_util.register_dataclass(StateSlicePolicy, data_fields=["policy"], meta_fields=["dim"])
