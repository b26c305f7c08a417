"""Ground truths: exact toy truths (spec §8.1), exact vs simulated routes, cached JSON."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxmed._src import policies as P
from jaxmed._src.sim import semi_synthetic as ss
from jaxmed._src.sim.quadrature import expected_sqrt_abs_sum, gaussian_expectation
from jaxmed._src.sim.truth import simulated_truth
from jaxmed.sim import EFFECT_NAMES, get_design, load_cached_truths, policy_value, truth
from _checks import toy1_eta1  # noqa: E402 (tests/ is on sys.path)

SPEC_TOY_ETA = np.array([2.39701065, 3.67369661, 4.89616138, 7.87840782, 7.96309271])
SPEC_TOY_EFFECTS = np.array([-1.27668596, -1.22246477, -2.98224644, -0.08468489])
SPEC_TOY2_IID = np.array([-1.13541377, -1.16694206, 0.0, 0.0])


@pytest.mark.parametrize("name", ["toy1", "toy2-state"])
def test_toy_exact_truth_reproduces_spec(name):
    t = truth(name)
    assert t.method == "exact"
    np.testing.assert_allclose(t.eta, SPEC_TOY_ETA, atol=1e-7 * 0.6)
    np.testing.assert_allclose(t.effect_array()[:4], SPEC_TOY_EFFECTS, atol=1e-7)
    assert abs(t.effects["ATE"] - (SPEC_TOY_ETA[0] - SPEC_TOY_ETA[4])) < 1e-7
    p1 = t.settings["stationary_p1"]
    np.testing.assert_allclose([p1["pie"], p1["pi0"], p1["G"]], [0.320585, 0.936475, 0.919469],
                               atol=6e-7)


def test_toy2_iid_exact_truth_reproduces_spec():
    t = truth("toy2-iid")
    np.testing.assert_allclose(t.effect_array()[:4], SPEC_TOY2_IID, atol=1e-7)
    assert t.settings["stationary_p1"] == {"pie": pytest.approx(0.2), "G": pytest.approx(0.2),
                                           "pi0": pytest.approx(0.2)}


def test_toy_exact_truth_against_plain_numpy_power_iteration():
    """η1 of Toy I from a plainly written numpy chain (4-state (s) power iteration)."""
    eta1 = toy1_eta1(lambda s: 1 / (1 + np.exp(-(1.5 + s))))
    assert abs(truth("toy1").eta[0] - eta1) < 1e-12
    assert abs(policy_value("toy1", P.toy_target_policy())[0] - eta1) < 1e-12


@pytest.mark.parametrize("name", ["toy1", "toy2-iid"])
@pytest.mark.slow  # CI time: 40 s Monte Carlo route
def test_toy_simulated_route_agrees_with_exact(name):
    design = get_design(name)
    exact = truth(name)
    sim = simulated_truth(jax.random.key(2), design.chain_model, design.target_policy,
                          n_chains=300, n_steps=300, burn_in=30)
    z = (sim.eta - exact.eta) / sim.eta_se
    assert np.all(np.abs(z) < 4), z
    for k in EFFECT_NAMES:
        if sim.se[k] > 0:
            assert abs(sim.effects[k] - exact.effects[k]) < 4 * sim.se[k], k
        else:  # iid: DDE = DME = 0 identically (the three chains coincide)
            assert exact.effects[k] == 0.0 and abs(sim.effects[k]) < 1e-12


def polar_reference(mu, sd, n_rho=300, n_phi=120):
    """E sqrt(|m1| + |m2|) by Gauss–Legendre in per-quadrant polar coordinates m = ±ρ²(cos φ, sin φ)
    (Jacobian 2ρ³), which makes the integrand smooth at the origin."""
    mu = np.asarray(mu)
    big_r = np.sqrt(np.abs(mu).sum() + 14 * sd)
    x, w = np.polynomial.legendre.leggauss(n_rho)
    rho, wr = 0.5 * big_r * (x + 1), 0.5 * big_r * w
    y, v = np.polynomial.legendre.leggauss(n_phi)
    phi, wp = 0.25 * np.pi * (y + 1), 0.25 * np.pi * v
    rr, ff = np.meshgrid(rho, phi, indexing="ij")
    weights = np.outer(wr, wp)
    total = 0.0
    for s1 in (1, -1):
        for s2 in (1, -1):
            m1, m2 = s1 * rr ** 2 * np.cos(ff), s2 * rr ** 2 * np.sin(ff)
            dens = stats.norm.pdf(m1, mu[0], sd) * stats.norm.pdf(m2, mu[1], sd)
            total += np.sum(weights * np.sqrt(np.abs(m1) + np.abs(m2)) * dens * 2 * rr ** 3)
    return total


@pytest.mark.parametrize("mu,sd", [((0.0, 0.0), 1.0), ((0.3, -0.2), 2.0), ((3.0, -5.0), 1.0),
                                   ((12.0, -6.0), 2.0)])
def test_expected_sqrt_abs_sum_against_polar_quadrature(mu, sd):
    assert abs(float(expected_sqrt_abs_sum(jnp.asarray(mu), sd)) - polar_reference(mu, sd)) < 1e-8


def test_plain_gauss_hermite_is_inaccurate_near_origin():
    """Why the truths do not use plain Gauss–Hermite: the kink of |m| at 0."""
    gh = gaussian_expectation(lambda m: jnp.sqrt(jnp.abs(m[0]) + jnp.abs(m[1])), jnp.zeros(2), 1.0, 24)
    assert abs(float(gh) - polar_reference((0.0, 0.0), 1.0)) > 1e-3


def test_gaussian_expectation_polynomial_exact():
    val = gaussian_expectation(lambda m: m[0] ** 4 + m[0] * m[1], jnp.array([1.0, -2.0]), 0.5, 8)
    # E m1^4 = μ^4 + 6μ²σ² + 3σ^4; E m1 m2 = μ1 μ2
    assert abs(float(val) - (1 + 6 * 0.25 + 3 * 0.0625 - 2.0)) < 1e-12


def test_semi_expected_reward_against_numpy_monte_carlo():
    rng = np.random.default_rng(1)
    n = 2_000_000
    for s, am, a in [(0.3, 1.0, 1.0), (-4.0, 1.0, 0.0), (6.0, 0.0, 0.0)]:
        mu = np.array([np.sqrt(abs(s)) + am - 0.5, -0.5 * s + 0.5 * (am - 0.5) * np.sqrt(abs(s))])
        m = mu + 2.0 * rng.normal(size=(n, 2))
        r = 1.5 * (0.5 * s + 0.5 * np.sqrt(abs(s)) + m[:, 0] + m[:, 1]
                   + 0.5 * np.sqrt(np.abs(m[:, 0]) + np.abs(m[:, 1])) * (a - 0.5) + 0.5 * (a - 0.5))
        val = float(ss.semi_synthetic_expected_reward(jnp.asarray([s]), am, a, 2.0))
        assert abs(val - r.mean()) < 4 * r.std() / np.sqrt(n)


CONTINUOUS = ["semi-synthetic", "variance-1", "variance-2", "variance-3", "multidim"]


@pytest.mark.parametrize("name", CONTINUOUS)
def test_cached_truths_meet_precision_and_are_consistent(name):
    t = truth(name)
    assert t.method == "simulation"
    np.testing.assert_allclose(t.effect_array()[:4], t.eta[:4] - t.eta[1:], atol=1e-12)
    assert abs(t.effects["ATE"] - (t.eta[0] - t.eta[4])) < 1e-12
    if name == "semi-synthetic":
        assert max(t.se[k] for k in ("IDE", "IME", "DDE", "DME")) <= 0.001
    # common random numbers shrink the SE of the cross-chain differences
    assert t.se["DDE"] < np.hypot(t.eta_se[2], t.eta_se[3])
    assert t.se["DME"] < np.hypot(t.eta_se[3], t.eta_se[4])
    assert {"n_chains", "n_steps", "burn_in", "seed"} <= set(t.settings)


@pytest.mark.slow  # CI time: 24 s Monte Carlo check
def test_cached_semi_truth_agrees_with_independent_small_simulation():
    """A fresh, smaller simulation with another key agrees with the cached truth within SEs."""
    design = get_design("semi-synthetic")
    cached = truth(design)
    small = truth(design, recompute=True, key=jax.random.key(99), n_chains=120, n_steps=400,
                  burn_in=50)
    for k in EFFECT_NAMES:
        assert abs(small.effects[k] - cached.effects[k]) < 4 * np.hypot(small.se[k], cached.se[k]), k


def test_semi_policy_value_equals_eta1_and_control_value_is_eta5():
    cached = truth("semi-synthetic")
    v, se = policy_value("semi-synthetic", P.semi_synthetic_target_policy(), key=jax.random.key(5),
                         n_chains=120, n_steps=400, burn_in=50)
    assert abs(v - cached.eta[0]) < 4 * np.hypot(se, cached.eta_se[0])
    v0, se0 = policy_value("toy1", P.always_control())
    assert abs(v0 - truth("toy1").eta[4]) < 1e-12 and se0 == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", CONTINUOUS + ["multidim-b6"])
def test_cached_json_reproduces_with_same_key(name):
    entry = load_cached_truths()[name]
    if name == "multidim-b6":
        t = truth("multidim", recompute=True, rollout_policy=P.multidim_truth_target_policy())
    else:
        t = truth(name, recompute=True)
    # not bitwise: XLA's CPU reductions may reorder; measured differences are ~3e-10 relative
    np.testing.assert_allclose(t.eta, entry["eta"], rtol=1e-8)
    np.testing.assert_allclose(t.eta_se, entry["eta_se"], rtol=1e-6)
