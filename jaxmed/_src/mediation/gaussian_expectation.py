"""Closed-form expectations over a Gaussian mediator model.

p̂_m(·|s, a) = N(μ̂(s, a), diag σ̂²) (spec mediation.md §3.2). Every feature map of m used
by the default pipeline is a polynomial of degree ≤ 3 in each coordinate of m, so its
expectation is exact with a tensor Gauss–Hermite rule of two nodes per coordinate
(exact up to degree 3): E f(m) = Σ_g w_g f(μ + σ ξ_g), ξ ∈ {−1, +1}, w = 1/2 per
coordinate. This replaces the original's 20–50-draw Monte Carlo (bug B3).

``gaussian_raw_moments`` gives the univariate moments by the recursion
E[z^k] = μ E[z^{k−1}] + (k−1) σ² E[z^{k−2}], used to cross-check the rule.
``expected_monomials`` uses them directly for the monomials of the standardised mediator
(the Q-features and the reward model): a product of univariate moments per monomial, the
same numbers as the rule with fewer operations and a cheap reverse pass (the IJ SE).
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.unstack import unstack

__all__ = ["gaussian_raw_moments", "hermite_nodes", "gaussian_expectation", "expected_monomials"]


def gaussian_raw_moments(mean, sd, order: int):
    """E[z^k] for k = 0..order, z ~ N(mean, sd²); shape ``(order + 1,) + mean.shape``.

    >>> [float(v) for v in gaussian_raw_moments(1.0, 2.0, 3)]
    [1.0, 1.0, 5.0, 13.0]
    """
    mean = jnp.asarray(mean)
    var = jnp.asarray(sd) ** 2
    moments = [jnp.ones_like(mean), mean * jnp.ones_like(var)]
    for k in range(2, order + 1):
        moments.append(mean * moments[k - 1] + (k - 1) * var * moments[k - 2])
    return jnp.stack(moments[: order + 1])


def hermite_nodes(dim: int, degree: int = 3):
    """Tensor probabilists' Gauss–Hermite nodes ``(G, dim)`` and weights ``(G,)``.

    Exact for E f(ξ), ξ ~ N(0, I_dim), when f has degree ≤ ``degree`` in each coordinate.
    """
    k = (degree + 2) // 2
    x, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / w.sum()
    nodes = np.array(list(itertools.product(x, repeat=dim)), dtype=np.float64).reshape(-1, dim)
    weights = np.array([np.prod(c) for c in itertools.product(w, repeat=dim)], dtype=np.float64)
    return nodes, weights


def gaussian_expectation(fn, mean, sd, *, degree: int = 3):
    """E_{m ~ N(mean, diag sd²)} fn(m), exact for fn of degree ≤ ``degree`` per coordinate.

    Args:
      fn: ``fn(m) -> (..., p)`` for ``m`` of shape ``(..., dM)`` (row-vectorised).
      mean: ``(..., dM)`` means.
      sd: ``(..., dM)`` or ``(dM,)`` standard deviations.
      degree: polynomial degree per coordinate to integrate exactly.

    Returns:
      ``(..., p)`` expectations.

    >>> import jax.numpy as jnp
    >>> float(gaussian_expectation(lambda m: m ** 3, jnp.array([1.0]), jnp.array([2.0]))[0])
    13.0
    """
    mean = jnp.asarray(mean)
    nodes, weights = hermite_nodes(mean.shape[-1], degree)
    nodes = jnp.asarray(nodes, dtype=mean.dtype)
    weights = jnp.asarray(weights, dtype=mean.dtype)
    out = 0.0
    for g in range(nodes.shape[0]):
        out = out + weights[g] * fn(mean + sd * nodes[g])
    return out


def expected_monomials(mean, sd, center, scale, exponents, feature_major: bool = False):
    """E Π_j z_j^{e_j} for z = (m − center)/scale, m ~ N(mean, diag sd²), per exponent row.

    The coordinates of z are independent normals N((μ_j − c_j)/s_j, (σ_j/s_j)²), so each
    monomial's expectation is a product of univariate raw moments (the recursion of
    :func:`gaussian_raw_moments`): exact for any degree, and equal to
    ``gaussian_expectation(lambda m: monomials((m - center) / scale, exponents), mean, sd)``
    for degrees ≤ 3 per coordinate.

    Args:
      mean: ``(..., dM)`` means.
      sd: ``(..., dM)`` or ``(dM,)`` standard deviations.
      center, scale: ``(dM,)`` the standardiser of m.
      exponents: ``(p, dM)`` integer exponent rows (``basis.monomial_exponents``).

    Returns:
      ``(..., p)``; with ``feature_major`` ``(p, ...)``.

    >>> import jax.numpy as jnp, numpy as np
    >>> float(expected_monomials(jnp.array([1.0]), jnp.array([2.0]), jnp.array([0.0]),
    ...                          jnp.array([1.0]), np.array([[3]]))[0])
    13.0
    """
    mean = jnp.asarray(mean)
    sd = jnp.broadcast_to(jnp.asarray(sd, mean.dtype), mean.shape)
    exponents = np.asarray(exponents)
    top = int(exponents.max(initial=0))
    moments = []
    for j, (mu, sig) in enumerate(zip(unstack(mean, -1), unstack(sd, -1))):
        z_mu = (mu - center[j]) / scale[j]
        z_var = (sig / scale[j]) ** 2
        mom = [jnp.ones_like(z_mu), z_mu]
        for k in range(2, top + 1):
            mom.append(z_mu * mom[k - 1] + (k - 1) * z_var * mom[k - 2])
        moments.append(mom)
    cols = []
    for e in exponents:
        term = jnp.ones(mean.shape[:-1], mean.dtype)
        for j, k in enumerate(e):
            if k:
                term = term * moments[j][int(k)]
        cols.append(term)
    return jnp.stack(cols, axis=0 if feature_major else -1)
