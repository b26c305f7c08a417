"""Mediation derivatives w.r.t. the target policy's parameters (two weights and the intercept)
vs central finite differences on the multidimensional design (d_S = d_M = 2), float64."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.policies import multidim_target_policy
from jaxmed._src.sim.multidim import simulate_multidim
from jaxmed.differentiable import defined_cells, mediation_estimates

N, T = 30, 6
KEY = jax.random.key(7)
CELLS = defined_cells()


def _check(jac, fd):
    jac, fd = np.asarray(jac)[CELLS[:, 0], CELLS[:, 1]], np.asarray(fd)[CELLS[:, 0], CELLS[:, 1]]
    assert np.all(np.isfinite(jac)) and np.all(np.isfinite(fd))
    big = np.abs(fd) > 1e-3 * np.max(np.abs(fd))
    rel = np.abs(jac - fd)[big] / np.abs(fd)[big]
    assert rel.max() < 1e-5, rel.max()
    assert np.max(np.abs(jac - fd)[~big], initial=0.0) < 1e-5 * np.max(np.abs(fd))
    return rel.max()


def test_multidim_policy_derivatives_match_finite_differences():
    data = simulate_multidim(jax.random.key(5), N, T)
    policy = multidim_target_policy()._replace(intercept=jnp.asarray(-0.2))
    config = MediationConfig()

    @jax.jit
    def table(p):
        return mediation_estimates(KEY, data, jnp.ones(N), p, config)

    jac = jax.jit(jax.jacfwd(table))(policy)
    h = 1e-6
    for j in range(2):
        e = jnp.zeros(2).at[j].set(h)
        fd = (table(policy._replace(weights=policy.weights + e))
              - table(policy._replace(weights=policy.weights - e))) / (2 * h)
        print("max rel err weight", j, _check(jac.weights[..., j], fd))
    fd = (table(policy._replace(intercept=policy.intercept + h))
          - table(policy._replace(intercept=policy.intercept - h))) / (2 * h)
    print("max rel err intercept", _check(jac.intercept, fd))
