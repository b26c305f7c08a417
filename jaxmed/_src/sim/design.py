"""``Design``: what a simulation design is (data only, no estimator configuration).

The registry of designs is ``jaxmed._src.sim.designs``; the long-term designs subclass
``Design`` in ``jaxmed._src.longterm.designs``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from jaxmed._src.sim.truth import ChainModel

__all__ = ["Design"]


@dataclasses.dataclass(frozen=True)
class Design:
    """A simulation design.

    Attributes:
      name: registry name.
      kind: "mediation" (or "longterm" for designs registered by that module).
      state_dim, mediator_dim: d_S and d_M.
      simulate: ``simulate(key, n, horizon) -> Trajectories`` under the behaviour policy.
      target_policy: π_e (the estimand's policy).
      control_policy: π_0 (always a0 = 0).
      behaviour_policy: π_b that generated the data.
      truth: ``truth() -> MediationTruth`` (cached or exact).
      default_horizon: T used by the paper's experiments.
      description: one line.
      rollout: ``rollout(key, n, horizon, policy=None, mediator_policy=None)`` under any
        direct-path policy (default π_b) and optional mediator-path policy (G uses
        ``control_policy`` and ``mediator_policy=target_policy``).
      nuisances: the true nuisance functions (unbatched; ``vmap`` over rows), e.g.
        ``mediator_mean(s, a)`` / ``mediator_prob(s, a)``, ``mediator_sd``,
        ``reward_mean(s, a, m)``, ``next_state_mean(s, a, m)`` / ``next_state_prob``,
        ``expected_reward(s, a_med, a)`` = E_{m~p_m(·|s,a_med)} r(s, a, m).
      chain_model: what the truth routes need (``jaxmed._src.sim.truth.ChainModel``).
      truth_settings: default simulation settings of the truth (chains, steps, burn-in, seed).
      support: what the variables take: ``"continuous"`` (default) or ``"binary"`` (binary
        S, A, M and R, the toy designs). A description of the data; the estimator families
        map it to their configuration (e.g. ``MediationConfig.binary()``).
    """

    name: str
    kind: str
    state_dim: int
    mediator_dim: int
    simulate: Callable
    target_policy: object
    control_policy: object
    behaviour_policy: object
    truth: Callable
    default_horizon: int
    description: str
    rollout: Callable | None = None
    nuisances: dict = dataclasses.field(default_factory=dict)
    chain_model: ChainModel | None = None
    truth_settings: dict = dataclasses.field(default_factory=dict)
    support: str = "continuous"
