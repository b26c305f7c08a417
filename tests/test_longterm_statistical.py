"""Monte Carlo accuracy of Alg. S / Alg. N on S1/S2 and bootstrap calibration
(spec longterm.md §8.2, §11 points 3 and 4).

Truths are closed forms (checked against the mean recursion in test_longterm_estimators).
50 replications at n = 2000, T = 28 are cheap (no bootstrap): the estimators are functions of
sufficient statistics, so the full spec tests run here, vmapped. Coverage of the bootstrap CIs
over replications is the slow test (and experiments/longterm_s2_study.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.longterm.api import _run
from jaxmed.longterm import (LinearReward, design_params, estimate_effects, longterm_truth,
                             simulate_longterm)

GAMMA = 0.99
PARAMS = design_params("s1")
REWARD = LinearReward(PARAMS.theta, PARAMS.c)
TRUTH = longterm_truth(PARAMS, GAMMA)
TRUTH_VEC = np.array([TRUTH.delta, TRUTH.delta_gamma, TRUTH.avg_reward])
N, T, REPS = 2000, 28, 50


def _replications(design, methods, reps=REPS, seed=0):
    def one(k):
        p = simulate_longterm(k, N, T, design=design)
        return jnp.stack([estimate_effects(p, None, REWARD, GAMMA, method=m)[0] for m in methods])

    keys = jax.random.split(jax.random.key(seed), reps)
    return np.asarray(jax.jit(jax.vmap(one))(keys)) - TRUTH_VEC            # errors (reps, methods, 3)


@pytest.fixture(scope="module")
def s2_errors():
    return _replications("s2", ("nonstationary", "stationary"))


def test_alg_s_on_s1_unbiased_and_accurate():
    err = _replications("s1", ("stationary",), seed=1)[:, 0]
    bias, rmse = err.mean(0), np.sqrt((err ** 2).mean(0))
    assert abs(bias[2]) < 0.005 and rmse[2] < 0.012                         # average reward (spec §11.3)
    assert abs(bias[0]) < 0.5 and rmse[0] < 1.2                             # Δ (γ = .99), 100× scale


def test_alg_n_on_s2_unbiased_and_b3_biased(s2_errors):
    ns, st = s2_errors[:, 0], s2_errors[:, 1]
    bias, rmse = ns.mean(0), np.sqrt((ns ** 2).mean(0))
    assert abs(bias[2]) < 0.005 and rmse[2] < 0.012                         # spec §11.4
    assert abs(bias[0]) < 0.5 and rmse[0] < 1.2
    assert abs(bias[1]) < 0.005 and rmse[1] < 0.012
    # the bias is also within 3 Monte Carlo standard errors of 0
    assert abs(bias[2]) < 3 * ns[:, 2].std(ddof=1) / np.sqrt(REPS)
    # B3 (stationary RL, ignoring z) is biased on S2 (spec: about +0.023 at T = 28)
    assert st[:, 2].mean() > 0.015
    assert st[:, 2].mean() - 3 * st[:, 2].std(ddof=1) / np.sqrt(REPS) > 0.015


@pytest.mark.slow  # CI time: 16 s Monte Carlo check
def test_bootstrap_se_matches_monte_carlo_sd(s2_errors):
    mc_sd = s2_errors[:, 0].std(ddof=1, axis=0)
    ses = []
    for rep in range(2):
        p = simulate_longterm(jax.random.key(100 + rep), N, T, design="s2")
        out = _run(jax.random.key(rep), p, REWARD, GAMMA, jnp.zeros(3), 0.0, 0.0, 0.0, None,
                   method="nonstationary", anchor="steady0", z_penalty="smooth", n_iter=0, n_boot=100,
                   kind="multinomial", batch_size=50, sieve_degree=2,
                       bz_solver="auto")
        ses.append(np.asarray(out[1]))
    ratio = np.mean(ses, axis=0) / mc_sd
    # MC SD from 50 reps has ~10% relative error, a 100-replicate bootstrap SE ~7%
    assert np.all(ratio > 0.7) and np.all(ratio < 1.4), ratio


@pytest.mark.slow
def test_bootstrap_ci_coverage_s2():
    """Coverage of the 95% bootstrap CIs over 100 replications (binomial SE ≈ 0.022)."""
    from experiments.longterm_s2_study import main as study  # noqa: F401  (script lives in experiments/)
    import json
    import os
    import tempfile

    out = os.path.join(tempfile.mkdtemp(), "cov.json")
    study(["--design", "s2", "--reps", "100", "--n_boot", "200", "--out", out])
    summary = json.load(open(out))
    for kind in ("normal", "percentile"):
        for eff, cov in summary["nonstationary_coverage"][kind].items():
            assert 0.90 <= cov <= 0.99, (kind, eff, cov)
    ns = summary["estimators"]["nonstationary"]["avg_reward"]
    assert abs(ns["bias"]) < 0.005 and ns["rmse"] < 0.012
    assert summary["estimators"]["stationary"]["avg_reward"]["bias"] > 0.015
