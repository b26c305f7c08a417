"""Feature blocks (``feature_blocks``) against the concatenated matrices in float64 numpy."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation import feature_blocks as fb

jax.config.update("jax_enable_x64", True)


def test_block_products_equal_the_concatenated_matrix():
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(k, 50)) for k in (3, 1, 4)]
    x = np.concatenate(parts, axis=0)  # (8, 50)
    blocks = tuple(map(jnp.asarray, parts))
    assert fb.dim(blocks) == 8 and fb.offsets(blocks) == [(0, 3), (3, 4), (4, 8)]
    np.testing.assert_array_equal(fb.concat(blocks), x)
    coef = rng.normal(size=(8, 5))
    m = rng.normal(size=(6, 50))
    np.testing.assert_allclose(fb.rows_dot(jnp.asarray(coef), blocks), coef.T @ x, rtol=1e-13)
    np.testing.assert_allclose(fb.left_dot(jnp.asarray(coef.T), blocks), coef.T @ x, rtol=1e-13)
    np.testing.assert_allclose(fb.dot_t(blocks, jnp.asarray(m)), x @ m.T, rtol=1e-13)
    # a plain array is one block
    assert fb.as_blocks(jnp.asarray(x))[0].shape == (8, 50)
    np.testing.assert_allclose(fb.rows_dot(jnp.asarray(coef), jnp.asarray(x)), coef.T @ x, rtol=1e-13)


def test_left_dots_share_a_block_and_equal_the_separate_products():
    # h shared by two matrices (as h(S) in φ(S, M) and E_a φ(S, ·)): values and reverse-mode
    # derivatives equal those of the concatenated matrices
    rng = np.random.default_rng(1)
    h, g0, g1 = (jnp.asarray(rng.normal(size=(k, 30))) for k in (3, 2, 2))
    coef = jnp.asarray(rng.normal(size=(4, 5)))
    got = fb.left_dots(coef, [(h, g0), (h, g1)])
    for x, (a, b) in zip(got, ((h, g0), (h, g1))):
        np.testing.assert_allclose(x, np.asarray(coef) @ np.concatenate([a, b]), rtol=1e-13)
    cot = [jnp.asarray(rng.normal(size=(4, 30))) for _ in range(2)]

    def loss(c, h):
        return sum(jnp.sum(t * x) for t, x in zip(cot, fb.left_dots(c, [(h, g0), (h, g1)])))

    def loss_cat(c, h):
        mats = [jnp.concatenate([h, g0]), jnp.concatenate([h, g1])]
        return sum(jnp.sum(t * (c @ m)) for t, m in zip(cot, mats))

    for x, y in zip(jax.grad(loss, (0, 1))(coef, h), jax.grad(loss_cat, (0, 1))(coef, h)):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13)
