"""mediation_effects end to end: validation, result table, bootstrap, jit/plain agreement,
no recompilation, grad w.r.t. the target policy, and an oracle check."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmed
from jaxmed._src.mediation.effects import _core_jit
from jaxmed._src.policies import CallablePolicy, ConstantPolicy, LogisticPolicy
from jaxmed._src.sim.semi_synthetic import (semi_synthetic_mediator_mean,
                                            semi_synthetic_reward_mean, simulate_semi_synthetic)
from jaxmed.mediation import (EFFECTS, ESTIMATORS, MediationConfig, NuisancePredictions,
                              mediation_core, mediation_effects, mediation_estimator_spec,
                              nuisance_predictions_from_functions)

TRUTH = np.array([2.679841, 3.653535, 1.243782, 0.689031])
N, T = 40, 8


@pytest.fixture(scope="module")
def small():
    data = simulate_semi_synthetic(jax.random.key(0), N, T)
    data = jaxmed.Trajectories(*(np.asarray(x) for x in data))
    cfg = MediationConfig(n_boot=12)
    pol = LogisticPolicy(np.array([0.7]), 0.0)
    res = mediation_effects(data, pol, key=jax.random.key(1), config=cfg)
    return data, cfg, pol, res


def test_result_table_and_uncertainty(small):
    data, cfg, pol, res = small
    df = res.to_frame()
    assert list(df.columns) == ["estimator", "effect", "estimate", "se", "ci_low", "ci_high", "status"]
    assert set(df.status) == {"ok"}
    assert len(df) == 3 * 5 + 4 * 2  # MR, DM, MIS1 all effects; the others IDE/IME only
    row = df[(df.estimator == "MR") & (df.effect == "IME")].iloc[0]
    assert row.estimate == pytest.approx(res.estimate[0, 1])
    # MR: cluster SE of the per-trajectory influence values; CI = est ± 1.96 se
    infl = res.influence[:, 0, :]
    np.testing.assert_allclose(res.se[0], np.sqrt((infl ** 2).sum(0) / (N * (N - 1))), rtol=1e-10)
    np.testing.assert_allclose(res.ci_high - res.ci_low, 2 * 1.959963984540054 * res.se, rtol=1e-12)
    # DM: bootstrap SE (its cluster SE would be a fake 0)
    dm = ESTIMATORS.index("DM")
    assert np.isnan(res.cluster_se[dm]).all()
    np.testing.assert_allclose(res.se[dm], res.boot_estimates[:, dm].std(0, ddof=1), rtol=1e-12)
    assert np.all(res.se[dm] > 0)
    # ATE = sum of the four effects
    np.testing.assert_allclose(res.estimate[0, 4], res.estimate[0, :4].sum(), rtol=1e-12)
    assert int(res.status) == 0


@pytest.mark.slow  # CI time: 74 s of compilation (plain and jit)
def test_jit_agrees_with_plain_and_no_recompile(small):
    data, cfg, pol, res = small
    plain = mediation_core(jax.random.key(1), jaxmed.Trajectories(*(jnp.asarray(x) for x in data)),
                           pol, 0, cfg)
    np.testing.assert_allclose(plain.estimate, res.estimate, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(plain.se, res.se, rtol=1e-8, atol=1e-12)
    size = _core_jit._cache_size()
    data2 = jaxmed.Trajectories(*(np.asarray(x) for x in simulate_semi_synthetic(jax.random.key(7), N, T)))
    pol2 = LogisticPolicy(np.array([0.4]), 0.1)
    res2 = mediation_effects(data2, pol2, key=jax.random.key(2), config=cfg.replace(q_ridge=1e-3))
    assert _core_jit._cache_size() == size
    assert not np.allclose(res2.estimate[0, :4], res.estimate[0, :4])


def test_validation_errors(small):
    data, cfg, pol, _ = small
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="^control_policy"):
        mediation_effects(data, pol, ConstantPolicy(0.5), key=key)
    with pytest.raises(ValueError, match="^target_policy"):
        mediation_effects(data, CallablePolicy(lambda s: 1.5 + 0 * s[0]), key=key)
    bad = data._replace(mediator=np.asarray(data.mediator).copy())
    bad.mediator[..., 1] = 3.0
    with pytest.raises(ValueError, match="^data.mediator: column 1 is constant"):
        mediation_effects(bad, pol, key=key)
    with pytest.raises(ValueError, match="^data: both actions"):
        mediation_effects(data._replace(action=np.zeros_like(data.action)), pol, key=key)
    with pytest.raises(ValueError, match="^data: reward"):
        r = np.asarray(data.reward).copy()
        r[3, 2] = np.nan
        mediation_effects(data._replace(reward=r), pol, key=key)
    n = N * T
    nu = NuisancePredictions(np.full(n, 0.5), np.zeros((n, 2, 2)), np.ones((n, 2, 2)),
                             np.zeros((n, 2, 2)), np.ones((n, 2, 2)), np.zeros((n, 2)),
                             np.zeros((n, 2, 3)))
    with pytest.raises(ValueError, match="^nuisances.reward_expected"):
        mediation_effects(data, pol, key=key, nuisances=nu)


@pytest.mark.slow  # CI time: 35 s; policy derivatives also in test_differentiable_mediation.py
def test_grad_of_mr_wrt_target_policy_matches_finite_differences(small):
    data, _, _, _ = small
    d = jaxmed.Trajectories(*(jnp.asarray(x) for x in data))
    cfg = MediationConfig()

    def mr_ide(theta):
        pol = LogisticPolicy(theta[:1], theta[1])
        return mediation_core(jax.random.key(3), d, pol, 0, cfg).estimate[0, 0]

    f = jax.jit(mr_ide)
    theta = jnp.array([0.7, 0.1])
    g = jax.jit(jax.grad(mr_ide))(theta)
    h = 1e-5
    fd = np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in jnp.eye(2)])
    np.testing.assert_allclose(g, fd, rtol=1e-5)


@pytest.mark.slow  # CI time: 24 s statistical check
def test_oracle_nuisances_give_mr_close_to_truth():
    data = simulate_semi_synthetic(jax.random.key(42), 400, 25)
    nu = nuisance_predictions_from_functions(
        data, behaviour_prob_one=lambda s: 0.5, mediator_mean=semi_synthetic_mediator_mean,
        mediator_sd=jnp.array([2.0, 2.0]), reward_mean=semi_synthetic_reward_mean)
    res = mediation_effects(data, jaxmed.policies.semi_synthetic_target_policy(),
                            key=jax.random.key(0), nuisances=nu)
    err = res.estimate[0, :4] - TRUTH
    # repository truth is within ~0.004 of the exact one (spec §8.2)
    assert np.all(np.abs(err) < 3.5 * res.se[0, :4] + 0.005), (err, res.se[0, :4])


def test_estimator_spec_vmaps_over_replications_and_matches_one_call(small):
    data, cfg, pol, res = small
    spec = mediation_estimator_spec(pol, 0, cfg.replace(n_boot=0))
    assert spec.estimators == ESTIMATORS and spec.effects == EFFECTS
    d1 = jaxmed.Trajectories(*(jnp.asarray(x) for x in data))
    d2 = simulate_semi_synthetic(jax.random.key(9), N, T)
    both = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), d1, d2)
    keys = jnp.stack([jax.random.key_data(jax.random.key(1))] * 2)
    batched = jax.jit(jax.vmap(lambda k, d: spec.fn(jax.random.wrap_key_data(k), d)))(keys, both)
    np.testing.assert_allclose(batched.estimate[0], res.estimate, rtol=1e-9, atol=1e-12)
    mr = ESTIMATORS.index("MR")
    np.testing.assert_allclose(batched.se[0, mr], res.se[mr], rtol=1e-8)
    assert np.isnan(batched.se[0, ESTIMATORS.index("DM")]).all()  # no bootstrap: DM SE unknown
    single = mediation_effects(jaxmed.Trajectories(*(np.asarray(x) for x in d2)), pol,
                               key=jax.random.key(1), config=cfg.replace(n_boot=0))
    np.testing.assert_allclose(batched.estimate[1], single.estimate, rtol=1e-9, atol=1e-12)
