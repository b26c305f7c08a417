"""Default nuisance models (spec mediation.md §3, JAX-native replacements for the trees).

Protocol: a model is a small pytree (static sizes, traced ridge) with
``fit(key, rows, w) -> params`` (``rows`` the flat dict of ``Trajectories.flat()``,
``w`` the row weights) and pure predictor methods:

* behaviour policy π̂_b: ``prob_one(params, state) -> (n,)`` = P̂(A = 1 | s);
* mediator density p̂_m(·|s, a) = N(mean, diag sd²): ``mean(params, state, action) -> (n, dM)``,
  ``sd(params, state, action) -> (n, dM)``;
* reward mean r̂(s, a, m): ``mean(params, state, action, mediator) -> (n,)`` and
  ``expected(params, state, action, mean, sd) -> (n,)`` = E_{m ~ N(mean, sd²)} r̂(s, a, m).

The defaults:

* ``LogisticBehaviourModel``: logistic regression of A on [1, standardised s] (or on the
  spline basis h(s)) by a fixed number of ridge-Newton steps.
* ``GaussianMediatorModel``: per mediator coordinate, a mean linear in [1, h(s), a, a·h(s)]
  and a homoscedastic residual sd (weighted, ddof = 1).
* ``PolynomialRewardModel``: ridge regression of R on [1, h(s), g(m), a, a·h(s), a·g(m)],
  g = monomials of standardised m of total degree ≤ 3; E_m r̂ is exact (Gauss–Hermite).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxmed._src.small_linalg import spd_solve

from jaxmed._src.mediation.basis import (StateBasis, Standardizer, fit_standardizer,
                                         fit_state_basis, monomial_exponents, monomials,
                                         state_basis)
from jaxmed._src.mediation.gaussian_expectation import gaussian_expectation
from jaxmed._src.mediation.linear_solve import _cond_spd, weighted_ridge

__all__ = ["LogisticBehaviourModel", "LogisticBehaviourFit", "GaussianMediatorModel",
           "GaussianMediatorFit", "PolynomialRewardModel", "PolynomialRewardFit"]


def _register(cls, data_fields):
    names = [f.name for f in dataclasses.fields(cls)]
    jax.tree_util.register_dataclass(cls, data_fields=list(data_fields),
                                     meta_fields=[n for n in names if n not in data_fields])
    return cls


class LogisticBehaviourFit(NamedTuple):
    basis: object
    coef: jax.Array
    cond: jax.Array


@dataclasses.dataclass(frozen=True)
class LogisticBehaviourModel:
    """π̂_b(1|s) = expit(x(s)ᵀβ), x = [1, standardised s] or [1, h(s)]; ridge-Newton fit."""

    basis: str = "linear"
    n_knots: int = 5
    iterations: int = 25
    ridge: float = 1e-4
    weighted_knots: bool = True

    def _design(self, basis, state):
        if self.basis == "linear":
            z = basis(state)
        else:
            z = state_basis(basis, state)
        return jnp.concatenate([jnp.ones_like(z[:, :1]), z], axis=1)

    def fit(self, key, rows, w) -> LogisticBehaviourFit:
        del key
        state, y = rows["state"], rows["action"]
        basis = (fit_standardizer(state, w) if self.basis == "linear"
                 else fit_state_basis(state, w, self.n_knots, self.weighted_knots))
        x = self._design(basis, state)
        total = jnp.sum(w)
        pen = jnp.ones(x.shape[1], x.dtype).at[0].set(0.0)

        def newton(_, beta):
            p = jax.nn.sigmoid(x @ beta)
            grad = x.T @ (w * (y - p)) / total - self.ridge * pen * beta
            hess = (x * (w * p * (1 - p))[:, None]).T @ x / total + self.ridge * jnp.diag(pen)
            return beta + spd_solve(hess, grad)

        beta = jax.lax.fori_loop(0, self.iterations, newton, jnp.zeros(x.shape[1], x.dtype))
        p = jax.nn.sigmoid(x @ beta)
        hess = (x * (w * p * (1 - p))[:, None]).T @ x / total + self.ridge * jnp.diag(pen)
        return LogisticBehaviourFit(basis, beta, _cond_spd(hess))

    def prob_one(self, params: LogisticBehaviourFit, state):
        return jax.nn.sigmoid(self._design(params.basis, state) @ params.coef)


_register(LogisticBehaviourModel, ["ridge"])


class GaussianMediatorFit(NamedTuple):
    basis: StateBasis
    coef: jax.Array  # (p, dM)
    sd: jax.Array  # (dM,)
    cond: jax.Array


@dataclasses.dataclass(frozen=True)
class GaussianMediatorModel:
    """p̂_m(·|s, a) = N(μ̂(s, a), diag σ̂²), μ̂_j linear in [1, h(s), a, a·h(s)], σ̂ constant."""

    n_knots: int = 5
    ridge: float = 1e-6
    weighted_knots: bool = True

    @staticmethod
    def _design(basis, state, action):
        h = state_basis(basis, state)
        one = jnp.ones_like(h[:, :1])
        a = jnp.broadcast_to(jnp.asarray(action, h.dtype), h.shape[:1])[:, None]
        return jnp.concatenate([one, h, a, a * h], axis=1)

    def fit(self, key, rows, w) -> GaussianMediatorFit:
        del key
        basis = fit_state_basis(rows["state"], w, self.n_knots, self.weighted_knots)
        x = self._design(basis, rows["state"], rows["action"])
        pen = jnp.ones(x.shape[1], x.dtype).at[0].set(0.0)
        coef, cond = weighted_ridge(x, rows["mediator"], w, self.ridge, pen)
        resid = rows["mediator"] - x @ coef
        sd = jnp.sqrt(jnp.sum(w[:, None] * resid ** 2, axis=0) / (jnp.sum(w) - 1.0))
        return GaussianMediatorFit(basis, coef, sd, cond)

    def mean(self, params: GaussianMediatorFit, state, action):
        # x(s, a)ᵀβ by blocks, without materialising the (n, 2p + 2) design for each action
        h = state_basis(params.basis, state)
        p, c = h.shape[1], params.coef
        a = jnp.broadcast_to(jnp.asarray(action, h.dtype), h.shape[:1])[:, None]
        return c[0] + h @ c[1:1 + p] + a * (c[1 + p] + h @ c[2 + p:])

    def sd(self, params: GaussianMediatorFit, state, action):
        del action
        return jnp.broadcast_to(params.sd, (state.shape[0], params.sd.shape[0]))


_register(GaussianMediatorModel, ["ridge"])


class PolynomialRewardFit(NamedTuple):
    basis: StateBasis
    mediator_scale: Standardizer
    coef: jax.Array
    cond: jax.Array


@dataclasses.dataclass(frozen=True)
class PolynomialRewardModel:
    """r̂(s, a, m) = x(s, a, m)ᵀβ, x = [1, h(s), g(m), a, a·h(s), a·g(m)], ridge fit.

    g(m) holds the monomials of standardised m of total degree 1..``degree`` (≤ 3), so
    E_{m ~ N(μ, diag σ²)} r̂(s, a, m) is exact with two Gauss–Hermite nodes per coordinate.
    """

    n_knots: int = 5
    degree: int = 3
    ridge: float = 1e-6
    weighted_knots: bool = True

    def _monomials(self, params, mediator):
        return monomials(params.mediator_scale(mediator),
                         monomial_exponents(mediator.shape[-1], self.degree))

    def _design(self, params, state, action, mediator, h=None, g=None):
        h = state_basis(params.basis, state) if h is None else h
        g = self._monomials(params, mediator) if g is None else g
        one = jnp.ones_like(h[:, :1])
        a = jnp.broadcast_to(jnp.asarray(action, h.dtype), h.shape[:1])[:, None]
        return jnp.concatenate([one, h, g, a, a * h, a * g], axis=1)

    def fit(self, key, rows, w) -> PolynomialRewardFit:
        del key
        basis = fit_state_basis(rows["state"], w, self.n_knots, self.weighted_knots)
        scale = fit_standardizer(rows["mediator"], w)
        params = PolynomialRewardFit(basis, scale, None, None)
        x = self._design(params, rows["state"], rows["action"], rows["mediator"])
        pen = jnp.ones(x.shape[1], x.dtype).at[0].set(0.0)
        coef, cond = weighted_ridge(x, rows["reward"], w, self.ridge, pen)
        return PolynomialRewardFit(basis, scale, coef, cond)

    @staticmethod
    def _predict(params, h, g, action):
        """x(s, a, m)ᵀβ by blocks, without materialising the (n, 2(p + q) + 2) design."""
        p, q, c = h.shape[1], g.shape[1], params.coef
        a = jnp.broadcast_to(jnp.asarray(action, h.dtype), h.shape[:1])
        base = c[0] + h @ c[1:1 + p] + g @ c[1 + p:1 + p + q]
        inter = c[1 + p + q] + h @ c[2 + p + q:2 + 2 * p + q] + g @ c[2 + 2 * p + q:]
        return base + a * inter

    def mean(self, params: PolynomialRewardFit, state, action, mediator):
        return self._predict(params, state_basis(params.basis, state), self._monomials(params, mediator),
                             action)

    def expected(self, params: PolynomialRewardFit, state, action, mean, sd):
        # r̂ is linear in g(m): E r̂ = x(s, a, E g(m))ᵀβ, with E g exact by Gauss–Hermite
        eg = gaussian_expectation(lambda m: self._monomials(params, m), mean, sd, degree=3)
        return self._predict(params, state_basis(params.basis, state), eg, action)


_register(PolynomialRewardModel, ["ridge"])
