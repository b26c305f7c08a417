"""Semi-synthetic design (spec mediation.md §7.1) and its variance variant (§7.2).

d_S = 1, d_M = 2. Per step, with σ_M = σ_S = sigma (2 in the main experiment;
1, 2, 3 in the variance-impact study):

    A   ~ policy(·|S)                         (behaviour: Bernoulli(0.5))
    M1  = sqrt|S| + (A* − .5) + σ ε1
    M2  = −0.5 S + 0.5 (A* − .5) sqrt|S| + σ ε2
    R   = 1.5 [0.5 S + 0.5 sqrt|S| + M1 + M2 + 0.5 sqrt(|M1|+|M2|)(A − .5) + 0.5 (A − .5)] + σ ε_R
    S'  = R

A* is the action on the mediator path: A* = A for ordinary rollouts; for the mixed
policy G (spec §1.2) A = 0 on the direct path and A* ~ π_e(·|S) is an independent draw.
S_0 ~ N(0, 1). No burn-in. Target policy expit(0.7 s), control a0 = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.policies import ConstantPolicy
from jaxmed._src.sim.quadrature import expected_sqrt_abs_sum
from jaxmed._src.sim.rollout import simulate_rollouts
from jaxmed._src.trajectories import Trajectories

__all__ = ["semi_synthetic_mediator_mean", "semi_synthetic_reward_mean",
           "semi_synthetic_next_state_mean", "semi_synthetic_expected_reward",
           "semi_synthetic_initial_state", "semi_synthetic_draw_noise",
           "semi_synthetic_transition", "simulate_semi_synthetic"]


def semi_synthetic_mediator_mean(state, action):
    """E[M | S = state, A* = action], ``(2,)`` for a state ``(1,)``; M ~ N(mean, σ² I)."""
    s = state[0]
    root = jnp.sqrt(jnp.abs(s))
    return jnp.stack([root + (action - 0.5), -0.5 * s + 0.5 * (action - 0.5) * root])


def semi_synthetic_reward_mean(state, action, mediator):
    """r(s, a, m) = E[R | S, A, M] (spec §7.1)."""
    s = state[0]
    m1, m2 = mediator[0], mediator[1]
    return 1.5 * (0.5 * s + 0.5 * jnp.sqrt(jnp.abs(s)) + m1 + m2
                  + 0.5 * jnp.sqrt(jnp.abs(m1) + jnp.abs(m2)) * (action - 0.5) + 0.5 * (action - 0.5))


def semi_synthetic_next_state_mean(state, action, mediator):
    """E[S' | S, A, M] ``(1,)``: S' = R, so this is r(s, a, m); S' ~ N(mean, σ²)."""
    return semi_synthetic_reward_mean(state, action, mediator)[None]


def semi_synthetic_expected_reward(state, mediator_action, action, sigma=2.0):
    """E_{M ~ p_m(·|s, a*)} r(s, a, M), without sampling.

    r is linear in M except for sqrt(|M1| + |M2|), whose expectation comes from
    ``expected_sqrt_abs_sum`` (accurate to ~1e−10).
    """
    s = state[0]
    mean = semi_synthetic_mediator_mean(state, mediator_action)
    root = expected_sqrt_abs_sum(mean, sigma)
    return 1.5 * (0.5 * s + 0.5 * jnp.sqrt(jnp.abs(s)) + mean[0] + mean[1]
                  + 0.5 * root * (action - 0.5) + 0.5 * (action - 0.5))


def semi_synthetic_initial_state(key, dtype=float):
    """S_0 ~ N(0, 1), ``(1,)``."""
    return jax.random.normal(key, (1,), dtype)


def semi_synthetic_draw_noise(key, horizon: int, dtype=float):
    """Standard normal step noises ``(horizon, 3)``: (ε1, ε2, ε_R)."""
    return jax.random.normal(key, (horizon, 3), dtype)


def semi_synthetic_transition(noise, state, action, mediator_action, sigma):
    """One step given the actions and noise ``(3,)``: returns (M ``(2,)``, R, S' ``(1,)``)."""
    m = semi_synthetic_mediator_mean(state, mediator_action) + sigma * noise[:2]
    r = semi_synthetic_reward_mean(state, action, m) + sigma * noise[2]
    return m, r, r[None]


def simulate_semi_synthetic(key, n: int, horizon: int, *, sigma=2.0, policy=None,
                            mediator_policy=None) -> Trajectories:
    """Simulates N trajectories of the semi-synthetic design.

    Computes in the default float type (float64 when x64 is enabled, as in jaxmed's
    entry points and tests).

    Args:
      key: a ``jax.random`` key.
      n: number of trajectories (static).
      horizon: T, steps per trajectory (static).
      sigma: σ_M = σ_S (2.0 main experiment; 1, 2, 3 for variance impact); traced.
      policy: action policy on the direct path (default behaviour Bernoulli(0.5)).
      mediator_policy: if given, the mediator is generated from an independent draw
        A* ~ mediator_policy (the mixed policy G uses policy = always-0 and
        mediator_policy = π_e).

    Returns:
      ``Trajectories`` with state ``(n, T, 1)``, mediator ``(n, T, 2)``.

    >>> import jax
    >>> d = simulate_semi_synthetic(jax.random.key(0), 3, 5)
    >>> d.state.shape, d.mediator.shape
    ((3, 5, 1), (3, 5, 2))
    """
    policy = ConstantPolicy(0.5) if policy is None else policy
    return simulate_rollouts(key, n, horizon, initial_state=semi_synthetic_initial_state,
                             draw_noise=semi_synthetic_draw_noise, transition=semi_synthetic_transition, params=sigma, policy=policy,
                             mediator_policy=mediator_policy)
