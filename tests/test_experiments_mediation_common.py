"""The comparison helpers of experiments/mediation_common.py against hand-computed numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments import mediation_common as mc
from jaxmed import study
from jaxmed._src.effect_table import EffectTable, EstimatorSpec

# a miniature original summary: two blocks sharing (N=100, T=25, Baseline_DM, IDE)
ORIGINAL = {
    "Main": {
        "N=100,T=25": {
            "MR": {"IDE": {"n": 3, "bias": 0.5, "mse": 0.30, "sd": 0.2},
                   "DDE": {"n": 3, "bias": -0.1, "mse": 0.02, "sd": 0.1}},
            "Baseline_DM": {"IDE": {"n": 3, "bias": -0.3, "mse": 0.10, "sd": 0.1}},
        },
        "N=200,T=25": {"MR": {"IDE": {"n": 3, "bias": 0.4, "mse": 0.20, "sd": 0.15}}},
    },
    "Baselines": {
        "N=100,T=25": {"Baseline_DM": {"IDE": {"n": 3, "bias": -0.9, "mse": 0.9, "sd": 0.1}},
                       "Baseline_IPW": {"IDE": {"n": 3, "bias": -0.8, "mse": 0.7, "sd": 0.1}}},
    },
}


def test_cell_key_and_original_cells_priority():
    assert mc.cell_key(1500, 25) == "N=1500,T=25"
    df = mc.original_cells(ORIGINAL, ["Main", "Baselines"])
    assert len(df) == 5  # 4 in Main, + Baseline_IPW (Baseline_DM IDE at N=100 taken from Main)
    bdm = df[(df.estimator == "Baseline_DM") & (df.n == 100)]
    assert bdm["orig_bias"].tolist() == [-0.3] and bdm["orig_block"].tolist() == ["Main"]
    df2 = mc.original_cells(ORIGINAL, ["Baselines", "Main"])
    assert df2[(df2.estimator == "Baseline_DM") & (df2.n == 100)]["orig_bias"].tolist() == [-0.9]
    row = df[(df.estimator == "MR") & (df.n == 200)].iloc[0]
    assert (row.horizon, row.orig_mse, row.orig_sd, row.orig_reps) == (25, 0.20, 0.15, 3)


def test_compare_with_original_hand_numbers_and_truth_shift():
    # three replications of one estimator: estimates 2, 3, 5
    est = np.array([2.0, 3.0, 5.0])
    our_truth, orig_truth = 3.0, 3.5
    ours = pd.DataFrame(dict(
        n=[100, 100, 200], horizon=[25, 25, 25], estimator=["MR", "DM", "MR"],
        effect=["IDE", "IDE", "IDE"], truth=[our_truth] * 3,
        bias=[np.mean(est - our_truth), 0.0, 0.25], bias_se=[0.1, 0.1, 0.1],
        mse=[np.mean((est - our_truth) ** 2), 1.0, 0.5]))
    orig = pd.DataFrame(dict(
        n=[100, 200], horizon=[25, 25], estimator=["MR", "MR"], effect=["IDE", "IDE"],
        orig_bias=[np.mean(est - orig_truth), 0.5], orig_mse=[np.mean((est - orig_truth) ** 2), 0.4],
        orig_sd=[1.0, 1.0], orig_reps=[3, 3], orig_block=["Main", "Main"]))
    c = mc.compare_with_original(ours, orig, original_truth={"IDE": orig_truth})
    assert c[["n", "estimator"]].values.tolist() == [[100, "MR"], [200, "MR"]]  # DM: no match
    r = c.iloc[0]
    # hand numbers: bias 1/3, MSE (1 + 0 + 4)/3 = 5/3; original: bias −1/6, MSE (2.25+.25+2.25)/3
    assert r.bias == pytest.approx(1 / 3, abs=1e-12)
    assert r.orig_bias == pytest.approx(-1 / 6, abs=1e-12)
    assert r.orig_mse == pytest.approx(4.75 / 3, abs=1e-12)
    assert r.d_bias == pytest.approx(1 / 3 + 1 / 6, abs=1e-12)
    assert r.mse_ratio == pytest.approx((5 / 3) / (4.75 / 3), abs=1e-12)
    # re-expressed against our truth, the original's numbers are exactly ours (same estimates)
    assert r.orig_bias_our_truth == pytest.approx(1 / 3, abs=1e-12)
    assert r.orig_mse_our_truth == pytest.approx(5 / 3, abs=1e-12)
    r2 = c.iloc[1]  # d = 0.5: bias 0.5 + 0.5 = 1.0; mse 0.4 + 2·0.5·0.5 + 0.25 = 1.15
    assert (r2.orig_bias_our_truth, r2.orig_mse_our_truth) == pytest.approx((1.0, 1.15), abs=1e-12)
    only = mc.compare_with_original(ours, orig, points=[(200, 25)])
    assert only["n"].tolist() == [200] and "orig_bias_our_truth" not in only.columns


def test_markdown_table_exact():
    c = pd.DataFrame(dict(
        design=["a", "a", "b"], n=[300, 300, 300], horizon=[50, 50, 50],
        estimator=["MR", "MR", "MR"], effect=["IDE", "DME", "IDE"],
        bias=[0.01234, -0.5, 0.2], mse=[0.00456, 0.25, 0.04],
        orig_bias=[0.618, -0.032, 0.19], orig_mse=[0.403, 0.01, 0.045]))
    assert mc.markdown_table(c, effects=["IDE", "DME"]).splitlines() == [
        "| design | N | T | estimator | IDE | DME |",
        "|---|---|---|---|---|---|",
        "| a | 300 | 50 | MR | +0.012 / 0.0046 (+0.618 / 0.4030) | -0.500 / 0.2500 (-0.032 / 0.0100) |",
        "| b | 300 | 50 | MR | +0.200 / 0.0400 (+0.190 / 0.0450) | – |",
    ]


class _Shifted:
    """x ~ N(0, 1) of shape (n, horizon); the estimator reports mean(x) + 0.25 (bias 0.25)."""
    name = "shifted"

    def simulate(self, key, n, horizon):
        return jax.random.normal(key, (n, horizon))

    def truth(self):
        return {"IDE": 0.0}


def _shifted_mean(key, x):
    e = jnp.reshape(x.mean() + 0.25, (1, 1))
    s = jnp.reshape(x.std() / jnp.sqrt(x.size), (1, 1))
    return EffectTable(e, s, e - 1.96 * s, e + 1.96 * s, jnp.int32(0))


def test_study_summary_to_comparison_end_to_end():
    spec = EstimatorSpec("shifted", ("MR",), ("IDE",), _shifted_mean)
    res = study.run(_Shifted(), spec, study.make_grid([8], 2), reps=6, key=0, progress=False)
    summary = res.summary()
    est = res.estimate[0, :, 0, 0]
    orig = mc.original_cells({"B": {"N=8,T=2": {"MR": {"IDE": {
        "n": 6, "bias": 0.1, "mse": 0.05, "sd": 0.2}}}}}, ["B"])
    c = mc.compare_with_original(summary, orig, original_truth={"IDE": 0.1})
    assert len(c) == 1
    r = c.iloc[0]
    assert r.bias == pytest.approx(np.mean(est), abs=1e-12)
    assert r.mse == pytest.approx(np.mean(est ** 2), abs=1e-12)
    assert r.d_bias == pytest.approx(np.mean(est) - 0.1, abs=1e-12)
    assert r.orig_bias_our_truth == pytest.approx(0.2, abs=1e-12)
    assert r.orig_mse_our_truth == pytest.approx(0.05 + 2 * 0.1 * 0.1 + 0.01, abs=1e-12)
    assert abs(np.mean(est) - 0.25) < 5 * 1 / np.sqrt(16 * 6)  # the bias 0.25 is recovered


def test_complete_cells_keeps_only_fully_stored_cells():
    s = pd.DataFrame(dict(n=[50, 50, 50], horizon=[100, 200, 300], n_reps=[100, 37, 0],
                          n_used=[98, 37, 0], n_failed=[2, 0, 0], n_nonfinite=[0, 0, 0]))
    assert mc.complete_cells(s, 100)["horizon"].tolist() == [100]
    assert mc.complete_cells(s, 37)["horizon"].tolist() == [200]
