"""Building blocks of jaxmed.mediation against plain float64 numpy references."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.basis import (bspline_basis, deboor_fixed_span, fit_parity_basis,
                                         fit_state_basis, monomial_exponents, monomials,
                                         parity_basis, state_basis)
from jaxmed._src.mediation.gaussian_expectation import gaussian_expectation, gaussian_raw_moments
from jaxmed._src.mediation.linear_solve import action_coded_ridge, weighted_ridge
from jaxmed._src.mediation.nuisance_models import LogisticBehaviourModel
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.q_function import fit_q_basis, lstd_solve, q_features
from jaxmed._src.mediation.state_ratio import (ORIGINAL_RFF_B, ORIGINAL_RFF_W, RatioFeatures,
                                               fit_ratio_features, fit_state_ratio,
                                               fit_state_ratios,
                                               ratio_features)
from jaxmed._src.mediation.basis import Standardizer
from jaxmed._src.mediation.uncertainty import bootstrap_counts, cluster_influence, cluster_se
from jaxmed._src.mediation.weighted_stats import weighted_quantile


def test_raw_moments_match_hermite_quadrature():
    mu, sd = 0.7, 1.9
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    ref = [np.sum(w * (mu + sd * x) ** k) for k in range(6)]
    np.testing.assert_allclose(gaussian_raw_moments(mu, sd, 5), ref, rtol=1e-12)


def test_gaussian_expectation_of_cubic_mediator_features_is_exact():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 2))
    sd = np.array([1.3, 0.6])
    ex = monomial_exponents(2, 3)
    got = gaussian_expectation(lambda m: monomials(m, ex), jnp.asarray(mean), jnp.asarray(sd))
    # reference: products of univariate raw moments (independent coordinates)
    ref = np.zeros((5, len(ex)))
    for r in range(5):
        for c, e in enumerate(ex):
            val = 1.0
            for j in range(2):
                mom = [1.0, mean[r, j], mean[r, j] ** 2 + sd[j] ** 2,
                       mean[r, j] ** 3 + 3 * mean[r, j] * sd[j] ** 2]
                val *= mom[e[j]]
            ref[r, c] = val
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # and brute-force Monte Carlo within 5 MC standard errors
    draws = mean[0] + sd * rng.normal(size=(400_000, 2))
    vals = np.asarray(monomials(jnp.asarray(draws), ex))
    assert np.all(np.abs(vals.mean(0) - ref[0]) < 5 * vals.std(0) / np.sqrt(len(vals)))


def test_weighted_quantile_equals_numpy_on_repeated_sample():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    w = rng.integers(0, 4, size=300).astype(float)
    q = np.linspace(0, 1, 9)
    got = weighted_quantile(jnp.asarray(x), jnp.asarray(w), jnp.asarray(q))
    np.testing.assert_allclose(got, np.quantile(np.repeat(x, w.astype(int)), q), rtol=0, atol=1e-14)


def _weighted_quantile_by_sorting_rows(x, w, q):
    """float64 numpy reference: rows sorted stably with their weights, numpy's linear rule
    over the expanded sample (the element at expanded index e is the first sorted row whose
    cumulative weight exceeds e)."""
    order = np.argsort(x, kind="stable")
    xs, cum = x[order], np.cumsum(w[order])
    rank = q * (cum[-1] - 1.0)
    lo = np.floor(rank)
    hi = np.minimum(lo + 1.0, cum[-1] - 1.0)
    at = lambda e: xs[np.clip(np.searchsorted(cum, e, side="right"), 0, len(x) - 1)]
    return at(lo) + (rank - lo) * (at(hi) - at(lo))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_quantile_with_ties_signed_zeros_and_fractional_weights(dtype):
    # the values are sorted as integers and tied rows counted together (weighted_stats):
    # the same quantiles as sorting the rows with their weights, ties and -0.0 included
    rng = np.random.default_rng(7)
    q = np.linspace(0, 1, 9)
    quantiles = jax.jit(weighted_quantile)
    for trial in range(60):
        n = (1, 2, 17, 250)[trial % 4]  # few shapes: few compilations
        x = rng.normal(size=n) * 10.0 ** int(rng.integers(-3, 4))
        if trial % 3 == 1:
            x = np.round(x)  # many ties
        if trial % 3 == 2:
            x[rng.random(n) < 0.3] = -0.0
            x[rng.random(n) < 0.2] = 0.0
        w = rng.integers(0, 4, n).astype(float) if trial % 2 else rng.random(n) * (rng.random(n) < 0.7)
        w[0] = max(w[0], 1.0)  # a sample of total weight at least 1
        x, w = x.astype(dtype), w.astype(dtype)
        got = np.asarray(quantiles(jnp.asarray(x), jnp.asarray(w), jnp.asarray(q, dtype)))
        ref = _weighted_quantile_by_sorting_rows(x.astype(np.float64), w.astype(np.float64), q)
        tol = (1e-12 if dtype == np.float64 else 1e-5) * (1 + np.abs(ref).max())
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol)
        if trial % 2:  # integer weights: numpy on the repeated sample
            np.testing.assert_allclose(got, np.quantile(np.repeat(x.astype(np.float64),
                                                                  w.astype(int)), q),
                                       rtol=0, atol=tol)


def test_parity_basis_equals_scipy_extrapolating_bspline():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(2)
    s = rng.normal(size=(400, 1)) * 4
    m = rng.normal(size=(400, 2)) * 2
    params = fit_parity_basis(jnp.asarray(s), jnp.asarray(m), jnp.ones(400))
    grid_s = np.linspace(-15, 25, 31)[:, None]
    grid_m = np.stack([np.linspace(-9, 9, 31), np.linspace(-7, 11, 31)], 1)
    got = np.asarray(parity_basis(params, jnp.asarray(grid_s), jnp.asarray(grid_m)))
    x = np.concatenate([grid_s, grid_m], 1)
    cols = []
    for j in range(3):
        t = np.quantile(np.concatenate([s, m], 1)[:, j], np.linspace(0, 1, 8))
        np.testing.assert_allclose(params.knots[j], t, rtol=0, atol=1e-14)
        for k in (1, 2, 3):
            cols.append(scipy_interp.BSpline(t, np.eye(4)[k], 3, extrapolate=True)(x[:, j]))
    ref = np.stack(cols, 1)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_state_basis_bsplines_match_scipy_and_are_linear_outside():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    rng = np.random.default_rng(3)
    s = rng.gamma(2.0, size=(500, 1))
    params = fit_state_basis(jnp.asarray(s), jnp.ones(500), 4)
    z = np.linspace(float(params.knots[0][0]), float(params.knots[0][-1]) - 1e-9, 57)
    got = np.asarray(bspline_basis(jnp.asarray(z), params.knots[0]))
    kn = np.asarray(params.knots[0])
    ref = scipy_interp.BSpline(kn, np.eye(len(kn) - 4), 3, extrapolate=False)(z)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # outside the data range only the linear column moves
    far = jnp.asarray([[s.max() + 3.0], [s.max() + 7.0]])
    h = np.asarray(state_basis(params, far))
    np.testing.assert_allclose(h[0, 1:], h[1, 1:], atol=1e-14)
    np.testing.assert_allclose(h[1, 0] - h[0, 0], 4.0 / float(params.standardizer.scale[0]),
                               rtol=1e-12)
    # the feature-major layout: the same matrix transposed, for one and two coordinates
    s2 = np.c_[s, rng.normal(size=500)]
    params2 = fit_state_basis(jnp.asarray(s2), jnp.ones(500), 4)
    for prm, x in ((params, s), (params2, s2)):
        np.testing.assert_array_equal(np.asarray(state_basis(prm, jnp.asarray(x), feature_major=True)),
                                      np.asarray(state_basis(prm, jnp.asarray(x))).T)


def test_weighted_ridge_and_logistic_fit_match_numpy():
    rng = np.random.default_rng(4)
    n = 300
    x = np.c_[np.ones(n), rng.normal(size=(n, 2))]
    y = x @ [0.5, -1.0, 2.0] + rng.normal(size=n)
    w = rng.integers(0, 3, size=n).astype(float)
    pen = np.array([0.0, 1.0, 1.0])
    beta, _ = weighted_ridge(jnp.asarray(x), jnp.asarray(y), jnp.asarray(w), 0.1, jnp.asarray(pen))
    ref = np.linalg.solve(x.T @ (w[:, None] * x) / w.sum() + 0.1 * np.diag(pen),
                          x.T @ (w * y) / w.sum())
    np.testing.assert_allclose(beta, ref, rtol=1e-10)
    # logistic: the fitted coefficients satisfy the penalised score equation
    s = rng.normal(size=(n, 1)) * 3 + 1
    a = (rng.uniform(size=n) < 1 / (1 + np.exp(-(0.3 + 0.5 * s[:, 0])))).astype(float)
    rows = dict(state=jnp.asarray(s), action=jnp.asarray(a))
    fit = LogisticBehaviourModel(ridge=1e-3).fit(None, rows, jnp.asarray(w))
    # the standardiser: plain mean and sd of the rows present (w > 0), as fit_standardizer says
    present = s[w > 0, 0]
    z = (s[:, 0] - present.mean()) / present.std(ddof=1)
    xd = np.c_[np.ones(n), z]
    p = 1 / (1 + np.exp(-xd @ np.asarray(fit.coef)))
    score = xd.T @ (w * (a - p)) / w.sum() - 1e-3 * np.array([0.0, 1.0]) * np.asarray(fit.coef)
    np.testing.assert_allclose(score, 0.0, atol=1e-12)


def test_action_coded_ridge_matches_numpy_on_the_explicit_design():
    # x = [z, a·z] never built by jaxmed; numpy builds it, with zero-weight (masked) rows
    rng = np.random.default_rng(8)
    n, p = 250, 4
    z = np.c_[np.ones(n), rng.normal(size=(n, p - 1))]
    a = (rng.uniform(size=n) < 0.4).astype(float)
    y = np.c_[z @ [1.0, -0.5, 0.3, 2.0] + a * 0.7 + rng.normal(size=n), rng.normal(size=n)]
    w = rng.integers(0, 3, size=n).astype(float)
    pen = np.r_[0.0, np.ones(2 * p - 1)]
    x = np.c_[z, a[:, None] * z]
    ref = np.linalg.solve(x.T @ (w[:, None] * x) / w.sum() + 1e-3 * np.diag(pen), x.T @ (w[:, None] * y) / w.sum())
    beta, cond = action_coded_ridge(jnp.asarray(z.T), jnp.asarray(a), jnp.asarray(y), jnp.asarray(w), 1e-3,
                                    jnp.asarray(pen))
    np.testing.assert_allclose(beta, ref, rtol=1e-10, atol=1e-12)
    beta1, _ = action_coded_ridge(jnp.asarray(z.T), jnp.asarray(a), jnp.asarray(y[:, 0]), jnp.asarray(w), 1e-3,
                                  jnp.asarray(pen))
    np.testing.assert_allclose(beta1, ref[:, 0], rtol=1e-10, atol=1e-12)
    sig = x.T @ (w[:, None] * x) / w.sum() + 1e-3 * np.diag(pen)
    np.testing.assert_allclose(cond, np.linalg.cond(sig, 1), rtol=1e-6)


def test_lstd_solve_matches_numpy():
    rng = np.random.default_rng(5)
    n, q = 200, 6
    u = np.c_[rng.normal(size=(n, q - 1)), np.ones(n)]
    xi = np.c_[0.6 * u[:, :-1] + 0.1 * rng.normal(size=(n, q - 1)), np.zeros(n)]
    y = rng.normal(size=(n, 2))
    w = rng.uniform(0.5, 2, size=n)
    pen = np.r_[np.ones(q - 1), 0.0]
    beta, cond = lstd_solve(*(jnp.asarray(v) for v in (u, xi, y, w)), 1e-3, jnp.asarray(pen))
    sig = (u * w[:, None]).T @ (u - xi) / w.sum() + 1e-3 * np.diag(pen)
    ref = np.linalg.solve(sig, (u * w[:, None]).T @ y / w.sum())
    np.testing.assert_allclose(beta, ref, rtol=1e-10)
    np.testing.assert_allclose(cond, np.linalg.cond(sig, 1), rtol=1e-8)


def test_state_ratio_matches_numpy_lstsq_of_the_spec_system():
    rng = np.random.default_rng(6)
    n = 400
    s = rng.normal(size=(n, 1)) * 5
    s_next = 0.8 * s + rng.normal(size=(n, 1))
    c = rng.uniform(0.2, 2.0, size=n)
    params = RatioFeatures(Standardizer(jnp.zeros(1), jnp.ones(1)), jnp.asarray(ORIGINAL_RFF_W[None]),
                           jnp.asarray(ORIGINAL_RFF_B))
    psi, psi_n = ratio_features(params, jnp.asarray(s)), ratio_features(params, jnp.asarray(s_next))
    res = fit_state_ratio(psi, psi_n, jnp.asarray(c), jnp.ones(n), 1e-4, 500.0, normalize=True)
    # numpy: the features written out from the spec (sklearn RBFSampler, gamma = 1, D = 15)
    def feats(x):
        return np.c_[np.ones(len(x)), np.sqrt(2 / 15) * np.cos(x @ ORIGINAL_RFF_W[None] + ORIGINAL_RFF_B)]
    P, Pn = feats(s), feats(s_next)
    X = np.r_[(P - c[:, None] * Pn).T @ P / n, P.mean(0)[None]]
    y = np.zeros(17)
    y[-1] = 1.0
    beta = np.linalg.solve(X.T @ X + 1e-4 * np.eye(16), X.T @ y)
    omega = np.clip(P @ beta, 1 / 500, 500)
    omega = omega / omega.mean()
    np.testing.assert_allclose(res.coef, beta, rtol=1e-9)
    np.testing.assert_allclose(res.values, omega, rtol=1e-9)
    np.testing.assert_allclose(res.ess, omega.sum() ** 2 / np.sum(omega ** 2), rtol=1e-9)
    # feature-major, as the pipeline builds and fits them: the same features and fit
    pt, pnt = (ratio_features(params, jnp.asarray(x), feature_major=True) for x in (s, s_next))
    np.testing.assert_allclose(pt, np.asarray(psi).T, rtol=0, atol=1e-15)
    res_t = fit_state_ratios(pt, pnt, jnp.asarray(c)[:, None], jnp.ones(n), 1e-4, 500.0,
                             feature_major=True)[0]
    np.testing.assert_allclose(res_t.values, omega, rtol=1e-9)
    np.testing.assert_allclose(res_t.coef, beta, rtol=1e-9)


def test_default_ratio_feature_count_is_15_and_none_means_it():
    # MediationConfig.ratio_features = None (the default) is RATIO_FEATURES = 15 random Fourier
    # features in the stationary pipeline: the same draw as asking for 15, and validation
    # still refuses a count below 1
    from jaxmed._src.mediation.config import RATIO_FEATURES

    rng = np.random.default_rng(3)
    s = jnp.asarray(rng.normal(size=(30, 2)))
    w = jnp.ones(30)
    by_default = fit_ratio_features(jax.random.PRNGKey(4), s, w, MediationConfig())
    by_hand = fit_ratio_features(jax.random.PRNGKey(4), s, w, MediationConfig(ratio_features=15))
    assert MediationConfig().ratio_features is None and RATIO_FEATURES == 15
    assert by_default.w.shape == (2, 15)
    np.testing.assert_array_equal(by_default.w, by_hand.w)
    np.testing.assert_array_equal(by_default.b, by_hand.b)
    assert ratio_features(by_default, s).shape == (30, 16)
    with pytest.raises(ValueError, match="ratio_features"):
        MediationConfig(ratio_features=0)


def test_raw_ratio_features_keep_float32_and_match_numpy():
    # the parity configuration: raw (unstandardised) states and the original's W, b (spec §5.1)
    rng = np.random.default_rng(7)
    s = (rng.normal(size=(40, 1)) * 3).astype(np.float32)
    params = fit_ratio_features(jax.random.PRNGKey(0), jnp.asarray(s), jnp.ones(40, jnp.float32),
                                MediationConfig.parity())
    psi = ratio_features(params, jnp.asarray(s))
    ref = np.c_[np.ones(40), np.sqrt(2 / 15) * np.cos(s.astype(np.float64) @ ORIGINAL_RFF_W[None]
                                                       + ORIGINAL_RFF_B)]
    assert psi.dtype == jnp.float32  # float32 states give float32 features
    np.testing.assert_allclose(np.asarray(psi, np.float64), ref, rtol=0, atol=2e-5)


def test_binary_q_features_are_the_subset_products_of_state_and_mediator():
    rng = np.random.default_rng(8)
    s = rng.integers(0, 2, size=(16, 2)).astype(np.float64)
    m = rng.integers(0, 2, size=(16, 1)).astype(np.float64)
    cfg = MediationConfig.binary()
    basis = fit_q_basis({"state": jnp.asarray(s), "mediator": jnp.asarray(m)}, jnp.ones(16), cfg)
    phi = q_features(basis, jnp.asarray(s), jnp.asarray(m), cfg)
    x = np.c_[s, m]  # products of the non-empty subsets of (s1, s2, m), by size then lexically
    subsets = [c for r in (1, 2, 3) for c in itertools.combinations(range(3), r)]
    ref = np.stack([x[:, list(c)].prod(axis=1) for c in subsets], axis=1)
    np.testing.assert_array_equal(np.asarray(phi), ref)


def test_cluster_se_matches_numpy_including_ragged_trajectories():
    rng = np.random.default_rng(7)
    n, t = 30, 6
    x = rng.normal(size=(n * t, 3)) + rng.normal(size=(n, 1, 3)).repeat(t, 1).reshape(-1, 3)
    mask = np.ones((n, t))
    se = cluster_se(jnp.asarray(x), jnp.asarray(mask))
    m = x.reshape(n, t, 3).mean(1)
    np.testing.assert_allclose(se, m.std(0, ddof=1) / np.sqrt(n), rtol=1e-12)
    # ragged: the mean over observed rows, delta-method influence n_i (m_i - est) / mean n_i
    mask[:10, 4:] = 0
    est, infl = cluster_influence(jnp.asarray(x), jnp.asarray(mask))
    obs = mask.reshape(-1).astype(bool)
    ref_est = x[obs].mean(0)
    ni = mask.sum(1)
    mi = np.stack([x.reshape(n, t, 3)[i][mask[i] > 0].mean(0) for i in range(n)])
    ref_infl = ni[:, None] * (mi - ref_est) / ni.mean()
    np.testing.assert_allclose(est, ref_est, rtol=1e-12)
    np.testing.assert_allclose(infl, ref_infl, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cluster_se(jnp.asarray(x), jnp.asarray(mask)),
                               np.sqrt((ref_infl ** 2).sum(0) / (n * (n - 1))), rtol=1e-10)


def test_bootstrap_counts_are_multinomial():
    counts = jax.vmap(lambda k: bootstrap_counts(k, 10))(jax.random.split(jax.random.key(0), 4000))
    counts = np.asarray(counts)
    assert np.all(counts.sum(1) == 10)
    # each count ~ Binomial(10, 0.1): mean 1, variance 0.9
    assert abs(counts.mean() - 1.0) < 5 * np.sqrt(0.9 / counts.size)
    assert abs(counts[:, 0].var() - 0.9) < 0.1


def _dense_bsplines(x, knots, degree=3):
    """The dense Cox–de Boor recursion over every column (float64 numpy), with the zero-span
    convention 0/0 = 0 and the right end in the last interval."""
    m = knots.shape[0]
    lo, hi = knots[0], knots[-1]
    x = np.clip(x, lo, hi)[:, None]
    b = ((x >= knots[None, :-1]) & (x < knots[None, 1:])).astype(float)
    b[:, m - degree - 2] = np.where(x[:, 0] >= hi, 1.0, b[:, m - degree - 2])

    def safe(a, d):
        return np.where(d != 0, a / np.where(d != 0, d, 1.0), 0.0)
    for d in range(1, degree + 1):
        t0, t1, t2, t3 = knots[:m - d - 1], knots[d:m - 1], knots[1:m - d], knots[d + 1:]
        b = safe(x - t0, t1 - t0) * b[:, :-1] + safe(t3 - x, t3 - t2) * b[:, 1:]
    return b


@pytest.mark.parametrize("interior", [[-2.0, -1.1, -0.2, 0.4, 1.3, 2.2, 3.0],
                                      [-1.0, -0.2, 0.3, 0.3, 0.9, 1.4, 2.0],
                                      [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0],
                                      [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]],
                         ids=["distinct", "one-tie", "tied-ends", "binary"])
def test_local_bsplines_equal_the_dense_recursion(interior):
    # only the degree + 1 possibly nonzero B-splines are computed per point; with repeated
    # interior knots and at every knot (and 1e-12 either side) the values are the dense
    # recursion's, including its zero rows where the right end's interval is empty
    kn = np.r_[[interior[0]] * 3, interior, [interior[-1]] * 3]
    rng = np.random.default_rng(11)
    x = np.r_[rng.uniform(kn[0] - 1, kn[-1] + 1, 2000), kn, kn + 1e-12, kn - 1e-12]
    got = np.asarray(jax.jit(bspline_basis)(jnp.asarray(x), jnp.asarray(kn)))
    np.testing.assert_allclose(got, _dense_bsplines(x, kn), rtol=0, atol=1e-15)
    # built feature-major, the same values transposed
    got_t = np.asarray(jax.jit(bspline_basis, static_argnames="feature_major")(
        jnp.asarray(x), jnp.asarray(kn), feature_major=True))
    np.testing.assert_array_equal(got_t, got.T)
