"""Toy designs with binary S, A, M (spec mediation.md §7.4 Toy I, §7.5 Toy II).

Toy I (= Toy II "with state"):

    S_0 ~ Bern(0.5)
    A   ~ policy(·|S)                     (behaviour: Bern(expit(1 − 2S)))
    M   ~ Bern(expit(1 − 1.5 S + 2.5 A*))
    R   = 10 · Bern(expit(1 + 2 S − A − 2.5 M))
    S'  ~ Bern(expit(0.5 + 3 S − 2.5 A − 0.5 M))

Toy II "iid" changes only the transition: S' ~ Bern(0.2) independently of the past.
A* is the mediator-path action (= A except under the mixed policy G).
Target policy expit(1.5 + s); control a0 = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.policies import LogisticPolicy
from jaxmed._src.sim.rollout import simulate_rollouts
from jaxmed._src.trajectories import Trajectories

__all__ = ["toy_behaviour_policy", "toy_mediator_prob", "toy_reward_prob", "toy_reward_mean",
           "toy_next_state_prob", "toy_expected_reward", "toy_next_state_prob_integrated", "toy_initial_state",
           "toy_draw_noise", "toy_transition",
           "simulate_toy", "TOY_IID_NEXT_STATE_PROB"]

TOY_IID_NEXT_STATE_PROB = 0.2


def toy_behaviour_policy() -> LogisticPolicy:
    """Behaviour policy of the toy designs: P(A = 1 | s) = expit(1 − 2 s)."""
    return LogisticPolicy(jnp.asarray([-2.0]), 1.0)


def toy_mediator_prob(state, action):
    """P(M = 1 | S = state, A* = action) = expit(1 − 1.5 s + 2.5 a)."""
    return jax.nn.sigmoid(1.0 - 1.5 * state[0] + 2.5 * action)


def toy_reward_prob(state, action, mediator):
    """P(R = 10 | S, A, M) = expit(1 + 2 s − a − 2.5 m)."""
    return jax.nn.sigmoid(1.0 + 2.0 * state[0] - action - 2.5 * mediator[0])


def toy_reward_mean(state, action, mediator):
    """r(s, a, m) = 10 · expit(1 + 2 s − a − 2.5 m)."""
    return 10.0 * toy_reward_prob(state, action, mediator)


def toy_next_state_prob(state, action, mediator, iid: bool = False):
    """P(S' = 1 | S, A, M): expit(0.5 + 3 s − 2.5 a − 0.5 m), or 0.2 for Toy II iid."""
    if iid:
        return jnp.asarray(TOY_IID_NEXT_STATE_PROB, dtype=jnp.result_type(state[0], float))
    return jax.nn.sigmoid(0.5 + 3.0 * state[0] - 2.5 * action - 0.5 * mediator[0])


def toy_expected_reward(state, mediator_action, action):
    """E_{M ~ p_m(·|s, a*)} r(s, a, M), an exact sum over m ∈ {0, 1}."""
    p = toy_mediator_prob(state, mediator_action)
    one = jnp.ones((1,), dtype=jnp.result_type(state, float))
    return (p * toy_reward_mean(state, action, one)
            + (1.0 - p) * toy_reward_mean(state, action, 0.0 * one))


def toy_initial_state(key, dtype=float):
    """S_0 ~ Bern(0.5), ``(1,)``."""
    return jax.random.bernoulli(key, 0.5, (1,)).astype(dtype)


def toy_draw_noise(key, horizon: int, dtype=float):
    """Standard uniform step noises ``(horizon, 3)`` for (M, R, S')."""
    return jax.random.uniform(key, (horizon, 3), dtype)


def toy_transition(noise, state, action, mediator_action, iid):
    """One step given the actions and uniforms ``(3,)``: returns (M ``(1,)``, R, S' ``(1,)``).

    ``iid`` (static) selects the Toy II iid transition.
    """
    dtype = state.dtype
    m = (noise[0:1] < toy_mediator_prob(state, mediator_action)).astype(dtype)
    r = 10.0 * (noise[1] < toy_reward_prob(state, action, m)).astype(dtype)
    s_next = (noise[2:3] < toy_next_state_prob(state, action, m, iid)).astype(dtype)
    return m, r, s_next


def _transition_with_state(noise, state, action, mediator_action, params):
    return toy_transition(noise, state, action, mediator_action, False)


def _transition_iid(noise, state, action, mediator_action, params):
    return toy_transition(noise, state, action, mediator_action, True)


def toy_next_state_prob_integrated(state, mediator_action, action, iid: bool = False):
    """P(S' = 1 | s) with M ~ p_m(·|s, a*) summed out and direct action a (exact)."""
    p = toy_mediator_prob(state, mediator_action)
    one = jnp.ones((1,), dtype=jnp.result_type(state, float))
    return (p * toy_next_state_prob(state, action, one, iid)
            + (1.0 - p) * toy_next_state_prob(state, action, 0.0 * one, iid))


def simulate_toy(key, n: int, horizon: int, *, iid: bool = False, policy=None,
                 mediator_policy=None) -> Trajectories:
    """Simulates N trajectories of Toy I / Toy II with state (``iid=False``) or Toy II iid.

    Args:
      key: a ``jax.random`` key.
      n: number of trajectories (static).
      horizon: T (static).
      iid: Toy II iid transition S' ~ Bern(0.2) (static).
      policy: direct-path policy (default the toy behaviour policy expit(1 − 2 s)).
      mediator_policy: optional mediator-path policy (mixed policy G).

    Returns:
      ``Trajectories`` with state ``(n, T, 1)`` in {0, 1}, mediator ``(n, T, 1)`` in
      {0, 1}, reward in {0, 10}.

    >>> import jax
    >>> d = simulate_toy(jax.random.key(0), 2, 3)
    >>> set(d.reward.ravel().tolist()) <= {0.0, 10.0}
    True
    """
    policy = toy_behaviour_policy() if policy is None else policy
    transition = _transition_iid if iid else _transition_with_state
    return simulate_rollouts(key, n, horizon, initial_state=toy_initial_state,
                             draw_noise=toy_draw_noise, transition=transition, params=None,
                             policy=policy, mediator_policy=mediator_policy)
