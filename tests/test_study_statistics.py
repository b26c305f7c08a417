"""Slow: the engine's summaries of a real estimator with known truth behave as theory says."""

import math
import os
import sys

import numpy as np
import pytest

from jaxmed import study

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import NOISE_SPEC, ToyDesign  # noqa: E402


@pytest.mark.slow
def test_bias_coverage_and_se_ratio_of_a_mean_estimator(tmp_path):
    reps = 4000
    res = study.run(ToyDesign(), NOISE_SPEC, [(200, 10)], reps, 2024, out=tmp_path,
                    chunk_size=512, progress=False)
    s = res.summary()
    print(s[["estimator", "effect", "n_used", "n_failed", "bias", "bias_se", "coverage",
             "coverage_se", "se_sd_ratio"]].to_string())
    # status 1 when S_0 of trajectory 0 > 1.5: P = 1 - Phi(1.5) = 0.0668
    p_fail = 0.5 * math.erfc(1.5 / math.sqrt(2))
    n_failed = s["n_failed"].iloc[0]
    assert abs(n_failed - reps * p_fail) < 4 * math.sqrt(reps * p_fail * (1 - p_fail))
    for _, row in s.iterrows():
        assert abs(row.bias) < 4 * row.bias_se, row
        # normal-theory 95% CIs of a mean of >= 100 iid terms: coverage within 4 binomial SE
        # of 0.95, allowing 0.01 for the t/normal and skewness gap at n = 100
        assert abs(row.coverage - 0.95) < 4 * math.sqrt(0.95 * 0.05 / row.n_used) + 0.01, row
        # SE/SD ratio: the SD of an SD estimate over m reps is about 1/sqrt(2m)
        assert abs(row.se_sd_ratio - 1) < 4 / math.sqrt(2 * row.n_used) + 0.01, row
