"""Derivatives of estimates with respect to policy parameters, hyper-parameters and
per-trajectory (per-individual) weights.

Mediation: the ``(7, 5)`` table of ``estimate_pipeline`` (spec mediation.md §6), recomputed
here from the per-row values on the defined (estimator, effect) cells only, so that the NaN
cells (MIS2/baselines have no DDE, DME, ATE) do not poison derivatives with 0 · NaN.
Long-term: Δ, Δ_γ, ρ_1 − ρ_0 of ``estimate_effects`` (spec longterm.md).

Where gradients vanish or are partial (see docs): hard clips (π̂_b clipped to [1e-6, 0.9999],
ρ̃ = min(ρ, rho_trunc), ω̂ clipped to [1/ratio_trunc, ratio_trunc]) have zero derivative on
clipped rows, so d/d rho_trunc and d/d ratio_trunc are zero unless some row is clipped
(``MediationConfig(soft_clip=τ)`` makes ρ̃ and ω̂'s clip smooth); the quantile knots of the
spline bases are ``stop_gradient``-ed in the mediation pipeline, so d/d w_i holds knot
placement fixed (knot placement is a discontinuous function of the weights at integer
weights); with ``MediationConfig(weighted_knots=False)`` the knots do not depend on the
weights and d/d w_i is the derivative of the whole pipeline (matches finite differences).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.policies import as_policy
from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS
from jaxmed._src.mediation.pipeline import estimate_pipeline
from jaxmed._src.mediation.weighted_stats import row_weights

__all__ = ["defined_cells", "mediation_estimates", "MediationSensitivity", "mediation_sensitivity",
           "LongtermSensitivity", "longterm_sensitivity", "Influence", "influential_trajectories"]


def defined_cells(natural: bool = False) -> np.ndarray:
    """``(C, 2)`` (estimator, effect) indices that the pipeline defines (non-NaN)."""
    if natural:
        return np.array([[e, k] for e in range(2) for k in range(5)])
    return np.array([[e, k] for e in range(len(ESTIMATORS)) for k in range(len(EFFECTS))
                     if e < 3 or k < 2])


def mediation_estimates(key, data, trajectory_weights, target_policy, config, a0: int = 0,
                        nuisances=None):
    """The ``(7, 5)`` estimate table, NaN-safe under ``grad``/``jacfwd`` (undefined cells NaN).

    Equal to ``estimate_pipeline(...).estimate``; differentiable in ``trajectory_weights``,
    the policy's parameters and the traced fields of ``config``.
    """
    out = estimate_pipeline(key, data, trajectory_weights, target_policy, a0, config,
                            nuisances=nuisances)
    cells = defined_cells(config.natural_decomposition)
    w = row_weights(data.mask, trajectory_weights)
    vals = out.rows[:, cells[:, 0], cells[:, 1]]
    est = jnp.sum(w[:, None] * vals, axis=0) / jnp.sum(w)
    table = jnp.full((len(ESTIMATORS), len(EFFECTS)), jnp.nan, est.dtype)
    return table.at[cells[:, 0], cells[:, 1]].set(est)


class MediationSensitivity(NamedTuple):
    """Estimate and its Jacobians (leading axes ``(7, 5)``; NaN on undefined cells).

    Attributes:
      estimate: ``(7, 5)``.
      policy: the policy pytree with leaves ``(7, 5) + leaf.shape`` (d est / d θ).
      config: a ``MediationConfig`` whose traced fields are ``(7, 5)`` derivatives.
      trajectory_weights: ``(7, 5, N)`` d est / d v_i at the given weights.
    """

    estimate: jax.Array
    policy: object
    config: object
    trajectory_weights: jax.Array


@functools.partial(jax.jit, static_argnames=("a0",))
def _mediation_jac(key, data, v, policy, config, nuisances, a0):
    def f(p, c, w):
        est = mediation_estimates(key, data, w, p, c, a0, nuisances)
        return est, est

    jac, est = jax.jacfwd(f, argnums=(0, 1, 2), has_aux=True)(policy, config, v)
    return MediationSensitivity(est, *jac)


def mediation_sensitivity(key, data, target_policy, *, config, a0: int = 0, trajectory_weights=None,
                          nuisances=None) -> MediationSensitivity:
    """Forward-mode Jacobians of every mediation estimate (one compiled program per shape).

    Args:
      key: ``jax.random`` key of the pipeline (random Fourier features, nuisance fits).
      data: ``Trajectories``.
      target_policy: a policy pytree (e.g. ``LogisticPolicy``).
      config: ``MediationConfig`` (its traced fields are differentiated).
      a0: control action (0 or 1).
      trajectory_weights: ``(N,)`` v_i (default ones).
      nuisances: injected ``NuisancePredictions`` (then held fixed).

    Returns:
      ``MediationSensitivity``.
    """
    n = data.action.shape[0]
    v = jnp.ones(n, data.reward.dtype) if trajectory_weights is None else jnp.asarray(trajectory_weights)
    target_policy = as_policy(target_policy, data.state.shape[-1])  # text spelling too
    return _mediation_jac(key, data, v, target_policy, config, nuisances, int(a0))


class LongtermSensitivity(NamedTuple):
    """Long-term effects ``(3,)`` (Δ, Δ_γ, ρ_1 − ρ_0) and their derivatives.

    Attributes:
      estimate: ``(3,)``; gamma, ridge, lambda_z: ``(3,)`` derivatives; weights: ``(3, n)``.
    """

    estimate: jax.Array
    gamma: jax.Array
    ridge: jax.Array
    lambda_z: jax.Array
    weights: jax.Array


@functools.partial(jax.jit, static_argnames=("method", "anchor"))
def _longterm_jac(panel, reward, gamma, ridge, lambda_z, weights, method, anchor):
    from jaxmed._src.longterm.api import estimate_effects

    def f(g, r, lz, w):
        eff, _, _, _ = estimate_effects(panel, w, reward, g, method=method, anchor=anchor, ridge=r,
                                        lambda_z=lz)
        return eff, eff

    jac, est = jax.jacfwd(f, argnums=(0, 1, 2, 3), has_aux=True)(gamma, ridge, lambda_z, weights)
    return LongtermSensitivity(est, *jac)


def longterm_sensitivity(panel, reward, gamma, *, method: str = "nonstationary",
                         anchor: str = "steady0", ridge=0.0, lambda_z=0.0,
                         weights=None) -> LongtermSensitivity:
    """Jacobians of the long-term effects w.r.t. γ, λ_M, λ_z and per-individual weights.

    Args:
      panel: a ``Panel`` of arrays; reward: ``LinearReward`` or None (fitted).
      gamma, ridge, lambda_z: traced hyper-parameters; method, anchor: static.
      weights: ``(n,)`` per-individual weights (default ones).
    """
    dt = jnp.asarray(panel.obs).dtype
    n = panel.obs.shape[0]
    w = jnp.ones(n, dt) if weights is None else jnp.asarray(weights, dt)
    return _longterm_jac(panel, reward, jnp.asarray(gamma, dt), jnp.asarray(ridge, dt),
                         jnp.asarray(lambda_z, dt), w, method, anchor)


class Influence(NamedTuple):
    """The ``top`` trajectories by |d est / d w_i|.

    Attributes:
      indices: ``(top,)`` trajectory indices, most influential first.
      derivative: ``(top,)`` d est / d w_i.
      estimate: the estimate at unit weights.
      leave_one_out_first_order: ``(top,)`` est − d est / d w_i, the first-order prediction of
        the estimate without trajectory i.
    """

    indices: np.ndarray
    derivative: np.ndarray
    estimate: float
    leave_one_out_first_order: np.ndarray


def influential_trajectories(sensitivity, *, estimator: str = "MR", effect: str = "ATE",
                             top: int = 10) -> Influence:
    """Most influential trajectories of one estimate, from a sensitivity result.

    Args:
      sensitivity: a ``MediationSensitivity`` (pick ``estimator``/``effect``) or a
        ``LongtermSensitivity`` (``effect`` one of "delta", "delta_gamma", "avg_reward").
      top: number of trajectories returned.

    Returns:
      ``Influence``.
    """
    if isinstance(sensitivity, MediationSensitivity):
        e, k = ESTIMATORS.index(estimator), EFFECTS.index(effect)
        g = np.asarray(sensitivity.trajectory_weights[e, k])
        est = float(sensitivity.estimate[e, k])
    elif isinstance(sensitivity, LongtermSensitivity):
        k = ("delta", "delta_gamma", "avg_reward").index(effect)
        g = np.asarray(sensitivity.weights[k])
        est = float(sensitivity.estimate[k])
    else:
        raise ValueError("sensitivity: expected a MediationSensitivity or LongtermSensitivity, got "
                         f"{type(sensitivity).__name__}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"sensitivity: non-finite weight derivatives for {estimator}/{effect}")
    idx = np.argsort(-np.abs(g))[:int(top)]
    return Influence(idx, g[idx], est, est - g[idx])
