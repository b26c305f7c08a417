"""LAPACK-free small solves against plain numpy (float64), under vmap, and their gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src import small_linalg as sl


def _spd(rng, p, n=200, ridge=1e-3):
    x = rng.normal(size=(n, p))
    return x.T @ x / n + ridge * np.eye(p)


@pytest.mark.parametrize("p", [1, 5, 38])
def test_cholesky_and_cho_solve_equal_numpy(p):
    rng = np.random.default_rng(p)
    a, b = _spd(rng, p), rng.normal(size=(p, 3))
    np.testing.assert_allclose(np.asarray(sl.cholesky(a)), np.linalg.cholesky(a), rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(sl.cho_solve(sl.cho_factor(a), b)), np.linalg.solve(a, b),
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(sl.cho_solve(sl.cho_factor(a), b[:, 0])),
                               np.linalg.solve(a, b[:, 0]), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("p", [2, 7, 38])
def test_solve_with_pivoting_equals_numpy(p):
    rng = np.random.default_rng(10 + p)
    a = rng.normal(size=(p, p)) + 2.0 * np.eye(p)
    a[0, 0] = 0.0  # the first pivot must come from another row
    b = rng.normal(size=(p, 4))
    ref = np.linalg.solve(a, b)
    cond = np.linalg.cond(a)
    np.testing.assert_allclose(np.asarray(sl.solve(a, b)), ref, rtol=0,
                               atol=cond * 1e-15 * np.abs(ref).max())
    np.testing.assert_allclose(np.asarray(sl.solve(a, b[:, 1])), ref[:, 1], rtol=0,
                               atol=cond * 1e-15 * np.abs(ref).max())


def test_singular_and_indefinite_give_non_finite():
    assert not np.isfinite(np.asarray(sl.solve(np.zeros((3, 3)), np.ones(3)))).all()
    assert not np.isfinite(np.asarray(sl.cholesky(np.diag([1.0, -1.0])))).all()


def test_vmap_width_64_equals_unbatched_and_lapack():
    rng = np.random.default_rng(3)
    a = np.stack([_spd(rng, 12) for _ in range(64)])
    b = rng.normal(size=(64, 12, 2))
    got = jax.jit(jax.vmap(lambda a, b: sl.cho_solve(sl.cho_factor(a), b)))(a, b)
    np.testing.assert_allclose(np.asarray(got), np.linalg.solve(a, b), rtol=1e-12, atol=1e-13)
    got_lu = jax.jit(jax.vmap(sl.solve))(a, b)
    np.testing.assert_allclose(np.asarray(got_lu), np.linalg.solve(a, b), rtol=1e-12, atol=1e-13)


def test_grad_matches_central_differences():
    rng = np.random.default_rng(4)
    a0, g0 = _spd(rng, 4), rng.normal(size=(4, 4)) + 3 * np.eye(4)
    b = rng.normal(size=4)
    d = rng.normal(size=(4, 4))
    d = d + d.T

    def f(t):
        return (jnp.sum(sl.cho_solve(sl.cho_factor(a0 + t * d), b) ** 2)
                + jnp.sum(sl.solve(g0 + t * d, b) ** 3))

    h = 1e-5
    fd = (f(h) - f(-h)) / (2 * h)
    assert abs(float(jax.grad(f)(0.0)) - float(fd)) < 1e-5 * max(1.0, abs(float(fd)))


def test_pipeline_solves_equal_lapack_under_vmap_and_differentiate():
    """``spd_solve``/``general_solve`` (LAPACK one system at a time, LAPACK
    tangent solves):
    equal to numpy at vmap width 16 (one argument batched or both), and ``grad``/``jacfwd``
    match central differences."""
    rng = np.random.default_rng(5)
    a = np.stack([_spd(rng, 9) for _ in range(16)])
    b = rng.normal(size=(16, 9, 2))
    ref = np.linalg.solve(a, b)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(sl.spd_solve))(a, b)), ref, rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(np.asarray(jax.vmap(sl.general_solve)(a, b)), ref, rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda m: sl.spd_solve(m, b[0]))(a)),
                               np.linalg.solve(a, b[0]), rtol=1e-12, atol=1e-13)
    d = rng.normal(size=(9, 9))
    d = d + d.T

    def f(t):
        return (jnp.sum(sl.spd_solve(a[0] + t * d, b[0]) ** 2)
                + jnp.sum(sl.general_solve(a[1] + 2 * jnp.eye(9) + t * d, b[1, :, 0]) ** 3))

    h = 1e-5
    fd = float((f(h) - f(-h)) / (2 * h))
    for g in (jax.grad(f)(0.0), jax.jacfwd(f)(0.0), jax.vmap(jax.grad(f))(jnp.zeros(3))[1]):
        assert abs(float(g) - fd) < 1e-5 * max(1.0, abs(fd))


def test_reverse_mode_over_many_cotangents_equals_the_inverse():
    """``jacrev`` (a ``vmap`` over cotangents with one matrix: the right-hand sides folded into
    columns of one LAPACK solve) equals the closed form: ∂x/∂b = A⁻¹ and ∂x_i/∂A_jk =
    −(A⁻¹)_ij x_k, for both solves, and equals ``jacfwd``."""
    rng = np.random.default_rng(7)
    a = _spd(rng, 6)
    g = a + rng.normal(size=(6, 6))  # not symmetric
    b = rng.normal(size=6)
    for solve, m in ((sl.spd_solve, a), (sl.general_solve, g)):
        inv = np.linalg.inv(m)
        x = inv @ b
        np.testing.assert_allclose(np.asarray(jax.jacrev(solve, argnums=1)(m, b)), inv, rtol=1e-10,
                                   atol=1e-12)
        want = -np.einsum("ij,k->ijk", inv, x)
        got_rev = np.asarray(jax.jacrev(solve, argnums=0)(m, b))
        got_fwd = np.asarray(jax.jacfwd(solve, argnums=0)(m, b))
        if solve is sl.spd_solve:  # only the symmetric part of a perturbation is meaningful
            want, got_rev, got_fwd = (0.5 * (t + t.transpose(0, 2, 1)) for t in (want, got_rev, got_fwd))
        np.testing.assert_allclose(got_rev, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_fwd, want, rtol=1e-10, atol=1e-12)
