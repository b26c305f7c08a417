"""The row-wise derivative rules of the weighted normal-equation solves (``normal_solve``) and
of the state-ratio coefficients (issue 13: the IJ SE's cost) against plain autodiff of the same
forward computation (the chain rule through the Gram products), every input perturbed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation import normal_solve as ns
from jaxmed._src.mediation import state_ratio as sr

jax.config.update("jax_enable_x64", True)


def _random_like(rng, tree):
    return jax.tree.map(lambda a: jnp.asarray(rng.normal(size=np.shape(a))), tree)


def _check(custom, plain, primals, seed):
    """jvp and vjp of ``custom`` equal those of ``plain`` (the chain rule), to rounding."""
    rng = np.random.default_rng(seed)
    tangents = _random_like(rng, primals)
    jvp = jax.jit(jax.jvp, static_argnums=0)  # one program each: faster than op-by-op
    out_c, tan_c = jvp(custom, primals, tangents)
    out_p, tan_p = jvp(plain, primals, tangents)
    for a, b in zip(jax.tree.leaves(out_c), jax.tree.leaves(out_p)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(jax.tree.leaves(tan_c), jax.tree.leaves(tan_p)):
        assert np.max(np.abs(a)) > 1e-3  # a real derivative, not a zero on both sides
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
    ct = _random_like(rng, out_c)
    pull = jax.jit(lambda f, p, c: jax.vjp(f, *p)[1](c), static_argnums=0)
    vc = pull(custom, primals, ct)
    vp = pull(plain, primals, ct)
    for a, b in zip(jax.tree.leaves(vc), jax.tree.leaves(vp)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def _data(seed, n=60, p=4, r=3):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(p, n)))
    y = jnp.asarray(rng.normal(size=(r, n)))
    w = jnp.asarray(rng.uniform(0.5, 2.0, size=n))
    return rng, x, y, w


@pytest.mark.parametrize("coded", [False, True])
def test_ridge_solve_derivatives_equal_the_chain_rule(coded):
    rng, x, y, w = _data(1)
    a = jnp.asarray(rng.integers(0, 2, size=x.shape[1]).astype(float))
    size = 2 * x.shape[0] if coded else x.shape[0]
    reg = jnp.diag(jnp.asarray(rng.uniform(0.1, 0.3, size=size)))
    targets = ((0, 2), (1,))  # two systems sharing the normal matrix

    def custom(x, y, w, reg, a):
        return ns.normal_solve(x, y, w, reg, targets, action=a if coded else None)[0]

    def plain(x, y, w, reg, a):
        return ns._forward(x, a if coded else None, None, y, w, reg, targets, True)[0]

    _check(custom, plain, (x, y, w, reg, a), seed=2)


def test_lstd_systems_derivatives_equal_the_chain_rule():
    rng, x, y, w = _data(3)
    zs = tuple(jnp.asarray(x + 0.3 * rng.normal(size=x.shape)) for _ in range(3))
    reg = jnp.diag(jnp.asarray(rng.uniform(0.1, 0.3, size=x.shape[0])))
    targets = ((0, 1, 2), (2,), (0,))

    def custom(x, zs, y, w, reg):
        return ns.normal_solve(x, y, w, reg, targets, zs=zs, symmetric=False)[0]

    def plain(x, zs, y, w, reg):
        return ns._forward(x, None, zs, y, w, reg, targets, False)[0]

    _check(custom, plain, (x, zs, y, w, reg), seed=4)


def test_state_ratio_coefficient_derivatives_equal_the_chain_rule():
    rng = np.random.default_rng(5)
    n, d, j = 80, 5, 3
    pt = jnp.asarray(np.r_[np.ones((1, n)), rng.normal(size=(d - 1, n))])
    pnt = jnp.asarray(np.r_[np.ones((1, n)), rng.normal(size=(d - 1, n))])
    cs = jnp.asarray(rng.uniform(0.2, 2.0, size=(n, j)))
    w = jnp.asarray(rng.uniform(0.5, 2.0, size=n))
    ridge = jnp.asarray(0.05)
    custom = lambda *a: sr._ratio_coefs(*a)[0]  # noqa: E731
    plain = lambda *a: sr._ratio_forward(*a)[0]  # noqa: E731
    _check(custom, plain, (pt, pnt, cs, w, ridge), seed=6)


def test_weights_only_derivative_matches_finite_differences_of_the_solve():
    """The case the IJ SE uses (only the weights vary): against central differences."""
    _, x, y, w = _data(7)
    reg = 0.2 * jnp.eye(x.shape[0])
    f = jax.jit(lambda w: ns.normal_solve(x, y, w, reg, ((0, 1, 2),))[0][0])
    jac = jax.jit(jax.jacrev(f))(w)
    h = 1e-6
    for k in (0, 17, 59):
        e = jnp.zeros_like(w).at[k].set(h)
        fd = (f(w + e) - f(w - e)) / (2 * h)
        np.testing.assert_allclose(jac[..., k], fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("coded", [False, True])
def test_gram_products_by_row_blocks_equal_numpy(coded):
    # more rows than two blocks plus a remainder: the loop over row blocks, against the plain
    # float64 numpy normal equations (action-coded design [x; a·x], or three LSTD-like systems
    # with their own regressors z_j, one LU-solved system each)
    n = 2 * ns.ROW_BLOCK + 517
    rng, x, y, w = _data(7, n=n, p=5, r=2)
    a = rng.integers(0, 2, size=n).astype(float)
    xn, yn, wn = np.asarray(x), np.asarray(y), np.asarray(w)
    if coded:
        reg = np.diag(rng.uniform(0.1, 0.3, size=10))
        betas, _ = ns._forward(x, jnp.asarray(a), None, y, w, jnp.asarray(reg), ((0, 1),), True)
        design = np.concatenate([xn, xn * a], axis=0)
        sigma = design * wn @ design.T / wn.sum() + reg
        want = [np.linalg.solve(sigma, design * wn @ yn.T / wn.sum())]
    else:
        zs = [xn - 0.3 * rng.normal(size=xn.shape) for _ in range(3)]
        reg = np.diag(rng.uniform(0.1, 0.3, size=5))
        betas, _ = ns._forward(x, None, [jnp.asarray(z) for z in zs], y, w, jnp.asarray(reg),
                               ((0,), (1,), (0, 1)), False)
        want = [np.linalg.solve(xn * wn @ z.T / wn.sum() + reg, (xn * wn @ yn.T / wn.sum())[:, t])
                for z, t in zip(zs, ([0], [1], [0, 1]))]
    for got, ref in zip(betas, want):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-11, atol=1e-12)


def test_mediation_estimates_do_not_depend_on_the_row_block(monkeypatch):
    # the whole pipeline at 2,000 rows with blocks of 256 rows (7 blocks and a remainder)
    # against one block: the same estimates to rounding
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.effects import mediation_core
    from jaxmed._src.policies import semi_synthetic_target_policy

    data = simulate_semi_synthetic(jax.random.key(4), 80, 25)
    pol = semi_synthetic_target_policy()

    def run():
        return jax.jit(lambda k, d: mediation_core(k, d, pol, 0, MediationConfig()))(
            jax.random.key(5), data)

    whole = run()
    monkeypatch.setattr(ns, "ROW_BLOCK", 256)
    blocked = run()
    ok = np.isfinite(np.asarray(whole.estimate))
    assert ok.sum() >= 20
    np.testing.assert_allclose(np.asarray(blocked.estimate)[ok], np.asarray(whole.estimate)[ok],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(blocked.cluster_se)[ok],
                               np.asarray(whole.cluster_se)[ok], rtol=1e-9, atol=1e-12)
