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
