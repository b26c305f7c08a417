"""Reward coefficients: known (θ_r, c_r) or pooled least squares (spec longterm.md §3.3).

r(o) = θ_rᵀ o + c_r. When the reward is observed but θ_r unknown, regress R_{j,t} on
[o_{j,t}; 1] pooled over both buckets and all observed times; pooling is valid because
the reward function does not depend on the arm.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

__all__ = ["LinearReward", "fit_reward"]


class LinearReward(NamedTuple):
    """r(o) = thetaᵀ o + c. ``theta`` ``(d,)``, ``c`` scalar."""

    theta: object
    c: object = 0.0


def fit_reward(stats) -> LinearReward:
    """Pooled least squares of R on [o; 1] from ``PanelStats`` (observation level).

    >>> import jax.numpy as jnp
    >>> from jaxmed._src.longterm.panel import Panel
    >>> from jaxmed._src.longterm.stats import panel_stats
    >>> o = jnp.array([[[0.0], [1.0], [3.0]], [[2.0], [5.0], [4.0]]])
    >>> p = Panel(o, jnp.array([0.0, 1.0]), jnp.ones((2, 3)), 2.0 * o[..., 0] + 1.0)
    >>> fit = fit_reward(panel_stats(p))
    >>> round(float(fit.theta[0]), 4), round(float(fit.c), 4)
    (2.0, 1.0)
    """
    n = stats.n_obs.sum()
    so = stats.sum_o.sum(axis=(0, 1))
    soo = stats.sum_oo.sum(axis=(0, 1))
    gram = jnp.block([[soo, so[:, None]], [so[None, :], n[None, None]]])
    rhs = jnp.concatenate([stats.sum_or.sum(axis=(0, 1)), stats.sum_r.sum()[None]])
    coef = cho_solve(cho_factor(gram), rhs)
    return LinearReward(coef[:-1], coef[-1])
