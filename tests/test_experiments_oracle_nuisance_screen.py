"""``experiments/mediation_oracle_nuisance_screen.py``: true nuisances injected, and the reward
model's degree (``MediationConfig.reward_degree`` up to 5)."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments.mediation_oracle_nuisance_screen import true_predictions  # noqa: E402
from jaxmed._src.mediation.nuisance_models import PolynomialRewardModel  # noqa: E402
from jaxmed._src.sim.designs import get_design  # noqa: E402
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic  # noqa: E402
from jaxmed.mediation import MediationConfig  # noqa: E402


def test_true_reward_expectation_matches_monte_carlo_over_the_true_mediator_law():
    """``or``'s E_{m ~ p(·|s, a_m)} r(s, a_r, m) against the mean of r over 400,000 draws of
    M ~ N(μ(s, a_m), σ² I) at a few rows: within 5 Monte Carlo SEs (σ = 1, variance-1)."""
    sigma = 1.0
    data = simulate_semi_synthetic(jax.random.key(3), 2, 3, sigma=sigma)
    rows = data.flat()
    got = true_predictions(get_design("variance-1"), rows, ["ob", "om", "or"])
    z = jax.random.normal(jax.random.key(4), (400_000, 2), jnp.float64)
    for k in range(rows["state"].shape[0]):
        s = float(rows["state"][k, 0])
        for am in (0, 1):
            mean = np.asarray(got["mediator_mean"][k, am])
            m = mean + sigma * np.asarray(z)
            for ar in (0, 1):
                r = 1.5 * (0.5 * s + 0.5 * np.sqrt(abs(s)) + m[:, 0] + m[:, 1]
                           + 0.5 * np.sqrt(np.abs(m[:, 0]) + np.abs(m[:, 1])) * (ar - 0.5)
                           + 0.5 * (ar - 0.5))
                se = r.std() / np.sqrt(len(r))
                assert abs(float(got["reward_expected"][k, ar, am]) - r.mean()) < 5 * se
    assert np.all(np.asarray(got["mediator_sd"]) == sigma)
    assert np.all(np.asarray(got["behaviour_prob"]) == 0.5)  # Bernoulli(0.5) behaviour


@pytest.mark.parametrize("degree", [4, 5])
def test_reward_model_expectation_is_exact_at_degree_above_three(degree):
    """E_{m ~ N(μ, diag σ²)} r̂(s, a, m) of a fitted degree-4/5 reward model equals the average
    of r̂ over a 24-node-per-coordinate Gauss–Hermite rule (exact for degree ≤ 47)."""
    data = simulate_semi_synthetic(jax.random.key(0), 30, 10, sigma=1.0)
    rows = data.flat()
    w = jnp.ones(rows["state"].shape[0])
    model = PolynomialRewardModel(degree=degree)
    params = model.fit(None, rows, w)
    s = rows["state"][:7]
    a = jnp.asarray([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    mean = jnp.asarray(np.random.default_rng(1).normal(size=(7, 2)))
    sd = jnp.asarray([0.7, 1.3])
    got = model.expected(params, s, a, mean, jnp.broadcast_to(sd, (7, 2)))
    x, wq = np.polynomial.hermite_e.hermegauss(24)
    wq = wq / wq.sum()
    want = np.zeros(7)
    for i, xi in enumerate(x):
        for j, xj in enumerate(x):
            m = mean + sd * jnp.asarray([xi, xj])
            want += wq[i] * wq[j] * np.asarray(model.mean(params, s, a, m))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10, atol=1e-10)


def test_reward_degree_range():
    for k in (1, 3, 4, 5):
        assert MediationConfig(reward_degree=k).reward_degree == k
    for k in (0, 6):
        with pytest.raises(ValueError, match="reward_degree"):
            MediationConfig(reward_degree=k)


def test_script_runs_end_to_end_and_refuses_a_bad_mode(tmp_path):
    out = tmp_path / "s.json"
    env = dict(os.environ, PYTHONPATH=ROOT)
    script = os.path.join(ROOT, "experiments", "mediation_oracle_nuisance_screen.py")
    subprocess.run([sys.executable, script, "variance-1", "60", "6", "3", "base,or,ob+om+or+rd4",
                    "--out", str(out)], check=True, env=env, capture_output=True, timeout=900)
    d = json.loads(out.read_text())
    assert set(d["modes"]) == {"base", "or", "ob+om+or+rd4"}
    assert set(d["paired"]) == {"or", "ob+om+or+rd4"}
    for rec in d["modes"].values():
        assert np.isfinite(np.asarray(rec["bias"])).all()
    for m, rec in d["paired"].items():  # paired mean = difference of the biases (same truth)
        np.testing.assert_allclose(rec["mean"], np.subtract(d["modes"][m]["bias"],
                                                            d["modes"]["base"]["bias"]),
                                   atol=1e-12)
    r = subprocess.run([sys.executable, script, "variance-1", "60", "6", "2", "base,xx"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "xx" in r.stderr
