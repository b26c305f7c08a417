"""Guardrails on thin or broken data (issue 13, deliverable 5): every hostile case of the issue
either raises a ValueError naming the argument before anything is traced, or comes back NaN
with a named status bit, never a confident number with status 0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmed
from jaxmed._src.longterm import values as longterm_values
from jaxmed._src.mediation import pipeline
from jaxmed._src.mediation.effects import guard_estimates, guard_se, se_rows
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.longterm import panel_from_arrays, panel_from_dataframe, panel_to_dataframe
from jaxmed.mediation import MediationConfig, PipelineDiagnostics, mediation_effects
from jaxmed.status import LongtermStatus, MediationStatus, describe, status_text

POL = jaxmed.policies.semi_synthetic_target_policy()
KEY = jax.random.key(1)


@pytest.fixture(scope="module")
def data():
    return jaxmed.Trajectories(*(np.asarray(x) for x in simulate_semi_synthetic(jax.random.key(0), 40, 8)))


def _first(data, n, t):
    """The first ``t`` steps of the first ``n`` trajectories."""
    return jaxmed.Trajectories(*(x[:n, :t] for x in data))


# ---- status names --------------------------------------------------------------------------

def test_status_bits_have_names_and_match_the_codes_the_estimators_set():
    assert int(MediationStatus.NONFINITE) == pipeline.STATUS_NONFINITE
    assert int(MediationStatus.Q_ILL_CONDITIONED) == pipeline.STATUS_Q_ILL_CONDITIONED
    assert int(MediationStatus.RATIO_ILL_CONDITIONED) == pipeline.STATUS_RATIO_ILL_CONDITIONED
    assert int(LongtermStatus.UNSTABLE) == longterm_values.STATUS_UNSTABLE
    assert int(LongtermStatus.NONFINITE) == longterm_values.STATUS_NONFINITE
    assert describe(0) == ["ok"] and describe(-1) == ["missing"]
    assert describe(1 | 8 | 32) == ["nonfinite", "poor_overlap", "huge_estimate"]
    assert describe(64 | 16) == ["low_ratio_ess", "se_nonfinite"]
    assert describe(np.int32(6)) == ["q_ill_conditioned", "ratio_ill_conditioned"]
    assert describe(3, kind="longterm") == ["unstable", "nonfinite"]
    assert describe(128) == ["bit_128"]
    assert status_text(16 | 2) == "q_ill_conditioned, low_ratio_ess"
    with pytest.raises(ValueError, match="kind: expected one of"):
        describe(1, kind="other")


# ---- boundary checks (numpy, nothing traced) ------------------------------------------------

@pytest.mark.parametrize("n,t", [(1, 1), (2, 1), (3, 1), (1, 8), (3, 8), (9, 8)])
def test_too_few_trajectories_raise(data, n, t):
    with pytest.raises(ValueError, match=f"data: expected at least 10 trajectories .* got N = {n}"):
        mediation_effects(_first(data, n, t), POL, key=KEY)


def test_single_step_trajectories_raise(data):
    with pytest.raises(ValueError, match="data: expected trajectories of at least 2 observed steps "
                                         ".* the longest has 1"):
        mediation_effects(_first(data, 40, 1), POL, key=KEY)


def test_mediator_constant_up_to_rounding_raises(data):
    med = np.full_like(data.mediator, 0.3)
    med[::2, :, 0] = 0.1 + 0.2  # 0.30000000000000004: float std about 1e-17, not exactly 0
    assert 0 < med.std() < 1e-15
    with pytest.raises(ValueError, match="data.mediator: column 0 is constant"):
        mediation_effects(data._replace(mediator=med), POL, key=KEY)


def test_constant_state_and_reward_raise(data):
    s = np.full_like(data.state, 2.5)
    with pytest.raises(ValueError, match="data.state: column 0 is constant"):
        mediation_effects(data._replace(state=s, next_state=s), POL, key=KEY)
    with pytest.raises(ValueError, match="data.reward: column 0 is constant"):
        mediation_effects(data._replace(reward=np.full_like(data.reward, -1.0)), POL, key=KEY)


@pytest.mark.parametrize("field,t", [("state", 0), ("next_state", 7), ("mediator", 5),
                                     ("reward", 5)])
def test_magnitudes_float64_cannot_square_raise(data, field, t):
    # (state at t = 0 and next_state at the last step are not tied to another step)
    def poke(value):
        x = np.array(getattr(data, field), copy=True)
        x[3, t] = value
        return data._replace(**{field: x})

    with pytest.raises(ValueError, match=f"data.{field}: magnitude 1e\\+300 at trajectory 3, time {t}"):
        mediation_effects(poke(1e300), POL, key=KEY)
    # the bound is sqrt(max float64) / (observed steps) = 1.34e154 / 320
    limit = np.sqrt(np.finfo(np.float64).max) / 320
    with pytest.raises(ValueError, match=f"data.{field}: magnitude"):
        mediation_effects(poke(-1.01 * limit), POL, key=KEY)


@pytest.mark.parametrize("kw,msg", [
    (dict(rho_trunc=-1), "config.rho_trunc: expected a truncation level > 0"),
    (dict(rho_trunc=0.0), "config.rho_trunc: expected a truncation level > 0"),
    (dict(rho_trunc=float("nan")), "config.rho_trunc"),
    (dict(ratio_trunc=0.5), "config.ratio_trunc: expected a truncation level >= 1"),
    (dict(q_ridge=-1e-4), "config.q_ridge: expected a finite ridge >= 0"),
    (dict(ratio_ridge=-1.0), "config.ratio_ridge"),
    (dict(reward_ridge=float("inf")), "config.reward_ridge"),
    (dict(mediator_ridge=-1e-9), "config.mediator_ridge"),
    (dict(behaviour_ridge=np.float64(-2.0)), "config.behaviour_ridge"),
])
def test_configuration_out_of_range_raises(kw, msg):
    with pytest.raises(ValueError, match=msg):
        MediationConfig(**kw)


def test_configuration_in_range_is_accepted_and_traced_values_are_not_checked():
    cfg = MediationConfig(rho_trunc=1e-3, ratio_trunc=1.0, q_ridge=0.0)
    assert cfg.rho_trunc == 1e-3 and cfg.q_ridge == 0.0
    # jit rebuilds the dataclass from tracers: no check, no error, value flows through
    assert float(jax.jit(lambda c: c.rho_trunc * 2.0)(cfg)) == 2e-3


# ---- inside jit: named status, NaN estimates -------------------------------------------------

def _diag(pb_min=0.3, pb_max=0.7, ess=(200.0, 200.0, 200.0), status=0):
    z3 = jnp.zeros(3)
    return PipelineDiagnostics(z3, z3, jnp.asarray(ess), z3, jnp.asarray(0.0), jnp.asarray(pb_min),
                               jnp.asarray(pb_max), jnp.asarray(1.0), jnp.asarray(status, jnp.int32))


def test_guard_sets_named_bits_and_nans_exactly_what_cannot_be_estimated(data):
    tr = jaxmed.Trajectories(*(jnp.asarray(x) for x in data))
    r_max = float(np.abs(data.reward).max())
    est = np.arange(35.0).reshape(7, 5) / 10
    est[3, 2:] = np.nan  # undefined by design: stays NaN, flags nothing
    guard = jax.jit(guard_estimates)
    out, d = guard(jnp.asarray(est), _diag(), tr)
    np.testing.assert_array_equal(np.asarray(out), est)
    assert int(d.status) == 0
    huge = est.copy()
    huge[2, 1] = 1.0001e6 * r_max
    huge[5, 0] = -np.inf
    huge[4, 4] = 0.9999e6 * r_max  # below the bound: kept
    out, d = guard(jnp.asarray(huge), _diag(status=2), tr)
    want = huge.copy()
    want[2, 1] = want[5, 0] = np.nan
    np.testing.assert_array_equal(np.asarray(out), want)
    assert describe(d.status) == ["q_ill_conditioned", "huge_estimate"]
    for lo, hi in ((0.3, 0.9995), (0.0005, 0.7)):
        out, d = guard(jnp.asarray(est), _diag(pb_min=lo, pb_max=hi), tr)
        assert np.isnan(np.asarray(out)).all() and describe(d.status) == ["poor_overlap"]
    # ESS floor: max(10, 1% of 320 steps) = 10 rows
    out, d = guard(jnp.asarray(est), _diag(ess=(200.0, 9.9, 200.0)), tr)
    np.testing.assert_array_equal(np.asarray(out), est)
    assert describe(d.status) == ["low_ratio_ess"]
    _, d = guard(jnp.asarray(est), _diag(ess=(200.0, 10.1, 200.0)), tr)
    assert int(d.status) == 0


def test_huge_bound_uses_observed_rewards_only(data):
    """Rewards far below 1 with padded steps: the bound is 1e6 · max|R| over the observed steps
    (padding, whatever it holds, neither raises nor fills the maximum)."""
    mask = np.ones_like(data.mask)
    mask[:5, 4:] = 0.0
    reward = np.where(mask > 0, data.reward * 1e-3, 1e3)
    tr = jaxmed.Trajectories(*(jnp.asarray(x) for x in data._replace(reward=reward, mask=mask)))
    r_max = float(np.abs(reward[mask > 0]).max())
    assert r_max < 0.1
    est = np.zeros((7, 5))
    est[1, 1] = 1.0001e6 * r_max
    est[2, 2] = 0.9999e6 * r_max
    out, d = jax.jit(guard_estimates)(jnp.asarray(est), _diag(), tr)
    want = est.copy()
    want[1, 1] = np.nan
    np.testing.assert_array_equal(np.asarray(out), want)
    assert describe(d.status) == ["huge_estimate"]


def test_no_overlap_raises_by_default_and_is_nan_with_a_named_status_otherwise(data):
    # a = 1{s > 0}: the behaviour policy is deterministic in s, no overlap on either side
    a = (data.state[..., 0] > 0).astype(float)
    assert 0 < a.mean() < 1
    bad = data._replace(action=a)
    with pytest.raises(ValueError, match=r"data: no overlap: .* outside \[0.001, 1 - 0.001\]"):
        mediation_effects(bad, POL, key=KEY)
    res = mediation_effects(bad, POL, key=KEY, check=False)
    assert float(res.diagnostics.behaviour_prob_max) > 1 - 1e-3
    assert int(res.status) & MediationStatus.POOR_OVERLAP
    assert np.isnan(res.estimate).all() and np.isnan(res.se).all()
    df = res.to_frame()
    assert len(df) == 3 * 5 + 4 * 2 and df.estimate.isna().all()
    assert set(df.status) == {status_text(res.status)} and "poor_overlap" in df.status.iloc[0]
    # the same data with the actions of the simulator: every estimate finite, status ok
    ok = mediation_effects(data, POL, key=KEY)
    assert int(ok.status) == 0 and np.isfinite(ok.estimate[0]).all()
    assert set(ok.to_frame().status) == {"ok"}


def test_a_finite_estimate_with_a_nonfinite_asked_se_is_flagged_and_its_se_is_nan():
    est = np.arange(35.0).reshape(7, 5) / 10
    est[3, 2:] = np.nan  # undefined by design
    se = np.full((7, 5), 0.1)
    se[3, 2:] = np.nan
    rows = se_rows(MediationConfig())  # cluster: every row but DM
    assert rows.tolist() == [True, False, True, True, True, True, True]
    guard = jax.jit(guard_se, static_argnums=2)
    base = se.copy()
    base[1] = np.nan  # DM without a bootstrap: no SE asked for, nothing flagged
    out, d = guard(jnp.asarray(est), jnp.asarray(base), tuple(rows), _diag())
    np.testing.assert_array_equal(np.asarray(out), base)
    assert int(d.status) == 0
    for cell, value in (((0, 2), np.nan), ((5, 0), np.inf), ((2, 4), -np.inf)):
        bad = base.copy()
        bad[cell] = value
        out, d = guard(jnp.asarray(est), jnp.asarray(bad), tuple(rows), _diag(status=2))
        want = base.copy()
        want[cell] = np.nan
        np.testing.assert_array_equal(np.asarray(out), want)
        assert describe(d.status) == ["q_ill_conditioned", "se_nonfinite"]
    # DM's SE is asked for with a bootstrap of > 1 replicates, and IJ rows are those asked
    assert se_rows(MediationConfig(n_boot=2)).all() and not se_rows(MediationConfig(n_boot=1))[1]
    ij = se_rows(MediationConfig(se_method="ij", ij_estimators=("MR", "MIS2")))
    assert ij.tolist() == [True, False, False, True, False, False, False]
    bad = base.copy()
    bad[1, 0] = np.nan  # DM not among the IJ rows: not flagged; MR is
    _, d = guard(jnp.asarray(est), jnp.asarray(bad), tuple(ij), _diag())
    assert int(d.status) == 0
    bad[0, 1] = np.nan
    _, d = guard(jnp.asarray(est), jnp.asarray(bad), tuple(ij), _diag())
    assert describe(d.status) == ["se_nonfinite"]


@pytest.mark.parametrize("kw", [dict(), dict(natural_decomposition=True), dict(se_method="ij"),
                                dict(se_method="ij", ij_estimators=("MR",))])
def test_se_guard_flags_nothing_where_ses_are_nan_by_design(data, kw):
    """DM without a bootstrap, undefined cells, rows left out of ``ij_estimators``: NaN SEs by
    design, status 0; every asked-for SE of a finite estimate is finite."""
    res = mediation_effects(data, POL, key=KEY, config=MediationConfig(**kw))
    assert int(res.status) == 0
    asked = np.isfinite(res.estimate) & se_rows(MediationConfig(**kw))[:, None]
    assert asked[0].all() and np.all(np.asarray(res.se)[asked] > 0)
    assert np.isnan(np.asarray(res.se)[~asked]).all()


def test_report_says_why_an_se_is_missing(data):
    """``jaxmed estimate``'s table notes: a finite MR estimate whose SE is NaN under
    SE_NONFINITE reads as a non-finite SE; DM without a bootstrap as not asked for."""
    from jaxmed._src.effect_report import NO_SE_DM, NO_SE_NONFINITE, mediation_report

    res = mediation_effects(data, POL, key=KEY)
    frame, status, _ = mediation_report(res)
    assert status == 0 and (frame[frame.estimator == "DM"].note == NO_SE_DM).all()
    assert (frame[frame.estimator == "MR"].note == "").all()
    se = np.asarray(res.se).copy()
    se[0, 2] = np.nan
    d = res.diagnostics._replace(status=jnp.asarray(int(MediationStatus.SE_NONFINITE)))
    frame, status, words = mediation_report(res._replace(se=jnp.asarray(se), diagnostics=d))
    mr = frame[frame.estimator == "MR"].set_index("effect").note
    assert mr["DDE"] == NO_SE_NONFINITE and (mr.drop("DDE") == "").all()
    assert status == 64 and "non-finite standard error" in words
    # DM's SE is asked for with a bootstrap (n_boot > 1): a NaN one is non-finite, not "no SE"
    se[1, 0] = np.nan
    frame, _, _ = mediation_report(res._replace(se=jnp.asarray(se), diagnostics=d), n_boot=20)
    dm = frame[frame.estimator == "DM"].set_index("effect").note
    assert dm["IDE"] == NO_SE_NONFINITE
    frame, _, _ = mediation_report(res._replace(se=jnp.asarray(se), diagnostics=d))
    assert (frame[frame.estimator == "DM"].note == NO_SE_DM).all()


# ---- long-term DataFrame path: a day missing for everyone -------------------------------------

def test_dataframe_day_missing_for_everyone_is_a_masked_time_point_as_in_the_array_path():
    rng = np.random.default_rng(0)
    n, tp1 = 12, 6
    obs = rng.normal(size=(n, tp1, 2))
    bucket = np.arange(n) % 2
    mask = np.ones((n, tp1))
    mask[:, 3] = 0.0  # day 3 missing for everyone
    arrays = panel_from_arrays(obs, bucket, mask)
    df = panel_to_dataframe(arrays, metric_names=["x", "y"])
    assert 3 not in set(df.time)
    frame = panel_from_dataframe(df, metrics=["x", "y"])
    assert frame.n_times == tp1
    np.testing.assert_array_equal(frame.mask, arrays.mask)
    np.testing.assert_array_equal(frame.obs, arrays.obs)
    # hence the same fit and the same (non-zero) status from both paths
    from jaxmed.longterm import longterm_effect
    fits = [longterm_effect(p, reward=0, n_boot=0) for p in (arrays, frame)]
    for f in fits:  # the all-missing day leaves no transition t = 2 -> 3 -> 4: flagged
        assert describe(f.diagnostics.status, kind="longterm") == ["nonfinite"]
        assert np.isnan(f.estimate).all()
    # datetimes: the missing day is filled from the daily spacing
    df2 = df.assign(time=np.datetime64("2026-01-01") + df.time.to_numpy().astype("timedelta64[D]"))
    frame2 = panel_from_dataframe(df2, metrics=["x", "y"])
    np.testing.assert_array_equal(frame2.mask, arrays.mask)
    # non-integer, irregular times are kept as given
    df3 = df.assign(time=df.time * 0.5 + (df.time == 5) * 0.1)
    assert panel_from_dataframe(df3, metrics=["x", "y"]).n_times == tp1 - 1
