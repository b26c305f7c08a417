"""Binary states and mediators: exact indicator bases and exact Bernoulli expectations.

For designs whose state and mediator coordinates are 0/1 (the toy designs, spec
mediation.md §7.4–§7.5) every function of (s, m) is a linear combination of the products
of subsets of the coordinates, and every expectation over a mediator law is a finite sum.

* ``binary_indicator_features(x)``: the 2^d − 1 products Π_{j∈J} x_j over the non-empty
  subsets J of the d columns (for d = 2: x1, x2, x1·x2). With an intercept they span every
  function of a binary vector (the saturated, "cell-indicator" basis of the original's
  Toy II Q-learner, reparametrised; §7.5).
* ``bernoulli_pmf(m, prob)``: Π_j prob_j^{m_j} (1 − prob_j)^{1 − m_j} (independent coordinates).
* ``bernoulli_expectation(fn, prob)``: E_{m ~ Bern(prob)} fn(m), the exact sum over the 2^dM
  corners of {0, 1}^dM.

Under ``MediationConfig(mediator_law="bernoulli")`` the mediator "mean" of
``NuisancePredictions`` is P(M_j = 1 | s, a), the mean of a Bernoulli law.
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np

__all__ = ["binary_corners", "binary_subsets", "binary_indicator_features", "bernoulli_pmf",
           "bernoulli_expectation", "binary_cell_index"]


def binary_corners(d: int) -> np.ndarray:
    """The 2^d points of {0, 1}^d as a float ``(2^d, d)`` array, in binary counting order.

    >>> binary_corners(2).tolist()
    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    """
    return np.array([[(k >> j) & 1 for j in range(d)] for k in range(2 ** d)], dtype=np.float64)


def binary_subsets(d: int) -> list[tuple[int, ...]]:
    """The non-empty subsets of range(d), by size then lexicographically.

    >>> binary_subsets(3)
    [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    """
    return [c for r in range(1, d + 1) for c in itertools.combinations(range(d), r)]


def binary_indicator_features(x):
    """Products of the non-empty subsets of the columns of ``x`` ``(n, d)`` -> ``(n, 2^d − 1)``.

    >>> import numpy as np
    >>> binary_indicator_features(np.array([[1.0, 0.0], [1.0, 1.0]])).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]
    """
    x = jnp.asarray(x)
    cols = [jnp.prod(x[..., list(sub)], axis=-1) for sub in binary_subsets(x.shape[-1])]
    return jnp.stack(cols, axis=-1)


def bernoulli_pmf(m, prob):
    """Π_j prob_j^{m_j} (1 − prob_j)^{1 − m_j} over the last axis (m_j in {0, 1}).

    >>> round(float(bernoulli_pmf(jnp.array([1.0, 0.0]), jnp.array([0.3, 0.4]))), 6)
    0.18
    """
    return jnp.prod(m * prob + (1.0 - m) * (1.0 - prob), axis=-1)


def bernoulli_expectation(fn, prob):
    """E_{m ~ Bern(prob)} fn(m), exactly: Σ over the corners c of {0, 1}^dM of pmf(c)·fn(c).

    Args:
      fn: ``fn(m (n, dM)) -> (n, ...)``.
      prob: ``(n, dM)`` P(M_j = 1) per row (coordinates independent).

    Returns:
      ``(n, ...)``.

    >>> p = jnp.array([[0.25]])
    >>> float(bernoulli_expectation(lambda m: 4.0 * m[:, 0] + 1.0, p)[0])
    2.0
    """
    n, dm = prob.shape
    total = 0.0
    for c in binary_corners(dm):
        m = jnp.broadcast_to(jnp.asarray(c, prob.dtype), (n, dm))
        val = fn(m)
        wt = bernoulli_pmf(m, prob)
        total = total + wt.reshape(wt.shape + (1,) * (val.ndim - 1)) * val
    return total


def binary_cell_index(x):
    """Cell number Σ_j x_j 2^j of binary rows ``x`` ``(n, d)`` as int32 ``(n,)``.

    >>> binary_cell_index(jnp.array([[1.0, 0.0], [1.0, 1.0]])).tolist()
    [1, 3]
    """
    x = jnp.asarray(x)
    powers = 2 ** jnp.arange(x.shape[-1])
    return jnp.sum(jnp.round(x).astype(jnp.int32) * powers, axis=-1).astype(jnp.int32)
