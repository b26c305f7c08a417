"""Feature-major matrices kept as blocks of rows, never concatenated (issue 12).

The Q features φ(S, M) = [h(S); g(M)] and their expectations E_a φ(S, ·) = [h(S); E_a g]
share the state part h: concatenated, every one of the five (p, n) matrices of a replication
copied h (or h(S')) once more, 7 ms of op time at N = 1500, T = 25 (session 16 profile).
Kept as a tuple of blocks ``((p_1, n), (p_2, n), ...)`` stacked along the features, the
consumers contract each block on its own: a product with a coefficient matrix is a sum of
products with its row slices, a Gram product a concatenation of the (small) block products,
and the row-blocked Gram loops (``q_systems``) copy each block into their cache-sized
buffer as they did the whole matrix. A plain ``(p, n)`` array is one block.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["as_blocks", "concat", "dim", "rows_dot", "left_dot", "left_dots", "dot_t", "offsets"]


def as_blocks(x) -> tuple:
    """``x`` as a tuple of blocks: a tuple or list unchanged (as a tuple), an array as one."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def dim(blocks) -> int:
    """The number of features p = Σ p_b."""
    return sum(b.shape[0] for b in as_blocks(blocks))


def offsets(blocks) -> list:
    """``[(start, stop), ...]`` of each block's features."""
    out, start = [], 0
    for b in as_blocks(blocks):
        out.append((start, start + b.shape[0]))
        start += b.shape[0]
    return out


def concat(blocks):
    """The ``(p, n)`` matrix (for tests and row-major users; the pipeline never builds it)."""
    blocks = as_blocks(blocks)
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=0)


def rows_dot(coef, blocks):
    """coefᵀ X_k per row ``(r, n)`` for ``coef`` ``(p, r)``."""
    out = None
    for (lo, hi), b in zip(offsets(blocks), as_blocks(blocks)):
        term = jax.lax.dot_general(coef[lo:hi], b, (((0,), (0,)), ((), ())))
        out = term if out is None else out + term
    return out


def left_dot(coef, blocks):
    """coef X ``(r, n)`` for ``coef`` ``(r, p)``."""
    return left_dots(coef, [blocks])[0]


def left_dots(coef, matrices) -> list:
    """``[left_dot(coef, X) for X in matrices]``, with the product of a block that several
    matrices share (the same array at the same features: h(S) in φ(S, M) and E_a φ(S, ·))
    computed once. The forward values are the same (XLA merges equal products anyway); in
    reverse mode the shared product's cotangents are summed before its one transposed
    product, 7 instead of 10 (n, p_b) contractions per IJ pass in the temporal differences."""
    memo, out = {}, []
    for blocks in matrices:
        total = None
        for (lo, hi), b in zip(offsets(blocks), as_blocks(blocks)):
            key = (id(b), lo, hi)
            if key not in memo:
                memo[key] = (b, jnp.dot(coef[:, lo:hi], b))  # b held: its id stays unique
            term = memo[key][1]
            total = term if total is None else total + term
        out.append(total)
    return out


def dot_t(blocks, m):
    """X mᵀ ``(p, r)`` for rows ``m`` ``(r, n)`` (the rows contracted)."""
    parts = [jax.lax.dot_general(b, m, (((1,), (1,)), ((), ()))) for b in as_blocks(blocks)]
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
