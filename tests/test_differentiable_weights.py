"""Mediation derivatives w.r.t. trajectory weights (knots fixed by ``weighted_knots=False``) and
the clip thresholds (``soft_clip``) vs central finite differences of the full pipeline, for
every (estimator, effect) cell; the smooth clips against their closed forms. Float64.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.clipping import clip_above, clip_range
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.policies import LogisticPolicy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.differentiable import defined_cells, mediation_estimates, mediation_sensitivity
from _checks import assert_fd_close  # noqa: E402 (tests/ is on sys.path)

N, T = 30, 6
KEY = jax.random.key(7)
POLICY = LogisticPolicy(jnp.array([0.7]), jnp.asarray(0.1))
CELLS = defined_cells()
# knots fixed in raw units; smooth clips with thresholds low enough that many rows are clipped
CONFIG = MediationConfig(weighted_knots=False, soft_clip=0.05, rho_trunc=1.5, ratio_trunc=2.0)


def _table_fn(data):
    @jax.jit
    def table(v, cfg):
        return mediation_estimates(KEY, data, v, POLICY, cfg)

    return table


@pytest.fixture(scope="module")
def setup():
    data = simulate_semi_synthetic(jax.random.key(11), N, T)
    table = _table_fn(data)
    sens = mediation_sensitivity(KEY, data, POLICY, config=CONFIG)
    return data, table, sens


def _check(jac, fd):
    return assert_fd_close(jac, fd, CELLS)


def test_clips_match_closed_forms():
    x = jnp.array([0.001, 0.5, 1.0, 3.0, 100.0])
    c, lo, tau = 2.0, 0.5, 0.1
    soft_min = c - tau * c * np.logaddexp(0.0, (c - np.asarray(x)) / (tau * c))
    np.testing.assert_allclose(clip_above(x, c, tau), soft_min, rtol=1e-12)
    sx = lo + tau * lo * np.logaddexp(0.0, (np.asarray(x) - lo) / (tau * lo))
    ref = c - tau * c * np.logaddexp(0.0, (c - sx) / (tau * c))
    np.testing.assert_allclose(clip_range(x, lo, c, tau), ref, rtol=1e-12)
    np.testing.assert_array_equal(clip_range(x, lo, c, 0.0), np.clip(np.asarray(x), lo, c))
    # the smooth clip tends to the hard one: |softmin - min| <= tau c log 2
    np.testing.assert_allclose(clip_range(x, lo, c, 1e-4), np.clip(np.asarray(x), lo, c),
                               atol=1e-4 * c * np.log(2) + 1e-12)


@pytest.mark.slow  # CI time: 31-63 s, a second pipeline variant; the weight derivatives stay in CI
def test_unweighted_knots_leave_the_estimate_unchanged_at_unit_weights(setup):
    _, table, _ = setup
    ones = jnp.ones(N)
    np.testing.assert_allclose(table(ones, CONFIG), table(ones, CONFIG.replace(weighted_knots=True)),
                               rtol=1e-10, atol=1e-12, equal_nan=True)


def test_weight_derivatives_match_finite_differences_every_cell(setup):
    _, table, sens = setup
    # fourth-order central differences (h = 1e-4): truncation O(h^4), rounding ~1e-11
    h = 1e-4
    ones = np.ones(N)
    f = lambda v: np.asarray(table(jnp.asarray(v), CONFIG))  # noqa: E731
    fd = np.stack([(-f(ones + 2 * h * e) + 8 * f(ones + h * e) - 8 * f(ones - h * e)
                    + f(ones - 2 * h * e)) / (12 * h) for e in np.eye(N)], axis=-1)
    rel = _check(sens.trajectory_weights, fd)
    print("max rel err weights", rel)


@pytest.mark.parametrize("name", ["rho_trunc", "ratio_trunc"])
def test_soft_clip_threshold_derivatives_match_finite_differences(setup, name):
    _, table, sens = setup
    x = getattr(CONFIG, name)
    h = 1e-5 * x
    ones = jnp.ones(N)
    fd = (table(ones, CONFIG.replace(**{name: x + h})) - table(ones, CONFIG.replace(**{name: x - h}))) / (2 * h)
    d = np.asarray(getattr(sens.config, name))[CELLS[:, 0], CELLS[:, 1]]
    assert np.max(np.abs(d)) > 1e-3  # the thresholds matter at these levels
    rel = _check(getattr(sens.config, name), fd)
    print("max rel err", name, rel)
