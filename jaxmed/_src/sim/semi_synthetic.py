"""Semi-synthetic design (spec mediation.md §7.1) and its variance variant (§7.2).

d_S = 1, d_M = 2. Per step, with σ_M = σ_S = sigma (2 in the main experiment):

    A   ~ policy(·|S)                         (behaviour: Bernoulli(0.5))
    M1  = sqrt|S| + (A* − .5) + σ ε1
    M2  = −0.5 S + 0.5 (A* − .5) sqrt|S| + σ ε2
    R   = 1.5 [0.5 S + 0.5 sqrt|S| + M1 + M2 + 0.5 sqrt(|M1|+|M2|)(A − .5) + 0.5 (A − .5)] + σ ε_R
    S'  = R

A* is the action on the mediator path: A* = A for ordinary rollouts; for the mixed
policy G (spec §1.2) A = 0 on the direct path and A* ~ π_e(·|S) is an independent draw.
S_0 ~ N(0, 1). No burn-in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.policies import ConstantPolicy
from jaxmed._src.trajectories import Trajectories

__all__ = ["semi_synthetic_mediator_mean", "semi_synthetic_reward_mean", "simulate_semi_synthetic"]


def semi_synthetic_mediator_mean(state, action):
    """E[M | S = state, A = action], ``(2,)`` for a state ``(1,)``."""
    s = state[0]
    root = jnp.sqrt(jnp.abs(s))
    return jnp.stack([root + (action - 0.5), -0.5 * s + 0.5 * (action - 0.5) * root])


def semi_synthetic_reward_mean(state, action, mediator):
    """r(s, a, m) = E[R | S, A, M] (spec §7.1)."""
    s = state[0]
    m1, m2 = mediator[0], mediator[1]
    return 1.5 * (0.5 * s + 0.5 * jnp.sqrt(jnp.abs(s)) + m1 + m2
                  + 0.5 * jnp.sqrt(jnp.abs(m1) + jnp.abs(m2)) * (action - 0.5) + 0.5 * (action - 0.5))


def _trajectory(key, horizon, policy, mediator_policy, sigma):
    k0, kt = jax.random.split(key)
    s0 = jax.random.normal(k0, (1,))

    def step(s, k):
        ka, kam, km, kr = jax.random.split(k, 4)
        a = jax.random.bernoulli(ka, policy.prob_one(s)).astype(s.dtype)
        if mediator_policy is None:
            a_med = a
        else:
            a_med = jax.random.bernoulli(kam, mediator_policy.prob_one(s)).astype(s.dtype)
        m = semi_synthetic_mediator_mean(s, a_med) + sigma * jax.random.normal(km, (2,), s.dtype)
        r = semi_synthetic_reward_mean(s, a, m) + sigma * jax.random.normal(kr, (), s.dtype)
        s_next = r[None]
        return s_next, (s, a, m, r, s_next)

    _, (s, a, m, r, s_next) = jax.lax.scan(step, s0, jax.random.split(kt, horizon))
    return s, a, m, r, s_next


def simulate_semi_synthetic(key, n: int, horizon: int, *, sigma=2.0, policy=None,
                            mediator_policy=None) -> Trajectories:
    """Simulates N trajectories of the semi-synthetic design.

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
    keys = jax.random.split(key, n)
    s, a, m, r, s_next = jax.vmap(lambda k: _trajectory(k, horizon, policy, mediator_policy,
                                                        sigma))(keys)
    return Trajectories(s, a, m, r, s_next, jnp.ones_like(r))
