"""The state-knot rule (issue 13, small samples): K = min(state_knots, ⌊(N·T)^{1/5}⌋)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.knot_rule import rate_knots, resolve_state_knots
from jaxmed._src.mediation.pipeline import fit_policy_free
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic


def test_rate_knots_is_the_integer_fifth_root_capped():
    for n in list(range(1, 400)) + [2499, 2500, 3124, 3125, 3126, 7775, 7776, 10 ** 6]:
        root = int(np.floor(n ** 0.2))  # float fifth root, corrected at exact powers below
        root += (root + 1) ** 5 <= n
        root -= root ** 5 > n
        for cap in (0, 2, 5, 8):
            assert rate_knots(n, cap) == min(cap, root), (n, cap)


def test_resolve_state_knots_values_and_fixed_rule():
    cfg = MediationConfig()
    assert resolve_state_knots(cfg, 100 * 25).state_knots == 4  # the semi-synthetic N = 100 cell
    assert resolve_state_knots(cfg, 200 * 25) is cfg  # N = 200: unchanged (5 knots)
    assert resolve_state_knots(cfg, 50 * 100) is cfg  # the T-grid's smallest cell
    fixed = MediationConfig(state_knots_rule="fixed")
    assert resolve_state_knots(fixed, 10) is fixed
    assert MediationConfig.parity().state_knots_rule == "fixed"
    with pytest.raises(ValueError, match="^config.state_knots_rule"):
        MediationConfig(state_knots_rule="sqrt")


def _fit(data, config):
    n = data.action.shape[0]
    return fit_policy_free(jax.random.key(3), data, jnp.ones(n), config)


def _assert_same_fit(a, b):
    for x, y in zip(jax.tree_util.tree_leaves((a.preds, a.feats)),
                    jax.tree_util.tree_leaves((b.preds, b.feats))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_default_fit_equals_the_fixed_fit_with_the_rule_s_knots():
    """N·T = 200 rows: the default pipeline fits exactly the 2-knot fixed pipeline (from 3,125
    rows on ``resolve_state_knots`` returns the config itself: unchanged bit for bit)."""
    n, t, k = 20, 10, 2
    data = simulate_semi_synthetic(jax.random.key(5), n, t)
    default = _fit(data, MediationConfig())
    _assert_same_fit(default, _fit(data, MediationConfig(state_knots=k, state_knots_rule="fixed")))
    # and the Q basis really has k interior knots: 1 linear + (k + 3) B-spline columns, whose
    # B-splines sum with the dropped first one to 1 (checked against the plain definition)
    h = np.asarray(default.feats.matrices()[0])[: k + 4].T
    z = np.asarray(data.state).reshape(-1)
    z = (z - z.mean()) / z.std(ddof=1)
    np.testing.assert_allclose(h[:, 0], z, rtol=1e-10, atol=1e-10)
    interior = np.quantile(z, np.linspace(0, 1, k + 2))
    b = h[:, 1:]
    assert b.shape[1] == k + 3
    first = 1.0 - b.sum(axis=1)  # B_0 = (1 − (z − t0)/(t1 − t0))^3 on the first interval
    on_first = z < interior[1]
    np.testing.assert_allclose(first[on_first],
                               ((interior[1] - z[on_first]) / (interior[1] - interior[0])) ** 3,
                               rtol=1e-8, atol=1e-10)
