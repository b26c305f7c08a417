"""Mediation estimates: derivatives w.r.t. the target policy's parameters and the ridge
hyper-parameters vs central finite differences (float64), semi-synthetic design.

One jacfwd compilation (module fixture) plus one forward compilation for the differences.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.pipeline import estimate_pipeline
from jaxmed._src.policies import LogisticPolicy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.differentiable import defined_cells, influential_trajectories, mediation_sensitivity
from _checks import assert_fd_close  # noqa: E402 (tests/ is on sys.path)

N, T = 40, 8
KEY = jax.random.key(3)
POLICY = LogisticPolicy(jnp.array([0.7]), jnp.asarray(0.1))
CELLS = defined_cells()


@pytest.fixture(scope="module")
def setup():
    data = simulate_semi_synthetic(jax.random.key(1), N, T)
    # fixed 5 knots (the knot rule would give 3 at N·T = 320, where rows get clipped and the
    # truncation derivatives below are no longer 0)
    config = MediationConfig(state_knots_rule="fixed")

    @jax.jit
    def table(policy, cfg):
        return estimate_pipeline(KEY, data, jnp.ones(N), policy, 0, cfg).estimate

    sens = mediation_sensitivity(KEY, data, POLICY, config=config)
    return data, config, table, sens


def _check(jac, fd):
    return assert_fd_close(jac, fd, CELLS)


def test_estimate_equals_pipeline_table(setup):
    _, config, table, sens = setup
    np.testing.assert_allclose(sens.estimate, table(POLICY, config), rtol=1e-12, equal_nan=True)


def test_policy_derivatives_match_finite_differences(setup):
    _, config, table, sens = setup
    h = 1e-6
    fd_w = (table(POLICY._replace(weights=POLICY.weights + h), config)
            - table(POLICY._replace(weights=POLICY.weights - h), config)) / (2 * h)
    _check(sens.policy.weights[..., 0], fd_w)
    fd_b = (table(POLICY._replace(intercept=POLICY.intercept + h), config)
            - table(POLICY._replace(intercept=POLICY.intercept - h), config)) / (2 * h)
    _check(sens.policy.intercept, fd_b)


@pytest.mark.parametrize("name", ["q_ridge", "ratio_ridge"])
def test_ridge_derivatives_match_finite_differences(setup, name):
    _, config, table, sens = setup
    x = getattr(config, name)
    h = 1e-4 * x
    fd = (table(POLICY, config.replace(**{name: x + h}))
          - table(POLICY, config.replace(**{name: x - h}))) / (2 * h)
    _check(getattr(sens.config, name), fd)


def test_truncation_derivatives_vanish_when_nothing_is_clipped(setup):
    _, _, _, sens = setup
    np.testing.assert_array_equal(np.asarray(sens.config.rho_trunc)[CELLS[:, 0], CELLS[:, 1]], 0.0)
    np.testing.assert_array_equal(np.asarray(sens.config.ratio_trunc)[CELLS[:, 0], CELLS[:, 1]], 0.0)


def test_weight_derivatives_are_finite_and_rank_influence(setup):
    _, _, _, sens = setup
    infl = influential_trajectories(sens, estimator="MR", effect="ATE", top=5)
    g = np.asarray(sens.trajectory_weights[0, 4])
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(infl.indices, np.argsort(-np.abs(g))[:5])
    np.testing.assert_allclose(infl.leave_one_out_first_order, float(sens.estimate[0, 4]) - g[infl.indices])
