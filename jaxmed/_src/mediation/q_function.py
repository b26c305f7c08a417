"""Q-functions and the five average rewards η by average-reward LSTD (spec mediation.md §4).

Features φ(s, m) (``q_basis``):
* ``"spline"`` (default): [h(s), monomials of standardised m of degree ≤ 3], additive in s and m;
* ``"parity"``: the original's fixed-span de Boor cubics of (s, m) (§4.1, unscaled).
Both are polynomials of degree ≤ 3 in each mediator coordinate, so every expectation over
the Gaussian mediator model is exact (two-node Gauss–Hermite per coordinate) instead of the
original's 50-draw Monte Carlo.

Action coding u(s, m, a) = [(1−a)φ, aφ, a]; U = [u; 1], whose last coefficient is η.
For a policy ν the LSTD system is (§4.2)

    Σ^ν β = b,  Σ^ν = mean_k U_k (U_k − Ξ^ν_k)ᵀ + λ_Q P,  b = mean_k U_k Y_k,

with Ξ^ν_k = [Ē^ν u(S'_k); 0] and weighted means over rows. P is the identity less the η
coordinate (the identity with ``q_ridge_eta``, bug B2). Σ^ν is not symmetric: it is solved by
LU (``jnp.linalg.solve``), once per policy with all its targets as right-hand sides.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src import small_linalg

from jaxmed._src.mediation.basis import (fit_parity_basis, fit_standardizer, fit_state_basis,
                                         monomial_exponents, monomials, parity_basis, state_basis)
from jaxmed._src.mediation.binary import bernoulli_expectation, binary_indicator_features
from jaxmed._src.mediation.gaussian_expectation import gaussian_expectation

__all__ = ["QBasis", "fit_q_basis", "q_features", "QFeatures", "q_feature_rows", "lstd_solve",
           "QResult", "fit_q_functions", "q_temporal_differences"]


class QBasis(NamedTuple):
    """Data-dependent constants of φ (a state basis and a mediator standardiser, or parity knots)."""

    state: object
    mediator: object


def fit_q_basis(rows, w, config) -> QBasis:
    if config.q_basis == "binary":
        return QBasis(None, None)
    if config.q_basis == "parity":
        return QBasis(fit_parity_basis(rows["state"], rows["mediator"], w,
                                       weighted_knots=config.weighted_knots), None)
    return QBasis(fit_state_basis(rows["state"], w, config.state_knots, config.weighted_knots),
                  fit_standardizer(rows["mediator"], w))


def q_features(basis: QBasis, state, mediator, config, h=None):
    """φ(s, m) for rows ``state`` ``(n, dS)``, ``mediator`` ``(n, dM)`` -> ``(n, p)``."""
    if config.q_basis == "binary":
        return binary_indicator_features(jnp.concatenate([state, mediator], axis=-1))
    if config.q_basis == "parity":
        return parity_basis(basis.state, state, mediator)
    h = state_basis(basis.state, state) if h is None else h
    ex = monomial_exponents(mediator.shape[-1], config.q_mediator_degree, config.q_mediator_cross)
    return jnp.concatenate([h, monomials(basis.mediator(mediator), ex)], axis=-1)


def _u(phi, a):
    """u = [(1−a)φ, aφ, a] for ``phi`` ``(n, p)`` and ``a`` ``(n,)`` (or a scalar)."""
    a = jnp.broadcast_to(jnp.asarray(a, phi.dtype), phi.shape[:1])[:, None]
    return jnp.concatenate([(1 - a) * phi, a * phi, a], axis=1)


def _with(x, last):
    return jnp.concatenate([x, jnp.full(x.shape[:1] + (1,), last, x.dtype)], axis=1)


class QFeatures(NamedTuple):
    """Per-row feature blocks: φ(S, M) and E_{m ~ p̂(·|s, a)} φ(s, m) at S and S' for a = 0, 1."""

    phi_obs: jax.Array  # (n, p)
    phi_exp: jax.Array  # (n, 2, p)
    phi_exp_next: jax.Array  # (n, 2, p)


def q_feature_rows(basis: QBasis, rows, preds, config) -> QFeatures:
    s, s_next = rows["state"], rows["next_state"]
    spline = config.q_basis == "spline"
    h = state_basis(basis.state, s) if spline else None
    h_next = state_basis(basis.state, s_next) if spline else None

    def expect(state, mean, sd, hh):
        fn = lambda m: q_features(basis, state, m, config, h=hh)  # noqa: E731
        if config.mediator_law == "bernoulli":
            return bernoulli_expectation(fn, mean)
        if config.q_basis != "spline":
            return gaussian_expectation(fn, mean, sd)
        # φ = [h(s), g(m)]: only the mediator monomials g need the expectation (integrating
        # h(s) as well only re-adds h with weights summing to one, at 4× the memory traffic)
        ex = monomial_exponents(mean.shape[-1], config.q_mediator_degree, config.q_mediator_cross)
        eg = gaussian_expectation(lambda m: monomials(basis.mediator(m), ex), mean, sd)
        return jnp.concatenate([hh, eg], axis=-1)

    phi_obs = q_features(basis, s, rows["mediator"], config, h=h)
    phi_exp = jnp.stack([expect(s, preds.mediator_mean[:, a], preds.mediator_sd[:, a], h)
                         for a in (0, 1)], axis=1)
    phi_next = jnp.stack([expect(s_next, preds.mediator_mean_next[:, a],
                                 preds.mediator_sd_next[:, a], h_next) for a in (0, 1)], axis=1)
    return QFeatures(phi_obs, phi_exp, phi_next)


