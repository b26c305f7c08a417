"""Slow: the calendar-time MR against the stationary MR on ``semi-synthetic-drift`` (issue 15).

40 replications per strength at N = 300, T = 25, both pipelines on the same data and key
(``time_effects_estimator_spec``); truths from ``drift_truths.json`` (SE ≤ 0.0031).
"""

import jax
import numpy as np
import pytest

from jaxmed._src import policies as P
from jaxmed._src.mediation.time_effects import time_effects_estimator_spec
from jaxmed._src.sim import drift as D

pytestmark = pytest.mark.slow
EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")
REPS = 40


@pytest.fixture(scope="module")
def replications():
    spec = time_effects_estimator_spec(P.semi_synthetic_target_policy())
    fn = jax.jit(spec.fn)
    out = {}
    for strength in (0.0, D.DRIFT_STRENGTHS["large"]):
        est = []
        for r in range(REPS):
            data = D.simulate_semi_synthetic_drift(jax.random.key(500 + r), 300, 25, strength=strength)
            table = fn(jax.random.key(r), data)
            assert int(table.status) == 0
            est.append(np.asarray(table.estimate))
        out[strength] = np.asarray(est)
    return spec.estimators, out


def _truth(strength):
    t = D.cached_drift_truth(strength, 25)
    return np.array([t.effects[k] for k in EFFECTS]), np.array([t.se[k] for k in EFFECTS])


def test_large_drift_biases_the_stationary_mr_and_not_the_calendar_time_mr(replications):
    names, out = replications
    est = out[D.DRIFT_STRENGTHS["large"]]
    truth, _ = _truth(D.DRIFT_STRENGTHS["large"])
    mr, mr_time = est[:, names.index("MR")], est[:, names.index("MR-time")]
    bias, bias_time = mr.mean(0) - truth, mr_time.mean(0) - truth
    mcse = mr.std(0, ddof=1) / np.sqrt(REPS)
    # the stationary MR is off by many Monte Carlo SEs on every effect
    assert np.all(np.abs(bias) > 6 * mcse), (bias, mcse)
    # the calendar-time MR removes at least two thirds of that bias on every effect
    assert np.all(np.abs(bias_time) < np.abs(bias) / 3), (bias_time, bias)


def test_no_drift_both_agree_within_monte_carlo_error(replications):
    names, out = replications
    est = out[0.0]
    truth, truth_se = _truth(0.0)
    mr, mr_time = est[:, names.index("MR")], est[:, names.index("MR-time")]
    mcse = lambda x: x.std(0, ddof=1) / np.sqrt(REPS)  # noqa: E731
    # the two means agree within the Monte Carlo error of the study
    gap = mr_time.mean(0) - mr.mean(0)
    assert np.all(np.abs(gap) < 3 * np.hypot(mcse(mr), mcse(mr_time))), gap
    for x in (mr, mr_time):
        assert np.all(np.abs(x.mean(0) - truth) < 3 * np.hypot(mcse(x), truth_se)), (x.mean(0), truth)
