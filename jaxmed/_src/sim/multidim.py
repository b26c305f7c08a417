"""Multidimensional design (spec mediation.md §7.3): d_S = d_M = 2, σ_M = σ_S = σ = 1.

With s̄ = mean_j S_j and q = mean_j sqrt|S_j|:

    A    ~ policy(·|S)                       (behaviour: Bernoulli(0.5))
    M1   = q + (A* − .5) + σ ε1
    M2   = −0.5 s̄ + 0.5 (A* − .5) q + σ ε2
    R    = 0.75 [s̄ + q + (1 + sqrt(|M1|+|M2|))(A − .5)] + 1.5 (M1 + M2) + σ ε_R
    S'_j = 0.75 [S_j + sqrt|S_j| + (1 + sqrt(|M1|+|M2|))(A − .5)] + 1.5 (M1 + M2) + σ η_j

S_0 ~ N(0, I_2). A* is the mediator-path action (A* = A except under the mixed policy
G). Target policy (estimand): expit(0.7 · mean_j s_j); the original's truth rollouts
used expit(0.7 · Σ_j s_j) (bug B6). Control a0 = 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.policies import ConstantPolicy
from jaxmed._src.sim.quadrature import expected_sqrt_abs_sum
from jaxmed._src.sim.rollout import simulate_rollouts
from jaxmed._src.trajectories import Trajectories

__all__ = ["multidim_mediator_mean", "multidim_reward_mean", "multidim_next_state_mean",
           "multidim_expected_reward", "multidim_initial_state", "multidim_draw_noise", "multidim_transition",
           "simulate_multidim"]


def multidim_mediator_mean(state, action):
    """E[M | S = state, A* = action] ``(2,)``; M ~ N(mean, σ² I)."""
    sbar = jnp.mean(state)
    q = jnp.mean(jnp.sqrt(jnp.abs(state)))
    return jnp.stack([q + (action - 0.5), -0.5 * sbar + 0.5 * (action - 0.5) * q])


def multidim_reward_mean(state, action, mediator):
    """r(s, a, m) = E[R | S, A, M] (spec §7.3)."""
    sbar = jnp.mean(state)
    q = jnp.mean(jnp.sqrt(jnp.abs(state)))
    root = jnp.sqrt(jnp.abs(mediator[0]) + jnp.abs(mediator[1]))
    return 0.75 * (sbar + q + (1.0 + root) * (action - 0.5)) + 1.5 * (mediator[0] + mediator[1])


def multidim_next_state_mean(state, action, mediator):
    """E[S' | S, A, M] ``(2,)``; S' ~ N(mean, σ² I)."""
    root = jnp.sqrt(jnp.abs(mediator[0]) + jnp.abs(mediator[1]))
    return (0.75 * (state + jnp.sqrt(jnp.abs(state)) + (1.0 + root) * (action - 0.5))
            + 1.5 * (mediator[0] + mediator[1]))


def multidim_expected_reward(state, mediator_action, action, sigma=1.0):
    """E_{M ~ p_m(·|s, a*)} r(s, a, M), without sampling (``expected_sqrt_abs_sum``)."""
    mean = multidim_mediator_mean(state, mediator_action)
    root = expected_sqrt_abs_sum(mean, sigma)
    sbar = jnp.mean(state)
    q = jnp.mean(jnp.sqrt(jnp.abs(state)))
    return 0.75 * (sbar + q + (1.0 + root) * (action - 0.5)) + 1.5 * (mean[0] + mean[1])


def multidim_initial_state(key, dtype=float):
    """S_0 ~ N(0, I_2)."""
    return jax.random.normal(key, (2,), dtype)


def multidim_draw_noise(key, horizon: int, dtype=float):
    """Standard normal step noises ``(horizon, 5)``: (ε1, ε2, ε_R, η1, η2)."""
    return jax.random.normal(key, (horizon, 5), dtype)


def multidim_transition(noise, state, action, mediator_action, sigma):
    """One step given the actions and noise ``(5,)``: returns (M ``(2,)``, R, S' ``(2,)``)."""
    m = multidim_mediator_mean(state, mediator_action) + sigma * noise[:2]
    r = multidim_reward_mean(state, action, m) + sigma * noise[2]
    s_next = multidim_next_state_mean(state, action, m) + sigma * noise[3:5]
    return m, r, s_next


def simulate_multidim(key, n: int, horizon: int, *, sigma=1.0, policy=None,
                      mediator_policy=None) -> Trajectories:
    """Simulates N trajectories of the multidimensional design (spec §7.3).

    Args:
      key: a ``jax.random`` key.
      n: number of trajectories (static).
      horizon: T (static).
      sigma: σ_M = σ_S (1.0 in the paper); traced.
      policy: direct-path policy (default Bernoulli(0.5)).
      mediator_policy: optional mediator-path policy (mixed policy G).

    Returns:
      ``Trajectories`` with state ``(n, T, 2)``, mediator ``(n, T, 2)``.

    >>> import jax
    >>> simulate_multidim(jax.random.key(0), 3, 4).state.shape
    (3, 4, 2)
    """
    policy = ConstantPolicy(0.5) if policy is None else policy
    return simulate_rollouts(key, n, horizon, initial_state=multidim_initial_state,
                             draw_noise=multidim_draw_noise, transition=multidim_transition, params=sigma, policy=policy,
                             mediator_policy=mediator_policy)