def lstd_solve(u, xi, y, w, ridge, penalize):
    """Solves Σ β = b with Σ = Σ_k w_k U_k (U_k − Ξ_k)ᵀ / Σw + ridge·diag(penalize), b = Σ w U Y / Σw.

    Args:
      u: ``(n, q)`` regressors U_k.
      xi: ``(n, q)`` expected next regressors Ξ_k.
      y: ``(n, r)`` targets (r right-hand sides, one LU factorisation).
      w: ``(n,)`` row weights.
      ridge: traced λ.
      penalize: ``(q,)`` 0/1 penalty mask.

    Returns:
      ``(β (q, r), 1-norm condition number of Σ)``.
    """
    total = jnp.sum(w)
    uw = u * w[:, None]
    sigma = uw.T @ (u - xi) / total + ridge * jnp.diag(penalize)
    b = uw.T @ y / total
    beta = small_linalg.general_solve(sigma, b)
    return beta, cond_1norm(sigma)


def cond_1norm(a):
    """1-norm condition number ‖A‖₁‖A⁻¹‖₁ (a diagnostic; the inverse is never used to solve).

    Computed from an LU solve against the identity rather than ``jnp.linalg.cond`` (an SVD),
    which was measured to stall when vmapped over replications on CPU.
    """
    a = jax.lax.stop_gradient(a)
    inv = small_linalg.general_solve(a, jnp.eye(a.shape[0], dtype=a.dtype))
    norm1 = lambda x: jnp.max(jnp.sum(jnp.abs(x), axis=0))
    return norm1(a) * norm1(inv)


class QResult(NamedTuple):
    """Outputs of the five Q-fits (§4.3) and their temporal differences (§4.4).

    Attributes:
      eta: ``(5,)`` η̂1..η̂5 (natural decomposition: η̂1, η̂6, η̂7, η̂8, η̂5).
      delta: ``(n, 6)`` per-row Δ1, Δ2, Δ3, Δ4a, Δ4b, Δ5.
      beta: ``(5, q)`` coefficient vectors (last entry η).
      cond: ``(3,)`` condition numbers of Σ^{π_e}, Σ^{G}, Σ^{π_0} (natural: Σ^{π_e}, Σ^{G'}, Σ^{π_0}).
    """

    eta: jax.Array
    delta: jax.Array
    beta: jax.Array
    cond: jax.Array


def fit_q_functions(rows, w, preds, feats: QFeatures, pe_s, pe_next, a0: int, ridge, config):
    """The five Q-fits sharing three Σ matrices, and the per-row temporal differences.

    Args:
      rows: flat rows; ``w`` ``(n,)`` row weights; ``preds`` ``NuisancePredictions``.
      feats: ``QFeatures`` of the rows.
      pe_s, pe_next: ``(n,)`` π_e(1 | S_k) and π_e(1 | S'_k).
      a0: the control action (static 0 or 1).
      ridge: λ_Q (traced).
      config: ``MediationConfig``.

    Returns:
      ``QResult``.
    """
    a = rows["action"]
    phi, ephi, ephi_next = feats
    p = phi.shape[1]
    big_u = _with(_u(phi, a), 1.0)
    pen = jnp.ones(2 * p + 2, phi.dtype)
    if not config.q_ridge_eta:
        pen = pen.at[-1].set(0.0)
    xi_pe, xi_g, xi_p0 = _next_regressors(feats, pe_next, a0, config.natural_decomposition)
    r_obs = rows["reward"]
    r_a0_m = preds.reward_at_mediator[:, a0]
    if not config.natural_decomposition:
        y3 = preds.reward_expected[:, a0, a0]
        beta_e, c_e = lstd_solve(big_u, xi_pe, jnp.stack([r_obs, r_a0_m, y3], 1), w, ridge, pen)
        beta_g, c_g = lstd_solve(big_u, xi_g, y3[:, None], w, ridge, pen)
        beta_0, c_0 = lstd_solve(big_u, xi_p0, r_obs[:, None], w, ridge, pen)
        beta = jnp.stack([beta_e[:, 0], beta_e[:, 1], beta_e[:, 2], beta_g[:, 0], beta_0[:, 0]])
    else:
        pe_a = jnp.stack([1 - pe_s, pe_s], 1)
        y2 = jnp.sum(pe_a * preds.reward_at_mediator, 1)
        y3 = jnp.sum(pe_a * jnp.stack([preds.reward_expected[:, 0, 0], preds.reward_expected[:, 1, 1]], 1), 1)
        beta_e, c_e = lstd_solve(big_u, xi_pe, r_obs[:, None], w, ridge, pen)
        beta_g, c_g = lstd_solve(big_u, xi_g, y3[:, None], w, ridge, pen)
        beta_0, c_0 = lstd_solve(big_u, xi_p0, jnp.stack([y2, y3, r_obs], 1), w, ridge, pen)
        beta = jnp.stack([beta_e[:, 0], beta_0[:, 0], beta_0[:, 1], beta_g[:, 0], beta_0[:, 2]])
    delta = q_temporal_differences(a, feats, beta, pe_s, pe_next, a0,
                                   config.natural_decomposition)
    return QResult(beta[:, -1], delta, beta, jnp.stack([c_e, c_g, c_0]))


