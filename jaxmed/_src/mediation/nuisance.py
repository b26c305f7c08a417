"""Per-row nuisance predictions: the interface between nuisance models and estimators.

Everything downstream of the nuisance models (Q-functions, state ratios, estimators;
spec mediation.md §4–§6) reads only a ``NuisancePredictions``. Fitted models produce one
(``fit_nuisances``); a user can also build one from any external model, e.g. scikit-learn
predictions (spec §13.1: jaxmed accepts injected nuisances), or from functions
(``nuisance_predictions_from_functions``). The mediator law is Gaussian with the given
means and sds; that is what makes every downstream expectation closed-form.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.gaussian_expectation import hermite_nodes

__all__ = ["NuisancePredictions", "NuisanceModels", "default_nuisance_models", "fit_nuisances",
           "nuisance_predictions_from_functions"]


class NuisancePredictions(NamedTuple):
    """Nuisance predictions for the n = N·T flat rows (row k = i·T + t).

    Attributes:
      behaviour_prob: ``(n,)`` π̂_b(A_k | S_k).
      mediator_mean: ``(n, 2, dM)`` μ̂(S_k, a) for a = 0, 1.
      mediator_sd: ``(n, 2, dM)`` σ̂(S_k, a).
      mediator_mean_next: ``(n, 2, dM)`` μ̂(S'_k, a).
      mediator_sd_next: ``(n, 2, dM)`` σ̂(S'_k, a).
      reward_at_mediator: ``(n, 2)`` r̂(S_k, a, M_k) for a = 0, 1.
      reward_expected: ``(n, 2, 2)``; entry [k, a_r, a_m] = E_{m ~ p̂_m(·|S_k, a_m)} r̂(S_k, a_r, m).
    """

    behaviour_prob: jax.Array
    mediator_mean: jax.Array
    mediator_sd: jax.Array
    mediator_mean_next: jax.Array
    mediator_sd_next: jax.Array
    reward_at_mediator: jax.Array
    reward_expected: jax.Array


class NuisanceModels(NamedTuple):
    """The three nuisance models (see ``nuisance_models`` for the protocol)."""

    behaviour: object
    mediator: object
    reward: object


def default_nuisance_models(config) -> NuisanceModels:
    """The JAX-native defaults configured by a ``MediationConfig``."""
    from jaxmed._src.mediation.nuisance_models import (GaussianMediatorModel,
                                                       LogisticBehaviourModel,
                                                       PolynomialRewardModel)

    return NuisanceModels(
        LogisticBehaviourModel(config.behaviour_basis, config.state_knots,
                               config.behaviour_iterations, config.behaviour_ridge,
                               config.weighted_knots),
        GaussianMediatorModel(config.state_knots, config.mediator_ridge, config.weighted_knots),
        PolynomialRewardModel(config.state_knots, config.reward_degree, config.reward_ridge,
                              config.weighted_knots))


def _both_actions(fn, state):
    n = state.shape[0]
    return jnp.stack([fn(state, jnp.zeros(n, state.dtype)), fn(state, jnp.ones(n, state.dtype))],
                     axis=1)


def fit_nuisances(key, rows, w, models: NuisanceModels):
    """Fits the nuisance models on weighted rows and predicts on every row.

    Args:
      key: a ``jax.random`` key (split between the models).
      rows: the flat dict of ``Trajectories.flat()``.
      w: ``(n,)`` row weights.
      models: a ``NuisanceModels``.

    Returns:
      ``(NuisancePredictions, (behaviour, mediator, reward) fitted params)``.
    """
    kb, km, kr = jax.random.split(key, 3)
    pb_params = models.behaviour.fit(kb, rows, w)
    pm_params = models.mediator.fit(km, rows, w)
    r_params = models.reward.fit(kr, rows, w)
    s, s_next, a, m = rows["state"], rows["next_state"], rows["action"], rows["mediator"]
    p1 = models.behaviour.prob_one(pb_params, s)
    mean = _both_actions(lambda x, b: models.mediator.mean(pm_params, x, b), s)
    sd = _both_actions(lambda x, b: models.mediator.sd(pm_params, x, b), s)
    mean_next = _both_actions(lambda x, b: models.mediator.mean(pm_params, x, b), s_next)
    sd_next = _both_actions(lambda x, b: models.mediator.sd(pm_params, x, b), s_next)
    n = s.shape[0]
    r_m = jnp.stack([models.reward.mean(r_params, s, jnp.full(n, float(b), s.dtype), m)
                     for b in (0, 1)], axis=1)
    r_e = jnp.stack([jnp.stack([models.reward.expected(r_params, s, jnp.full(n, float(ar), s.dtype),
                                                       mean[:, am], sd[:, am]) for am in (0, 1)],
                               axis=1) for ar in (0, 1)], axis=1)
    preds = NuisancePredictions(a * p1 + (1 - a) * (1 - p1), mean, sd, mean_next, sd_next, r_m, r_e)
    return preds, (pb_params, pm_params, r_params)


def nuisance_predictions_from_functions(data, *, behaviour_prob_one: Callable,
                                        mediator_mean: Callable, mediator_sd,
                                        reward_mean: Callable,
                                        quadrature_nodes: int = 20) -> NuisancePredictions:
    """Builds ``NuisancePredictions`` from plain functions (e.g. known true nuisances).

    Args:
      data: ``Trajectories``.
      behaviour_prob_one: ``f(state (dS,)) -> P(A = 1 | state)``.
      mediator_mean: ``f(state (dS,), action ()) -> (dM,)``.
      mediator_sd: ``(dM,)`` constant mediator sds.
      reward_mean: ``f(state (dS,), action (), mediator (dM,)) -> ()``.
      quadrature_nodes: Gauss–Hermite nodes per mediator coordinate for E_m r (exact for
        polynomial rewards of degree < 2·nodes; an approximation otherwise).

    Returns:
      ``NuisancePredictions`` for the flat rows of ``data``.
    """
    rows = data.flat()
    s, s_next, a, m = (jnp.asarray(rows[k]) for k in ("state", "next_state", "action", "mediator"))
    n, dm = m.shape
    sd = jnp.broadcast_to(jnp.asarray(mediator_sd, s.dtype), (n, 2, dm))
    mean_fn = jax.vmap(jax.vmap(mediator_mean, in_axes=(None, 0)), in_axes=(0, None))
    acts = jnp.asarray([0.0, 1.0], s.dtype)
    mean, mean_next = mean_fn(s, acts), mean_fn(s_next, acts)
    p1 = jax.vmap(behaviour_prob_one)(s)
    r_fn = jax.vmap(reward_mean)
    r_m = jnp.stack([r_fn(s, jnp.full(n, b, s.dtype), m) for b in (0.0, 1.0)], axis=1)
    nodes, weights = hermite_nodes(dm, 2 * quadrature_nodes - 1)
    nodes, weights = jnp.asarray(nodes, s.dtype), jnp.asarray(weights, s.dtype)

    def expect(ar, am):
        vals = jax.vmap(lambda z: r_fn(s, jnp.full(n, ar, s.dtype), mean[:, am] + sd[:, am] * z))(nodes)
        return weights @ vals

    r_e = jnp.stack([jnp.stack([expect(ar, am) for am in (0, 1)], axis=1) for ar in (0.0, 1.0)],
                    axis=1)
    return NuisancePredictions(a * p1 + (1 - a) * (1 - p1), mean, sd, mean_next, sd, r_m, r_e)
