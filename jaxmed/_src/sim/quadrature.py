"""Noise-free expectations over a Gaussian mediator.

``expected_sqrt_abs_sum`` computes E sqrt(Σ_j |M_j|), the only non-linear piece of the
continuous designs' rewards, to ~1e−10 by a smooth 1-D integral (see its docstring).
``gaussian_expectation`` is generic Gauss–Hermite quadrature:

E[f(M)] for M ~ N(mean, diag(sd²)) in d dimensions is approximated on the product
grid of ``n_nodes`` Gauss–Hermite nodes per dimension:

    E f(M) ≈ Σ_i w_i f(mean + sd · sqrt(2) x_i),   w_i = Π_j ω_{i_j} / sqrt(π)

It is exact for polynomials of degree ≤ 2 n_nodes − 1 in each coordinate. For
sqrt(|M1| + |M2|) the error at 24–48 nodes is still up to
1e−2 near the origin (the kink of |m| makes Gauss–Hermite converge slowly), which is why
the truths use ``expected_sqrt_abs_sum`` instead.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["gauss_hermite_grid", "gaussian_expectation", "expected_abs", "expected_sqrt_abs_sum"]


@functools.lru_cache(maxsize=None)
def gauss_hermite_grid(dim: int, n_nodes: int):
    """Standard-normal nodes ``(n_nodes**dim, dim)`` and weights ``(n_nodes**dim,)`` (numpy)."""
    x, w = np.polynomial.hermite.hermgauss(n_nodes)
    z = np.sqrt(2.0) * x
    w = w / np.sqrt(np.pi)
    nodes = np.array(list(itertools.product(z, repeat=dim)), dtype=np.float64)
    weights = np.array([np.prod(c) for c in itertools.product(w, repeat=dim)], dtype=np.float64)
    return nodes, weights


def gaussian_expectation(fn, mean, sd, n_nodes: int = 24):
    """E[fn(M)] for M ~ N(mean, diag(sd²)); ``fn`` maps one ``(d,)`` mediator to a scalar.

    Args:
      fn: unbatched function of the mediator.
      mean: ``(d,)`` mean.
      sd: scalar or ``(d,)`` standard deviations.
      n_nodes: nodes per dimension (static).

    Returns:
      The quadrature value (scalar).

    >>> import jax.numpy as jnp
    >>> float(gaussian_expectation(lambda m: m[0] ** 2 + m[1], jnp.array([1.0, 2.0]), 2.0))
    7.0
    """
    mean = jnp.asarray(mean)
    nodes, weights = gauss_hermite_grid(mean.shape[0], n_nodes)
    dtype = mean.dtype
    m = mean + jnp.asarray(sd, dtype) * jnp.asarray(nodes, dtype)
    vals = jax.vmap(fn)(m)
    return jnp.dot(jnp.asarray(weights, dtype), vals)


@functools.lru_cache(maxsize=None)
def _legendre(n_nodes: int):
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    theta = 0.25 * np.pi * (x + 1.0)            # [-1, 1] -> [0, π/2]
    return theta, 0.25 * np.pi * w


def _log_laplace_abs(t, mu, sd):
    """log E exp(−t |M|) for M ~ N(mu, sd²), t ≥ 0, computed stably in log space."""
    from jax.scipy.special import log_ndtr

    half = 0.5 * (sd * t) ** 2
    a1 = -t * mu + half + log_ndtr(mu / sd - sd * t)
    a2 = t * mu + half + log_ndtr(-mu / sd - sd * t)
    return jnp.logaddexp(a1, a2)


def expected_abs(mu, sd):
    """E|M| for M ~ N(mu, sd²) (folded-normal mean)."""
    from jax.scipy.special import ndtr

    return (sd * jnp.sqrt(2.0 / jnp.pi) * jnp.exp(-0.5 * (mu / sd) ** 2)
            + mu * (1.0 - 2.0 * ndtr(-mu / sd)))


def expected_sqrt_abs_sum(mean, sd, n_nodes: int = 24):
    """E sqrt(Σ_j |M_j|) for independent M_j ~ N(mean_j, sd_j²), without sampling.

    Uses sqrt(x) = (1 / (2 sqrt(π))) ∫_0^∞ (1 − e^{−t x}) t^{−3/2} dt, the closed-form
    Laplace transform of |M_j| (normal cdfs), and the substitution
    t = (c tan θ)², c = 1 / sqrt(E Σ|M_j|), which makes the integrand smooth on [0, π/2];
    the θ-integral is done by ``n_nodes``-point Gauss–Legendre. With 24 nodes the error is
    below 1e−8 for |means| ≤ 40 (1e−12 near the origin)
    (checked against polar Gauss–Legendre in ``tests/test_sim_truth.py``), whereas plain
    Gauss–Hermite on sqrt(|m1| + |m2|) errs by up to 1e−2 near the origin.

    Args:
      mean: ``(d,)`` means.
      sd: scalar or ``(d,)`` standard deviations (> 0).
      n_nodes: Gauss–Legendre nodes (static).

    Returns:
      The expectation (scalar).

    >>> import jax.numpy as jnp
    >>> round(float(expected_sqrt_abs_sum(jnp.array([100.0, 0.0]), 1e-3)), 3)  # ≈ sqrt(100 + 8e-4)
    10.0
    """
    mean = jnp.asarray(mean)
    sd = jnp.broadcast_to(jnp.asarray(sd, mean.dtype), mean.shape)
    theta, w = _legendre(n_nodes)
    theta = jnp.asarray(theta, mean.dtype)
    w = jnp.asarray(w, mean.dtype)
    ex = jnp.sum(expected_abs(mean, sd))
    c = 1.0 / jnp.sqrt(ex)
    u = c * jnp.tan(theta)                                          # (K,)
    t = u ** 2
    log_l = jnp.sum(_log_laplace_abs(t[:, None], mean[None, :], sd[None, :]), axis=1)
    one_minus = -jnp.expm1(log_l)                                   # 1 − E e^{−tX}
    # ∫_0^∞ (1 − L(t)) t^{−3/2} dt = ∫_0^{π/2} (2 / c) (1 − L) / sin²θ dθ
    integrand = (2.0 / c) * one_minus / jnp.sin(theta) ** 2
    return jnp.dot(w, integrand) / (2.0 * jnp.sqrt(jnp.pi))
