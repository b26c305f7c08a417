"""Weighted ridge least squares by Cholesky, shared by the nuisance fits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxmed._src.small_linalg import spd_solve

__all__ = ["weighted_ridge", "action_coded_ridge", "gram_t"]


def gram_t(left, right):
    """``left @ right.T`` for feature-major blocks ``(p, n)``, ``(r, n)``: Σ_k left_k right_kᵀ.

    Contracting the minor (row) axis of both operands was measured about 3x faster on CPU
    than ``x.T @ y`` of row-major ``(n, p)`` matrices for n in the tens of thousands.
    """
    return jax.lax.dot_general(left, right, (((1,), (1,)), ((), ())))


def weighted_ridge(x, y, w, ridge, penalize):
    """argmin_β Σ w_k (y_k − x_k β)² / Σ w + ridge · Σ_j penalize_j β_j².

    Args:
      x: ``(n, p)`` design.
      y: ``(n,)`` or ``(n, r)`` targets (several right-hand sides share one factorisation).
      w: ``(n,)`` row weights.
      ridge: traced penalty.
      penalize: ``(p,)`` 0/1 mask of penalised coefficients (0 for intercepts).

    Returns:
      ``(β, condition number of the normal matrix)``.
    """
    total = jnp.sum(w)
    xt = x.T
    yt = y.T if y.ndim == 2 else y[None, :]
    prod = gram_t(xt * w[None, :], jnp.concatenate([xt, yt], axis=0)) / total
    p = x.shape[1]
    gram = prod[:, :p] + ridge * jnp.diag(penalize)
    rhs = prod[:, p:] if y.ndim == 2 else prod[:, p]
    beta = spd_solve(gram, rhs)
    return beta, _cond_spd(gram)


def action_coded_ridge(z, a, y, w, ridge, penalize):
    """:func:`weighted_ridge` for the action-coded design x = [z, a·z], without building x.

    With W = diag(w) the normal matrix has the blocks zᵀWz, zᵀW a z and zᵀW a² z, and the
    right-hand side zᵀWy, zᵀW a y: all from one product of feature-major blocks.

    Args:
      z: ``(p, n)`` feature-major base design (its intercept row included).
      a: ``(n,)`` actions.
      y: ``(n,)`` or ``(n, r)`` targets.
      w: ``(n,)`` row weights.
      ridge: traced penalty; ``penalize`` ``(2p,)`` 0/1 mask over [z, a·z].

    Returns:
      ``(β (2p,) or (2p, r), condition number of the normal matrix)``.
    """
    total = jnp.sum(w)
    p = z.shape[0]
    yt = y.T if y.ndim == 2 else y[None, :]
    r = yt.shape[0]
    wz, wa = z * w[None, :], w * a
    right = jnp.concatenate([z * w[None, :], z * wa[None, :], z * (wa * a)[None, :],
                             yt * w[None, :], yt * wa[None, :]], axis=0)
    prod = gram_t(z, right) / total  # (p, 3p + 2r)
    del wz
    g00, g01, g11 = prod[:, :p], prod[:, p:2 * p], prod[:, 2 * p:3 * p]
    gram = jnp.block([[g00, g01], [g01.T, g11]]) + ridge * jnp.diag(penalize)
    rhs = jnp.concatenate([prod[:, 3 * p:3 * p + r], prod[:, 3 * p + r:]], axis=0)
    beta = spd_solve(gram, rhs)
    return (beta if y.ndim == 2 else beta[:, 0]), _cond_spd(gram)


def _cond_spd(a):
    """1-norm condition number of a symmetric positive definite matrix (diagnostic only).

    Not ``eigvalsh``: batched eigen-solvers were measured to stall when vmapped on CPU.
    """
    import jax

    a = jax.lax.stop_gradient(a)
    inv = spd_solve(a, jnp.eye(a.shape[0], dtype=a.dtype))
    norm1 = lambda x: jnp.max(jnp.sum(jnp.abs(x), axis=0))
    return norm1(a) * norm1(inv)
