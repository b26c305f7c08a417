"""Ground truth of a linear two-arm design (spec longterm.md §3.4, §4.2, §6.2).

Closed forms (``values.longterm_values`` at the true parameters, m_0 = E[s_0]) and, as an
independent cross-check, the deterministic mean recursion m_{t+1} = M_i m_t + b_i. The
exogenous path of S2 cancels, so S1 and S2 share their truth.

For S1/S2 with γ = 0.99: ρ_1 − ρ_0 = −0.0677778, Δ_γ = (1−γ)Δ = −0.0543218 and the seed's
unnormalised discounted Δ = −5.43218 (they differ by the factor 1−γ = 0.01).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.longterm.values import EffectValues, longterm_values, mean_path

__all__ = ["longterm_truth", "longterm_truth_recursion"]


def longterm_truth(params, gamma, m0=None) -> EffectValues:
    """True effects by closed form.

    Args:
      params: ``LongtermParams``.
      gamma: discount factor.
      m0: initial mean E[s_0] (default ``params.init_mean``).

    Returns:
      ``EffectValues`` (delta = unnormalised discounted Δ of the seed; delta_gamma; avg_reward).

    >>> from jaxmed._src.longterm.simulate import design_params
    >>> import jax
    >>> with jax.enable_x64(True):
    ...     print(round(float(longterm_truth(design_params("s1"), 0.99).avg_reward), 6))
    -0.067778
    """
    m0 = params.init_mean if m0 is None else m0
    return longterm_values(params.M, params.b, params.theta, params.c, m0, gamma)


def longterm_truth_recursion(params, gamma, *, horizon_avg: int = 20000,
                             horizon_disc: int = 5000, m0=None) -> EffectValues:
    """True effects by the mean recursion: ρ_i ≈ (1/H) Σ_{t<H} E_i[r_t] (H = horizon_avg;
    O(1/H) transient) and V_i ≈ Σ_{t<H} γ^t E_i[r_t] (H = horizon_disc)."""
    m0 = params.init_mean if m0 is None else m0
    theta, c = params.theta, params.c

    def arm(Mi, bi):
        r_avg = mean_path(Mi, bi, m0, horizon_avg) @ theta + c
        r_disc = mean_path(Mi, bi, m0, horizon_disc) @ theta + c
        disc = jnp.sum(gamma ** jnp.arange(horizon_disc, dtype=r_disc.dtype) * r_disc)
        return disc, r_avg.mean()

    value, rho = jax.vmap(arm)(params.M, params.b)
    delta = value[1] - value[0]
    return EffectValues(delta, (1.0 - gamma) * delta, rho[1] - rho[0], value, rho)
