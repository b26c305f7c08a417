"""Long-term Δ: derivatives w.r.t. γ, λ_M, λ_z and individual weights vs central finite
differences (float64), and the first-order leave-one-out prediction vs actual refits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.longterm.api import estimate_effects
from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.simulate import simulate_longterm
from jaxmed.differentiable import influential_trajectories, longterm_sensitivity

N, T = 60, 10
REWARD = LinearReward(jnp.array([1.0, 0.0, 1.0]), jnp.asarray(0.0))
GAMMA, RIDGE, LAMBDA_Z = 0.9, 0.5, 0.3


@pytest.fixture(scope="module")
def setup():
    panel = simulate_longterm(jax.random.key(7), N, T, design="s2")

    @jax.jit
    def effects(g, r, lz, w):
        return estimate_effects(panel, w, REWARD, g, method="nonstationary", ridge=r, lambda_z=lz)[0]

    sens = longterm_sensitivity(panel, REWARD, GAMMA, ridge=RIDGE, lambda_z=LAMBDA_Z)
    return panel, effects, sens


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3 * np.max(np.abs(b))))


def test_estimate_matches_plain_call(setup):
    _, effects, sens = setup
    np.testing.assert_allclose(sens.estimate, effects(GAMMA, RIDGE, LAMBDA_Z, jnp.ones(N)), rtol=1e-12)


@pytest.mark.parametrize("which", ["gamma", "ridge", "lambda_z"])
def test_hyperparameter_derivative_matches_finite_difference(setup, which):
    _, effects, sens = setup
    base = dict(gamma=GAMMA, ridge=RIDGE, lambda_z=LAMBDA_Z)
    h = 1e-6 * base[which]

    def at(x):
        b = dict(base, **{which: x})
        return np.asarray(effects(b["gamma"], b["ridge"], b["lambda_z"], jnp.ones(N)))

    fd = (at(base[which] + h) - at(base[which] - h)) / (2 * h)
    assert _rel(getattr(sens, which), fd) < 1e-5


def test_weight_derivative_matches_finite_difference(setup):
    _, effects, sens = setup
    h = 1e-6
    for i in (0, 11, 37, N - 1):
        e = jnp.zeros(N).at[i].set(h)
        fd = (np.asarray(effects(GAMMA, RIDGE, LAMBDA_Z, 1 + e))
              - np.asarray(effects(GAMMA, RIDGE, LAMBDA_Z, 1 - e))) / (2 * h)
        assert _rel(sens.weights[:, i], fd) < 1e-5, i


def test_influential_trajectories_first_order_leave_one_out(setup):
    _, effects, sens = setup
    infl = influential_trajectories(sens, effect="delta", top=5)
    g = np.asarray(sens.weights[0])
    assert np.all(np.abs(infl.derivative) >= np.max(np.abs(np.delete(g, infl.indices))) - 1e-15)
    # second-order term: est(w − e_i) − (est − g_i) ≈ ½ H_ii; bound it by the curvature along e_i
    # measured by a second difference at step 1/2 (an independent estimate of ½ H_ii).
    for i, pred in zip(infl.indices, infl.leave_one_out_first_order):
        w = jnp.ones(N)
        loo = float(effects(GAMMA, RIDGE, LAMBDA_Z, w.at[i].set(0.0))[0])
        half_h = (float(effects(GAMMA, RIDGE, LAMBDA_Z, w.at[i].set(1.5))[0])
                  + float(effects(GAMMA, RIDGE, LAMBDA_Z, w.at[i].set(0.5))[0])
                  - 2 * infl.estimate) / 0.25 / 2
        err = loo - pred
        assert abs(err) <= 0.2 * abs(infl.derivative[0]) + 3 * abs(half_h), (i, loo, pred, half_h)
        # and the first-order prediction is much closer to the refit than "no change" is
        assert abs(err) < abs(loo - infl.estimate), (i, loo, pred)


@pytest.mark.slow  # CI time: 31 s; the docs blocks run in test_docs_blocks.py
def test_docs_example_runs():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "differentiable.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(b for b in blocks if "longterm_sensitivity" in b)
    scope = {}
    exec(compile(code, "differentiable.md", "exec"), scope)
    sens = scope["sens"]
    # the example's Δ equals the plain estimator call
    eff = estimate_effects(scope["panel"], None, LinearReward(jnp.array([1.0, 0.0, 1.0]), jnp.asarray(0.0)),
                           0.9, ridge=0.1)[0]
    np.testing.assert_allclose(sens.estimate, eff, rtol=1e-12)


@pytest.mark.slow
def test_docs_optimize_policy_example_runs():
    """The optimize_policy example of docs/differentiable.md runs as written; its "ate" objective
    at the returned policy is the MR value minus the control value, and the constrained run
    reports direct + mediated = its MR ATE."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "docs" / "differentiable.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(b for b in blocks if "optimize_policy(" in b)
    scope = {}
    exec(compile(code, "differentiable.md", "exec"), scope)
    res, con = scope["res"], scope["con"]
    assert int(res.status) == 0
    np.testing.assert_allclose(float(res.objective), float(res.value) - float(res.control_value),
                               rtol=1e-10)
    mr = con.estimates.to_frame().query("estimator == 'MR'").set_index("effect")["estimate"]
    np.testing.assert_allclose(float(con.direct) + float(con.mediated), mr["ATE"], rtol=1e-8)
