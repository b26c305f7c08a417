"""Padding a dataset with absent trajectories, so that one compiled program serves many N.

A *real* trajectory is one with at least one observed step (``mask`` row not all zero); a
trajectory whose mask is all zero is absent: every statistic of the mediation pipeline
ignores it (row weights ``w_k = mask_k · v_i`` are zero on its rows, the cluster standard
errors and the bootstrap count only real trajectories). ``pad_trajectories`` appends such
absent trajectories, so the estimates of a padded dataset equal the unpadded ones up to
floating-point rounding of the longer sums (tested to 1e-12).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxmed._src.trajectories import Trajectories

__all__ = ["pad_trajectories", "real_trajectories"]


def real_trajectories(mask):
    """``(N,)`` 1.0 for trajectories with at least one observed step, else 0.0 (mask's dtype)."""
    mask = jnp.asarray(mask)
    return jnp.any(mask > 0, axis=-1).astype(mask.dtype)


def pad_trajectories(data: Trajectories, n: int) -> Trajectories:
    """``data`` with ``n − N`` absent trajectories appended (jit-able; ``n`` static).

    The appended trajectories copy trajectory 0's values (finite numbers of the data's own
    scale, so no fit ever sees an unusual value) with an all-zero mask.

    >>> import numpy as np
    >>> from jaxmed._src.trajectories import trajectories_from_arrays
    >>> d = trajectories_from_arrays(np.ones((2, 3, 1)), np.ones((2, 3)), np.ones((2, 3, 1)),
    ...                              np.ones((2, 3)), np.ones((2, 3, 1)))
    >>> np.asarray(pad_trajectories(d, 4).mask).sum(axis=1).tolist()
    [3.0, 3.0, 0.0, 0.0]
    """
    n_data = data.action.shape[-2]
    if n < n_data:
        raise ValueError(f"n: expected at least the data's {n_data} trajectories, got {n}")
    if n == n_data:
        return data
    extra = n - n_data

    def pad(x, fill_zero=False):
        x = jnp.asarray(x)
        first = jnp.zeros_like(x[:1]) if fill_zero else x[:1]
        return jnp.concatenate([x, jnp.repeat(first, extra, axis=0)], axis=0)

    return Trajectories(pad(data.state), pad(data.action), pad(data.mediator), pad(data.reward),
                        pad(data.next_state), pad(data.mask, fill_zero=True))