def _next_regressors(feats: QFeatures, pe_next, a0: int, natural: bool):
    """Ξ^{π_e}, Ξ^{G} (natural: Ξ^{G'}), Ξ^{π_0}: expected next regressors [Ē^ν u(S'); 0]."""
    ephi_next = feats.phi_exp_next
    xi_pe = _with(pe_next[:, None] * _u(ephi_next[:, 1], 1.0)
                  + (1 - pe_next[:, None]) * _u(ephi_next[:, 0], 0.0), 0.0)
    xi_p0 = _with(_u(ephi_next[:, a0], float(a0)), 0.0)
    if not natural:
        xi_g = _u(pe_next[:, None] * ephi_next[:, 1] + (1 - pe_next[:, None]) * ephi_next[:, 0],
                  float(a0))
    else:
        xi_g = (1 - pe_next[:, None]) * _u(ephi_next[:, a0], 0.0) + pe_next[:, None] * _u(ephi_next[:, a0], 1.0)
    return xi_pe, _with(xi_g, 0.0), xi_p0


def q_temporal_differences(action, feats: QFeatures, beta, pe_s, pe_next, a0: int,
                           natural: bool = False):
    """Per-row temporal differences Δ1, Δ2, Δ3, Δ4a, Δ4b, Δ5 of five Q-functions (spec §4.4).

    Works for fitted or injected coefficients (e.g. oracle or perturbed Q-functions): with
    Q_k(s, m, a) = u(s, m, a)ᵀ β_k[:-1] and the feature expectations in ``feats`` (taken under
    the mediator model of the nuisance predictions),

    * Δ_k = V_k(S') − Q̄_k(S, A) for k = 1, 2, 3, 5, where Q̄_k(S, A) = E_{m~p̂(·|S,A)} Q_k(S, m, A)
      and V_k(S') the next-state value under π_e (k = 1, 2, 3; natural: π_0 for k = 2, 3) or π_0;
    * Δ4a = V_4^G(S') − Q_4(S, M, A) (observed M), Δ4b = Σ_a π_0(a|S) [Q_4(S, M, a) −
      E_{m~p̂(·|S,A)} Q_4(S, m, a)] (natural: Σ_a π_e(a|S)).

    Args:
      action: ``(n,)`` observed actions.
      feats: ``QFeatures``.
      beta: ``(5, 2p + 2)`` coefficients (the last entry, η, is not used).
      pe_s, pe_next: ``(n,)`` π_e(1 | S_k), π_e(1 | S'_k).
      a0: control action (static).
      natural: natural decomposition (§6.6).

    Returns:
      ``(n, 6)``.
    """
    a = action
    phi, ephi, _ = feats
    u_obs = _u(phi, a)
    ephi_a = a[:, None] * ephi[:, 1] + (1 - a[:, None]) * ephi[:, 0]
    ubar = _with(_u(ephi_a, a), 0.0)  # E_{m ~ p̂(·|S,A)} u(S, m, A)
    xi_pe, xi_g, xi_p0 = _next_regressors(feats, pe_next, a0, natural)
    if natural:
        xi_23 = xi_p0
        direct = [(1 - pe_s, 0.0), (pe_s, 1.0)]  # Δ4b: Σ_a π_e(a|S)[...]
    else:
        xi_23 = xi_pe
        direct = [(1.0, float(a0))]  # Δ4b: Σ_a π_0(a|S)[...]
    qbar = ubar @ beta.T  # (n, 5)
    d1 = xi_pe @ beta[0] - qbar[:, 0]
    d2 = xi_23 @ beta[1] - qbar[:, 1]
    d3 = xi_23 @ beta[2] - qbar[:, 2]
    d5 = xi_p0 @ beta[4] - qbar[:, 4]
    b4 = beta[3, :-1]
    d4a = xi_g @ beta[3] - u_obs @ b4
    d4b = sum(prob * (_u(phi, act) @ b4 - _u(ephi_a, act) @ b4) for prob, act in direct)
    return jnp.stack([d1, d2, d3, d4a, d4b, d5], axis=1)
