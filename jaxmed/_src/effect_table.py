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
      pad: optional ``pad(data, n) -> data`` with ``n`` ≥ N trajectories, jit-able, such that
        ``fn`` gives the same results (up to rounding) on the padded data; the study runner
        then pads the cells of an N-grid to a few sizes and compiles ``fn`` once per size
        (``jaxmed._src.study.n_buckets``). ``None``: never padded.
      pad_group: optional ``pad_group(n, horizon) -> hashable``: cells are padded to a
        common size only when their groups agree, and a cell only to a size of its own
        group (for estimators whose static choices depend on the shape, e.g. the mediation
        knot rule, which reads N·T). ``None``: any sizes may share a program.
      restrict: optional ``restrict(names) -> EstimatorSpec``: the same estimator (same name,
        rows and numbers on the rows ``names``) computing only what those rows need (the
        mediation IJ SE: one reverse pass per cell of the rows asked for).
        ``select_estimators`` uses it. ``None``: every row is always computed.
      settings: optional settings that change the numbers but not ``name`` (for the
        mediation specs: the ``MediationConfig`` fields that differ from the preset the name
        stands for), as ``((key, JSON value), ...)``. A study store's fingerprint includes
        them, so a resume with other settings is refused instead of mixing two estimators.
        ``None``: the name says everything.
    """

    name: str
    estimators: tuple[str, ...]
    effects: tuple[str, ...]
    fn: Callable
    pad: Callable | None = None
    pad_group: Callable | None = None
    restrict: Callable | None = None
    settings: tuple | None = None
