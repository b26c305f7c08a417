"""``optimize_policy``: one SGD step equals the start policy plus lr × the finite-difference
gradient of the estimated ATE; the objective path, value and control value agree with the
library's estimate table; the value SE with a numpy cluster SE; the control part does not
depend on the policy; input validation. Float64, semi-synthetic design, small N and T.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxmed._src.differentiable.policy_optimisation import _fit_jit, policy_objective
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.pipeline import policy_stage
from jaxmed._src.policies import ConstantPolicy, LogisticPolicy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.differentiable import optimize_policy

N, T = 30, 6
KEY = jax.random.key(4)
START = LogisticPolicy(jnp.array([0.7]), jnp.asarray(0.0))
LR = 0.05
CONFIG = MediationConfig()


def _table_ate(table, value):
    del value
    return table[0, 4]


@pytest.fixture(scope="module")
def setup():
    data = simulate_semi_synthetic(jax.random.key(12), N, T)
    res = optimize_policy(data, START, "ate", key=KEY, steps=1, optimizer=optax.sgd(LR))
    k_fit, _ = jax.random.split(KEY)
    fit = _fit_jit(k_fit, data, jnp.ones(N), CONFIG, None)

    @jax.jit
    def forward_fit(fit, p):
        obj, aux = policy_objective(fit, p, CONFIG, 0, "ate", 0, jnp.inf, 100.0, 0.0)
        obj_c, _ = policy_objective(fit, p, CONFIG, 0, _table_ate, 0, jnp.inf, 100.0, 0.0)
        return obj, aux, obj_c, policy_stage(fit, p, 0, CONFIG).value_rows

    return data, res, lambda p: forward_fit(fit, p)


def test_one_sgd_step_follows_the_finite_difference_gradient(setup):
    _, res, forward = setup
    h = 1e-6
    f = lambda p: float(forward(p)[0])  # noqa: E731
    g_w = (f(START._replace(weights=START.weights + h)) - f(START._replace(weights=START.weights - h))) / (2 * h)
    g_b = (f(START._replace(intercept=START.intercept + h)) - f(START._replace(intercept=START.intercept - h))) / (2 * h)
    step_w = (float(res.policy.weights[0]) - 0.7) / LR
    step_b = float(res.policy.intercept) / LR
    assert abs(g_w) > 1e-3 and abs(g_b) > 1e-3
    np.testing.assert_allclose([step_w, step_b], [g_w, g_b], rtol=1e-5)


def test_path_value_and_table_agree(setup):
    _, res, forward = setup
    obj0, aux0, obj0_c, _ = forward(START)
    np.testing.assert_allclose(res.objective_path[0], obj0, rtol=1e-12)
    np.testing.assert_allclose(obj0_c, obj0, rtol=1e-12)  # callable objective = "ate"
    np.testing.assert_allclose(res.value_path[0], aux0[0], rtol=1e-12)
    # the estimate at the optimum through the library's SE path (mediation_core) is the objective
    assert res.objective_path[1] > res.objective_path[0]  # the step improved: the optimum is iterate 1
    np.testing.assert_allclose(res.objective_path[-1], res.objective, rtol=1e-12)
    np.testing.assert_allclose(res.estimates.estimate[0, 4], res.objective, rtol=1e-9)
    np.testing.assert_allclose(res.value - res.control_value, res.objective, rtol=1e-9)
    est = res.estimates.estimate[0]
    np.testing.assert_allclose([res.direct, res.mediated], [est[0] + est[2], est[1] + est[3]], rtol=1e-9)
    assert res.status == 0 and res.constraint_violation == 0.0


def test_value_se_is_the_trajectory_cluster_se(setup):
    _, res, forward = setup
    rows = np.asarray(forward(res.policy)[3])[:, 0].reshape(N, T)
    m = rows.mean(axis=1)
    np.testing.assert_allclose(res.value, m.mean(), rtol=1e-10)
    np.testing.assert_allclose(res.value_se, m.std(ddof=1) / np.sqrt(N), rtol=1e-10)


def test_control_part_does_not_depend_on_the_policy(setup):
    _, res, forward = setup
    other = LogisticPolicy(jnp.array([-1.3]), jnp.asarray(0.8))
    np.testing.assert_allclose(forward(other)[3][:, 1], forward(START)[3][:, 1], rtol=1e-12)
    np.testing.assert_allclose(np.mean(forward(START)[3][:, 1]), res.control_value, rtol=1e-10)
    # π_e ≈ always-a0 (π_e(1|s) < 1e-21): the value rows coincide with the control rows
    never = LogisticPolicy(jnp.array([0.0]), jnp.asarray(-50.0))
    rows = np.asarray(forward(never)[3])
    np.testing.assert_allclose(rows[:, 0], rows[:, 1], rtol=1e-8, atol=1e-8)


def test_validation_errors_name_the_argument(setup):
    data = setup[0]
    cases = [
        (dict(policy=ConstantPolicy(0.5)), "policy"),
        (dict(policy=LogisticPolicy(jnp.array([0.1, 0.2]), 0.0)), "policy"),
        (dict(objective="value"), "objective"),
        (dict(steps=0), "steps"),
        (dict(objective="direct"), "bound"),
        (dict(bound=1.0), "bound"),
        (dict(estimator="MIS2"), "estimator"),
        (dict(estimator="XX"), "estimator"),
        (dict(objective="direct", bound=1.0, penalty=0.0), "penalty"),
        (dict(l2=-1.0), "l2"),
        (dict(optimizer=object()), "optimizer"),
        (dict(config={}), "config"),
    ]
    for kw, name in cases:
        args = dict(policy=START, objective="ate")
        args.update(kw)
        with pytest.raises(ValueError, match=f"^{name}"):
            optimize_policy(data, args.pop("policy"), args.pop("objective"), key=KEY, **args)
