"""Plain numpy/scipy float64 comparator of jaxmed's default mediation pipeline.

Benchmark-only (not used by the library): an independent re-implementation of
``jaxmed.mediation_effects`` with ``MediationConfig()`` defaults (spec mediation.md §3–§6.7)
for one dataset with unit trajectory weights and no bootstrap:

* nuisances: logistic behaviour policy on [1, standardised s] by 25 ridge-Newton steps;
  Gaussian mediator with mean linear in [1, h(s), a, a·h(s)] and a constant residual sd
  (ddof = 1); ridge polynomial reward on [1, h(s), g(m), a, a·h(s), a·g(m)];
  h(s) = [z, cubic B-splines of z on clamped quantile knots (first dropped)], z clamped to
  the knot range for the B-splines (scipy ``BSpline.design_matrix``); g = monomials of
  standardised m of total degree 1..3;
* Gaussian expectations of monomials by closed-form raw moments (not quadrature);
* Q-functions by average-reward LSTD with features [h(s), g(m)], action coding
  [(1−a)φ, aφ, a, 1], three LU solves (π_e, G, π_0);
* state ratios by the ridge least-squares closed form on [1, sqrt(2/D) cos(Wᵀ ŝ + b)];
  W, b are inputs (the caller draws them; jaxmed draws them from its key);
* MR, DM, MIS1, MIS2, Baseline_DM/IPW/MR × IDE, IME, DDE, DME, ATE; trajectory-cluster SEs.

Everything is vectorised over rows; replications are a Python loop over calls.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.interpolate import BSpline
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit

ESTIMATORS = ("MR", "DM", "MIS1", "MIS2", "Baseline_DM", "Baseline_IPW", "Baseline_MR")
EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")

DEFAULTS = dict(state_knots=5, reward_degree=3, q_degree=3, ratio_features=15,
                behaviour_iterations=25, q_ridge=1e-4, ratio_ridge=1e-4, reward_ridge=1e-6,
                mediator_ridge=1e-6, behaviour_ridge=1e-4, rho_trunc=50.0, ratio_trunc=500.0,
                nuisance_boundary_quantile=0.0025)


# ---------------------------------------------------------------------------------- helpers
def wmean(x, w):
    return np.tensordot(w, x, axes=(0, 0)) / w.sum()


def wstd(x, w):
    mu = wmean(x, w)
    return np.sqrt(np.tensordot(w, (x - mu) ** 2, axes=(0, 0)) / (w.sum() - 1.0))


def standardizer(x, w):
    sd = wstd(x, w)
    return wmean(x, w), np.where(sd > 0, sd, 1.0)


def exponents(dim, degree):
    """Exponent vectors of all monomials of total degree 1..degree in ``dim`` variables."""
    out = []
    for total in range(1, degree + 1):
        for e in itertools.product(range(total + 1), repeat=dim):
            if sum(e) == total:
                out.append(e)
    return np.array(out, dtype=int)


def monomial_values(z, ex):
    """(n, p) values of Π_j z_j^{e_j}."""
    return np.stack([np.prod(z ** e[None, :], axis=1) for e in ex], axis=1)


def monomial_expectations(mu, sd, ex):
    """E Π_j z_j^{e_j} for independent z_j ~ N(mu_j, sd_j²): products of raw moments.

    Raw moments of N(μ, σ²): 1, μ, μ² + σ², μ³ + 3μσ².
    """
    var = sd ** 2
    mom = [np.ones_like(mu), mu, mu ** 2 + var, mu ** 3 + 3 * mu * var]
    cols = []
    for e in ex:
        v = np.ones(mu.shape[0])
        for j, k in enumerate(e):
            v = v * mom[k][:, j]
        cols.append(v)
    return np.stack(cols, axis=1)


class StateBasis:
    """h(s) = per coordinate [z_j, B_2(z_j), ..., B_K(z_j)] (cubic, clamped quantile knots;
    boundary knots at the quantiles ``boundary`` and 1 − ``boundary``, 0: the range)."""

    def __init__(self, state, w, n_knots, boundary=0.0):
        self.center, self.scale = standardizer(state, w)
        z = (state - self.center) / self.scale
        keep = w > 0
        probs = np.linspace(0.0, 1.0, n_knots + 2)
        probs[0], probs[-1] = boundary, 1.0 - boundary
        self.knots = []
        for j in range(state.shape[1]):
            q = np.quantile(z[keep, j], probs)  # unit weights: the plain linear-rule quantile
            self.knots.append(np.concatenate([[q[0]] * 3, q, [q[-1]] * 3]))

    def __call__(self, state):
        z = (state - self.center) / self.scale
        cols = []
        for j, t in enumerate(self.knots):
            zc = np.clip(z[:, j], t[0], t[-1])
            b = BSpline.design_matrix(zc, t, 3, extrapolate=False).toarray()
            cols += [z[:, j:j + 1], b[:, 1:]]
        return np.concatenate(cols, axis=1)


def ridge_fit(x, y, w, ridge):
    """argmin Σ w (y − xβ)²/Σw + ridge Σ_{j≥1} β_j² (no penalty on column 0) by Cholesky."""
    pen = np.ones(x.shape[1])
    pen[0] = 0.0
    xw = x * w[:, None]
    gram = xw.T @ x / w.sum() + ridge * np.diag(pen)
    return cho_solve(cho_factor(gram), xw.T @ y / w.sum())


# ---------------------------------------------------------------------------------- nuisances
def fit_nuisances(s, a, m, r, s_next, w, p):
    n, dm = m.shape
    # behaviour: logistic on [1, standardised s]
    c, sc = standardizer(s, w)
    xb = np.concatenate([np.ones((n, 1)), (s - c) / sc], axis=1)
    pen = np.ones(xb.shape[1])
    pen[0] = 0.0
    beta = np.zeros(xb.shape[1])
    tot = w.sum()
    for _ in range(p["behaviour_iterations"]):
        pr = expit(xb @ beta)
        grad = xb.T @ (w * (a - pr)) / tot - p["behaviour_ridge"] * pen * beta
        hess = (xb * (w * pr * (1 - pr))[:, None]).T @ xb / tot + p["behaviour_ridge"] * np.diag(pen)
        beta = beta + np.linalg.solve(hess, grad)
    p1 = expit(xb @ beta)
    pb = a * p1 + (1 - a) * (1 - p1)
    # mediator: mean linear in [1, h, a, a h], constant sd
    # the nuisance models' h(s) (boundary knots at the quantiles nuisance_boundary_quantile and
    # 1 − it; default 0.0025); the Q basis keeps the range: one basis for both only when it is 0
    b = p["nuisance_boundary_quantile"]
    basis = StateBasis(s, w, p["state_knots"], b)
    h, h_next = basis(s), basis(s_next)
    h_q, h_q_next = (h, h_next) if b == 0 else (lambda qb: (qb(s), qb(s_next)))(
        StateBasis(s, w, p["state_knots"]))

    def xm(hh, act):
        act = np.broadcast_to(act, hh.shape[:1])[:, None]
        return np.concatenate([np.ones_like(act), hh, act, act * hh], axis=1)

    coef_m = ridge_fit(xm(h, a), m, w, p["mediator_ridge"])
    resid = m - xm(h, a) @ coef_m
    sd_m = np.sqrt((w[:, None] * resid ** 2).sum(0) / (w.sum() - 1.0))
    mean = np.stack([xm(h, float(b)) @ coef_m for b in (0, 1)], axis=1)          # (n, 2, dM)
    mean_next = np.stack([xm(h_next, float(b)) @ coef_m for b in (0, 1)], axis=1)
    sd = np.broadcast_to(sd_m, (n, 2, dm))
    # reward: ridge on [1, h, g(m), a, a h, a g(m)], g = monomials of standardised m
    mc, ms = standardizer(m, w)
    ex_r = exponents(dm, p["reward_degree"])

    def xr(act, g):
        act = np.broadcast_to(act, h.shape[:1])[:, None]
        return np.concatenate([np.ones_like(act), h, g, act, act * h, act * g], axis=1)

    coef_r = ridge_fit(xr(a, monomial_values((m - mc) / ms, ex_r)), r, w, p["reward_ridge"])
    g_obs = monomial_values((m - mc) / ms, ex_r)
    r_m = np.stack([xr(float(b), g_obs) @ coef_r for b in (0, 1)], axis=1)       # (n, 2)
    r_e = np.empty((n, 2, 2))
    for am in (0, 1):
        eg = monomial_expectations((mean[:, am] - mc) / ms, sd[:, am] / ms, ex_r)
        for ar in (0, 1):
            r_e[:, ar, am] = xr(float(ar), eg) @ coef_r
    return dict(pb=pb, mean=mean, sd=sd, mean_next=mean_next, sd_next=sd, r_m=r_m, r_e=r_e,
                basis=basis, h=h, h_next=h_next, h_q=h_q, h_q_next=h_q_next)


# ---------------------------------------------------------------------------------- pipeline
def _u(phi, a):
    a = np.broadcast_to(np.asarray(a, float), phi.shape[:1])[:, None]
    return np.concatenate([(1 - a) * phi, a * phi, a], axis=1)


def _app(x, v):
    return np.concatenate([x, np.full((x.shape[0], 1), v)], axis=1)


def _lstd(U, Xi, Y, w, ridge):
    pen = np.ones(U.shape[1])
    pen[-1] = 0.0
    Uw = U * w[:, None]
    sigma = Uw.T @ (U - Xi) / w.sum() + ridge * np.diag(pen)
    return np.linalg.solve(sigma, Uw.T @ Y / w.sum())


def _log_normal_pdf(m, mean, sd):
    z = (m - mean) / sd
    return (-0.5 * z ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)).sum(-1)


def mediation_numpy(state, action, mediator, reward, next_state, mask, target_weights,
                    target_intercept, rff_w, rff_b, a0=0, params=None):
    """One dataset, default pipeline. Arrays ``(N, T, ...)``; target π_e(1|s) = expit(c + sᵀβ).

    Args:
      state, next_state: ``(N, T, dS)``; action, reward, mask: ``(N, T)``; mediator ``(N, T, dM)``.
      target_weights: ``(dS,)`` β of the logistic target policy; target_intercept: c.
      rff_w: ``(dS, D)`` random Fourier frequencies; rff_b: ``(D,)`` offsets.
      a0: control action 0 or 1.

    Returns:
      dict with ``estimate`` ``(7, 5)``, ``se`` ``(7, 5)`` (cluster SEs; NaN for DM and for
      undefined effects), ``eta`` ``(5,)``.
    """
    p = dict(DEFAULTS, **(params or {}))
    N, T = action.shape
    if p.get("state_knots_rule", "rate") == "rate":   # K = min(state_knots, ⌊(N·T)^{1/5}⌋)
        k = 0
        while k < p["state_knots"] and (k + 1) ** 5 <= N * T:
            k += 1
        p["state_knots"] = k
    s = state.reshape(N * T, -1)
    sn = next_state.reshape(N * T, -1)
    a = action.reshape(-1).astype(float)
    m = mediator.reshape(N * T, -1)
    r = reward.reshape(-1)
    w = mask.reshape(-1).astype(float)
    nz = fit_nuisances(s, a, m, r, sn, w, p)
    pe_s = expit(target_intercept + s @ target_weights)
    pe_n = expit(target_intercept + sn @ target_weights)
    # importance weights (§3.4)
    pb = np.clip(nz["pb"], 1e-6, 0.9999)
    pe_a = a * pe_s + (1 - a) * (1 - pe_s)
    p0_a = a if a0 == 1 else 1 - a
    lp = np.stack([_log_normal_pdf(m, nz["mean"][:, b], nz["sd"][:, b]) for b in (0, 1)], axis=1)
    lp_a = np.where(a == 1, lp[:, 1], lp[:, 0])
    rho = (1 - pe_s) * np.exp(lp[:, 0] - lp_a) + pe_s * np.exp(lp[:, 1] - lp_a)
    ke, k0 = pe_a / pb, p0_a / pb
    rhot = np.minimum(rho, p["rho_trunc"])
    # Q features φ = [h(s), g(m)], g monomials (degree ≤ 3) of standardised m
    mc, msd = standardizer(m, w)
    ex = exponents(m.shape[1], p["q_degree"])
    phi = np.concatenate([nz["h_q"], monomial_values((m - mc) / msd, ex)], axis=1)

    def ephi(hh, mean, sd):
        return np.concatenate([hh, monomial_expectations((mean - mc) / msd, sd / msd, ex)], axis=1)

    e0, e1 = (ephi(nz["h_q"], nz["mean"][:, b], nz["sd"][:, b]) for b in (0, 1))
    n0, n1 = (ephi(nz["h_q_next"], nz["mean_next"][:, b], nz["sd_next"][:, b]) for b in (0, 1))
    ea = np.where(a[:, None] == 1, e1, e0)
    U = _app(_u(phi, a), 1.0)
    ubar = _app(_u(ea, a), 0.0)
    pn = pe_n[:, None]
    xi_e = _app(pn * _u(n1, 1.0) + (1 - pn) * _u(n0, 0.0), 0.0)
    xi_0 = _app(_u(n1 if a0 == 1 else n0, float(a0)), 0.0)
    xi_g = _app(_u(pn * n1 + (1 - pn) * n0, float(a0)), 0.0)
    y3 = nz["r_e"][:, a0, a0]
    be = _lstd(U, xi_e, np.stack([r, nz["r_m"][:, a0], y3], 1), w, p["q_ridge"])
    bg = _lstd(U, xi_g, y3[:, None], w, p["q_ridge"])
    b0 = _lstd(U, xi_0, r[:, None], w, p["q_ridge"])
    beta = np.stack([be[:, 0], be[:, 1], be[:, 2], bg[:, 0], b0[:, 0]])
    eta = beta[:, -1]
    qbar = ubar @ beta.T
    d1 = xi_e @ beta[0] - qbar[:, 0]
    d2 = xi_e @ beta[1] - qbar[:, 1]
    d3 = xi_e @ beta[2] - qbar[:, 2]
    d5 = xi_0 @ beta[4] - qbar[:, 4]
    b4 = beta[3, :-1]
    d4a = xi_g @ beta[3] - _u(phi, a) @ b4
    d4b = _u(phi, float(a0)) @ b4 - _u(ea, float(a0)) @ b4
    # state ratios (§5): ψ = [1, sqrt(2/D) cos(Wᵀ ŝ + b)]
    sc, ss = standardizer(s, w)
    D = rff_w.shape[1]

    def psi_of(x):
        return np.concatenate([np.ones((x.shape[0], 1)),
                               np.sqrt(2.0 / D) * np.cos(((x - sc) / ss) @ rff_w + rff_b)], axis=1)

    psi, psin = psi_of(s), psi_of(sn)
    mean_psi = wmean(psi, w)
    tr = p["ratio_trunc"]
    ratios = []
    for c in (ke, k0 * rho, k0):
        top = ((psi - c[:, None] * psin) * w[:, None]).T @ psi / w.sum()
        X = np.vstack([top, mean_psi[None]])
        coef = cho_solve(cho_factor(X.T @ X + p["ratio_ridge"] * np.eye(X.shape[1])), mean_psi)
        v = np.clip(psi @ coef, 1.0 / tr, tr)
        ratios.append(v / wmean(v, w))
    we, wg, w0 = ratios
    # per-row estimator values (§6)
    er, rm = nz["r_e"], nz["r_m"]
    r_hat = np.where(a == 1, rm[:, 1], rm[:, 0])
    r_a0m = rm[:, a0]
    e_a = np.where(a == 1, er[:, 1, 1], er[:, 0, 0])
    e_0 = er[:, a0, a0]
    e_am = (1 - pe_s) * er[:, 0, 0] + pe_s * er[:, 1, 1]
    e_g = (1 - pe_s) * er[:, a0, 0] + pe_s * er[:, a0, 1]
    e_ag = np.where(a == 1, er[:, a0, 1], er[:, a0, 0])
    n = len(r)
    vals = np.full((n, 7, 5), np.nan)

    def put(row, comps):
        for j, v in enumerate(comps):
            vals[:, row, j] = v
        if len(comps) == 4:
            vals[:, row, 4] = sum(comps)

    i1 = we * ke * (r + d1 - eta[0])
    i2 = we * k0 * rhot * (r - r_hat) + we * ke * (r_a0m + d2 - eta[1])
    i3 = we * k0 * (r - e_a) + we * ke * (e_0 + d3 - eta[2])
    i4 = wg * k0 * (r - e_a + rho * (e_0 + d4a - eta[3])) + wg * ke * d4b
    i5 = w0 * k0 * (r + d5 - eta[4])
    put(0, [eta[0] - eta[1] + i1 - i2, eta[1] - eta[2] + i2 - i3, eta[2] - eta[3] + i3 - i4,
            eta[3] - eta[4] + i4 - i5])
    put(1, [np.full(n, eta[j] - eta[j + 1]) for j in range(4)])
    v1, v2, v3, v4, v5 = we * ke * r, we * k0 * rhot * r, we * k0 * r, wg * k0 * r, w0 * k0 * r
    put(2, [v1 - v2, v2 - v3, v3 - v4, v4 - v5])
    v2p = we * ke * r_a0m
    put(3, [v1 - v2p, v2p - v3])
    put(4, [e_am - e_g, e_g - e_0])
    put(5, [ke * r - k0 * rhot * r, k0 * rhot * r - k0 * r])
    j1, j2, j3, j4 = ke * (r - e_a), k0 * rhot * (r - r_hat), ke * (r_a0m - e_ag), k0 * (r - e_a)
    put(6, [j1 + e_am - j2 - j3 - e_g, j2 + j3 + e_g - j4 - e_0])
    # weighted means and trajectory-cluster SEs (§6.7), per trajectory in a loop
    est = np.tensordot(w, vals, axes=(0, 0)) / w.sum()
    mk = mask.astype(float)
    scale = w.sum() / N
    infl = np.empty((N, 7, 5))
    for i in range(N):
        rows = slice(i * T, (i + 1) * T)
        infl[i] = np.tensordot(mk[i], vals[rows] - est, axes=(0, 0)) / scale
    se = np.sqrt((infl ** 2).sum(0) / (N * (N - 1.0)))
    se[1] = np.nan
    se[np.isnan(est)] = np.nan
    return dict(estimate=est, se=se, eta=eta)


def jaxmed_rff(key, n_state: int, n_features: int = 15):
    """The frequencies W ``(dS, D)`` and offsets b ``(D,)`` jaxmed draws from ``key`` in
    ``mediation_core`` (key → (k_fit, k_boot); k_fit → (k_nuis, k_ratio); k_ratio → (kW, kb)).
    The only place this module calls jax: to reuse the same random draws, not the estimator."""
    import jax
    import jax.numpy as jnp

    k_fit, _ = jax.random.split(key)
    _, k_ratio = jax.random.split(k_fit)
    kw, kb = jax.random.split(k_ratio)
    w = jnp.sqrt(2.0) * jax.random.normal(kw, (n_state, n_features), jnp.float64)
    b = jax.random.uniform(kb, (n_features,), jnp.float64, 0.0, 2 * jnp.pi)
    return np.asarray(w), np.asarray(b)
