"""Floating-point precision at the public entry points.

jaxmed never flips ``jax_enable_x64`` globally at import. Public entry points
(``mediation_effects``, ``longterm_effect``, the study runner, the CLI) run their
body inside :func:`precision`, which turns on 64-bit types for the duration of the
call when float64 is requested (the default) and leaves the global setting alone.
float32 is an opt-in fast path for accelerators.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import jax
import numpy as np


def canonical_dtype(dtype) -> np.dtype:
    """Returns ``np.float64`` or ``np.float32``; raises ``ValueError`` otherwise."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype: expected float64 or float32, got {dt}")
    return dt


@contextlib.contextmanager
def precision(dtype=np.float64) -> Iterator[np.dtype]:
    """Context in which jaxmed computes in ``dtype``.

    Args:
      dtype: ``float64`` (default; enables 64-bit types inside the context) or
        ``float32``.

    Yields:
      The canonical numpy dtype.

    >>> import numpy as np, jax.numpy as jnp
    >>> with precision(np.float64):
    ...     x = jnp.ones(2)
    >>> str(x.dtype)
    'float64'
    """
    dt = canonical_dtype(dtype)
    if dt == np.float64:
        with jax.enable_x64(True):
            yield dt
    else:
        yield dt


def x64_enabled() -> bool:
    """Whether 64-bit types are currently enabled in JAX."""
    return bool(jax.config.jax_enable_x64)
