"""Public entry points exercised for real: a user-registered design run through ``study.run``,
``study.run(devices=, memory_fraction=)``, ``mediation_effects(dtype=float32)`` against float64,
and the cached truths against an independent Monte Carlo of the simulators.
"""

import os
import sys

import jax
import numpy as np
import pytest

from jaxmed import sim, study
from jaxmed._src.policies import always_control, bernoulli_policy, semi_synthetic_target_policy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign  # noqa: E402

FIELDS = ("estimate", "se", "ci_low", "ci_high", "status")


def _identical(a, b):
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in FIELDS)


@pytest.fixture(scope="module")
def reference():
    return study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 13, batch_size=1, progress=False)


def _user_simulate(key, n, horizon):
    return simulate_semi_synthetic(key, n, horizon, sigma=1.0)


def test_a_user_registered_design_runs_through_the_study_engine(reference):
    design = sim.Design(
        name="user-semi-sigma1", kind="mediation", state_dim=1, mediator_dim=2,
        simulate=_user_simulate, target_policy=semi_synthetic_target_policy(),
        control_policy=always_control(), behaviour_policy=bernoulli_policy(0.5),
        truth=lambda: {"s0_mean": 0.0, "m1_noise_var": 1.0}, default_horizon=3,
        description="a user's design (tests)")
    from jaxmed._src.sim import designs as registry_module

    assert "user-semi-sigma1" not in sim.list_designs()
    sim.register_design(design)
    try:
        _run_registered(design, reference)
    finally:  # leave the process's registry as it was (other tests list the built-in designs)
        registry_module._REGISTRY.pop("user-semi-sigma1", None)
    assert "user-semi-sigma1" not in sim.list_designs()


def _run_registered(design, reference):
    with pytest.raises(ValueError, match="already registered"):
        sim.register_design(design)
    got = study.get_design("user-semi-sigma1")
    assert got is sim.get_design("user-semi-sigma1") and "user-semi-sigma1" in study.list_designs()
    res = study.run(got, NOISE_SPEC, GRID, REPS, 13, batch_size=1, progress=False)
    assert res.design == "user-semi-sigma1" and res.truth == {"s0_mean": 0.0, "m1_noise_var": 1.0}
    # the same simulator and keys as the fixture design: the same numbers
    assert _identical(res, reference)
    # and the mean estimate agrees with the registered truth within its Monte Carlo SE
    ok = res.status == 0
    for j, name in enumerate(res.effects):
        est = res.estimate[:, :, 0, j][ok]
        assert abs(est.mean() - res.truth[name]) < 4 * est.std(ddof=1) / np.sqrt(est.size), name


def test_devices_and_memory_fraction(reference):
    dev = jax.local_devices()[0]
    tiny = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 13, devices=[dev],
                     memory_fraction=1e-15, progress=False)
    assert tiny.batch_size == 1 and tiny.devices == 1 and dev.platform in tiny.device
    assert _identical(tiny, reference)
    roomy = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 13, devices=1, memory_fraction=1.0,
                      progress=False)
    assert roomy.batch_size == 8  # the default cap: one replication here is a few kB
    explicit = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 13, batch_size=8, progress=False)
    assert _identical(roomy, explicit)
    np.testing.assert_allclose(roomy.estimate, reference.estimate, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="devices"):
        study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, 13, devices=len(jax.devices()) + 1,
                  progress=False)


@pytest.mark.slow  # CI time: 2 x 20 s Monte Carlo rollouts
@pytest.mark.parametrize("name", ["semi-synthetic", "multidim"])
def test_cached_truths_agree_with_independent_rollouts(name):
    """η1 (π_e) and η5 (always a0) from plain rollouts of the simulator (``design.rollout``, not
    the truth module's chains): mean reward after a burn-in, SE from independent trajectories."""
    design = sim.get_design(name)
    cached = sim.truth(name)
    n, horizon, burn = 800, 260, 60
    for j, policy in ((0, design.target_policy), (4, design.control_policy)):
        data = jax.jit(lambda k, p=policy: design.rollout(k, n, horizon, policy=p))(
            jax.random.key(31 + j))
        per = np.asarray(data.reward, dtype=np.float64)[:, burn:].mean(axis=1)
        est, se = per.mean(), per.std(ddof=1) / np.sqrt(n)
        assert abs(est - cached.eta[j]) < 4 * np.hypot(se, cached.eta_se[j]), (name, j, est, se)
        assert se < 0.05  # the check has power: SE well below the effects (~1 to 8)


@pytest.mark.slow  # two compilations of the mediation pipeline
def test_mediation_effects_in_float32_agree_with_float64():
    from jaxmed.mediation import ESTIMATORS, mediation_effects

    data = simulate_semi_synthetic(jax.random.key(3), 60, 12)
    args = (data, semi_synthetic_target_policy(), always_control())
    r64 = mediation_effects(*args, key=jax.random.key(4), dtype=np.float64)
    r32 = mediation_effects(*args, key=jax.random.key(4), dtype=np.float32)
    e64, e32 = np.asarray(r64.estimate), np.asarray(r32.estimate)
    assert e32.dtype == np.float32 and e64.dtype == np.float64
    assert int(np.asarray(r32.diagnostics.status)) == int(np.asarray(r64.diagnostics.status))
    finite = np.isfinite(e64)
    np.testing.assert_array_equal(np.isfinite(e32), finite)
    # the measured tolerance (experiments/results/float32_accuracy.json, 50 semi-synthetic
    # replications, N = 100, T = 10): |est32 - est64| / se64 at most 0.29 for MR, 0.0014 for
    # the baselines; MIS1/MIS2 up to 2.4 / 1.2 (float32 draws other random Fourier features
    # for the state ratio, so they are a different estimate, not a rounded one)
    se = np.asarray(r64.se)
    z = np.abs(e32.astype(np.float64) - e64) / se
    rows = {name: i for i, name in enumerate(ESTIMATORS)}
    assert np.nanmax(z[rows["MR"]]) < 0.5, z[rows["MR"]]
    for b in ("Baseline_DM", "Baseline_IPW", "Baseline_MR"):
        assert np.nanmax(z[rows[b]]) < 0.005, (b, z[rows[b]])
