"""Mediation derivatives w.r.t. the target policy's parameters (two weights and the intercept)
vs central finite differences on the multidimensional design (d_S = d_M = 2), float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.policies import multidim_target_policy
from jaxmed._src.sim.multidim import simulate_multidim
from jaxmed.differentiable import defined_cells, mediation_estimates
from _checks import assert_fd_close  # noqa: E402 (tests/ is on sys.path)

N, T = 30, 6
KEY = jax.random.key(7)
CELLS = defined_cells()


def _check(jac, fd):
    return assert_fd_close(jac, fd, CELLS)


@pytest.mark.slow  # CI time: 41 s; policy derivatives also in test_differentiable_mediation.py
def test_multidim_policy_derivatives_match_finite_differences():
    data = simulate_multidim(jax.random.key(5), N, T)
    policy = multidim_target_policy()._replace(intercept=jnp.asarray(-0.2))
    config = MediationConfig()

    @jax.jit
    def table(p):
        return mediation_estimates(KEY, data, jnp.ones(N), p, config)

    jac = jax.jit(jax.jacfwd(table))(policy)
    # fourth-order central differences, h = 1e-4 (truncation O(h^4), rounding ~1e-11)
    h = 1e-4

    def fd(shift):
        f = lambda k: np.asarray(table(shift(k * h)))  # noqa: E731
        return (-f(2) + 8 * f(1) - 8 * f(-1) + f(-2)) / (12 * h)

    for j in range(2):
        d = fd(lambda x: policy._replace(weights=policy.weights.at[j].add(x)))
        print("max rel err weight", j, _check(jac.weights[..., j], d))
    d = fd(lambda x: policy._replace(intercept=policy.intercept + x))
    print("max rel err intercept", _check(jac.intercept, d))
