"""Generic rollout engine shared by every mediation simulator.

A design is described by two unbatched, key-first functions:

    initial_state(key, dtype) -> S_0 ``(dS,)``
    transition(key, state, action, mediator_action, params) -> (M, R, S')

``action`` is the action on the direct path (it enters the reward and the next
state); ``mediator_action`` is the action that generates the mediator. They coincide
for an ordinary policy; the mixed policy G of spec mediation.md §1.2 uses action = 0
and mediator_action ~ π_e(·|S), an independent draw.

Per step the key is split into (k_action, k_mediator_action, k_transition); actions
are drawn as ``uniform(k) < P(A = 1 | S)``, so the same key gives coupled draws
under different policies (common random numbers, used by the truths).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.trajectories import Trajectories

__all__ = ["draw_actions", "simulate_trajectory", "simulate_rollouts"]


def draw_actions(key, state, policy, mediator_policy):
    """Draws (A, A*) at one state: A ~ policy, A* = A or an independent draw from mediator_policy."""
    ka, kam = jax.random.split(key)
    dtype = state.dtype
    a = (jax.random.uniform(ka, (), dtype) < policy.prob_one(state)).astype(dtype)
    if mediator_policy is None:
        a_med = a
    else:
        a_med = (jax.random.uniform(kam, (), dtype) < mediator_policy.prob_one(state)).astype(dtype)
    return a, a_med


def simulate_trajectory(key, horizon: int, *, initial_state, transition, params, policy,
                        mediator_policy=None):
    """One trajectory of ``horizon`` steps; returns (S, A, M, R, S') stacked over time."""
    dtype = jnp.result_type(float)
    k0, kt = jax.random.split(key)
    s0 = initial_state(k0, dtype)

    def step(s, k):
        k_act, k_tr = jax.random.split(k)
        a, a_med = draw_actions(k_act, s, policy, mediator_policy)
        m, r, s_next = transition(k_tr, s, a, a_med, params)
        return s_next, (s, a, m, r, s_next)

    _, out = jax.lax.scan(step, s0, jax.random.split(kt, horizon))
    return out


def simulate_rollouts(key, n: int, horizon: int, *, initial_state, transition, params, policy,
                      mediator_policy=None) -> Trajectories:
    """N independent trajectories (keys ``split(key, n)``), vmapped; returns ``Trajectories``."""
    if int(n) < 1 or int(horizon) < 1:
        raise ValueError(f"n, horizon: expected positive integers, got n = {n}, horizon = {horizon}")
    keys = jax.random.split(key, n)
    s, a, m, r, s_next = jax.vmap(lambda k: simulate_trajectory(
        k, horizon, initial_state=initial_state, transition=transition, params=params,
        policy=policy, mediator_policy=mediator_policy))(keys)
    return Trajectories(s, a, m, r, s_next, jnp.ones_like(r))
