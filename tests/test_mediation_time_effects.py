"""Calendar-time mediation estimator (issue 15): building blocks, and strength 0 reducing to
the stationary estimator."""

import jax
import numpy as np
import pytest

from jaxmed._src import policies as P
from jaxmed._src.mediation.effects import mediation_effects
from jaxmed._src.mediation.time_effects import (augment_with_time, check_calendar_time,
                                                mediation_effects_time)
from jaxmed._src.sim.designs import truth
from jaxmed._src.sim.drift import simulate_semi_synthetic_drift
from jaxmed._src.state_slice_policy import StateSlicePolicy
from jaxmed._src.trajectories import Trajectories

EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")


def test_check_calendar_time_shifts_and_validates():
    mask = np.ones((2, 4))
    tau, p = check_calendar_time(None, mask)
    np.testing.assert_array_equal(tau, np.tile(np.arange(4.0), (2, 1)))
    assert p == 4
    # staggered entry: trajectory 1 starts two days later; padding gets τ = 0
    mask2 = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], float)
    tau, p = check_calendar_time(np.array([[10, 11, 12, -99], [12, 13, 14, 15]]), mask2)
    np.testing.assert_array_equal(tau, [[0, 1, 2, 0], [2, 3, 4, 5]])
    assert p == 6
    with pytest.raises(ValueError, match="^calendar_time: expected shape"):
        check_calendar_time(np.zeros((2, 3)), mask)
    with pytest.raises(ValueError, match="^calendar_time: expected integer"):
        check_calendar_time(np.array([[0, 1, 2.5, 3], [0, 1, 2, 3]]), mask)
    with pytest.raises(ValueError, match="trajectory 1 goes from 1 to 3 at step 1"):
        check_calendar_time(np.array([[0, 1, 2, 3], [0, 1, 3, 4]]), mask)


def test_augment_with_time_wraps_the_last_step():
    rng = np.random.default_rng(0)
    n, t, period = 3, 4, 6
    s = rng.normal(size=(n, t + 1, 1))
    data = Trajectories(s[:, :-1], np.ones((n, t)), rng.normal(size=(n, t, 2)),
                        rng.normal(size=(n, t)), s[:, 1:], np.ones((n, t)))
    tau = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [1, 2, 3, 4]], float)
    aug = augment_with_time(data, tau, period)
    np.testing.assert_array_equal(np.asarray(aug.state), np.concatenate([s[:, :-1], tau[..., None]], -1))
    nxt = np.array([[1, 2, 3, 4], [3, 4, 5, 0], [2, 3, 4, 5]], float)
    np.testing.assert_array_equal(np.asarray(aug.next_state), np.concatenate([s[:, 1:], nxt[..., None]], -1))
    np.testing.assert_array_equal(np.asarray(aug.reward), data.reward)


def test_state_slice_policy_ignores_the_time_coordinate():
    pol = StateSlicePolicy(P.semi_synthetic_target_policy(), 1)
    for s, tau in ((0.3, 0.0), (-2.0, 17.0), (5.0, 3.0)):
        want = 1.0 / (1.0 + np.exp(-0.7 * s))
        assert abs(float(pol.prob_one(np.array([s, tau]))) - want) < 1e-14
        assert abs(float(pol.prob(0.0, np.array([s, tau]))) - (1 - want)) < 1e-14


@pytest.fixture(scope="module")
def stationary_fit():
    data = simulate_semi_synthetic_drift(jax.random.key(5), 200, 25, strength=0.0)
    target = P.semi_synthetic_target_policy()
    plain = mediation_effects(data, target, key=jax.random.key(6))
    timed = mediation_effects_time(data, target, key=jax.random.key(6))
    return data, target, plain, timed


def test_time_effects_none_is_the_stationary_pipeline(stationary_fit):
    data, target, plain, _ = stationary_fit
    off = mediation_effects_time(data, target, key=jax.random.key(6), time_effects="none")
    np.testing.assert_array_equal(off.estimate, plain.estimate)
    np.testing.assert_array_equal(off.se, plain.se)
    with pytest.raises(ValueError, match="^time_effects"):
        mediation_effects_time(data, target, key=jax.random.key(6), time_effects="fourier")


def test_time_effects_at_strength_zero_agree_with_stationary_and_truth(stationary_fit):
    data, target, plain, timed = stationary_fit
    t = truth("semi-synthetic")
    mr = 0  # ESTIMATORS[0] == "MR"
    assert int(timed.status) == 0
    for j, k in enumerate(EFFECTS):
        se_p, se_t = plain.se[mr, j], timed.se[mr, j]
        # two consistent estimators of the same estimand on the same data
        assert abs(timed.estimate[mr, j] - plain.estimate[mr, j]) < 2 * se_p, k
        assert abs(timed.estimate[mr, j] - t.effects[k]) < 4 * se_t, k
        # the time terms cost little precision when there is no drift
        assert se_t < 1.5 * se_p, k


