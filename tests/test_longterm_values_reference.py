"""Closed-form long-term values (spec longterm.md §3.4, §4.2) against the plain mean recursion.

The reference never solves a linear system: it iterates E[s_{t+1}] = M E[s_t] + b in float64
numpy and sums the discounted rewards (V_i = Σ_t γ^t (θᵀ E_i[s_t] + c), truncated where
γ^t < 1e-17) and takes the long-run reward (ρ_i = lim θᵀ E_i[s_t] + c). The status bits are
checked on matrices whose spectral radius sits just inside and just outside 1 − 1e-6.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.longterm.values import (SR_LIMIT, STATUS_NONFINITE, STATUS_UNSTABLE, longterm_values,
                                         mean_path, spectral_radius, value_status)


def _random_arm(rng, d, radius):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    eig = rng.uniform(-radius, radius, size=d)
    eig[0] = radius
    return q @ np.diag(eig) @ q.T + 0.01 * rng.normal(size=(d, d)), rng.normal(size=d)


def _np_reference(M, b, theta, c, m0, gamma, steps):
    values, rhos = [], []
    for Mi, bi in zip(M, b):
        m, v, disc = m0.copy(), 0.0, 1.0
        for _ in range(steps):
            v += disc * (theta @ m + c)
            disc *= gamma
            m = Mi @ m + bi
        values.append(v)
        rhos.append(theta @ m + c)  # m has converged to the stationary mean
    values, rhos = np.array(values), np.array(rhos)
    return values, rhos


@pytest.mark.parametrize("d,gamma,seed", [(1, 0.5, 0), (3, 0.9, 1), (4, 0.97, 2)])
def test_longterm_values_equal_the_mean_recursion(d, gamma, seed):
    rng = np.random.default_rng(seed)
    arms = [_random_arm(rng, d, 0.6), _random_arm(rng, d, 0.8)]
    M = np.stack([a[0] for a in arms])
    b = np.stack([a[1] for a in arms])
    theta, c, m0 = rng.normal(size=d), float(rng.normal()), rng.normal(size=d)
    steps = int(np.ceil(np.log(1e-17) / np.log(gamma))) + 200
    values, rhos = _np_reference(M, b, theta, c, m0, gamma, steps)
    got = longterm_values(M, b, theta, c, m0, gamma)
    np.testing.assert_allclose(np.asarray(got.value), values, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(got.rho), rhos, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(float(got.delta), values[1] - values[0], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(float(got.delta_gamma), (1 - gamma) * (values[1] - values[0]),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(float(got.avg_reward), rhos[1] - rhos[0], rtol=1e-9, atol=1e-10)


def test_mean_path_is_the_recursion():
    rng = np.random.default_rng(5)
    M, b = _random_arm(rng, 3, 0.7)
    m0 = rng.normal(size=3)
    ref = [m0]
    for _ in range(5):
        ref.append(M @ ref[-1] + b)
    np.testing.assert_allclose(np.asarray(mean_path(M, b, m0, 6)), np.array(ref), rtol=1e-13, atol=1e-14)


def test_spectral_radius_equals_numpy():
    rng = np.random.default_rng(6)
    A = rng.normal(size=(4, 4))
    assert abs(float(spectral_radius(A)) - np.abs(np.linalg.eigvals(A)).max()) < 1e-12


def _diag_pair(r0, r1):
    return jnp.stack([jnp.diag(jnp.array([r0, 0.1])), jnp.diag(jnp.array([0.2, r1]))])


@pytest.mark.parametrize("r0,r1,expected", [
    (0.5, 0.3, 0),
    (1.0 - 2e-6, 0.3, 0),                  # inside the limit 1 − 1e-6
    (1.0 - 5e-7, 0.3, STATUS_UNSTABLE),    # outside it
    (1.0 - 1e-6, 0.3, STATUS_UNSTABLE),    # exactly on it: sr >= 1 − 1e-6 is unstable
    (0.5, -(1.0 - 5e-7), STATUS_UNSTABLE),  # a negative eigenvalue counts by its modulus
    (0.5, 1.2, STATUS_UNSTABLE),
])
def test_value_status_flags_unstable_arms(r0, r1, expected):
    M = _diag_pair(r0, r1)
    b = jnp.ones((2, 2))
    v = longterm_values(M, b, jnp.array([1.0, 1.0]), 0.0, jnp.zeros(2), 0.9)
    status, sr = value_status(M, v)
    assert int(status) == expected
    np.testing.assert_allclose(np.asarray(sr), [max(abs(r0), 0.1), max(0.2, abs(r1))], rtol=1e-12)
    assert SR_LIMIT == 1.0 - 1e-6


def test_value_status_flags_non_finite_effects():
    M = _diag_pair(0.5, 0.3)
    b = jnp.ones((2, 2))
    for theta in (jnp.array([jnp.nan, 1.0]), jnp.array([jnp.inf, 1.0])):
        v = longterm_values(M, b, theta, 0.0, jnp.zeros(2), 0.9)
        status, _ = value_status(M, v)
        assert int(status) == STATUS_NONFINITE
    # both bits at once: an unstable arm with a singular I − M (ρ not finite)
    M = _diag_pair(1.0, 0.3)
    v = longterm_values(M, b, jnp.array([1.0, 1.0]), 0.0, jnp.zeros(2), 0.9)
    status, _ = value_status(M, v)
    assert int(status) == STATUS_UNSTABLE | STATUS_NONFINITE


def test_values_keep_float32_and_status_is_int32():
    """float32 inputs stay float32 (jaxmed's float32 path; x64 is on in the tests) and the status
    is int32, equal to the float64 values within float32 rounding."""
    M = _diag_pair(0.5, 0.3)
    b = jnp.ones((2, 2))
    theta = jnp.array([1.0, 2.0])
    v64 = longterm_values(M, b, theta, 0.5, jnp.zeros(2), 0.9)
    v32 = longterm_values(M.astype(jnp.float32), b.astype(jnp.float32), theta.astype(jnp.float32),
                          0.5, jnp.zeros(2, jnp.float32), 0.9)  # Python scalars follow M
    for name in ("delta", "avg_reward"):
        a32, a64 = np.asarray(getattr(v32, name)), np.asarray(getattr(v64, name))
        assert a32.dtype == np.float32, name
        np.testing.assert_allclose(a32, a64, rtol=1e-5)
    status, _ = value_status(M, v64)
    assert np.asarray(status).dtype == np.int32 and int(status) == 0


@pytest.mark.parametrize("gamma", [np.float64(0.9), jnp.asarray(0.9, jnp.float64)])
def test_float64_gamma_follows_float32_transitions(gamma):
    """A float64 discount (a numpy scalar or a float64 array, as a float64 config carries it) is
    cast to M's dtype: float32 transitions give float32 values, equal to the float64 closed form
    within float32 rounding (Δ = V_1 − V_0 of the diagonal arms, written out below)."""
    M = _diag_pair(0.5, 0.3)
    b = jnp.ones((2, 2))
    theta = np.array([1.0, 2.0])
    v32 = longterm_values(M.astype(jnp.float32), b.astype(jnp.float32), theta.astype(np.float32),
                          0.5, np.zeros(2, np.float32), gamma)
    # diagonal arms from m0 = 0: E[s_t]_j = b_j (1 − λ_j^t)/(1 − λ_j), so
    # V = Σ_j θ_j b_j γ / ((1 − γ)(1 − γλ_j)) + c/(1 − γ) and ρ = Σ_j θ_j b_j / (1 − λ_j) + c
    g = 0.9
    lam = np.array([[0.5, 0.1], [0.2, 0.3]])
    value = (theta * g / ((1 - g) * (1 - g * lam))).sum(axis=1) + 0.5 / (1 - g)
    rho = (theta / (1 - lam)).sum(axis=1) + 0.5
    for name, ref in (("value", value), ("rho", rho), ("delta", value[1] - value[0]),
                      ("avg_reward", rho[1] - rho[0])):
        got = np.asarray(getattr(v32, name))
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-5, err_msg=name)
