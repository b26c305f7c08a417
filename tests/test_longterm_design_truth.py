"""The long-term designs' ``truth()`` against numpy closed forms (spec longterm.md §6.2).

For S1 (stationary, no exogenous path) each arm a is the linear system s' = M_a s + b_a + noise
with reward θᵀ s + c, so its long-run average reward is ρ_a = θᵀ (I − M_a)⁻¹ b_a + c; the design's
truth names its effects as the long-term estimators do (``EFFECTS``), with ``avg_reward`` =
ρ_1 − ρ_0, ``delta_gamma`` = (1 − γ)·``delta`` and zero standard errors.
"""

import numpy as np

from jaxmed._src.longterm.api import EFFECTS
from jaxmed._src.longterm.designs import GAMMA, longterm_design
from jaxmed._src.longterm.simulate import design_params


def test_s1_truth_names_and_closed_form():
    truth = longterm_design("s1").truth()
    assert tuple(truth.effects) == EFFECTS and truth.se == {k: 0.0 for k in EFFECTS}
    p = design_params("s1")
    M, b, theta, c = (np.asarray(x, np.float64) for x in (p.M, p.b, p.theta, p.c))
    rho = [theta @ np.linalg.solve(np.eye(3) - M[a], b[a]) + c for a in (0, 1)]
    np.testing.assert_allclose(truth.effects["avg_reward"], rho[1] - rho[0], rtol=1e-10)
    np.testing.assert_allclose(truth.effects["delta_gamma"], (1 - GAMMA) * truth.effects["delta"],
                               rtol=1e-10)
