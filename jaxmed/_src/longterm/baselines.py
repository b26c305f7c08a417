"""Baselines B1–B7 of spec longterm.md §5, with one signature.

Every baseline is ``f(panel, reward, gamma, *, weights=None, **options) -> BaselineFit``:
``panel`` a ``Panel``, ``reward`` a known ``LinearReward`` or None (None: naive baselines use
the observed rewards, model-based ones fit θ_r, c_r by pooled LS), ``gamma`` the discount,
``weights`` optional per-individual weights. Each returns the three effects on the scales of
``EffectValues``; where a baseline does not define one, it is NaN.

Scales of the naive baselines (they estimate a per-period effect): B1/B2 report their
per-period difference as ``avg_reward`` and ``delta_gamma`` and its 1/(1−γ) multiple as
``delta``. B6 defines only discounted quantities (its average-reward limit is 0): Δ_γ =
(1 − γ^T)(r̄_{1,0} − r̄_{0,0}), Δ = Δ_γ/(1−γ), ``avg_reward`` NaN.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src.longterm.nonstationary import _shifted_moments
from jaxmed._src.longterm.reward import LinearReward, fit_reward
from jaxmed._src.longterm.stationary import ls_with_intercept, stationary_estimate
from jaxmed._src.longterm.stats import panel_stats
from jaxmed._src.longterm.values import EffectValues, longterm_values, value_status

__all__ = ["BaselineFit", "SurrogateModel", "naive_window", "naive_last", "stationary_rl",
           "surrogate_index", "fit_surrogate_index", "sieve_lstd", "naive_scaling",
           "detrended_stationary", "bucket_reward_means"]


class BaselineFit(NamedTuple):
    """``values``: ``EffectValues`` (NaN where undefined); ``status``: int32 (0 ok)."""

    values: EffectValues
    status: object


def _nan_values(delta, delta_gamma, avg):
    nan2 = jnp.full((2,), jnp.nan, jnp.result_type(delta))
    return EffectValues(delta, delta_gamma, avg, nan2, nan2)


def _ok(values):
    finite = jnp.isfinite(values.delta)
    return jnp.where(finite, 0, 2).astype(jnp.int32)


def bucket_reward_means(stats, reward: LinearReward | None):
    """r̄_{i,t} ``(2, T+1)``: θᵀ ō_{i,t} + c for a known reward, else the observed mean reward."""
    n = jnp.where(stats.n_obs > 0, stats.n_obs, 1.0)
    if reward is None:
        return stats.sum_r / n
    return stats.sum_o @ reward.theta / n + reward.c


def naive_window(panel, reward, gamma, *, weights=None) -> BaselineFit:
    """B1: Δ_short = mean_{t ≤ T}(r̄_{1,t} − r̄_{0,t}), the A/B difference in means."""
    rbar = bucket_reward_means(panel_stats(panel, weights), reward)
    eff = jnp.mean(rbar[1] - rbar[0])
    v = _nan_values(eff / (1.0 - gamma), eff, eff)
    return BaselineFit(v, _ok(v))


def naive_last(panel, reward, gamma, *, weights=None) -> BaselineFit:
    """B2: r̄_{1,T} − r̄_{0,T}, the last-period difference."""
    rbar = bucket_reward_means(panel_stats(panel, weights), reward)
    eff = rbar[1, -1] - rbar[0, -1]
    v = _nan_values(eff / (1.0 - gamma), eff, eff)
    return BaselineFit(v, _ok(v))


def naive_scaling(panel, reward, gamma, *, weights=None) -> BaselineFit:
    """B6: Δ_γ = (1 − γ^T)(r̄_{1,0} − r̄_{0,0}) (allentran/long-term-ate-orl); avg_reward NaN."""
    rbar = bucket_reward_means(panel_stats(panel, weights), reward)
    T = rbar.shape[1] - 1
    dg = (1.0 - gamma ** T) * (rbar[1, 0] - rbar[0, 0])
    v = _nan_values(dg / (1.0 - gamma), dg, jnp.full((), jnp.nan, dg.dtype))
    return BaselineFit(v, _ok(v))


def stationary_rl(panel, reward, gamma, *, weights=None, ridge=0.0) -> BaselineFit:
    """B3: Alg. S on the raw observations, ignoring any exogenous path."""
    fit = stationary_estimate(panel_stats(panel, weights), reward, gamma, ridge=ridge)
    return BaselineFit(fit.values, fit.status)


def detrended_stationary(panel, reward, gamma, *, weights=None, ridge=0.0) -> BaselineFit:
    """B7: subtract the pooled (both buckets) time mean ō_{·,t} from o, then Alg. S.

    Removes z only when M_0 = M_1. The discounted value starts from the detrended
    initial mean (0)."""
    stats = panel_stats(panel, weights)
    reward = fit_reward(stats) if reward is None else reward
    a = stats.sum_o.sum(0) / jnp.where(stats.n_obs.sum(0) > 0, stats.n_obs.sum(0), 1.0)[:, None]

    def one(i):
        mom = _shifted_moments(stats.n_tr[i], stats.sum_x[i], stats.sum_y[i], stats.sum_xx[i],
                               stats.sum_yx[i], a[:-1], a[1:])
        return ls_with_intercept(*mom, ridge)[:2]

    (M0, b0), (M1, b1) = one(0), one(1)
    M, b = jnp.stack([M0, M1]), jnp.stack([b0, b1])
    values = longterm_values(M, b, reward.theta, reward.c, jnp.zeros_like(a[0]), gamma)
    return BaselineFit(values, value_status(M, values)[0])


class SurrogateModel(NamedTuple):
    """Linear surrogate indices g(o_T) = coefᵀ [o_T; 1] fitted on auxiliary data.

    ``coef_disc`` predicts Σ_{k≥0} γ^k R_{T+k} (truncated at the auxiliary horizon);
    ``coef_avg`` predicts the mean reward over t = T+1..H_aux.
    """

    coef_disc: object
    coef_avg: object


def fit_surrogate_index(aux_panel, horizon: int, reward: LinearReward, gamma, *,
                        ridge=1e-8) -> SurrogateModel:
    """Fits the surrogate indices of B4 by least squares on an auxiliary panel (e.g.
    ``simulate_surrogate_data``) observed long after ``horizon`` = T (static).

    Args:
      aux_panel: ``Panel`` with obs ``(m, H_aux + 1, d)``, H_aux > T, fully observed.
      horizon: T, the experiment's last time (the surrogate is o_T).
      reward: ``LinearReward`` giving R_t = θᵀ o_t + c.
      gamma: discount.
    """
    obs = jnp.asarray(aux_panel.obs)
    r = obs @ reward.theta + reward.c                                  # (m, H+1)
    post = r[:, horizon:]
    k = jnp.arange(post.shape[1], dtype=obs.dtype)
    y_disc = post @ (gamma ** k)
    y_avg = post[:, 1:].mean(axis=1)
    x = jnp.concatenate([obs[:, horizon], jnp.ones((obs.shape[0], 1), obs.dtype)], axis=1)
    gram = x.T @ x + ridge * jnp.eye(x.shape[1], dtype=x.dtype)
    coef = jnp.linalg.solve(gram, x.T @ jnp.stack([y_disc, y_avg], axis=1))
    return SurrogateModel(coef[:, 0], coef[:, 1])


def surrogate_index(panel, reward, gamma, *, surrogate: SurrogateModel, weights=None) -> BaselineFit:
    """B4: surrogate index (Athey et al.). With ḡ_i the bucket mean of g(o_{j,T}):
    Δ = Σ_{t<T} γ^t (r̄_{1,t} − r̄_{0,t}) + γ^T (ḡ^disc_1 − ḡ^disc_0), Δ_γ = (1−γ)Δ,
    avg_reward = ḡ^avg_1 − ḡ^avg_0. Biased by construction under a persistent treatment.
    """
    stats = panel_stats(panel, weights)
    rbar = bucket_reward_means(stats, reward)
    T = rbar.shape[1] - 1
    mean_T = stats.sum_o[:, T] / stats.n_obs[:, T][:, None]
    x = jnp.concatenate([mean_T, jnp.ones((2, 1), mean_T.dtype)], axis=1)
    g_disc, g_avg = x @ surrogate.coef_disc, x @ surrogate.coef_avg
    short = jnp.sum(gamma ** jnp.arange(T, dtype=rbar.dtype) * (rbar[1, :T] - rbar[0, :T]))
    delta = short + gamma ** T * (g_disc[1] - g_disc[0])
    v = _nan_values(delta, (1.0 - gamma) * delta, g_avg[1] - g_avg[0])
    return BaselineFit(v, _ok(v))


def _sieve(o, degree: int):
    powers = [o ** p for p in range(1, degree + 1)]
    return jnp.concatenate([jnp.ones(o.shape[:-1] + (1,), o.dtype)] + powers, axis=-1)


def sieve_lstd(panel, reward, gamma, *, weights=None, degree: int = 2) -> BaselineFit:
    """B5: per-arm LSTD with the sieve basis φ(o) = (1, o_k^p, k ≤ d, p ≤ degree) (Shi et al.
    2022b style, no cross terms).

    Discounted: w_i = [Σ φ_t(φ_t − γφ_{t+1})ᵀ]^{-1} Σ φ_t r_t over bucket i's transitions;
    V_i = φ̄_0ᵀ w_i with φ̄_0 the pooled mean of φ(o_0). Average reward: solve
    Σ φ_t (r_t − ρ_i − (φ_t − φ_{t+1})ᵀ v) = 0 with v's constant coefficient 0.
    With degree = 1 it coincides with Alg. S (linear-model/LSTD equivalence).
    """
    obs = jnp.asarray(panel.obs)
    mask = jnp.asarray(panel.mask, obs.dtype)
    d1 = jnp.asarray(panel.bucket, obs.dtype)
    w = jnp.ones_like(d1) if weights is None else jnp.asarray(weights, obs.dtype)
    phi = _sieve(obs, degree)                                              # (n, T+1, p)
    r = (obs @ reward.theta + reward.c) if reward is not None else jnp.asarray(panel.rewards, obs.dtype)
    a_tr = jnp.stack([(1.0 - d1) * w, d1 * w])[:, :, None] * (mask[:, :-1] * mask[:, 1:])[None]
    x, y, rt = phi[:, :-1], phi[:, 1:], r[:, :-1]
    pp = jnp.einsum("ijt,jta,jtb->iab", a_tr, x, x)
    pq = jnp.einsum("ijt,jta,jtb->iab", a_tr, x, y)
    pr = jnp.einsum("ijt,jta,jt->ia", a_tr, x, rt)
    a0 = w * mask[:, 0]
    phi0 = (a0 @ phi[:, 0]) / a0.sum()
    wv = jnp.linalg.solve(pp - gamma * pq, pr[..., None])[..., 0]
    value = wv @ phi0
    ps = pp[..., :, 0]                                                     # Σ φ_t (φ_t[0] = 1)
    lhs = jnp.concatenate([ps[..., None], (pp - pq)[..., 1:]], axis=-1)
    rho = jnp.linalg.solve(lhs, pr[..., None])[..., 0, 0]
    delta = value[1] - value[0]
    v = EffectValues(delta, (1.0 - gamma) * delta, rho[1] - rho[0], value, rho)
    return BaselineFit(v, _ok(v))
