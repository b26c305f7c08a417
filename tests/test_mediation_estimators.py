"""The pipeline downstream of the nuisances (Q-fits, ratios, §6 estimators) vs a numpy transcription.

Nuisance predictions are injected (spec §13.1); the Q features come from the jax basis (tested
in test_mediation_building_blocks); everything else — ρ, κ, the three LSTD systems, the six
temporal differences, the three ratio systems and every estimator formula of §6 — is
re-derived here in plain float64 numpy.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.nuisance import NuisancePredictions
from jaxmed._src.mediation.pipeline import estimate_pipeline
from jaxmed._src.mediation.q_function import fit_q_basis, q_feature_rows
from jaxmed._src.mediation.state_ratio import fit_ratio_features, ratio_features
from jaxmed._src.policies import LogisticPolicy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic

N, T = 24, 6


def _setup(natural):
    data = simulate_semi_synthetic(jax.random.key(11), N, T)
    rows = {k: np.asarray(v) for k, v in data.flat().items()}
    n = N * T
    rng = np.random.default_rng(3)
    s, sn = rows["state"][:, 0], rows["next_state"][:, 0]

    def med_mean(x):
        root = np.sqrt(np.abs(x))
        return np.stack([np.stack([root - 0.5, -0.5 * x - 0.25 * root], -1),
                         np.stack([root + 0.5, -0.5 * x + 0.25 * root], -1)], 1)

    sd = np.broadcast_to(np.array([1.8, 2.3]), (n, 2, 2)).copy()
    p1 = 1 / (1 + np.exp(-(0.1 + 0.05 * s)))
    a = rows["action"]
    preds = NuisancePredictions(
        behaviour_prob=a * p1 + (1 - a) * (1 - p1), mediator_mean=med_mean(s), mediator_sd=sd,
        mediator_mean_next=med_mean(sn), mediator_sd_next=sd * 1.1,
        reward_at_mediator=rows["reward"][:, None] + rng.normal(size=(n, 2)),
        reward_expected=rows["reward"][:, None, None] + rng.normal(size=(n, 2, 2)))
    cfg = MediationConfig(natural_decomposition=natural, rho_trunc=3.0, ratio_trunc=20.0,
                          q_ridge=1e-3)
    policy = LogisticPolicy(jnp.array([0.7]), 0.2)
    return data, rows, preds, cfg, policy


def _numpy_reference(data, rows, preds, cfg, key, natural):
    n = N * T
    P = {k: np.asarray(v) for k, v in preds._asdict().items()}
    s, sn, a, m, r = (rows[k] for k in ("state", "next_state", "action", "mediator", "reward"))
    pe = 1 / (1 + np.exp(-(0.2 + 0.7 * s[:, 0])))
    pen = 1 / (1 + np.exp(-(0.2 + 0.7 * sn[:, 0])))
    a0 = 0
    # κ, ρ (§3.4)
    pb = np.clip(P["behaviour_prob"], 1e-6, 0.9999)
    ke = np.where(a == 1, pe, 1 - pe) / pb
    k0 = (1 - a) / pb

    def dens(b):
        z = (m - P["mediator_mean"][:, b]) / P["mediator_sd"][:, b]
        return np.prod(np.exp(-0.5 * z ** 2) / (np.sqrt(2 * np.pi) * P["mediator_sd"][:, b]), 1)

    d0, d1 = dens(0), dens(1)
    dA = np.where(a == 1, d1, d0)
    rho = d0 / dA if natural else ((1 - pe) * d0 + pe * d1) / dA
    rhot = np.minimum(rho, cfg.rho_trunc)
    # LSTD (§4.2–4.4) on the jax features
    w = jnp.ones(n)
    # the knot rule (knot_rule.py): min(5, ⌊(N·T)^{1/5}⌋) = ⌊144^{1/5}⌋ = 2 interior knots
    basis = fit_q_basis(data.flat(), w, cfg.replace(state_knots=2))
    feats = q_feature_rows(basis, data.flat(), preds, cfg)
    phi, ephi, ephin = (np.asarray(x) for x in feats.rows())
    p = phi.shape[1]

    def u(f, act):
        act = np.broadcast_to(act, (f.shape[0],))[:, None]
        return np.hstack([(1 - act) * f, act * f, act])

    def z(x):
        return np.hstack([x, np.zeros((x.shape[0], 1))])

    U = np.hstack([u(phi, a), np.ones((n, 1))])
    xi_e = z(pen[:, None] * u(ephin[:, 1], 1) + (1 - pen[:, None]) * u(ephin[:, 0], 0))
    xi_0 = z(u(ephin[:, 0], 0))
    if natural:
        xi_g = z((1 - pen[:, None]) * u(ephin[:, 0], 0) + pen[:, None] * u(ephin[:, 0], 1))
    else:
        xi_g = z(u(pen[:, None] * ephin[:, 1] + (1 - pen[:, None]) * ephin[:, 0], 0))
    pen_mat = np.diag(np.r_[np.ones(2 * p + 1), 0.0])

    def solve(xi, y):
        sig = U.T @ (U - xi) / n + cfg.q_ridge * pen_mat
        return np.linalg.solve(sig, U.T @ y / n)

    ER = P["reward_expected"]
    RM = P["reward_at_mediator"]
    if not natural:
        y3 = ER[:, 0, 0]
        betas = [solve(xi_e, r), solve(xi_e, RM[:, 0]), solve(xi_e, y3), solve(xi_g, y3),
                 solve(xi_0, r)]
        xi23 = xi_e
    else:
        y2 = (1 - pe) * RM[:, 0] + pe * RM[:, 1]
        y3 = (1 - pe) * ER[:, 0, 0] + pe * ER[:, 1, 1]
        betas = [solve(xi_e, r), solve(xi_0, y2), solve(xi_0, y3), solve(xi_g, y3), solve(xi_0, r)]
        xi23 = xi_0
    eta = np.array([b[-1] for b in betas])
    ephiA = np.where(a[:, None] == 1, ephi[:, 1], ephi[:, 0])
    ubar = z(u(ephiA, a))
    D1 = xi_e @ betas[0] - ubar @ betas[0]
    D2 = xi23 @ betas[1] - ubar @ betas[1]
    D3 = xi23 @ betas[2] - ubar @ betas[2]
    D5 = xi_0 @ betas[4] - ubar @ betas[4]
    b4 = betas[3][:-1]
    D4a = xi_g @ betas[3] - u(phi, a) @ b4
    if natural:
        D4b = sum(pr * (u(phi, act) @ b4 - u(ephiA, act) @ b4) for pr, act in ((1 - pe, 0), (pe, 1)))
    else:
        D4b = u(phi, 0) @ b4 - u(ephiA, 0) @ b4
    # ratios (§5)
    k_nuis, k_ratio = jax.random.split(key)
    rf = fit_ratio_features(k_ratio, data.flat()["state"], w, cfg)
    W, B = np.asarray(rf.w), np.asarray(rf.b)
    mu, sdv = s.mean(0), s.std(0, ddof=1)

    def psi(x):
        return np.hstack([np.ones((len(x), 1)), np.sqrt(2 / 15) * np.cos(((x - mu) / sdv) @ W + B)])

    Ps, Pn = psi(s), psi(sn)

    def ratio(c):
        X = np.vstack([(Ps - c[:, None] * Pn).T @ Ps / n, Ps.mean(0)[None]])
        beta = np.linalg.solve(X.T @ X + cfg.ratio_ridge * np.eye(16), Ps.mean(0))
        om = np.clip(Ps @ beta, 1 / cfg.ratio_trunc, cfg.ratio_trunc)
        return om / om.mean()

    we = ratio(ke)
    wg = ratio(ke * rho if natural else k0 * rho)
    w0 = ratio(k0)
    # estimators (§6)
    r_hat = np.where(a == 1, RM[:, 1], RM[:, 0])
    e_a = np.where(a == 1, ER[:, 1, 1], ER[:, 0, 0])
    out = {}
    if not natural:
        e_0 = ER[:, 0, 0]
        I1 = we * ke * (r + D1 - eta[0])
        I2 = we * k0 * rhot * (r - r_hat) + we * ke * (RM[:, 0] + D2 - eta[1])
        I3 = we * k0 * (r - e_a) + we * ke * (e_0 + D3 - eta[2])
        I4 = wg * k0 * (r - e_a + rho * (e_0 + D4a - eta[3])) + wg * ke * D4b
        I5 = w0 * k0 * (r + D5 - eta[4])
        out["MR"] = [eta[0] - eta[1] + np.mean(I1 - I2), eta[1] - eta[2] + np.mean(I2 - I3),
                     eta[2] - eta[3] + np.mean(I3 - I4), eta[3] - eta[4] + np.mean(I4 - I5)]
        out["DM"] = [eta[0] - eta[1], eta[1] - eta[2], eta[2] - eta[3], eta[3] - eta[4]]
        W1, W2, W3, W4, W5 = we * ke * r, we * k0 * rhot * r, we * k0 * r, wg * k0 * r, w0 * k0 * r
        out["MIS1"] = [np.mean(W1 - W2), np.mean(W2 - W3), np.mean(W3 - W4), np.mean(W4 - W5)]
        W2p = we * ke * RM[:, 0]
        out["MIS2"] = [np.mean(W1 - W2p), np.mean(W2p - W3)]
        E_am = (1 - pe) * ER[:, 0, 0] + pe * ER[:, 1, 1]
        E_G = (1 - pe) * ER[:, 0, 0] + pe * ER[:, 0, 1]
        E_0 = ER[:, 0, 0]
        E_AG = np.where(a == 1, ER[:, 0, 1], ER[:, 0, 0])
        out["Baseline_DM"] = [np.mean(E_am - E_G), np.mean(E_G - E_0)]
        out["Baseline_IPW"] = [np.mean(ke * r - k0 * rhot * r), np.mean(k0 * rhot * r - k0 * r)]
        J1, J2 = ke * (r - e_a), k0 * rhot * (r - r_hat)
        J3, J4 = ke * (RM[:, 0] - E_AG), k0 * (r - e_a)
        out["Baseline_MR"] = [np.mean(J1 + E_am - J2 - J3 - E_G), np.mean(J2 + J3 + E_G - J4 - E_0)]
    else:
        X_ = (1 - pe) * ER[:, 0, 0] + pe * ER[:, 1, 1]
        Y2 = (1 - pe) * RM[:, 0] + pe * RM[:, 1]
        I1 = we * ke * (r + D1 - eta[0])
        I2 = w0 * ke * rhot * (r - r_hat) + w0 * k0 * (Y2 + D2 - eta[1])
        I3 = w0 * ke * (r - e_a) + w0 * k0 * (X_ + D3 - eta[2])
        I4 = wg * ke * (r - e_a + rho * (X_ + D4a - eta[3])) + wg * k0 * D4b
        I5 = w0 * k0 * (r + D5 - eta[4])
        out["MR"] = [eta[1] - eta[4] + np.mean(I2 - I5), eta[2] - eta[1] + np.mean(I3 - I2),
                     eta[3] - eta[2] + np.mean(I4 - I3), eta[0] - eta[3] + np.mean(I1 - I4)]
        out["DM"] = [eta[1] - eta[4], eta[2] - eta[1], eta[3] - eta[2], eta[0] - eta[3]]
    return eta, out


@pytest.mark.parametrize("natural", [False, True])
def test_pipeline_matches_numpy_transcription(natural):
    data, rows, preds, cfg, policy = _setup(natural)
    key = jax.random.key(5)
    inj = NuisancePredictions(*(jnp.asarray(x) for x in preds))
    out = jax.jit(lambda k, d, p, c, nu: estimate_pipeline(k, d, jnp.ones(N), p, 0, c, nu))(
        key, data, policy, cfg, inj)
    eta, ref = _numpy_reference(data, rows, preds, cfg, key, natural)
    np.testing.assert_allclose(out.eta, eta, rtol=1e-8)
    names = ("MR", "DM", "MIS1", "MIS2", "Baseline_DM", "Baseline_IPW", "Baseline_MR")
    est = np.asarray(out.estimate)
    for i, name in enumerate(names):
        if name not in ref:
            assert np.isnan(est[i]).all()
            continue
        k = len(ref[name])
        np.testing.assert_allclose(est[i, :k], ref[name], rtol=1e-7, atol=1e-8, err_msg=name)
        if k == 4:
            np.testing.assert_allclose(est[i, 4], sum(ref[name]), rtol=1e-7, atol=1e-8)
        else:
            assert np.isnan(est[i, 2:]).all()
