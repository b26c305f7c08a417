"""The Q-fits' LSTD systems from unmaterialised factors (``q_systems``) against the systems built
as (q, n) arrays: values against float64 numpy normal equations, derivatives against plain
autodiff of the materialised forward computation (every differentiable input perturbed)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation import normal_solve as ns
from jaxmed._src.mediation.q_systems import q_systems

jax.config.update("jax_enable_x64", True)

NATURAL = (("pe", (0,)), ("g_natural", (2,)), ("p0", (1, 2, 0)))
SEQUENTIAL = (("pe", (0, 1, 2)), ("g", (2,)), ("p0", (0,)))


def _inputs(seed, n, p=4, r=3):
    rng = np.random.default_rng(seed)
    phi, f0, f1 = (rng.normal(size=(p, n)) for _ in range(3))
    pn = rng.uniform(0.1, 0.9, size=n)
    a = rng.integers(0, 2, size=n).astype(float)
    y = rng.normal(size=(r, n))
    w = rng.uniform(0.5, 2.0, size=n)
    reg = np.diag(np.r_[rng.uniform(0.1, 0.3, size=2 * p + 1), 0.0])
    return rng, [phi, f0, f1, pn, a, y, w, reg]


def _materialised(phi, f0, f1, pn, a, kind, a0, xp):
    """U and Ξ of the kind as (q, n) arrays (``xp``: numpy or jax.numpy)."""
    one, zero = xp.ones_like(pn)[None], xp.zeros_like(pn)[None]

    def u_t(f, act):
        act = act + xp.zeros_like(pn)
        return xp.concatenate([(1 - act)[None] * f, act[None] * f, act[None]], axis=0)

    fa = (f0, f1)[a0]
    u = xp.concatenate([u_t(phi, a), one], axis=0)
    if kind == "pe":
        xi = xp.concatenate([(1 - pn)[None] * f0, pn[None] * f1, pn[None], zero], axis=0)
    elif kind == "p0":
        xi = xp.concatenate([u_t(fa, float(a0)), zero], axis=0)
    elif kind == "g":
        xi = xp.concatenate([u_t(pn[None] * f1 + (1 - pn)[None] * f0, float(a0)), zero], axis=0)
    else:
        xi = xp.concatenate([(1 - pn)[None] * fa, pn[None] * fa, pn[None], zero], axis=0)
    return u, xi


@pytest.mark.parametrize("systems", [SEQUENTIAL, NATURAL], ids=["sequential", "natural"])
@pytest.mark.parametrize("a0", [0, 1])
def test_values_equal_numpy_normal_equations(systems, a0):
    # more rows than two blocks plus a remainder (the loop over row blocks)
    n = 2 * ns.ROW_BLOCK + 517
    _, (phi, f0, f1, pn, a, y, w, reg) = _inputs(3, n)
    betas, conds = q_systems(*map(jnp.asarray, (phi, f0, f1, pn, a, y, w, reg)), systems, a0)
    for (kind, tgt), beta, cond in zip(systems, betas, conds):
        u, xi = _materialised(phi, f0, f1, pn, a, kind, a0, np)
        sigma = u * w @ (u - xi).T / w.sum() + reg
        want = np.linalg.solve(sigma, (u * w @ y.T / w.sum())[:, list(tgt)])
        np.testing.assert_allclose(np.asarray(beta), want, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(float(cond), np.linalg.cond(sigma, 1), rtol=1e-8)


@pytest.mark.parametrize("systems", [SEQUENTIAL, NATURAL], ids=["sequential", "natural"])
@pytest.mark.parametrize("a0", [0, 1])
def test_derivatives_equal_the_chain_rule_through_materialised_factors(systems, a0):
    # every input perturbed, the actions too (U is linear in them)
    rng, (phi, f0, f1, pn, a, y, w, reg) = _inputs(5, 60)

    def custom(phi, f0, f1, pn, a, y, w, reg):
        return q_systems(phi, f0, f1, pn, a, y, w, reg, systems, a0)[0]

    def plain(phi, f0, f1, pn, a, y, w, reg):
        mats = [_materialised(phi, f0, f1, pn, a, k, a0, jnp) for k, _ in systems]
        u = mats[0][0]
        return ns._forward(u, None, [u - xi for _, xi in mats], y, w, reg,
                           tuple(t for _, t in systems), False)[0]

    primals = tuple(map(jnp.asarray, (phi, f0, f1, pn, a, y, w, reg)))
    tangents = tuple(jnp.asarray(rng.normal(size=np.shape(x))) for x in primals)
    jvp = jax.jit(jax.jvp, static_argnums=0)
    out_c, tan_c = jvp(custom, primals, tangents)
    out_p, tan_p = jvp(plain, primals, tangents)
    for got, want in zip(out_c, out_p):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    for got, want in zip(tan_c, tan_p):
        assert np.max(np.abs(want)) > 1e-3  # a real derivative, not a zero on both sides
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    cot = tuple(jnp.asarray(rng.normal(size=o.shape)) for o in out_c)
    pull = jax.jit(lambda f, p, c: jax.vjp(f, *p)[1](c), static_argnums=0)
    for got, want in zip(pull(custom, primals, cot), pull(plain, primals, cot)):
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_weight_only_tangent_equals_finite_differences():
    # the infinitesimal jackknife's case: only the weights move
    rng, (phi, f0, f1, pn, a, y, w, reg) = _inputs(8, 50)
    args = list(map(jnp.asarray, (phi, f0, f1, pn, a, y, w, reg)))

    def beta_of_w(w):
        return q_systems(*args[:6], w, args[7], SEQUENTIAL, 0)[0][0]

    jac = jax.jit(jax.jacfwd(beta_of_w))(args[6])
    h = 1e-6
    for k in (0, 21, 49):
        e = jnp.zeros_like(args[6]).at[k].set(h)
        fd = (beta_of_w(args[6] + e) - beta_of_w(args[6] - e)) / (2 * h)
        np.testing.assert_allclose(jac[..., k], fd, rtol=1e-6, atol=1e-9)


def test_bad_kind_and_control_action_are_refused():
    _, (phi, f0, f1, pn, a, y, w, reg) = _inputs(9, 20)
    args = list(map(jnp.asarray, (phi, f0, f1, pn, a, y, w, reg)))
    with pytest.raises(ValueError, match="kind"):
        q_systems(*args, (("pi", (0,)),), 0)
    with pytest.raises(ValueError, match="control action"):
        q_systems(*args, SEQUENTIAL, 2)


@pytest.mark.parametrize("systems", [SEQUENTIAL, NATURAL], ids=["sequential", "natural"])
def test_feature_blocks_equal_the_concatenated_matrices(systems):
    # φ = [h; g], F_a = [h'; g_a] as the pipeline passes them: h' shared by F₀ and F₁, blocks
    # of different sizes; values over several row blocks, derivatives in every block
    n = ns.ROW_BLOCK + 333
    rng = np.random.default_rng(12)
    h, g, hn, g0, g1 = (jnp.asarray(rng.normal(size=(k, n))) for k in (3, 2, 3, 2, 2))
    _, (_, _, _, pn, a, y, w, reg) = _inputs(13, n, p=5)
    rest = tuple(map(jnp.asarray, (pn, a, y, w, reg)))
    blocks = ((h, g), (hn, g0), (hn, g1))
    mats = tuple(jnp.concatenate(b, axis=0) for b in blocks)
    for a0 in (0, 1):
        got = q_systems(*blocks, *rest, systems, a0)
        want = q_systems(*mats, *rest, systems, a0)
        for x, z in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(x, z, rtol=1e-12, atol=1e-13)

    def by_blocks(h, g, hn, g0, g1, w):
        return q_systems((h, g), (hn, g0), (hn, g1), pn_, a_, y_, w, reg_, systems, 1)[0]

    def by_matrices(h, g, hn, g0, g1, w):
        cat = lambda *b: jnp.concatenate(b, axis=0)  # noqa: E731
        return q_systems(cat(h, g), cat(hn, g0), cat(hn, g1), pn_, a_, y_, w, reg_, systems, 1)[0]

    pn_, a_, y_, w_, reg_ = rest
    primals = (h, g, hn, g0, g1, w_)
    tangents = tuple(jnp.asarray(rng.normal(size=x.shape)) for x in primals)
    _, tan_b = jax.jvp(by_blocks, primals, tangents)
    _, tan_m = jax.jvp(by_matrices, primals, tangents)
    for x, z in zip(tan_b, tan_m):
        assert np.max(np.abs(z)) > 1e-3
        np.testing.assert_allclose(x, z, rtol=1e-9, atol=1e-11)
    # only g moves (the other blocks' tangents symbolic zeros): the same as the matrices
    only_g = lambda f: jax.jvp(lambda g: f(h, g, hn, g0, g1, w_), (g,), (tangents[1],))[1]  # noqa: E731
    for x, z in zip(only_g(by_blocks), only_g(by_matrices)):
        np.testing.assert_allclose(x, z, rtol=1e-9, atol=1e-11)
    cot = tuple(jnp.asarray(rng.normal(size=o.shape)) for o in by_blocks(*primals))
    pull_b = jax.vjp(by_blocks, *primals)[1](cot)
    pull_m = jax.vjp(by_matrices, *primals)[1](cot)
    for x, z in zip(pull_b, pull_m):
        np.testing.assert_allclose(x, z, rtol=1e-9, atol=1e-11)
