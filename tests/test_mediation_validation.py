"""Slow statistical validation on the semi-synthetic design (spec §7.1, §10.1).

Acceptance (N = 1500, T = 25, 100 replications): MR bias of every effect within 3 Monte Carlo
SEs of zero (four effects at once: 3 SE keeps the family-wise false-alarm rate near 1%, where
2 SE per effect would fail a correct estimator about one run in six); MR MSE no larger than the original's published MSE for every effect and at most a
third of it for IDE and IME; MR 95% coverage reported (asserted only loosely: ≥ 0.85).
"""

import importlib.util
import os

import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.precision import precision

_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "experiments", "mediation_semi_synthetic.py")


def _study():
    spec = importlib.util.spec_from_file_location("mediation_semi_synthetic", _SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 1500])
def test_semi_synthetic_mr_accuracy_and_coverage(n):
    study = _study()
    with precision(np.float64):
        est, se, status, _, _ = study.run(n, 25, 100, 2026, MediationConfig())
    rows = {(r["estimator"], r["effect"]): r for r in study.summarise(n, est, se, status)}
    original = study.ORIGINAL_MSE[n]
    for j, eff in enumerate(("IDE", "IME", "DDE", "DME")):
        r = rows[("MR", eff)]
        if n == 1500:
            assert abs(r["bias"]) <= 3 * r["bias_mcse"], r
        assert r["mse"] <= original[j], r
        if eff in ("IDE", "IME"):
            assert r["mse"] <= original[j] / 3, r
        assert r["coverage"] >= 0.85, r
    assert np.count_nonzero(status) == 0
