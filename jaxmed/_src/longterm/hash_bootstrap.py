"""Poisson(1) bootstrap weights from a keyed hash of the individual's id (spec longterm.md §4.8).

For out-of-core data the rows of one individual may be read by any worker, in any order, so
the bootstrap weight of individual j in replicate b must be a function of (key, b, id_j) only:

    h  = splitmix64(splitmix64(id64_j ⊕ seed) + golden · (b + 1)),    u = (h >> 11) / 2^53,
    w_{j,b} = F^{-1}(u) = min{k : P(Poisson(1) ≤ k) > u}.

``id64`` is the integer id itself (integer ids) or pandas' deterministic 64-bit hash of its
value (strings and other ids); ``seed`` comes from the ``jax.random`` key data. splitmix64
(Steele, Lea, Flood 2014) is a bijective counter-based mixer with full avalanche, so the
weights of distinct ids and replicates behave as independent Poisson(1) draws. The weights
then enter the sufficient statistics exactly as in-memory weights do (``panel_stats``).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ids_to_uint64", "key_seed", "hash_uniforms", "hash_poisson_weights", "POISSON1_CDF"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

#: P(Poisson(1) <= k), k = 0..30 (the tail beyond 30 is below 1e-33).
POISSON1_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(31)])


def _splitmix64(x):
    x = np.asarray(x, np.uint64)
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def ids_to_uint64(ids) -> np.ndarray:
    """64-bit codes of ids: integers as themselves (two's complement), other values by
    ``pandas.util.hash_array`` (deterministic across processes and machines)."""
    arr = np.asarray(ids)
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return arr.astype(np.int64).view(np.uint64)
    import pandas as pd

    return pd.util.hash_array(arr.astype(object) if arr.dtype.kind in "OUS" else arr)


def key_seed(key) -> np.uint64:
    """A 64-bit seed from a ``jax.random`` key (new-style or raw uint32 data)."""
    import jax

    try:
        data = np.asarray(jax.random.key_data(key), np.uint64).reshape(-1)
    except TypeError:
        data = np.asarray(key, np.uint64).reshape(-1)
    seed = np.uint64(0)
    for v in data:
        seed = _splitmix64(seed ^ v)
    return np.uint64(seed)


def hash_uniforms(seed, ids, n_boot: int) -> np.ndarray:
    """U[0, 1) numbers ``(n_boot, n)``, a function of (seed, replicate, id) only."""
    base = _splitmix64(ids_to_uint64(ids) ^ np.uint64(seed))
    reps = np.arange(1, n_boot + 1, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        h = _splitmix64(base[None, :] + reps * _GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def hash_poisson_weights(key, ids, n_boot: int) -> np.ndarray:
    """Poisson(1) bootstrap weights ``(n_boot, n)`` from a keyed hash of ``ids``.

    The same (key, id) gives the same weights wherever and in whatever order the rows are
    read, so partitions processed separately agree.

    Args:
      key: a ``jax.random`` key.
      ids: ``(n,)`` individual ids (integers, strings, ...).
      n_boot: number of replicates.

    >>> import jax
    >>> w = hash_poisson_weights(jax.random.key(0), [10, 11, 12], 4)
    >>> bool((hash_poisson_weights(jax.random.key(0), [12, 10], 4) == w[:, [2, 0]]).all())
    True
    """
    u = hash_uniforms(key_seed(key), ids, int(n_boot))
    return np.searchsorted(POISSON1_CDF, u, side="right").astype(np.float64)
