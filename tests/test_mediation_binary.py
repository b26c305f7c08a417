"""Binary states and mediators (MediationConfig.binary()): bases, Bernoulli law, tabular models.

References are plain float64 numpy (hand-computed frequencies and sums) and the exact truth of
the toy designs (stationary laws, ``jaxmed.sim.truth``).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.binary import (bernoulli_expectation, bernoulli_pmf,
                                          binary_cell_index, binary_indicator_features)
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import ESTIMATORS, mediation_effects
from jaxmed._src.mediation.estimators import row_importance_weights
from jaxmed._src.mediation.nuisance import NuisancePredictions, nuisance_predictions_from_functions
from jaxmed._src.mediation.tabular_models import (TabularBehaviourModel, TabularMediatorModel,
                                                  TabularRewardModel, cell_means)
from jaxmed._src.trajectories import Trajectories
from jaxmed.sim import get_design, truth


@pytest.fixture(scope="module")
def toy_small():
    d = get_design("toy1")
    return d, d.simulate(jax.random.key(3), 40, 25)


def test_indicator_features_span_every_function_of_a_binary_vector():
    corners = np.array([[s, m] for m in (0, 1) for s in (0, 1)], float)
    x = np.asarray(binary_indicator_features(jnp.asarray(corners)))
    np.testing.assert_array_equal(x, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 1]])
    design = np.column_stack([np.ones(4), x])  # with an intercept: saturated (rank 4 = 2^2)
    assert np.linalg.matrix_rank(design) == 4
    assert np.asarray(binary_cell_index(jnp.asarray(corners))).tolist() == [0, 1, 2, 3]


def test_bernoulli_pmf_and_expectation_are_exact_sums():
    prob = np.array([[0.2, 0.7], [0.9, 0.4]])
    f = lambda m: 3.0 * m[:, 0] - 2.0 * m[:, 1] + 5.0 * m[:, 0] * m[:, 1] + 1.0  # noqa: E731
    got = np.asarray(bernoulli_expectation(f, jnp.asarray(prob)))
    ref = np.zeros(2)
    for r in range(2):
        for m0 in (0, 1):
            for m1 in (0, 1):
                p = (prob[r, 0] if m0 else 1 - prob[r, 0]) * (prob[r, 1] if m1 else 1 - prob[r, 1])
                ref[r] += p * (3 * m0 - 2 * m1 + 5 * m0 * m1 + 1)
    np.testing.assert_allclose(got, ref, rtol=1e-14)
    np.testing.assert_allclose(bernoulli_pmf(jnp.asarray([1.0, 0.0]), jnp.asarray(prob[0])),
                               0.2 * 0.3, rtol=1e-14)


def test_cell_means_weighted_with_pooled_fallback_for_empty_cells():
    cells = jnp.asarray([0, 0, 2, 2, 2])
    y = jnp.asarray([1.0, 3.0, 2.0, 4.0, 10.0])
    w = jnp.asarray([1.0, 3.0, 2.0, 0.0, 1.0])
    means, counts = cell_means(cells, y, w, 4)
    pooled = (1 + 9 + 4 + 10) / 7.0
    np.testing.assert_allclose(means, [(1 + 9) / 4, pooled, (4 + 10) / 3, pooled], rtol=1e-14)
    np.testing.assert_allclose(counts, [4, 0, 3, 0])


def test_tabular_models_equal_hand_computed_cell_frequencies(toy_small):
    _, data = toy_small
    rows = {k: jnp.asarray(v) for k, v in data.flat().items()}
    s = np.asarray(rows["state"])[:, 0]
    a = np.asarray(rows["action"])
    m = np.asarray(rows["mediator"])[:, 0]
    r = np.asarray(rows["reward"])
    w = np.ones_like(a)
    w[:50] = 0.0  # weights matter: drop the first two trajectories' rows
    wj = jnp.asarray(w)
    beh = TabularBehaviourModel()
    pb = beh.prob_one(beh.fit(None, rows, wj), jnp.asarray([[0.0], [1.0]]))
    ref_pb = [np.sum(w * a * (s == v)) / np.sum(w * (s == v)) for v in (0, 1)]
    np.testing.assert_allclose(pb, ref_pb, rtol=1e-13)
    med = TabularMediatorModel()
    pmf = med.fit(None, rows, wj)
    for sv in (0, 1):
        for av in (0, 1):
            sel = w * (s == sv) * (a == av)
            got = med.mean(pmf, jnp.asarray([[float(sv)]]), float(av))
            np.testing.assert_allclose(got[0, 0], np.sum(sel * m) / np.sum(sel), rtol=1e-13)
    rew = TabularRewardModel()
    rf = rew.fit(None, rows, wj)
    p1 = 0.3
    for sv in (0, 1):
        for av in (0, 1):
            cell = [np.sum(w * r * (s == sv) * (a == av) * (m == mv))
                    / np.sum(w * (s == sv) * (a == av) * (m == mv)) for mv in (0, 1)]
            got = rew.mean(rf, jnp.asarray([[float(sv)]] * 2), float(av), jnp.asarray([[0.0], [1.0]]))
            np.testing.assert_allclose(got, cell, rtol=1e-13)
            e = rew.expected(rf, jnp.asarray([[float(sv)]]), float(av), jnp.asarray([[p1]]), None)
            np.testing.assert_allclose(e[0], (1 - p1) * cell[0] + p1 * cell[1], rtol=1e-13)


def test_bernoulli_rho_equals_hand_formula():
    pe_s = np.array([0.8, 0.3, 0.6])
    mean = np.array([[0.2, 0.9], [0.5, 0.4], [0.7, 0.1]])[:, :, None]  # P(M=1|S, a)
    a = np.array([0.0, 1.0, 1.0])
    m = np.array([[1.0], [0.0], [1.0]])
    pb = np.array([0.4, 0.5, 0.25])
    n = 3
    preds = NuisancePredictions(jnp.asarray(pb), jnp.asarray(mean), jnp.ones((n, 2, 1)),
                                jnp.asarray(mean), jnp.ones((n, 2, 1)), jnp.zeros((n, 2)),
                                jnp.zeros((n, 2, 2)))
    rows = dict(action=jnp.asarray(a), mediator=jnp.asarray(m))
    iw = row_importance_weights(rows, preds, jnp.asarray(pe_s), 0, 500.0, mediator_law="bernoulli")
    pmf = lambda p, x: p if x == 1 else 1 - p  # noqa: E731
    rho = [((1 - pe_s[k]) * pmf(mean[k, 0, 0], m[k, 0]) + pe_s[k] * pmf(mean[k, 1, 0], m[k, 0]))
           / pmf(mean[k, int(a[k]), 0], m[k, 0]) for k in range(n)]
    np.testing.assert_allclose(iw.rho, rho, rtol=1e-13)
    pe_a = np.where(a == 1, pe_s, 1 - pe_s)
    np.testing.assert_allclose(iw.kappa_e, pe_a / pb, rtol=1e-13)
    np.testing.assert_allclose(iw.kappa_0, (1 - a) / pb, rtol=1e-13)


@pytest.fixture(scope="module")
def toy_large():
    d = get_design("toy1")
    return d, d.simulate(jax.random.key(11), 1500, 50)


def _within(res, tr, k=4.0):
    est, se = res.estimate[0, :4], res.se[0, :4]
    z = (est - tr[:4]) / se
    assert np.all(np.isfinite(z)), (est, se)
    assert np.all(np.abs(z) < k), dict(estimate=est, truth=tr[:4], se=se, z=z)


def test_oracle_bernoulli_nuisances_mr_within_4_se_of_exact_truth(toy_large):
    d, data = toy_large
    nu = d.nuisances
    preds = nuisance_predictions_from_functions(
        data, behaviour_prob_one=d.behaviour_policy.prob_one,
        mediator_mean=lambda s, a: jnp.atleast_1d(nu["mediator_prob"](s, a)),
        mediator_sd=None, reward_mean=nu["reward_mean"], mediator_law="bernoulli")
    res = mediation_effects(data, d.target_policy, key=jax.random.key(0),
                            config=MediationConfig.binary(), nuisances=preds)
    assert int(res.status) == 0
    _within(res, truth("toy1").effect_array())


@pytest.fixture(scope="module")
def fitted_large(toy_large):
    d, data = toy_large
    return mediation_effects(data, d.target_policy, key=jax.random.key(0),
                             config=MediationConfig.binary())


def test_fitted_tabular_models_mr_within_4_se_and_baselines_are_biased(fitted_large):
    res = fitted_large
    tr = truth("toy1").effect_array()
    assert int(res.status) == 0
    _within(res, tr)
    # saturated models: the point-exposure baselines coincide (spec §6.5b) ...
    rows = [ESTIMATORS.index(e) for e in ("Baseline_DM", "Baseline_IPW", "Baseline_MR")]
    np.testing.assert_allclose(res.estimate[rows[1:], :2], res.estimate[[rows[0]] * 2, :2],
                               rtol=1e-8)
    # ... and are biased on the with-state design (they ignore the state dynamics, §10.6)
    b = ESTIMATORS.index("Baseline_DM")
    assert abs(res.estimate[b, 0] - tr[0]) > 5 * res.se[0, 0]


def test_binary_config_rejects_non_binary_mediators(toy_small):
    d, data = toy_small
    bad = Trajectories(*(np.asarray(x) for x in data))
    med = bad.mediator.copy()
    med[1, 2, 0] = 0.5
    bad = bad._replace(mediator=med)
    with pytest.raises(ValueError, match="data.mediator: expected values in"):
        mediation_effects(bad, d.target_policy, key=jax.random.key(0),
                          config=MediationConfig.binary())
    # each check names the field it rejects (a state at t = 3 is also the next state of t = 2;
    # the next state of the last step is nobody's state)
    s, s_next = np.asarray(data.state).copy(), np.asarray(data.next_state).copy()
    s[2, 3, 0] = s_next[2, 2, 0] = 0.5
    s_last = np.asarray(data.next_state).copy()
    s_last[2, -1, 0] = 0.5
    for field, kw in (("state", dict(state=s, next_state=s_next)), ("next_state", dict(next_state=s_last))):
        with pytest.raises(ValueError, match=f"^data.{field}: expected values in"):
            mediation_effects(Trajectories(*(np.asarray(v) for v in data))._replace(**kw),
                              d.target_policy, key=jax.random.key(0), config=MediationConfig.binary())
    with pytest.raises(ValueError, match="config.nuisance_model"):
        MediationConfig(nuisance_model="tabular")


def test_study_default_estimator_of_toy_designs_uses_the_binary_configuration(toy_large,
                                                                             fitted_large):
    from jaxmed import study

    _, data = toy_large
    spec = study.default_estimator(study.get_design("toy2-iid"))
    assert spec.name == "mediation-binary"
    assert study.default_estimator(study.get_design("semi-synthetic")).name == "mediation-default"
    data = Trajectories(*(jnp.asarray(x) for x in data))
    table = jax.jit(spec.fn)(jax.random.key(0), data)
    np.testing.assert_allclose(table.estimate, fitted_large.estimate, rtol=1e-10)


def test_bernoulli_rho_is_finite_when_the_other_action_gives_probability_zero():
    # P̂(M = 1 | S, a = 1) = 1 (an empty (s, 1, 0) cell of a tabular fit); rows take A = 0, M = 0
    mean = jnp.asarray([[[0.3], [1.0]], [[0.6], [1.0]]])
    preds = NuisancePredictions(jnp.asarray([0.5, 0.5]), mean, jnp.zeros((2, 2, 1)), mean,
                                jnp.zeros((2, 2, 1)), jnp.zeros((2, 2)), jnp.zeros((2, 2, 2)))
    rows = dict(action=jnp.asarray([0.0, 0.0]), mediator=jnp.asarray([[0.0], [1.0]]))
    pe_s = jnp.asarray([0.8, 0.8])
    iw = row_importance_weights(rows, preds, pe_s, 0, 500.0, mediator_law="bernoulli")
    # row 0: (0.2·0.7 + 0.8·0) / 0.7; row 1 (M = 1): (0.2·0.6 + 0.8·1) / 0.6
    np.testing.assert_allclose(iw.rho, [0.2, (0.12 + 0.8) / 0.6], rtol=1e-14)


def test_tabular_mediator_sd_is_sqrt_p_one_minus_p_with_finite_derivatives_at_0_and_1():
    """σ̂ = sqrt(p̂(1 − p̂)) per cell; at p̂ ∈ {0, 1} it is 0 with a zero derivative, not the
    plain sqrt's infinite one (which turned any reverse pass through it into 0·∞ = NaN)."""
    import jax
    from jaxmed._src.mediation.tabular_models import TabularFit, TabularMediatorModel
    model = TabularMediatorModel()
    state = jnp.array([[0.0], [1.0], [0.0], [1.0]])
    action = jnp.array([0.0, 0.0, 1.0, 1.0])

    def sds(table):
        return model.sd(TabularFit(table, jnp.ones(4)), state, action)[:, 0]

    table = jnp.array([[0.0], [0.3], [1.0], [0.5]])  # cells (s, a) = (0,0), (1,0), (0,1), (1,1)
    p = np.asarray(model.mean(TabularFit(table, jnp.ones(4)), state, action))[:, 0]
    np.testing.assert_allclose(np.asarray(sds(table)), np.sqrt(p * (1 - p)), rtol=1e-15)
    jac = np.asarray(jax.jacrev(sds)(table))
    assert np.isfinite(jac).all()
    for row, pr in enumerate(p):
        want = 0.0 if pr in (0.0, 1.0) else (1 - 2 * pr) / (2 * np.sqrt(pr * (1 - pr)))
        np.testing.assert_allclose(jac[row].sum(), want, rtol=1e-12, atol=0)
