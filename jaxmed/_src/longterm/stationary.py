"""Stationary linear estimator, "Alg. S" (spec longterm.md §3), and its LSTD(0) cross-check (§3.5).

Per bucket i, pooled least squares over all observed transitions (j, t):

    [M_i  b_i] = (Σ y xᵀ)(Σ x xᵀ + λ_M P)^{-1},   x = [o_t; 1],  y = o_{t+1},  P = diag(1..1, 0),

then the closed-form values of ``values.longterm_values`` with m_0 = pooled mean of o_0.
Everything is a function of ``PanelStats``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from jaxmed._src.longterm.reward import LinearReward, fit_reward
from jaxmed._src.longterm.values import EffectValues, longterm_values, value_status

__all__ = ["StationaryFit", "fit_linear_dynamics", "initial_mean", "stationary_estimate",
           "lstd_values", "ls_with_intercept"]


class StationaryFit(NamedTuple):
    """Result of Alg. S.

    Attributes:
      values: ``EffectValues`` (delta = unnormalised discounted Δ, delta_gamma, avg_reward).
      M: ``(2, d, d)``; b: ``(2, d)``; reward: ``LinearReward``; m0: ``(d,)`` initial mean.
      spectral_radius: ``(2,)`` sr(M̂_i).
      condition: ``(2,)`` condition numbers of the per-bucket Gram matrices.
      status: int32 (0 ok; bits of ``values.STATUS_*``).
    """

    values: EffectValues
    M: object
    b: object
    reward: LinearReward
    m0: object
    spectral_radius: object
    condition: object
    status: object


def ls_with_intercept(sxx, sx, n, syx, sy, ridge):
    """[M b] minimising Σ ||y − M x − b||² + ridge ||M||²_F from the moment sums.

    Returns (M ``(d, d)``, b ``(d,)``, condition number of the Gram matrix).
    """
    d = sx.shape[-1]
    pen = ridge * jnp.diag(jnp.concatenate([jnp.ones(d, sx.dtype), jnp.zeros(1, sx.dtype)]))
    gram = jnp.block([[sxx, sx[:, None]], [sx[None, :], jnp.reshape(n, (1, 1))]]) + pen
    cross = jnp.concatenate([syx, sy[:, None]], axis=1)              # (d, d+1)
    coef = cho_solve(cho_factor(gram), cross.T).T                    # gram symmetric
    ev = jnp.linalg.eigvalsh(jax.lax.stop_gradient(gram))
    return coef[:, :d], coef[:, d], ev[-1] / ev[0]


def fit_linear_dynamics(stats, ridge=0.0):
    """Per-bucket pooled LS for (M_i, b_i) (§3.2). Returns (M ``(2,d,d)``, b ``(2,d)``, cond ``(2,)``)."""
    def one(n_tr, sx, sy, sxx, syx):
        return ls_with_intercept(sxx.sum(0), sx.sum(0), n_tr.sum(), syx.sum(0), sy.sum(0), ridge)

    return jax.vmap(one)(stats.n_tr, stats.sum_x, stats.sum_y, stats.sum_xx, stats.sum_yx)


def initial_mean(stats):
    """Pooled (both buckets) mean of o_0 — common to both arms by randomisation."""
    return stats.sum_o[:, 0].sum(0) / stats.n_obs[:, 0].sum()


def stationary_estimate(stats, reward: LinearReward | None, gamma, *, ridge=0.0) -> StationaryFit:
    """Alg. S: per-bucket LS dynamics, then closed-form Δ, Δ_γ, ρ_1 − ρ_0 (§3.4).

    Args:
      stats: ``PanelStats``.
      reward: known ``LinearReward``, or None to fit it by pooled LS on the observed rewards.
      gamma: discount factor in (0, 1) (traced).
      ridge: λ_M ≥ 0 on M (not on b) (traced).

    Returns:
      ``StationaryFit``.
    """
    reward = fit_reward(stats) if reward is None else reward
    M, b, cond = fit_linear_dynamics(stats, ridge)
    m0 = initial_mean(stats)
    values = longterm_values(M, b, reward.theta, reward.c, m0, gamma)
    status, sr = value_status(M, values)
    return StationaryFit(values, M, b, reward, m0, sr, cond, status)


def lstd_values(stats, reward: LinearReward, gamma):
    """Discounted LSTD(0) with φ(o) = [o; 1] per bucket, evaluated at the pooled m_0 (§3.5).

    A = Σ φ_t (φ_t − γ φ_{t+1})ᵀ, c = Σ φ_t r_t with r_t = θᵀ o_t + c, w = A^{-1} c;
    V_i = [m_0; 1]ᵀ w_i is the unnormalised discounted value. Returns ``(2,)`` values.
    It equals Alg. S's values exactly (linear model / LSTD equivalence, Parr et al. 2008).
    """
    m0 = initial_mean(stats)
    theta, c = reward.theta, reward.c

    def one(n_tr, sx, sy, sxx, syx):
        n, sx, sy, sxx, syx = n_tr.sum(), sx.sum(0), sy.sum(0), sxx.sum(0), syx.sum(0)
        pp = jnp.block([[sxx, sx[:, None]], [sx[None, :], jnp.reshape(n, (1, 1))]])
        pq = jnp.block([[syx.T, sx[:, None]], [sy[None, :], jnp.reshape(n, (1, 1))]])  # Σ φ_t φ_{t+1}ᵀ
        rhs = jnp.concatenate([sxx @ theta + c * sx, (sx @ theta + c * n)[None]])
        w = jnp.linalg.solve(pp - gamma * pq, rhs)
        return jnp.concatenate([m0, jnp.ones(1, m0.dtype)]) @ w

    return jax.vmap(one)(stats.n_tr, stats.sum_x, stats.sum_y, stats.sum_xx, stats.sum_yx)
