"""Hard and smooth clips of importance weights and state ratios (spec mediation.md §3.4, §5.3).

``soft_clip`` (``MediationConfig.soft_clip``) is a temperature τ relative to each bound:

    softmin(x, c) = c − τc · softplus((c − x) / (τc))      (→ min(x, c) as τ → 0)
    softmax(x, l) = l + τl · softplus((x − l) / (τl))      (→ max(x, l) as τ → 0)

Both are smooth in x and in the bound, so the estimate is differentiable in ``rho_trunc`` and
``ratio_trunc`` even where no row is clipped; with τ = 0 (the default) the hard clips of the
original are used and their derivative is zero on clipped rows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["clip_above", "clip_range"]


def _softmin(x, c, tau):
    scale = tau * c
    return c - scale * jax.nn.softplus((c - x) / scale)


def _softmax(x, lo, tau):
    scale = tau * lo
    return lo + scale * jax.nn.softplus((x - lo) / scale)


def clip_above(x, upper, tau: float = 0.0):
    """min(x, upper), or its smooth version with relative temperature ``tau`` > 0 (static).

    >>> import jax.numpy as jnp
    >>> [round(float(v), 6) for v in clip_above(jnp.array([1.0, 10.0, 50.0]), 10.0, 0.05)]
    [1.0, 9.653426, 10.0]
    """
    if tau == 0.0:
        return jnp.minimum(x, upper)
    return _softmin(x, upper, tau)


def clip_range(x, lower, upper, tau: float = 0.0):
    """clip(x, lower, upper), or softmin(softmax(x, lower), upper) with ``tau`` > 0 (static)."""
    if tau == 0.0:
        return jnp.clip(x, lower, upper)
    return _softmin(_softmax(x, lower, tau), upper, tau)
