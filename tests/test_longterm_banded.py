"""Banded (block-tridiagonal) Step BZ against a plain numpy dense reference (spec longterm.md §4.5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.longterm.banded import banded_matvec, bz_banded_system
from jaxmed._src.longterm.nonstationary import (nonstationary_estimate, nonstationary_objective, solve_bz,
                                                within_dynamics)
from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.simulate import random_exogenous, random_stable_params, simulate_longterm
from jaxmed._src.longterm.stationary import initial_mean
from jaxmed._src.longterm.stats import panel_stats


@pytest.fixture(scope="module")
def s2():
    @jax.jit
    def make(key):
        st = panel_stats(simulate_longterm(key, 500, 20, design="s2"))
        return st, within_dynamics(st), initial_mean(st)

    return make(jax.random.key(1))


@jax.jit
def _dense_and_banded(st, M, m0, lam_none, lam_anchored):
    """(anchor none, smooth penalty) and (anchor steady0, ridge penalty), both solvers."""
    out = []
    for anchor, lam, kind in (("none", lam_none, "smooth"), ("steady0", lam_anchored, "ridge")):
        out.append([solve_bz(st, M, anchor=anchor, anchor_mean=m0, lambda_z=lam, z_penalty=kind, solver=s)
                    for s in ("dense", "banded")])
    return out


def _numpy_normal_equations(n, w, M, b0, lam, kind):
    """Dense H, g of Step BZ built row by row from the definition (numpy)."""
    n, w, M = np.asarray(n), np.asarray(w), np.asarray(M)
    T, d = w.shape[1], w.shape[2]
    p = 2 * d if b0 is None else d
    K = p + T * d
    H, g = np.zeros((K, K)), np.zeros(K)
    for i in (0, 1):
        for t in range(T):
            A = np.zeros((d, K))
            y = w[i, t].copy()
            if b0 is None:
                A[:, i * d:(i + 1) * d] = np.eye(d)
            elif i == 1:
                A[:, :d] = np.eye(d)
            else:
                y = y - np.asarray(b0)
            A[:, p + t * d:p + (t + 1) * d] += np.eye(d)                  # z_{t+1}
            if t >= 1:
                A[:, p + (t - 1) * d:p + t * d] -= M[i]                   # z_t
            H += n[i, t] * A.T @ A
            g += n[i, t] * A.T @ y
    Dz = np.eye(T) - np.eye(T, k=-1)
    pen = np.eye(T) if kind == "ridge" else Dz.T @ Dz
    H[p:, p:] += lam * np.kron(pen, np.eye(d))
    return H, g


@pytest.mark.parametrize("lams", [(0.0, 0.0), (3.0, 2.0)])
def test_banded_equals_dense_and_numpy(s2, lams):
    st, M, m0 = s2
    both = _dense_and_banded(st, M, m0, *lams)
    for (anchor, lam, kind), ((bd, zd, cd), (bb, zb, cb)) in zip(
            (("none", lams[0], "smooth"), ("steady0", lams[1], "ridge")), both):
        _check_case(st, M, m0, anchor, lam, kind, bd, zd, cd, bb, zb, cb)


def _check_case(st, M, m0, anchor, lam, kind, bd, zd, cd, bb, zb, cb):
    np.testing.assert_allclose(bb, bd, rtol=0, atol=1e-9)
    np.testing.assert_allclose(zb, zd, rtol=0, atol=1e-9)
    # plain numpy reference solve of the same normal equations
    n = np.asarray(st.n_tr)
    w = np.asarray(st.sum_y) / n[..., None] - np.einsum("iab,itb->ita", M, np.asarray(st.sum_x) / n[..., None])
    b0 = None if anchor == "none" else np.asarray(m0 - M[0] @ m0)
    H, g = _numpy_normal_equations(n, w, M, b0, lam, kind)
    u = np.linalg.solve(H, g)
    p = 2 if anchor == "none" else 1
    np.testing.assert_allclose(np.asarray(zb)[1:].reshape(-1), u[p * 3:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(bb)[2 - p:].reshape(-1), u[:p * 3], rtol=0, atol=1e-9)
    # condition estimate: a lower bound within 5% of the exact value
    ev = np.linalg.eigvalsh(H)
    exact = ev[-1] / ev[0]
    assert float(cd) == pytest.approx(exact, rel=1e-6)
    assert 0.95 * exact <= float(cb) <= exact * (1 + 1e-9)


def test_banded_matvec_matches_dense_matrix(s2):
    st, M, m0 = s2
    n = st.n_tr
    w = st.sum_y / n[..., None] - jnp.einsum("iab,itb->ita", M, st.sum_x / n[..., None])
    sys = jax.jit(bz_banded_system)(n, w, M, lambda_z=1.5)
    H, g = _numpy_normal_equations(n, w, M, None, 1.5, "smooth")
    v = np.random.default_rng(0).normal(size=H.shape[0])
    hb, hz = banded_matvec(sys, jnp.asarray(v[:6]), jnp.asarray(v[6:].reshape(20, 3)))
    np.testing.assert_allclose(np.concatenate([hb, np.asarray(hz).reshape(-1)]), H @ v, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.concatenate([sys.gb, np.asarray(sys.gz).reshape(-1)]), g, rtol=1e-12,
                               atol=1e-9)


def test_objective_penalty_matches_quadratic_form(s2):
    st, M, m0 = s2
    b = jnp.ones((2, 3))
    z = jnp.concatenate([jnp.zeros((1, 3)), jnp.sin(jnp.arange(60.0)).reshape(20, 3)])
    obj = jax.jit(nonstationary_objective, static_argnames="z_penalty")
    base = float(obj(st, M, b, z))
    T = z.shape[0] - 1
    zf = np.asarray(z)[1:].reshape(-1)
    Dz = np.eye(T) - np.eye(T, k=-1)
    for kind, pen in (("smooth", Dz.T @ Dz), ("ridge", np.eye(T))):
        val = float(obj(st, M, b, z, lambda_z=0.7, z_penalty=kind))
        assert val == pytest.approx(base + 0.7 * zf @ np.kron(pen, np.eye(3)) @ zf, rel=1e-12)


def test_nonstationary_estimate_banded_equals_dense():
    d, T = 4, 24
    params = random_stable_params(jax.random.key(7), d)
    z = random_exogenous(jax.random.key(8), T, d)

    @jax.jit
    def both(key):
        st = panel_stats(simulate_longterm(key, 800, T, design="s2", params=params, exogenous=z))
        rw = LinearReward(params.theta, 0.0)
        return [nonstationary_estimate(st, rw, 0.95, bz_solver=s) for s in ("dense", "banded")]

    fits = both(jax.random.key(9))
    np.testing.assert_allclose(fits[1].values.delta, fits[0].values.delta, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fits[1].z, fits[0].z, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fits[1].objective, fits[0].objective, rtol=1e-10)
    assert int(fits[1].status) == 0
