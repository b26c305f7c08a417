"""Q-functions and the five average rewards η by average-reward LSTD (spec mediation.md §4).

Features φ(s, m) (``q_basis``):
* ``"spline"`` (default): [h(s), monomials of standardised m of degree ≤ 3], additive in s and m
  (with ``q_time_interactions="linear"`` also calendar time's block of h times the linear terms
  of the other state coordinates and of m: products of a function of s with a polynomial of
  degree 1 in m, so the Gaussian expectations stay exact);
* ``"parity"``: the original's fixed-span de Boor cubics of (s, m) (§4.1, unscaled).
Both are polynomials of degree ≤ 3 in each mediator coordinate, so every expectation over
the Gaussian mediator model is exact (two-node Gauss–Hermite per coordinate) instead of the
original's 50-draw Monte Carlo.

Action coding u(s, m, a) = [(1−a)φ, aφ, a]; U = [u; 1], whose last coefficient is η.
For a policy ν the LSTD system is (§4.2)

    Σ^ν β = b,  Σ^ν = mean_k U_k (U_k − Ξ^ν_k)ᵀ + λ_Q P,  b = mean_k U_k Y_k,

with Ξ^ν_k = [Ē^ν u(S'_k); 0] and weighted means over rows. P is the identity less the η
coordinate (the identity with ``q_ridge_eta``, bug B2). Σ^ν is not symmetric: it is solved by
LU (``small_linalg.general_solve``), once per policy with all its targets as right-hand sides.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src.mediation.basis import (fit_parity_basis, fit_standardizer, fit_state_basis,
                                         monomial_exponents, monomials, pairwise_interactions,
                                         parity_basis, state_basis)
from jaxmed._src.mediation import feature_blocks as fb
from jaxmed._src.mediation.binary import bernoulli_expectation, binary_indicator_features
from jaxmed._src.mediation.gaussian_expectation import expected_monomials, gaussian_expectation
from jaxmed._src.mediation.normal_solve import normal_solve
from jaxmed._src.mediation.q_systems import q_systems
from jaxmed._src.mediation.unstack import unstack

__all__ = ["QBasis", "fit_q_basis", "q_state_features", "q_features", "QFeatures", "q_feature_rows", "lstd_solve",
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


def q_state_features(basis: QBasis, state, config, feature_major: bool = False):
    """The state part of the spline φ: h(s), and with ``config.q_state_interactions = k > 0``
    and d_S ≥ 2 the products of the first k terms of each pair of coordinates' blocks of h
    (``basis.pairwise_interactions``). ``(n, ·)``, or ``(·, n)`` with ``feature_major``."""
    k = config.q_state_interactions
    if k and state.shape[-1] > 1:
        h = state_basis(basis.state, state)
        h = jnp.concatenate([h, pairwise_interactions(h, state.shape[-1], k)], axis=-1)
        return h.T if feature_major else h
    return state_basis(basis.state, state, feature_major=feature_major)


def _time_interactions(h, g, ds: int, dm: int, config, axis: int = -1, blocks: bool = False):
    """[h, g], and with ``config.q_time_interactions="linear"`` also the products of the
    last state coordinate's block of h (calendar time τ: its linear term and B-splines)
    with the linear terms of the other state coordinates and of m (the first ``dm``
    monomials of g). h starts with the ``ds`` per-coordinate blocks of ``state_basis``.
    Features on ``axis``: -1 (rows ``(n, ·)``) or 0 (feature-major ``(·, n)``); with
    ``blocks`` (feature-major only) the tuple of the pieces, not concatenated
    (``feature_blocks``)."""
    cat = lambda xs: jnp.concatenate(xs, axis=axis)  # noqa: E731
    if config.q_time_interactions == "none":
        return (h, g) if blocks else cat([h, g])
    k = config.state_knots + 4
    cols = (lambda x, sl: x[:, sl]) if axis == -1 else (lambda x, sl: x[sl])  # noqa: E731
    tau = cols(h, slice((ds - 1) * k, ds * k))
    others = cat([cols(h, slice(0, (ds - 1) * k, k)), cols(g, slice(0, dm))])
    if axis == -1:
        inter = (tau[:, :, None] * others[:, None, :]).reshape(h.shape[0], -1)
    else:
        inter = (tau[:, None, :] * others[None, :, :]).reshape(-1, h.shape[1])
    return (h, g, inter) if blocks else cat([h, g, inter])


def q_features(basis: QBasis, state, mediator, config, h=None):
    """φ(s, m) for rows ``state`` ``(n, dS)``, ``mediator`` ``(n, dM)`` -> ``(n, p)``."""
    if config.q_basis == "binary":
        return binary_indicator_features(jnp.concatenate([state, mediator], axis=-1))
    if config.q_basis == "parity":
        return parity_basis(basis.state, state, mediator)
    h = q_state_features(basis, state, config) if h is None else h
    ex = monomial_exponents(mediator.shape[-1], config.q_mediator_degree, config.q_mediator_cross)
    return _time_interactions(h, monomials(basis.mediator(mediator), ex), state.shape[-1],
                              mediator.shape[-1], config)


class QFeatures(NamedTuple):
    """φ(S, M) and E_{m ~ p̂(·|s, a)} φ(s, m) at S and S' for a = 0, 1, feature-major.

    Each matrix is a tuple of feature blocks ``(p_b, n)`` stacked along the features
    (``feature_blocks``): the spline φ = [h(s); g(m)] keeps the state part h as its own block,
    shared by φ(S, M) and E_a φ(S, ·) (and h(S') by E'_a φ) instead of copied into five
    concatenated matrices. Feature-major because the LSTD Grams (``q_systems``) and the
    temporal differences contract the rows: neither the forward pass nor the IJ SE's reverse
    passes transpose or re-stack them (the row-major ``(n, 2, p)`` blocks cost about a third
    of each reverse pass at N = 1500, T = 25).
    """

    phi_obs: tuple  # blocks of φ(S, M), (p, n) in all
    phi_exp: tuple  # (blocks a = 0, blocks a = 1) of E_a φ(S, ·)
    phi_exp_next: tuple  # the same at S'

    @classmethod
    def from_rows(cls, phi, ephi, ephi_next) -> "QFeatures":
        """From row-major arrays φ ``(n, p)`` and E φ, E' φ ``(n, 2, p)`` (one block each)."""
        per_action = lambda e: tuple((jnp.asarray(e)[:, a].T,) for a in (0, 1))  # noqa: E731
        return cls((jnp.asarray(phi).T,), per_action(ephi), per_action(ephi_next))

    def matrices(self):
        """The concatenated feature-major matrices ``(φ, (E_0 φ, E_1 φ), (E'_0 φ, E'_1 φ))``,
        each ``(p, n)``."""
        both = lambda fs: tuple(fb.concat(f) for f in fs)  # noqa: E731
        return fb.concat(self.phi_obs), both(self.phi_exp), both(self.phi_exp_next)

    def rows(self):
        """The row-major arrays ``(φ (n, p), E φ (n, 2, p), E' φ (n, 2, p))``."""
        phi, ephi, ephi_next = self.matrices()
        stack = lambda fs: jnp.stack([f.T for f in fs], axis=1)  # noqa: E731
        return phi.T, stack(ephi), stack(ephi_next)


def q_feature_rows(basis: QBasis, rows, preds, config) -> QFeatures:
    s, s_next = rows["state"], rows["next_state"]
    spline = config.q_basis == "spline"
    # the state part h(s) of the spline φ, feature-major, shared by the blocks at S (S')
    h = q_state_features(basis, s, config, feature_major=True) if spline else None
    h_next = q_state_features(basis, s_next, config, feature_major=True) if spline else None
    ds, dm = s.shape[-1], rows["mediator"].shape[-1]
    ex = monomial_exponents(dm, config.q_mediator_degree, config.q_mediator_cross)

    def expect(state, mean, sd, hh):
        if not spline:
            fn = lambda m: q_features(basis, state, m, config)  # noqa: E731
            if config.mediator_law == "bernoulli":
                return (bernoulli_expectation(fn, mean).T,)
            return (gaussian_expectation(fn, mean, sd).T,)
        # φ = [h(s), g(m)]: only the mediator monomials g need the expectation (integrating
        # h(s) as well only re-adds h with weights summing to one, at 4× the memory traffic)
        if config.mediator_law == "bernoulli":
            eg = bernoulli_expectation(lambda m: monomials(basis.mediator(m), ex), mean).T
        else:
            eg = expected_monomials(mean, sd, basis.mediator.center, basis.mediator.scale, ex,
                                    feature_major=True)
        return _time_interactions(hh, eg, ds, dm, config, axis=0, blocks=True)

    if spline:
        g = monomials(basis.mediator(rows["mediator"]), ex, feature_major=True)
        phi_obs = _time_interactions(h, g, ds, dm, config, axis=0, blocks=True)
    else:
        phi_obs = (q_features(basis, s, rows["mediator"], config).T,)
    # per-action slices by one split each (a cheap reverse pass, see ``unstack``)
    mean, sd = unstack(preds.mediator_mean, 1), unstack(preds.mediator_sd, 1)
    mean_next, sd_next = unstack(preds.mediator_mean_next, 1), unstack(preds.mediator_sd_next, 1)
    phi_exp = tuple(expect(s, mean[a], sd[a], h) for a in (0, 1))
    phi_next = tuple(expect(s_next, mean_next[a], sd_next[a], h_next) for a in (0, 1))
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
      ``(β (q, r), 1-norm condition number of Σ)``; derivatives by ``normal_solve``'s
      row-wise rule.
    """
    (beta,), (cond,) = normal_solve(u.T, y.T, w, ridge * jnp.diag(penalize),
                                    (tuple(range(y.shape[1])),), zs=((u - xi).T,),
                                    symmetric=False)
    return beta, cond


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

    The three LSTD systems share the left factor U_k w_k: their matrices and every
    right-hand side come from one pass over the rows that never builds U or U − Ξ as arrays
    (``q_systems``), and each system is solved by one LU factorisation (which also gives its
    condition number).

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
    natural = config.natural_decomposition
    phi, _, (f0n, f1n) = feats
    q = 2 * fb.dim(phi) + 2
    dt = phi[0].dtype
    pen = jnp.ones(q, dt)
    if not config.q_ridge_eta:
        pen = pen.at[-1].set(0.0)
    r_obs = rows["reward"]
    r_a0_m = preds.reward_at_mediator[:, a0]
    if not natural:
        y3 = preds.reward_expected[:, a0, a0]
        ys = jnp.stack([r_obs, r_a0_m, y3])  # targets: e (r, r(a0, M), y3), G (y3), 0 (r)
        tgt_e, tgt_g, tgt_0 = [0, 1, 2], [2], [0]
    else:
        pe_a = jnp.stack([1 - pe_s, pe_s], 1)
        y2 = jnp.sum(pe_a * preds.reward_at_mediator, 1)
        y3 = jnp.sum(pe_a * jnp.stack([preds.reward_expected[:, 0, 0],
                                       preds.reward_expected[:, 1, 1]], 1), 1)
        ys = jnp.stack([r_obs, y2, y3])  # targets: e (r), G (y3), 0 (y2, y3, r)
        tgt_e, tgt_g, tgt_0 = [0], [2], [1, 2, 0]
    # the three systems from their factors φ, Ē'_0 φ, Ē'_1 φ and π_e(1 | S'), with derivatives by
    # the row-wise rule (``q_systems``)
    kind_g = "g_natural" if natural else "g"
    (beta_e, beta_g, beta_0), (c_e, c_g, c_0) = q_systems(
        phi, f0n, f1n, pe_next, jnp.asarray(a, dt), ys, w, ridge * jnp.diag(pen),
        (("pe", tgt_e), (kind_g, tgt_g), ("p0", tgt_0)), a0)
    if not natural:
        beta = jnp.stack([beta_e[:, 0], beta_e[:, 1], beta_e[:, 2], beta_g[:, 0], beta_0[:, 0]])
    else:
        beta = jnp.stack([beta_e[:, 0], beta_0[:, 0], beta_0[:, 1], beta_g[:, 0], beta_0[:, 2]])
    delta = q_temporal_differences(a, feats, beta, pe_s, pe_next, a0, natural)
    return QResult(beta[:, -1], delta, beta, jnp.stack([c_e, c_g, c_0]))


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
    phi, ephi, ephi_next = feats
    p = fb.dim(phi)
    # every Δ is a sum of u(F, a)ᵀβ_k = (1 − a) Fᵀβ_k⁰ + a Fᵀβ_k¹ + a β_k^a over the feature
    # blocks F ∈ {φ, Ē_0 φ, Ē_1 φ, Ē'_0 φ, Ē'_1 φ}: one product of each feature-major block
    # with the (p, 10) coefficient blocks, never a (n, 2p + 2) action-coded matrix; the
    # (10, n) products' rows by one split (a cheap reverse pass, see ``unstack``)
    coef = jnp.concatenate([beta[:, :p], beta[:, p:2 * p]], axis=0)  # (10, p)
    prod = [unstack(x, 0) for x in fb.left_dots(coef, (phi, *ephi, *ephi_next))]
    ba = beta[:, 2 * p]  # (5,) coefficients of the action indicator

    def u_dot(f, act, k):
        """u(F_f, act)ᵀ β_k[:-1] per row."""
        return (1 - act) * prod[f][k] + act * (prod[f][5 + k] + ba[k])

    def ephi_a_dot(act, k):  # u(Ē_A φ, act)ᵀβ_k with Ē_A φ = a Ē_1 φ + (1 − a) Ē_0 φ
        return (1 - act) * (a * prod[2][k] + (1 - a) * prod[1][k]) + act * (
            a * prod[2][5 + k] + (1 - a) * prod[1][5 + k] + ba[k])

    def xi_pe_dot(k):  # Ξ^{π_e}ᵀβ_k = π_e' u(Ē'_1 φ, 1) + (1 − π_e') u(Ē'_0 φ, 0)
        return pe_next * u_dot(4, 1.0, k) + (1 - pe_next) * u_dot(3, 0.0, k)

    def xi_p0_dot(k):
        return u_dot(3 + a0, float(a0), k)

    def xi_g_dot(k):
        if natural:
            return (1 - pe_next) * u_dot(3 + a0, 0.0, k) + pe_next * u_dot(3 + a0, 1.0, k)
        # u(π_e' Ē'_1 φ + (1 − π_e') Ē'_0 φ, a0)
        if a0 == 0:
            return pe_next * prod[4][k] + (1 - pe_next) * prod[3][k]
        return pe_next * prod[4][5 + k] + (1 - pe_next) * prod[3][5 + k] + ba[k]

    if natural:
        xi_23 = xi_p0_dot
        direct = [(1 - pe_s, 0.0), (pe_s, 1.0)]  # Δ4b: Σ_a π_e(a|S)[...]
    else:
        xi_23 = xi_pe_dot
        direct = [(1.0, float(a0))]  # Δ4b: Σ_a π_0(a|S)[...]
    d1 = xi_pe_dot(0) - ephi_a_dot(a, 0)
    d2 = xi_23(1) - ephi_a_dot(a, 1)
    d3 = xi_23(2) - ephi_a_dot(a, 2)
    d5 = xi_p0_dot(4) - ephi_a_dot(a, 4)
    d4a = xi_g_dot(3) - u_dot(0, a, 3)
    d4b = sum(prob * (u_dot(0, act, 3) - ephi_a_dot(act, 3)) for prob, act in direct)
    return jnp.stack([d1, d2, d3, d4a, d4b, d5], axis=1)
