"""``jaxmed.sim.truth(design, target_policy=π)``: the decomposition's truth for any target policy.

Toy I (exact): η1 of a different logistic π against a plainly written numpy chain, η5 (π_0)
unchanged. Semi-synthetic (simulated): the π_0 chain shares its random numbers, so η5 is
identical for two policies; η1 equals ``policy_value`` with the same key and settings.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.policies import LogisticPolicy
from jaxmed.sim import policy_value, truth
from _checks import toy1_eta1  # noqa: E402 (tests/ is on sys.path)

PI = LogisticPolicy(jnp.array([-0.8]), jnp.asarray(0.4))


def test_toy1_truth_for_another_policy_against_numpy_chain():
    eta1 = toy1_eta1(lambda s: 1 / (1 + np.exp(-(0.4 - 0.8 * s))))
    t = truth("toy1", target_policy=PI)
    assert t.method == "exact"
    assert abs(t.eta[0] - eta1) < 1e-12
    base = truth("toy1")
    assert abs(t.eta[4] - base.eta[4]) < 1e-12
    assert abs(t.effects["ATE"] - (eta1 - base.eta[4])) < 1e-12
    assert abs(t.eta[0] - base.eta[0]) > 0.1  # the policy matters


@pytest.mark.slow  # CI time: 34 s Monte Carlo check
def test_semi_truth_for_another_policy_shares_the_control_chain():
    key = jax.random.key(3)
    opts = dict(n_chains=40, n_steps=200, burn_in=20, batch_size=40)
    t = truth("semi-synthetic", target_policy=PI, key=key, **opts)
    seed = truth("semi-synthetic", key=key, **opts)
    np.testing.assert_array_equal(t.eta[4], seed.eta[4])
    v, _ = policy_value("semi-synthetic", PI, key=key, **opts)
    np.testing.assert_allclose(t.eta[0], v, rtol=1e-13)
    np.testing.assert_allclose(t.effect_array(), [t.eta[0] - t.eta[1], t.eta[1] - t.eta[2],
                                                  t.eta[2] - t.eta[3], t.eta[3] - t.eta[4],
                                                  t.eta[0] - t.eta[4]], rtol=1e-12, atol=1e-12)
    assert abs(t.eta[0] - seed.eta[0]) > 10 * np.hypot(t.eta_se[0], seed.eta_se[0])
