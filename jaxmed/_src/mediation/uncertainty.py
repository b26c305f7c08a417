"""Trajectory-cluster standard errors and the trajectory bootstrap (spec mediation.md §6.7).

The estimate is a weighted mean of per-row values x_k with row weights w_k = mask_k · v_i.
Trajectory i contributes the influence value ψ_i = Σ_t w_it (x_it − est) / (Σ_k w_k / V),
V = Σ_i v_i, and SE² = Σ_i v_i ψ_i² / (V (V − 1)). With equal lengths and unit weights this is
std(m_1..m_N, ddof = 1)/sqrt(N) for the per-trajectory means m_i, i.e. the original's
cluster SE with ddof = 1 instead of 0 (a factor sqrt(N/(N−1)); the original falls back to
row-level SEs when n ≤ 100, which jaxmed does not). Nuisance estimation is not propagated
(as in the original); the bootstrap, which refits everything, does propagate it.

Only real trajectories (at least one observed step) count: a trajectory whose mask is all
zero (e.g. the padding of ``jaxmed._src.mediation.padding``) has v_i = 0 here, so N and V
are the numbers of real trajectories, and the bootstrap resamples real trajectories only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxmed._src.mediation.padding import real_trajectories

__all__ = ["cluster_influence", "cluster_se", "bootstrap_counts"]


def cluster_influence(values, mask, trajectory_weights=None):
    """Estimate and per-trajectory influence values.

    Args:
      values: ``(N*T, ...)`` per-row values (row k = i*T + t).
      mask: ``(N, T)`` observed-step indicator.
      trajectory_weights: ``(N,)`` v_i (default 1); 0 on trajectories without an observed step.

    Returns:
      ``(estimate (...), influence (N, ...))`` (influence 0 on trajectories without an
      observed step).
    """
    n, t = mask.shape
    v = _real_weights(mask, trajectory_weights, values.dtype)
    extra = (1,) * (values.ndim - 1)
    mask = jnp.asarray(mask, values.dtype)
    # one pass over the rows: per-trajectory sums s_i = Σ_t mask_it x_it; then
    # est = Σ_i v_i s_i / W and Σ_t mask_it (x_it − est) = s_i − (Σ_t mask_it) est
    s = jnp.einsum("nt,nt...->n...", mask, values.reshape((n, t) + values.shape[1:]))
    steps = jnp.sum(mask, axis=1)
    total = jnp.sum(steps * v)  # W = Σ_k w_k
    est = jnp.einsum("n,n...->...", v, s) / total
    dev = s - steps.reshape((n,) + extra) * est
    infl = dev / (total / jnp.sum(v))
    return est, infl


def cluster_se(values, mask, trajectory_weights=None):
    """Trajectory-cluster standard error of the weighted mean of ``values`` (see module doc)."""
    n = mask.shape[0]
    v = _real_weights(mask, trajectory_weights, values.dtype)
    _, infl = cluster_influence(values, mask, v)
    vv = jnp.sum(v)
    vb = v.reshape((n,) + (1,) * (infl.ndim - 1))
    return jnp.sqrt(jnp.sum(vb * infl ** 2, axis=0) / (vv * (vv - 1.0)))


def _real_weights(mask, trajectory_weights, dtype):
    real = real_trajectories(jnp.asarray(mask)).astype(dtype)
    return real if trajectory_weights is None else trajectory_weights * real


def bootstrap_counts(key, n: int, dtype=jnp.float64, real=None):
    """Multinomial(n; 1/n, ..., 1/n) trajectory counts: how often each trajectory is resampled.

    With ``real`` (``(n,)`` 0/1, e.g. ``real_trajectories(mask)``), only the R = Σ real
    trajectories are resampled: Multinomial(R; 1/R, ...) over them, 0 elsewhere. The draws
    are the first R of ``randint(key, (n,), 0, R)``, so when the real trajectories come
    first the counts equal ``bootstrap_counts(key, R)`` followed by zeros (padding does not
    change the bootstrap).
    """
    idx = jax.random.randint(key, (n,), 0, n if real is None else jnp.sum(real > 0))
    if real is None:
        return jnp.zeros(n, dtype).at[idx].add(1.0)
    is_real = jnp.asarray(real) > 0
    n_real = jnp.sum(is_real)
    # position of the j-th real trajectory (stable: real ones in their order first)
    where = jnp.argsort(~is_real, stable=True)
    counted = (jnp.arange(n) < n_real).astype(dtype)
    return jnp.zeros(n, dtype).at[where[idx]].add(counted)