def test_calendar_time_shift_and_staggered_entry(stationary_fit):
    data, target, _, timed = stationary_fit
    n, horizon = np.asarray(data.action).shape
    shifted = mediation_effects_time(data, target, key=jax.random.key(6),
                                     calendar_time=np.arange(horizon)[None, :] + 100 + np.zeros((n, 1)))
    np.testing.assert_allclose(shifted.estimate, timed.estimate, rtol=1e-12, atol=1e-12)


def test_cli_estimate_time_effects_reads_calendar_time(stationary_fit, tmp_path):
    import contextlib
    import io

    from jaxmed import cli
    from jaxmed._src.trajectories import trajectories_to_dataframe

    data, _, _, timed = stationary_fit
    df = trajectories_to_dataframe(data, state_names=["s"], mediator_names=["m1", "m2"])
    df["day"] = df["time"] + 40  # calendar days; the estimator shifts them to start at 0
    df = df.sample(frac=1.0, random_state=1)
    path = tmp_path / "drift.csv"
    df.to_csv(path, index=False)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["estimate", str(path), "--state", "s", "--mediator", "m1,m2", "--time",
                       "day", "--next-state", "next_s", "--seed", "6", "--time-effects", "spline"])
    out = buf.getvalue()
    assert rc == 0, out
    printed = {ln.split()[1]: float(ln.split()[2]) for ln in out.splitlines()
               if ln.split()[:1] == ["MR"]}
    for j, k in enumerate(EFFECTS):
        assert abs(printed[k] - timed.estimate[0, j]) < 1e-4, (k, out)


def test_time_interaction_features_match_a_numpy_construction():
    """q_time_interactions="linear": [h, g, τ-block ⊗ (linear s terms, linear m terms)], and
    the Gaussian expectation of the products is τ-block × E[standardised m] (exact)."""
    import jax.numpy as jnp

    from jaxmed._src.mediation.basis import state_basis
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.q_function import fit_q_basis, q_feature_rows, q_features

    rng = np.random.default_rng(3)
    n, k = 50, 5 + 4
    state = np.column_stack([rng.normal(size=n) * 3, rng.integers(0, 10, n).astype(float)])
    med = rng.normal(size=(n, 2))
    cfg = MediationConfig(q_time_interactions="linear")
    w = np.ones(n)
    basis = fit_q_basis(dict(state=jnp.asarray(state), mediator=jnp.asarray(med)), jnp.asarray(w), cfg)
    h = np.asarray(state_basis(basis.state, jnp.asarray(state)))
    zm = (med - np.asarray(basis.mediator.center)) / np.asarray(basis.mediator.scale)
    g = [zm[:, 0], zm[:, 1], zm[:, 0] ** 2, zm[:, 0] * zm[:, 1], zm[:, 1] ** 2, zm[:, 0] ** 3,
         zm[:, 0] ** 2 * zm[:, 1], zm[:, 0] * zm[:, 1] ** 2, zm[:, 1] ** 3]
    g = np.column_stack(g)
    tau_block, s_lin = h[:, k:], h[:, :1]       # τ's block; the s block starts with its linear z
    others = np.column_stack([s_lin, zm])
    inter = np.stack([tau_block[:, i] * others[:, j] for i in range(k) for j in range(3)], axis=1)
    want = np.column_stack([h, g, inter])
    got = np.asarray(q_features(basis, jnp.asarray(state), jnp.asarray(med), cfg))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    plain = np.asarray(q_features(basis, jnp.asarray(state), jnp.asarray(med), MediationConfig()))
    np.testing.assert_array_equal(plain, got[:, :h.shape[1] + 9])   # "none" = the first columns

    # expectation under a Gaussian mediator law: E[τ-block · z_m] = τ-block · (mean − c)/scale
    mean = rng.normal(size=(n, 2, 2))
    sd = np.exp(rng.normal(size=(n, 2, 2)) * 0.2)

    class Preds:
        mediator_mean = jnp.asarray(mean)
        mediator_sd = jnp.asarray(sd)
        mediator_mean_next = jnp.asarray(mean)
        mediator_sd_next = jnp.asarray(sd)

    rows = dict(state=jnp.asarray(state), next_state=jnp.asarray(state), mediator=jnp.asarray(med))
    feats = q_feature_rows(basis, rows, Preds, cfg)
    for a in (0, 1):
        zmean = (mean[:, a] - np.asarray(basis.mediator.center)) / np.asarray(basis.mediator.scale)
        exp_inter = np.stack([tau_block[:, i] * np.column_stack([s_lin, zmean])[:, j]
                              for i in range(k) for j in range(3)], axis=1)
        np.testing.assert_allclose(np.asarray(feats.matrices()[1][a][-3 * k:]).T, exp_inter,
                                   rtol=1e-12, atol=1e-12)


def test_time_interactions_config_is_validated():
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.time_effects import time_config

    with pytest.raises(ValueError, match="^config.q_time_interactions: expected"):
        MediationConfig(q_time_interactions="full")
    with pytest.raises(ValueError, match="^config.q_time_interactions: needs"):
        MediationConfig(q_time_interactions="linear", q_basis="parity")
    assert time_config(MediationConfig(state_knots=3)).state_knots == 3
    with pytest.raises(ValueError, match="^time_effects"):
        time_config(None, "cubic")
