"""Weighted ridge least squares by Cholesky, shared by the nuisance fits."""

from __future__ import annotations

import jax.numpy as jnp

from jaxmed._src.mediation.normal_solve import normal_solve

__all__ = ["weighted_ridge", "action_coded_ridge"]


def weighted_ridge(x, y, w, ridge, penalize):
    """argmin_β Σ w_k (y_k − x_k β)² / Σ w + ridge · Σ_j penalize_j β_j².

    Args:
      x: ``(n, p)`` design.
      y: ``(n,)`` or ``(n, r)`` targets (several right-hand sides share one factorisation).
      w: ``(n,)`` row weights.
      ridge: traced penalty.
      penalize: ``(p,)`` 0/1 mask of penalised coefficients (0 for intercepts).

    Returns:
      ``(β, condition number of the normal matrix)``; derivatives by ``normal_solve``'s
      row-wise rule.
    """
    yt = y.T if y.ndim == 2 else y[None, :]
    (beta,), (cond,) = normal_solve(x.T, yt, w, ridge * jnp.diag(penalize),
                                    (tuple(range(yt.shape[0])),))
    return (beta if y.ndim == 2 else beta[:, 0]), cond


def action_coded_ridge(z, a, y, w, ridge, penalize):
    """:func:`weighted_ridge` for the action-coded design x = [z, a·z], without building x.

    With W = diag(w) the normal matrix has the blocks zᵀWz, zᵀW a z and zᵀW a² z, and the
    right-hand side zᵀWy, zᵀW a y: all from one product of feature-major blocks
    (``normal_solve`` with ``action``).

    Args:
      z: ``(p, n)`` feature-major base design (its intercept row included).
      a: ``(n,)`` actions.
      y: ``(n,)`` or ``(n, r)`` targets.
      w: ``(n,)`` row weights.
      ridge: traced penalty; ``penalize`` ``(2p,)`` 0/1 mask over [z, a·z].

    Returns:
      ``(β (2p,) or (2p, r), condition number of the normal matrix)``.
    """
    yt = y.T if y.ndim == 2 else y[None, :]
    (beta,), (cond,) = normal_solve(z, yt, w, ridge * jnp.diag(penalize),
                                    (tuple(range(yt.shape[0])),), action=a)
    return (beta if y.ndim == 2 else beta[:, 0]), cond
