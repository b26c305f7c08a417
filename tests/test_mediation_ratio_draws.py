"""``MediationConfig(ratio_draws=M)``: the state ratios averaged over M draws of the random
Fourier features (the SEs hold the draws fixed; averaging divides the draws' variance by M).

Checked against what it must equal, computed independently:
* the M feature sets are the single-draw features of the keys ``split(k_ratio, M)``;
* every estimate is the mean of the M single-draw estimates (each estimator is linear in the
  ratios); the diagnostics are the worst over the draws;
* the IJ influence through the averaged ratios equals a central finite difference in v_i;
* bad values are refused at construction.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmed
from jaxmed._src.mediation.pipeline import fit_policy_free, policy_stage
from jaxmed._src.mediation.state_ratio import fit_ratio_features, ratio_features
from jaxmed._src.mediation.weighted_stats import row_weights
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.mediation import MediationConfig, estimate_pipeline, mediation_effects

N, T, M = 40, 8, 3
POL = jaxmed.policies.semi_synthetic_target_policy()
SMOOTH = dict(weighted_knots=False, soft_clip=0.05, rho_trunc=1.5, ratio_trunc=2.0)


@pytest.fixture(scope="module")
def data():
    return jaxmed.Trajectories(*(jnp.asarray(x) for x in
                                 simulate_semi_synthetic(jax.random.key(0), N, T)))


def test_estimates_are_the_mean_of_the_single_draw_estimates(data):
    key = jax.random.key(7)
    cfg = MediationConfig(ratio_draws=M)
    one = MediationConfig()
    ones = jnp.ones(N)
    fit = fit_policy_free(key, data, ones, cfg)
    assert fit.psi.shape[0] == M and fit.psi.ndim == 3
    # the M feature sets: the single-draw features of split(k_ratio, M), all different
    k_ratio = jax.random.split(key)[1]
    rows = data.flat()
    w = row_weights(data.mask, ones)
    for m, k in enumerate(jax.random.split(k_ratio, M)):
        rf = fit_ratio_features(k, rows["state"], w, one)
        np.testing.assert_allclose(fit.psi[m], ratio_features(rf, rows["state"]).T, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(fit.psi_next[m], ratio_features(rf, rows["next_state"]).T,
                                   rtol=1e-13, atol=1e-13)
    assert np.abs(np.asarray(fit.psi[0] - fit.psi[1])).max() > 0.1
    out = policy_stage(fit, POL, 0, cfg)
    singles = [policy_stage(fit._replace(psi=fit.psi[m], psi_next=fit.psi_next[m]), POL, 0, one)
               for m in range(M)]
    mean = np.mean([np.asarray(s.estimate) for s in singles], axis=0)
    np.testing.assert_allclose(out.estimate, mean, rtol=1e-10, atol=1e-12)
    spread = np.std([np.asarray(s.estimate)[0] for s in singles], axis=0)
    assert np.nanmax(spread) > 1e-4  # the draws differ, so the check above is not vacuous
    # the single-draw estimates are kept (for the draws' variance in the IJ SE)
    assert out.draw_estimates.shape == (M, 7, 5)
    for m in range(M):
        np.testing.assert_allclose(out.draw_estimates[m], singles[m].estimate, rtol=1e-10,
                                   atol=1e-12)
    assert singles[0].draw_estimates is None
    np.testing.assert_allclose(out.diagnostics.ratio_cond,
                               np.max([s.diagnostics.ratio_cond for s in singles], axis=0), rtol=1e-10)
    np.testing.assert_allclose(out.diagnostics.ratio_ess,
                               np.min([s.diagnostics.ratio_ess for s in singles], axis=0), rtol=1e-10)
    # one draw is the default pipeline, same numbers
    a = estimate_pipeline(key, data, ones, POL, 0, one).estimate
    b = estimate_pipeline(key, data, ones, POL, 0, MediationConfig(ratio_draws=1)).estimate
    np.testing.assert_array_equal(a, b)


def test_ij_influence_through_averaged_ratios_equals_finite_differences(data):
    key = jax.random.key(5)
    cfg = MediationConfig(**SMOOTH, ratio_draws=2, se_method="ij", ij_estimators=("MR", "MIS1"))
    res = mediation_effects(data, POL, key=key, config=cfg)
    k_fit = jax.random.split(key)[0]
    point = jax.jit(lambda v: estimate_pipeline(k_fit, data, v, POL, 0, cfg).estimate)
    ones = np.ones(N)
    np.testing.assert_allclose(point(jnp.asarray(ones)), res.estimate, rtol=1e-12, atol=1e-12)
    infl = np.asarray(res.influence)[:, :3, :4]  # MR, DM (NaN: not asked), MIS1
    rows = [0, 2]
    h = 1e-5
    for i in (3, 28):
        e = np.zeros(N)
        e[i] = h
        fd = N * (np.asarray(point(jnp.asarray(ones + e))) - np.asarray(point(jnp.asarray(ones - e)))) / (2 * h)
        scale = np.abs(infl[:, rows]).max(axis=0)
        err = np.abs(fd[rows, :4] - infl[i, rows]) / scale
        assert err.max() < 1e-5, (i, err.max())


def test_ij_se_adds_the_variance_of_the_draws():
    """With M draws the IJ SE holds the draws fixed, so ``se`` adds their own variance:
    se² = (IJ SE)² + s²/M, s² the sample variance of the M single-draw estimates (computed
    here from M one-draw pipelines on the same features)."""
    from jaxmed._src.mediation.influence import influence_se
    data_ = jaxmed.Trajectories(*(jnp.asarray(x) for x in
                                  simulate_semi_synthetic(jax.random.key(2), 60, 10)))
    key = jax.random.key(9)
    cfg = MediationConfig(ratio_draws=M, se_method="ij", ij_estimators=("MR", "DM"))
    res = mediation_effects(data_, POL, key=key, config=cfg)
    k_fit = jax.random.split(key)[0]
    fit = fit_policy_free(k_fit, data_, jnp.ones(60), cfg)
    singles = np.array([np.asarray(policy_stage(
        fit._replace(psi=fit.psi[m], psi_next=fit.psi_next[m]), POL, 0, MediationConfig()).estimate)
        for m in range(M)])
    ij = np.asarray(influence_se(res.influence))
    want = np.sqrt(ij ** 2 + singles.var(axis=0, ddof=1) / M)
    for e in (0, 1):  # MR, DM (DM's estimate does not use the ratios: no draw variance)
        np.testing.assert_allclose(res.se[e], want[e], rtol=1e-9)
    assert (np.asarray(res.se[0]) > ij[0] * (1 + 1e-6)).all()  # the draws add to MR's SE
    np.testing.assert_allclose(res.se[1], ij[1], rtol=1e-9)


def test_ratio_draws_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="config.ratio_draws"):
        MediationConfig(ratio_draws=0)
    with pytest.raises(ValueError, match="config.ratio_draws"):
        MediationConfig(ratio_draws=2, ratio_basis="binary")
    with pytest.raises(ValueError, match="config.ratio_draws"):
        MediationConfig(ratio_draws=2, ratio_fixed_features=True)
