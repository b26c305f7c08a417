"""The common currency of estimators and the study engine: an ``EffectTable``.

Every estimator family (mediation, long-term) can express its result as a table of
estimators × effects: point estimate, standard error, normal 95% CI bounds and a
status code. The study runner (``jaxmed.study``) batches, stores and summarises
``EffectTable``s without knowing which method produced them; the names of the rows
and columns are static and live in an ``EstimatorSpec``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax

__all__ = ["EffectTable", "EstimatorSpec", "STATUS_OK"]

STATUS_OK = 0


class EffectTable(NamedTuple):
    """Estimates of E estimators × K effects for one dataset.

    Attributes:
      estimate: ``(E, K)`` point estimates (NaN where an estimator does not define an effect).
      se: ``(E, K)`` standard errors (NaN where not available).
      ci_low: ``(E, K)`` lower 95% confidence bounds.
      ci_high: ``(E, K)`` upper 95% confidence bounds.
      status: ``()`` int32, 0 when every solve succeeded; non-zero codes are documented by
        the estimator that produced the table.
    """

    estimate: jax.Array
    se: jax.Array
    ci_low: jax.Array
    ci_high: jax.Array
    status: jax.Array


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """A named estimator usable by the study engine.

    Attributes:
      name: short identifier (e.g. ``"mediation-default"``).
      estimators: static row names, e.g. ``("MR", "DM", "MIS1", ...)``.
      effects: static column names, e.g. ``("IDE", "IME", "DDE", "DME", "ATE")``.
      fn: ``fn(key, data) -> EffectTable``; unbatched and jit/vmap-able.
      cpu_max_batch_size: the largest number of replications the study engine should
        ``vmap`` together on a CPU device by default (None: no cap). The mediation
        pipeline sets 1: jaxlib's CPU LAPACK kernels split a batched LU factorisation
        over the same small thread pool that runs concurrent XLA thunks, and on a
        2-core machine two such kernels can wait on each other forever (observed with
        jaxlib 0.10.2 at vmap widths >= 5 on the semi-synthetic design and 4 on the multidim one;
        see docs/study.md). Accelerators are not capped; an explicit larger ``batch_size``
        on CPU is honoured with a ``RuntimeWarning``.
    """

    name: str
    estimators: tuple[str, ...]
    effects: tuple[str, ...]
    fn: Callable
    cpu_max_batch_size: int | None = None
