"""Closed-form long-term values of a linear arm (spec longterm.md §3.4, §4.2).

For arm i with E[s_{t+1} | s_t] = M_i s_t + b_i, reward r_t = θᵀ s_t + c and initial
mean E[s_0] = m_0 (common to both arms by randomisation):

* discounted value (the seed's, unnormalised, §2.1):
      V_i = Σ_{t≥0} γ^t E_i[r_t] = θᵀ (I − γM_i)^{-1} (m_0 + γ/(1−γ) b_i) + c/(1−γ)
  and the effect Δ = V_1 − V_0 (jaxmed's primary output);
* normalised value Δ_γ = (1−γ) Δ (spec §2 [J]);
* long-run average reward ρ_i = θᵀ (I − M_i)^{-1} b_i + c, effect ρ_1 − ρ_0.

Under the nonstationary model N1 (o_t = s_t + z_t with z shared by both arms) the
exogenous path cancels in every difference, so the same formulas with the endogenous
(M_i, b_i) and m_0 = E[o_0] − z_0 give the effects (§4.2). Solves, never inverses.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["EffectValues", "longterm_values", "mean_path", "spectral_radius", "STATUS_UNSTABLE",
           "STATUS_NONFINITE", "STATUS_NAMES", "SR_LIMIT", "value_status"]

STATUS_UNSTABLE = 1     # some sr(M_i) >= 1 - 1e-6: no stationary mean, values meaningless
STATUS_NONFINITE = 2    # a non-finite estimate (singular solve)
STATUS_NAMES = {0: "ok", STATUS_UNSTABLE: "unstable (spectral radius >= 1 - 1e-6)",
                STATUS_NONFINITE: "non-finite estimate (singular system)"}
SR_LIMIT = 1.0 - 1e-6


class EffectValues(NamedTuple):
    """Effects and per-arm values.

    Attributes:
      delta: Δ = V_1 − V_0, unnormalised discounted effect (primary; the seed's §2.1).
      delta_gamma: Δ_γ = (1−γ) Δ, the normalised discounted effect.
      avg_reward: ρ_1 − ρ_0, the long-run average-reward effect.
      value: ``(2,)`` V_i (unnormalised discounted value of each arm).
      rho: ``(2,)`` ρ_i (long-run average reward of each arm).
    """

    delta: object
    delta_gamma: object
    avg_reward: object
    value: object
    rho: object


def longterm_values(M, b, theta, c, m0, gamma) -> EffectValues:
    """Closed-form values of both arms.

    Args:
      M: ``(2, d, d)`` transition matrices M_0, M_1.
      b: ``(2, d)`` intercepts b_0, b_1.
      theta: ``(d,)`` reward coefficients; c: scalar reward constant.
      m0: ``(d,)`` initial mean E[s_0].
      gamma: discount factor in (0, 1).

    Returns:
      ``EffectValues``.

    >>> import jax.numpy as jnp
    >>> M = jnp.array([[[0.5]], [[0.5]]]); b = jnp.array([[1.0], [2.0]])
    >>> v = longterm_values(M, b, jnp.array([1.0]), 0.0, jnp.array([2.0]), 0.5)
    >>> round(float(v.avg_reward), 5), round(float(v.delta), 5)
    (2.0, 1.33333)
    """
    M, b = jnp.asarray(M), jnp.asarray(b)
    d = M.shape[-1]
    eye = jnp.eye(d, dtype=M.dtype)
    gamma = jnp.asarray(gamma, M.dtype)

    def arm(Mi, bi):
        rhs = jnp.stack([m0, bi], axis=-1)
        sol = jnp.linalg.solve(eye - gamma * Mi, rhs)
        value = theta @ (sol[:, 0] + gamma / (1.0 - gamma) * sol[:, 1]) + c / (1.0 - gamma)
        rho = theta @ jnp.linalg.solve(eye - Mi, bi) + c
        return value, rho

    value, rho = jax.vmap(arm)(M, b)
    delta = value[1] - value[0]
    return EffectValues(delta, (1.0 - gamma) * delta, rho[1] - rho[0], value, rho)


def spectral_radius(M):
    """max |eig(M)| of a ``(d, d)`` matrix (no gradient flows through it)."""
    return jnp.max(jnp.abs(jnp.linalg.eigvals(jax.lax.stop_gradient(M))))


def value_status(M, values: EffectValues):
    """Status bits: ``STATUS_UNSTABLE`` if any sr(M_i) >= 1 − 1e-6, ``STATUS_NONFINITE`` if an
    effect is not finite. Returns (status int32, spectral radii ``(2,)``)."""
    sr = jax.vmap(spectral_radius)(M)
    unstable = jnp.any(~(sr < SR_LIMIT))
    finite = jnp.isfinite(values.delta) & jnp.isfinite(values.avg_reward)
    status = jnp.where(unstable, STATUS_UNSTABLE, 0) | jnp.where(finite, 0, STATUS_NONFINITE)
    return status.astype(jnp.int32), sr


def mean_path(M, b, m0, horizon: int):
    """Mean recursion m_{t+1} = M m_t + b from m_0, returned for t = 0..horizon-1 ``(H, d)``."""
    def step(m, _):
        return M @ m + b, m

    _, path = jax.lax.scan(step, m0, None, length=horizon)
    return path
