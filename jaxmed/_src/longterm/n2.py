"""Variant N2: exogenous input added to the dynamics (spec longterm.md §4.7).

    o_{j,t+1} = M_i o_{j,t} + b_i + u_{t+1} + ε,     u shared by both buckets,  Σ_{t=1..T} u_t = 0.

A linear regression with time fixed effects, solved in one pass as the joint least squares
for (M_0, M_1, b_0, b_1, u_1..u_T) from ``PanelStats``: every output coordinate shares the
regressors [o_t 1{i=0}, o_t 1{i=1}, 1{i=0}, 1{i=1}, e_{t+1}], so the normal matrix has size
2d + 2 + T (the constraint is imposed by u = Q v, Q = [I_{T−1}; −1ᵀ]) and the d outputs are
right-hand sides. Optional ridge λ_M on M (not on b, u).

The long-run effect depends on an assumed future exogenous mean ū (unlike N1, it does not
cancel when M_1 ≠ M_0):

    Δ(ū) = θᵀ[(I−M_1)^{-1}(b_1+ū) − (I−M_0)^{-1}(b_0+ū)]   (average reward),

and the discounted values likewise with b_i + ū; jaxmed reports ū = 0 under the Σ u = 0
normalisation (§4.7) unless ``u_bar`` is given. m_0 is the pooled mean of o_0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from jaxmed._src.longterm.reward import LinearReward, fit_reward
from jaxmed._src.longterm.stationary import initial_mean
from jaxmed._src.longterm.values import EffectValues, longterm_values, value_status

__all__ = ["N2Fit", "n2_dynamics", "n2_estimate"]


class N2Fit(NamedTuple):
    """Result of variant N2.

    Attributes:
      values: ``EffectValues`` at ū (default 0). M: ``(2, d, d)``; b: ``(2, d)``;
      u: ``(T+1, d)`` exogenous input with u_0 = 0 (no input enters o_0) and Σ_{t≥1} u_t = 0;
      reward: ``LinearReward``; m0: ``(d,)``; spectral_radius: ``(2,)``;
      condition: condition number of the normal matrix; status: int32 (``values.STATUS_*``).
    """

    values: EffectValues
    M: object
    b: object
    u: object
    reward: LinearReward
    m0: object
    spectral_radius: object
    condition: object
    status: object


def n2_dynamics(stats, ridge=0.0):
    """Joint LS of model N2. Returns (M ``(2, d, d)``, b ``(2, d)``, u ``(T, d)`` = u_1..u_T, cond)."""
    n, sx, sy, sxx, syx = stats.n_tr, stats.sum_x, stats.sum_y, stats.sum_xx, stats.sum_yx
    T, d = sx.shape[1], sx.shape[2]
    dt = sx.dtype
    p = 2 * d + 2
    K = p + T
    G = jnp.zeros((K, K), dt)
    C = jnp.zeros((K, d), dt)
    for i in (0, 1):
        m = slice(i * d, (i + 1) * d)
        bi = 2 * d + i
        G = G.at[m, m].set(sxx[i].sum(0) + ridge * jnp.eye(d, dtype=dt))
        G = G.at[m, bi].set(sx[i].sum(0)).at[bi, m].set(sx[i].sum(0))
        G = G.at[m, p:].set(sx[i].T).at[p:, m].set(sx[i])
        G = G.at[bi, bi].set(n[i].sum())
        G = G.at[bi, p:].set(n[i]).at[p:, bi].set(n[i])
        C = C.at[m].set(syx[i].sum(0).T).at[bi].set(sy[i].sum(0))
    G = G.at[p:, p:].set(jnp.diag(n.sum(0)))
    C = C.at[p:].set(sy.sum(0))
    Q = jnp.zeros((K, K - 1), dt).at[:p + T - 1, :p + T - 1].set(jnp.eye(p + T - 1, dtype=dt))
    Q = Q.at[K - 1, p:].set(-1.0)
    Gq = Q.T @ G @ Q
    coef = Q @ cho_solve(cho_factor(Gq), Q.T @ C)                       # (K, d)
    ev = jnp.linalg.eigvalsh(jax.lax.stop_gradient(Gq))
    M = jnp.stack([coef[:d].T, coef[d:2 * d].T])
    return M, coef[2 * d:p], coef[p:], ev[-1] / ev[0]


def n2_estimate(stats, reward: LinearReward | None, gamma, *, ridge=0.0, u_bar=None) -> N2Fit:
    """Variant N2 (§4.7): joint LS with shared time effects, then the closed-form Δ(ū).

    Args:
      stats: ``PanelStats``.
      reward: known ``LinearReward`` or None (pooled LS fit on observed rewards, §3.3).
      gamma: discount factor (traced).
      ridge: λ_M ≥ 0 on M (traced).
      u_bar: ``(d,)`` assumed future exogenous mean ū (default 0).

    Returns:
      ``N2Fit``.

    >>> import jax
    >>> from jaxmed._src.longterm.simulate import simulate_longterm
    >>> from jaxmed._src.longterm.stats import panel_stats
    >>> with jax.enable_x64(True):
    ...     st = panel_stats(simulate_longterm(jax.random.key(0), 2000, 28, design="s1"))
    ...     fit = n2_estimate(st, LinearReward(jax.numpy.array([1.0, 0.0, 1.0]), 0.0), 0.99)
    >>> bool(abs(float(fit.values.avg_reward) + 0.0678) < 0.05)
    True
    """
    reward = fit_reward(stats) if reward is None else reward
    M, b, u, cond = n2_dynamics(stats, ridge)
    if u_bar is not None:
        b = b + jnp.asarray(u_bar, b.dtype)[None]
    m0 = initial_mean(stats)
    values = longterm_values(M, b, reward.theta, reward.c, m0, gamma)
    status, sr = value_status(M, values)
    u_path = jnp.concatenate([jnp.zeros((1, u.shape[1]), u.dtype), u])
    return N2Fit(values, M, b, u_path, reward, m0, sr, cond, status)
