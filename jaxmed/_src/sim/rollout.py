"""Generic rollout engine shared by every mediation simulator.

A design is described by two unbatched, key-first functions:

    initial_state(key, dtype) -> S_0 ``(dS,)``
    draw_noise(key, horizon, dtype) -> ``(horizon, k)`` the step noises of one trajectory
    transition(noise, state, action, mediator_action, params) -> (M, R, S')

``transition`` is deterministic given its noise row, so all randomness of a trajectory
is drawn in bulk (much faster than splitting a key per step).

``action`` is the action on the direct path (it enters the reward and the next
state); ``mediator_action`` is the action that generates the mediator. They coincide
for an ordinary policy; the mixed policy G of spec mediation.md §1.2 uses action = 0
and mediator_action ~ π_e(·|S), an independent draw.

A trajectory's key is split into (k_initial, k_action, k_noise); actions are drawn as
``U < P(A = 1 | S)`` from uniforms ``(horizon, 2)`` (column 0 for the direct action,
column 1 for an independent mediator action), so the same key gives coupled draws
under different policies (common random numbers, used by the truths).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxmed._src.policies import as_policy
from jaxmed._src.trajectories import Trajectories

__all__ = ["draw_actions", "trajectory_randomness", "simulate_trajectory", "simulate_rollouts"]


def draw_actions(u, state, policy, mediator_policy):
    """(A, A*) at one state from uniforms ``u`` ``(2,)``: A = 1{u0 < policy(S)}, A* = A or 1{u1 < mediator_policy(S)}."""
    dtype = state.dtype
    a = (u[0] < policy.prob_one(state)).astype(dtype)
    if mediator_policy is None:
        a_med = a
    else:
        a_med = (u[1] < mediator_policy.prob_one(state)).astype(dtype)
    return a, a_med


def trajectory_randomness(key, horizon: int, initial_state, draw_noise):
    """(S_0, action uniforms ``(horizon, 2)``, step noises ``(horizon, k)``) of one trajectory."""
    dtype = jnp.result_type(float)
    k0, ku, kn = jax.random.split(key, 3)
    return (initial_state(k0, dtype), jax.random.uniform(ku, (horizon, 2), dtype),
            draw_noise(kn, horizon, dtype))


def simulate_trajectory(key, horizon: int, *, initial_state, draw_noise, transition, params,
                        policy, mediator_policy=None):
    """One trajectory of ``horizon`` steps; returns (S, A, M, R, S') stacked over time."""
    s0, u, noise = trajectory_randomness(key, horizon, initial_state, draw_noise)

    def step(s, xs):
        a, a_med = draw_actions(xs[0], s, policy, mediator_policy)
        m, r, s_next = transition(xs[1], s, a, a_med, params)
        return s_next, (s, a, m, r, s_next)

    _, out = jax.lax.scan(step, s0, (u, noise))
    return out


def simulate_rollouts(key, n: int, horizon: int, *, initial_state, draw_noise, transition, params,
                      policy, mediator_policy=None) -> Trajectories:
    """N independent trajectories (keys ``split(key, n)``), vmapped; returns ``Trajectories``.

    Compiled once per (n, horizon, design functions, policy structure): the design
    functions are static, ``params`` and the policies' parameters are traced.
    """
    if int(n) < 1 or int(horizon) < 1:
        raise ValueError(f"n, horizon: expected positive integers, got n = {n}, horizon = {horizon}")
    if isinstance(policy, str) or isinstance(mediator_policy, str):  # "logistic:0.7" spelling
        d_s = jax.eval_shape(lambda k: initial_state(k, jnp.result_type(float)),
                             jax.random.key(0)).shape[-1]
        policy = as_policy(policy, d_s)
        mediator_policy = as_policy(mediator_policy, d_s)
    return _simulate_rollouts(key, params, policy, mediator_policy, n=int(n), horizon=int(horizon),
                              initial_state=initial_state, draw_noise=draw_noise,
                              transition=transition)


@functools.partial(jax.jit, static_argnames=("n", "horizon", "initial_state", "draw_noise",
                                             "transition"))
def _simulate_rollouts(key, params, policy, mediator_policy, *, n, horizon, initial_state,
                       draw_noise, transition):
    keys = jax.random.split(key, n)
    s, a, m, r, s_next = jax.vmap(lambda k: simulate_trajectory(
        k, horizon, initial_state=initial_state, draw_noise=draw_noise, transition=transition,
        params=params, policy=policy, mediator_policy=mediator_policy))(keys)
    return Trajectories(s, a, m, r, s_next, jnp.ones_like(r))
