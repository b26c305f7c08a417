"""Long-term designs in the shared registry: truths and the study engine's default estimator."""

import jax
import numpy as np
import pytest

from jaxmed._src.longterm.simulate import simulate_longterm
from jaxmed._src.sim.designs import get_design, list_designs
from jaxmed._src.study.catalog import default_estimator


def test_registry_lists_longterm_designs():
    assert {"longterm-s1", "longterm-s2"} <= set(list_designs(kind="longterm"))


def test_truth_matches_spec_closed_form():
    # spec longterm.md §6.2: average-reward effect -0.067778, Δ_γ(0.99) = -0.054322;
    # the seed's unnormalised Δ is Δ_γ / (1 - γ).
    for name in ("longterm-s1", "longterm-s2"):
        eff = get_design(name).truth().effects
        np.testing.assert_allclose(eff["avg_reward"], -0.0677778, atol=5e-7)
        np.testing.assert_allclose(eff["delta_gamma"], -0.054322, atol=5e-7)
        np.testing.assert_allclose(eff["delta"], eff["delta_gamma"] / 0.01, rtol=1e-12)


@pytest.mark.slow  # CI time: 35 s statistical check
def test_simulate_is_the_longterm_simulator_and_default_estimator_recovers_truth():
    design = get_design("longterm-s2")
    key = jax.random.key(3)
    a = design.simulate(key, 40, 7)
    b = simulate_longterm(key, 40, 7, design="s2")
    np.testing.assert_array_equal(np.asarray(a.obs), np.asarray(b.obs))
    spec = default_estimator(design)
    assert spec.estimators[0] == "nonstationary" and spec.effects == ("delta", "delta_gamma",
                                                                      "avg_reward")
    # One large panel: the nonstationary estimate is within 4 bootstrap SEs of the truth.
    panel = design.simulate(jax.random.key(11), 4000, 28)
    table = jax.jit(spec.fn)(jax.random.key(12), panel)
    truth = design.truth().effects["avg_reward"]
    est, se = float(table.estimate[0, 2]), float(table.se[0, 2])
    assert int(table.status) == 0
    assert 0.0 < se < 0.02
    assert abs(est - truth) < 4 * se
