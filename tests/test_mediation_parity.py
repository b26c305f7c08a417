"""``MediationConfig.parity()`` (the original's Q basis, ridge on η, raw-state ratio features
with its W, b, clipped densities) run end to end on the semi-synthetic design against the
repository truth (``jaxmed.sim.truth``, simulated to SE ≤ 0.004).

One dataset of N = 400, T = 25: every MR effect within 3.5 of its reported SEs (+ 0.005 for
the truth's own error) of the truth, status 0, and ATE = the sum of the four effects.
Slow: one compilation of the parity pipeline (177 s at load average 17 on the 2-core machine;
the swapped-π_e-weights mutation of its clip branch is caught in CI at the ρ level by
test_mediation_row_values.py).
"""

import jax
import numpy as np
import pytest

import jaxmed
from jaxmed import sim
from jaxmed.mediation import EFFECTS, ESTIMATORS, MediationConfig

N, T = 400, 25

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fits():
    data = sim.simulate_semi_synthetic(jax.random.key(42), N, T)
    target = jaxmed.policies.semi_synthetic_target_policy()
    parity = jaxmed.mediation_effects(data, target, key=jax.random.key(0),
                                      config=MediationConfig.parity())
    return data, parity


def test_parity_mr_is_close_to_the_truth(fits):
    _, res = fits
    truth = sim.truth("semi-synthetic").effects
    mr = ESTIMATORS.index("MR")
    for j, eff in enumerate(EFFECTS[:4]):
        est, se = res.estimate[mr, j], res.se[mr, j]
        assert np.isfinite(est) and 0 < se < 0.5, (eff, est, se)
        assert abs(est - truth[eff]) < 3.5 * se + 0.005, (eff, est, truth[eff], se)
    assert int(res.diagnostics.status) == 0
    # ATE = IDE + IME + DDE + DME holds row by row for MR
    np.testing.assert_allclose(res.estimate[mr, 4], res.estimate[mr, :4].sum(), rtol=1e-10)
