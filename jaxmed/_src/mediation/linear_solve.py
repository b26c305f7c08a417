"""Weighted ridge least squares by Cholesky, shared by the nuisance fits."""

from __future__ import annotations

import jax.numpy as jnp
from jaxmed._src.small_linalg import spd_solve

__all__ = ["weighted_ridge"]


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
    gram = (x * w[:, None]).T @ x / total + ridge * jnp.diag(penalize)
    rhs = (x * w[:, None]).T @ y / total
    beta = spd_solve(gram, rhs)
    return beta, _cond_spd(gram)


def _cond_spd(a):
    """1-norm condition number of a symmetric positive definite matrix (diagnostic only).

    Not ``eigvalsh``: batched eigen-solvers were measured to stall when vmapped on CPU.
    """
    import jax

    a = jax.lax.stop_gradient(a)
    inv = spd_solve(a, jnp.eye(a.shape[0], dtype=a.dtype))
    norm1 = lambda x: jnp.max(jnp.sum(jnp.abs(x), axis=0))
    return norm1(a) * norm1(inv)
