"""The ``semi-synthetic-drift`` design: strength 0 is the stationary design, the exogenous
path enters as documented, and the truth matches brute-force rollouts."""

import jax
import numpy as np
import pytest

from jaxmed._src import policies as P
from jaxmed._src.sim import drift as D
from jaxmed._src.sim import semi_synthetic as ss
from jaxmed._src.sim.designs import get_design, truth


def test_strength_zero_is_the_stationary_design_bit_for_bit():
    for seed in (0, 7):
        a = D.simulate_semi_synthetic_drift(jax.random.key(seed), 20, 9, strength=0.0)
        b = ss.simulate_semi_synthetic(jax.random.key(seed), 20, 9)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # the registered design at another strength uses the same draws, so the first state agrees
    c = get_design("semi-synthetic-drift").simulate(jax.random.key(7), 20, 9)
    np.testing.assert_array_equal(np.asarray(c.state[:, 0]), np.asarray(a.state[:, 0]))
    np.testing.assert_array_equal(np.asarray(c.action), np.asarray(a.action))
    assert not np.allclose(np.asarray(c.state[:, 1:]), np.asarray(a.state[:, 1:]))


def test_exogenous_path_enters_state_and_reward_as_documented():
    n, horizon, kappa = 20, 9, 0.8
    d = D.simulate_semi_synthetic_drift(jax.random.key(3), n, horizon, strength=kappa)
    x = np.arange(horizon) / horizon
    z = 3 * kappa * (2 * x - 1 + np.sin(4 * np.pi * x))
    u = 2 * kappa * (2 * x - 1 + np.cos(4 * np.pi * x))
    z_hat, u_hat = D.exogenous_path(kappa, horizon)
    np.testing.assert_allclose(z_hat, z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(u_hat, u, rtol=0, atol=1e-12)
    s, a, m, r, s_next = (np.asarray(v) for v in d[:5])
    # S' = R + z_t
    np.testing.assert_allclose(s_next[..., 0] - r, np.broadcast_to(z, (n, horizon)), atol=1e-10)
    # R = r(S, A, M) + u_t + σ ε_R, with the same ε_R as the stationary design's draw
    base = ss.simulate_semi_synthetic(jax.random.key(3), n, horizon)
    m1, m2 = m[..., 0], m[..., 1]
    st = s[..., 0]
    r_mean = 1.5 * (0.5 * st + 0.5 * np.sqrt(np.abs(st)) + m1 + m2
                    + 0.5 * np.sqrt(np.abs(m1) + np.abs(m2)) * (a - 0.5) + 0.5 * (a - 0.5))
    b = np.asarray(base.state[..., 0])
    bm1, bm2, ba = np.asarray(base.mediator[..., 0]), np.asarray(base.mediator[..., 1]), np.asarray(base.action)
    base_mean = 1.5 * (0.5 * b + 0.5 * np.sqrt(np.abs(b)) + bm1 + bm2
                       + 0.5 * np.sqrt(np.abs(bm1) + np.abs(bm2)) * (ba - 0.5) + 0.5 * (ba - 0.5))
    np.testing.assert_allclose(r - r_mean - u, np.asarray(base.reward) - base_mean, atol=1e-9)
    with pytest.raises(ValueError, match="^horizon"):
        D.exogenous_path(1.0, 0)


def _brute_force_values(kappa, horizon, n, burn, periods, seed):
    """Window averages of realised rewards under π_e and π_0 after ``burn`` whole periods."""
    target = P.semi_synthetic_target_policy()
    # always-0 as a logistic policy (expit(−1e9) = 0 exactly): one compiled simulator for both
    control = P.LogisticPolicy(np.zeros(1), -1e9)
    out = []
    for k, pol in enumerate((target, control)):
        d = D.simulate_semi_synthetic_drift(jax.random.key(seed + k), n, (burn + periods) * horizon,
                                            strength=kappa, policy=pol, period=horizon)
        per_traj = np.asarray(d.reward)[:, burn * horizon:].mean(axis=1)
        out.append((per_traj.mean(), per_traj.std(ddof=1) / np.sqrt(n)))
    return out


@pytest.mark.slow  # CI time: 35 s Monte Carlo check of the truth
def test_truth_matches_brute_force_rollouts():
    kappa, horizon = 1.0, 6
    t = D.drift_truth(kappa, horizon, n_chains=400, n_periods=20, burn_in_periods=3)
    (v_e, se_e), (v_0, se_0) = _brute_force_values(kappa, horizon, 3000, 3, 10, 11)
    # η1 = E[R] under π_e, η5 = E[R] under π_0 (window averages at the periodic steady state)
    assert abs(t.eta[0] - v_e) < 4 * np.hypot(t.eta_se[0], se_e), (t.eta[0], v_e, se_e)
    assert abs(t.eta[4] - v_0) < 4 * np.hypot(t.eta_se[4], se_0), (t.eta[4], v_0, se_0)
    ate_se = np.hypot(t.se["ATE"], np.hypot(se_e, se_0))
    assert abs(t.effects["ATE"] - (v_e - v_0)) < 4 * ate_se
    # the drift moves the estimand: far from the stationary truth at this strength
    stat = truth("semi-synthetic")
    assert abs(t.effects["ATE"] - stat.effects["ATE"]) > 10 * np.hypot(t.se["ATE"], stat.se["ATE"])


@pytest.mark.slow  # CI time: 35-48 s Monte Carlo truth; strength 0 = stationary design bit for bit stays in CI
def test_truth_at_strength_zero_is_the_stationary_truth():
    t = D.drift_truth(0.0, 6, n_chains=400, n_periods=20, burn_in_periods=3)
    stat = truth("semi-synthetic")
    for k in ("IDE", "IME", "DDE", "DME", "ATE"):
        assert abs(t.effects[k] - stat.effects[k]) < 4 * np.hypot(t.se[k], stat.se[k]), k


def test_registered_design_reaches_the_study_engine():
    from jaxmed._src.mediation.time_effects import COMPARISON_ESTIMATORS
    from jaxmed._src.study import catalog

    design = catalog.get_design("semi-synthetic-drift")
    spec = catalog.default_estimator(design)
    assert spec.estimators == COMPARISON_ESTIMATORS
    assert design.strength == D.DRIFT_STRENGTHS["large"] and design.default_horizon == 25
    cached = D.cached_drift_truth(design.strength, 25)
    assert catalog.truth_values(design) == {k: cached.effects[k] for k in cached.effects}
    # the drift moves every effect by more than 10 Monte Carlo SEs of the truths
    stat = truth("semi-synthetic")
    for k in ("IDE", "IME", "DDE", "DME", "ATE"):
        assert abs(cached.effects[k] - stat.effects[k]) > 10 * np.hypot(cached.se[k], stat.se[k]), k
