"""Splitting an array into its slices along one axis, cheaply in reverse mode."""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["unstack"]


def unstack(x, axis: int = -1) -> list:
    """The slices of ``x`` along ``axis`` (that axis removed), from one ``split`` of the axis
    moved to the front.

    Same values as ``[x[..., j] for j ...]``; in reverse mode (the infinitesimal-jackknife SE)
    the cotangent is one concatenation, where indexing gives one zero-padded copy of ``x`` per
    slice: measured as 45% of the SE's reverse pass through the nuisance fits when the mediator
    monomials indexed their (n, d_M) input column by column.

    >>> import jax.numpy as jnp
    >>> [v.tolist() for v in unstack(jnp.array([[1, 2], [3, 4]]))]
    [[1, 3], [2, 4]]
    """
    lead = jnp.moveaxis(x, axis % x.ndim, 0)  # split the leading axis: contiguous pieces
    return [p[0] for p in jnp.split(lead, lead.shape[0], axis=0)]
