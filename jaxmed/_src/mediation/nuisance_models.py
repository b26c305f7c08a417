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
from jaxmed._src.mediation.gaussian_expectation import expected_monomials
from jaxmed._src.mediation.linear_solve import action_coded_ridge
from jaxmed._src.mediation.normal_solve import cond_1norm

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
    boundary_quantile: float = 0.0  # of h(s)'s boundary knots (``basis.fit_state_basis``)

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
                 else fit_state_basis(state, w, self.n_knots, self.weighted_knots,
                                      self.boundary_quantile))
        x = self._design(basis, state)
        total = jnp.sum(w)
        pen = jnp.ones(x.shape[1], x.dtype).at[0].set(0.0)

        def newton_step(beta, x, y, w, total, ridge):
            p = jax.nn.sigmoid(x @ beta)
            grad = x.T @ (w * (y - p)) / total - ridge * pen * beta
            hess = (x * (w * p * (1 - p))[:, None]).T @ x / total + ridge * jnp.diag(pen)
            return spd_solve(hess, grad)

        # Newton converges quadratically: iterate (without derivatives) until the step is at
        # rounding level or ``iterations − 1`` steps are done, then take the last step with
        # derivatives. Its value equals the fixed-count iteration's to rounding, and its
        # derivative is the implicit-function derivative of the score equation's root.
        frozen = jax.lax.stop_gradient((x, y, w, total, self.ridge))
        beta0 = jnp.zeros(x.shape[1], x.dtype)
        if self.iterations <= 0:
            beta = beta0
        else:
            def keep_going(carry):
                k, beta, step = carry
                big = jnp.max(jnp.abs(step)) > 1e-12 * (1.0 + jnp.max(jnp.abs(beta)))
                return (k < self.iterations - 1) & big

            def body(carry):
                k, beta, _ = carry
                step = newton_step(beta, *frozen)
                return k + 1, beta + step, step

            inf = jnp.full_like(beta0, jnp.inf)
            _, beta_hat, _ = jax.lax.while_loop(keep_going, body, (0, beta0, inf))
            beta_hat = jax.lax.stop_gradient(beta_hat)
            beta = beta_hat + newton_step(beta_hat, x, y, w, total, self.ridge)
        p = jax.nn.sigmoid(x @ beta)
        hess = (x * (w * p * (1 - p))[:, None]).T @ x / total + self.ridge * jnp.diag(pen)
        return LogisticBehaviourFit(basis, beta, cond_1norm(hess, symmetric=True))

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
    boundary_quantile: float = 0.0  # of h(s)'s boundary knots (``basis.fit_state_basis``)

    def fit(self, key, rows, w) -> GaussianMediatorFit:
        del key
        basis = fit_state_basis(rows["state"], w, self.n_knots, self.weighted_knots,
                                self.boundary_quantile)
        h = state_basis(basis, rows["state"])
        # the design [1, h, a, a·h] = [z, a·z] is never built: its normal matrix comes by blocks
        z = jnp.concatenate([jnp.ones((1, h.shape[0]), h.dtype), h.T], axis=0)
        pen = jnp.ones(2 * z.shape[0], h.dtype).at[0].set(0.0)
        coef, cond = action_coded_ridge(z, rows["action"], rows["mediator"], w, self.ridge, pen)
        fitted = GaussianMediatorFit(basis, coef, None, cond)
        resid = rows["mediator"] - self.mean(fitted, rows["state"], rows["action"])
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

    g(m) holds the monomials of standardised m of total degree 1..``degree`` (≤ 5; default 3),
    so E_{m ~ N(μ, diag σ²)} r̂(s, a, m) is exact (products of univariate Gaussian moments,
    ``expected_monomials``).
    """

    n_knots: int = 5
    degree: int = 3
    ridge: float = 1e-6
    weighted_knots: bool = True
    boundary_quantile: float = 0.0  # of h(s)'s boundary knots (``basis.fit_state_basis``)

    def _monomials(self, params, mediator):
        return monomials(params.mediator_scale(mediator),
                         monomial_exponents(mediator.shape[-1], self.degree))

    def fit(self, key, rows, w) -> PolynomialRewardFit:
        del key
        basis = fit_state_basis(rows["state"], w, self.n_knots, self.weighted_knots,
                                self.boundary_quantile)
        scale = fit_standardizer(rows["mediator"], w)
        params = PolynomialRewardFit(basis, scale, None, None)
        h = state_basis(basis, rows["state"])
        g = self._monomials(params, rows["mediator"])
        # the design [1, h, g, a, a·h, a·g] = [z, a·z] is never built: normal matrix by blocks
        z = jnp.concatenate([jnp.ones((1, h.shape[0]), h.dtype), h.T, g.T], axis=0)
        pen = jnp.ones(2 * z.shape[0], h.dtype).at[0].set(0.0)
        coef, cond = action_coded_ridge(z, rows["action"], rows["reward"], w, self.ridge, pen)
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
        eg = expected_monomials(mean, sd, params.mediator_scale.center, params.mediator_scale.scale,
                                monomial_exponents(mean.shape[-1], self.degree))
        return self._predict(params, state_basis(params.basis, state), eg, action)


_register(PolynomialRewardModel, ["ridge"])
