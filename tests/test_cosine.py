"""The polynomial cosine of the random Fourier features against numpy's float64 cos and sin."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src import cosine

jax.config.update("jax_enable_x64", True)


def _arguments(scale, seed=0):
    rng = np.random.default_rng(seed)
    # random arguments plus the quadrant boundaries k π/4, where the branch changes
    return np.r_[rng.normal(size=20000) * scale, np.arange(-60, 61) * np.pi / 4]


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e5])
def test_within_two_ulp_of_numpy_on_moderate_arguments(scale):
    x = _arguments(scale)
    for fn, ref in ((cosine.cos, np.cos), (cosine.sin, np.sin)):
        for run in (jax.jit(fn), fn):  # compiled and op by op
            got = np.asarray(run(jnp.asarray(x)))
            assert np.max(np.abs(got - ref(x))) <= 2 * np.spacing(1.0), fn.__name__


def test_large_arguments_lose_only_the_arguments_own_rounding():
    x = _arguments(1e12, seed=1)
    for fn, ref in ((cosine.cos, np.cos), (cosine.sin, np.sin)):
        got = np.asarray(fn(jnp.asarray(x)))
        assert np.all(np.abs(got - ref(x)) <= 4e-16 * (1.0 + np.abs(x)))
        assert np.all(np.abs(got) <= 1.0 + 1e-15)


def test_nonfinite_arguments_give_nan():
    got = np.asarray(cosine.cos(jnp.array([np.nan, np.inf, -np.inf, 0.0])))
    assert np.isnan(got[:3]).all() and got[3] == 1.0


def test_derivatives_are_minus_sin_and_cos():
    x = jnp.asarray(_arguments(5.0, seed=2))
    dcos = jax.vmap(jax.grad(cosine.cos))(x)
    dsin = jax.vmap(jax.grad(cosine.sin))(x)
    np.testing.assert_allclose(np.asarray(dcos), -np.sin(np.asarray(x)), rtol=0, atol=3e-16)
    np.testing.assert_allclose(np.asarray(dsin), np.cos(np.asarray(x)), rtol=0, atol=3e-16)
