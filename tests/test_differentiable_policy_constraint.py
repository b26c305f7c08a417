"""``optimize_policy(objective="direct")``: IDE + DDE with IME + DME ≤ bound by a quadratic
penalty. The bound is set below the start policy's estimated mediated effect, so the
constraint is active; at the optimum the reported parts agree with the library's estimate
table, the objective is the penalised direct effect, the violation is within O(1/penalty),
and the penalised objective improved on the start. Float64, semi-synthetic, small N and T.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxmed._src.differentiable.policy_optimisation import _fit_jit, policy_objective
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.policies import LogisticPolicy
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.differentiable import optimize_policy

N, T = 30, 6
KEY = jax.random.key(4)
START = LogisticPolicy(jnp.array([0.7]), jnp.asarray(0.0))
PENALTY = 200.0


def test_direct_effect_with_mediated_bound():
    data = simulate_semi_synthetic(jax.random.key(12), N, T)
    config = MediationConfig()
    k_fit, _ = jax.random.split(KEY)
    fit = _fit_jit(k_fit, data, jnp.ones(N), config, None)
    _, (_, direct0, mediated0, _, _) = jax.jit(
        lambda f, p: policy_objective(f, p, config, 0, "ate", 0, jnp.inf, PENALTY, 0.0))(fit, START)
    bound = float(mediated0) - 1.0
    res = optimize_policy(data, START, "direct", key=KEY, steps=150, optimizer=optax.adam(0.1),
                          bound=bound, penalty=PENALTY)
    est = res.estimates.estimate[0]
    np.testing.assert_allclose([res.direct, res.mediated], [est[0] + est[2], est[1] + est[3]],
                               rtol=1e-9)
    violation = max(res.mediated - bound, 0.0)
    np.testing.assert_allclose(res.constraint_violation, violation, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.objective, res.direct - 0.5 * PENALTY * violation ** 2, rtol=1e-12)
    # start: penalised objective direct0 − P/2 · 1²; the optimum is feasible up to O(1/P)
    start_obj = float(direct0) - 0.5 * PENALTY * 1.0
    np.testing.assert_allclose(res.objective_path[0], start_obj, rtol=1e-12)
    assert res.objective > start_obj + 50.0
    assert violation < 0.05
    assert res.status & 2 == (2 if violation > 1e-2 else 0)
