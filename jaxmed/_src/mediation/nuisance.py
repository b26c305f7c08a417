"""Per-row nuisance predictions: the interface between nuisance models and estimators.

Everything downstream of the nuisance models (Q-functions, state ratios, estimators;
spec mediation.md §4–§6) reads only a ``NuisancePredictions``. Fitted models produce one
(``fit_nuisances``); a user can also build one from any external model, e.g. scikit-learn
predictions (spec §13.1: jaxmed accepts injected nuisances), or from functions
(``nuisance_predictions_from_functions``). The mediator law is Gaussian with the given
means and sds, or, for binary mediators (``MediationConfig.mediator_law="bernoulli"``),
Bernoulli with the given means; either way every downstream expectation is closed-form.
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
      mediator_mean: ``(n, 2, dM)`` μ̂(S_k, a) for a = 0, 1 (with
        ``MediationConfig(mediator_law="bernoulli")``: P̂(M_j = 1 | S_k, a), the Bernoulli mean).
      mediator_sd: ``(n, 2, dM)`` σ̂(S_k, a) (unused by the Bernoulli law).
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
    """The JAX-native defaults configured by a ``MediationConfig``.

    ``config.nuisance_model == "tabular"``: the saturated models of ``tabular_models``
    (binary states and mediators); otherwise logistic / Gaussian / polynomial models.
    """
    if config.nuisance_model == "tabular":
        from jaxmed._src.mediation.tabular_models import (TabularBehaviourModel,
                                                          TabularMediatorModel,
                                                          TabularRewardModel)

        return NuisanceModels(TabularBehaviourModel(), TabularMediatorModel(), TabularRewardModel())
    from jaxmed._src.mediation.nuisance_models import (GaussianMediatorModel,
                                                       LogisticBehaviourModel,
                                                       PolynomialRewardModel)

    b = float(config.nuisance_boundary_quantile)
    mediator = GaussianMediatorModel(config.state_knots, config.mediator_ridge, config.weighted_knots,
                                     b)
    if not config.mediator_time:  # calendar time left out of the mediator model (issue 15)
        from jaxmed._src.mediation.time_free_mediator import TimeFreeMediatorModel

        mediator = TimeFreeMediatorModel(mediator)
    return NuisanceModels(
        LogisticBehaviourModel(config.behaviour_basis, config.state_knots,
                               config.behaviour_iterations, config.behaviour_ridge,
                               config.weighted_knots, b),
        mediator,
        PolynomialRewardModel(config.state_knots, config.reward_degree, config.reward_ridge,
                              config.weighted_knots, b))


def _both_actions(fn, state):
    """``[fn(state, 0), fn(state, 1)]`` (stack them on axis 1 for the predictions)."""
    n = state.shape[0]
    return [fn(state, jnp.full(n, float(b), state.dtype)) for b in (0, 1)]


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
    params = fit_nuisance_params(key, rows, w, models)
    return predict_nuisances(params, rows, models), params


def fit_nuisance_params(key, rows, w, models: NuisanceModels):
    """The fitted params ``(behaviour, mediator, reward)`` of :func:`fit_nuisances`."""
    kb, km, kr = jax.random.split(key, 3)
    return (models.behaviour.fit(kb, rows, w), models.mediator.fit(km, rows, w),
            models.reward.fit(kr, rows, w))


def predict_nuisances(params, rows, models: NuisanceModels) -> NuisancePredictions:
    """The predictions of :func:`fit_nuisances` on every row from fitted ``params``."""
    pb_params, pm_params, r_params = params
    s, s_next, a, m = rows["state"], rows["next_state"], rows["action"], rows["mediator"]
    p1 = models.behaviour.prob_one(pb_params, s)
    mean = _both_actions(lambda x, b: models.mediator.mean(pm_params, x, b), s)
    sd = _both_actions(lambda x, b: models.mediator.sd(pm_params, x, b), s)
    mean_next = _both_actions(lambda x, b: models.mediator.mean(pm_params, x, b), s_next)
    sd_next = _both_actions(lambda x, b: models.mediator.sd(pm_params, x, b), s_next)
    n = s.shape[0]
    r_m = jnp.stack([models.reward.mean(r_params, s, jnp.full(n, float(b), s.dtype), m)
                     for b in (0, 1)], axis=1)
    # the per-action means and sds are used before stacking: indexing the stacked arrays would
    # cost a zero-padded copy per slice in reverse mode (the IJ SE)
    r_e = jnp.stack([jnp.stack([models.reward.expected(r_params, s, jnp.full(n, float(ar), s.dtype),
                                                       mean[am], sd[am]) for am in (0, 1)],
                               axis=1) for ar in (0, 1)], axis=1)
    stack = lambda pair: jnp.stack(pair, axis=1)  # noqa: E731
    return NuisancePredictions(a * p1 + (1 - a) * (1 - p1), stack(mean), stack(sd),
                               stack(mean_next), stack(sd_next), r_m, r_e)


def nuisance_predictions_from_functions(data, *, behaviour_prob_one: Callable,
                                        mediator_mean: Callable, mediator_sd,
                                        reward_mean: Callable,
                                        quadrature_nodes: int = 20,
                                        mediator_law: str = "gaussian") -> NuisancePredictions:
    """Builds ``NuisancePredictions`` from plain functions (e.g. known true nuisances).

    Args:
      data: ``Trajectories``.
      behaviour_prob_one: ``f(state (dS,)) -> P(A = 1 | state)``.
      mediator_mean: ``f(state (dS,), action ()) -> (dM,)``: the Gaussian mean, or with
        ``mediator_law="bernoulli"`` the probabilities P(M_j = 1 | state, action).
      mediator_sd: ``(dM,)`` constant mediator sds (Gaussian law; ignored for Bernoulli,
        where the sd fields are set to sqrt(p(1 − p))).
      reward_mean: ``f(state (dS,), action (), mediator (dM,)) -> ()``.
      quadrature_nodes: Gauss–Hermite nodes per mediator coordinate for E_m r (exact for
        polynomial rewards of degree < 2·nodes; an approximation otherwise).
      mediator_law: ``"gaussian"`` or ``"bernoulli"`` (exact sums over m ∈ {0, 1}^dM; use with
        ``MediationConfig(mediator_law="bernoulli")``).

    Returns:
      ``NuisancePredictions`` for the flat rows of ``data``.
    """
    if mediator_law not in ("gaussian", "bernoulli"):
        raise ValueError(f"mediator_law: expected 'gaussian' or 'bernoulli', got {mediator_law!r}")
    rows = data.flat()
    s, s_next, a, m = (jnp.asarray(rows[k]) for k in ("state", "next_state", "action", "mediator"))
    n, dm = m.shape
    mean_fn = jax.vmap(jax.vmap(mediator_mean, in_axes=(None, 0)), in_axes=(0, None))
    acts = jnp.asarray([0.0, 1.0], s.dtype)
    mean, mean_next = mean_fn(s, acts), mean_fn(s_next, acts)
    p1 = jax.vmap(behaviour_prob_one)(s)
    r_fn = jax.vmap(reward_mean)
    r_m = jnp.stack([r_fn(s, jnp.full(n, b, s.dtype), m) for b in (0.0, 1.0)], axis=1)
    if mediator_law == "bernoulli":
        from jaxmed._src.mediation.binary import bernoulli_expectation

        def bexpect(ar, am):
            return bernoulli_expectation(lambda mm: r_fn(s, jnp.full(n, ar, s.dtype), mm),
                                         mean[:, am])

        r_e = jnp.stack([jnp.stack([bexpect(ar, am) for am in (0, 1)], axis=1)
                         for ar in (0.0, 1.0)], axis=1)
        bsd = lambda p: jnp.sqrt(p * (1.0 - p))  # noqa: E731
        return NuisancePredictions(a * p1 + (1 - a) * (1 - p1), mean, bsd(mean), mean_next,
                                   bsd(mean_next), r_m, r_e)
    sd = jnp.broadcast_to(jnp.asarray(mediator_sd, s.dtype), (n, 2, dm))
    nodes, weights = hermite_nodes(dm, 2 * quadrature_nodes - 1)
    nodes, weights = jnp.asarray(nodes, s.dtype), jnp.asarray(weights, s.dtype)

    def expect(ar, am):
        vals = jax.vmap(lambda z: r_fn(s, jnp.full(n, ar, s.dtype), mean[:, am] + sd[:, am] * z))(nodes)
        return weights @ vals

    r_e = jnp.stack([jnp.stack([expect(ar, am) for am in (0, 1)], axis=1) for ar in (0.0, 1.0)],
                    axis=1)
    return NuisancePredictions(a * p1 + (1 - a) * (1 - p1), mean, sd, mean_next, sd, r_m, r_e)
