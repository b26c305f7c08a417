"""The study engine's default long-term estimator for a long-term design (data -> estimators).

Designs describe data only (``jaxmed._src.longterm.designs``); this is where the estimator
configuration that fits them lives: the nonstationary estimator (within + BZ + steady0)
beside the stationary one and the naive A/B baselines, with a 100-draw within-bucket
bootstrap for the SEs and CIs.
"""

from __future__ import annotations

from jaxmed._src.effect_table import EstimatorSpec
from jaxmed._src.longterm.api import longterm_estimator_spec

__all__ = ["N_BOOT", "default_longterm_estimator"]

N_BOOT = 100


def default_longterm_estimator(design) -> EstimatorSpec:
    """``EstimatorSpec`` for a long-term design (``design.reward``, ``design.gamma``).

    Raises:
      ValueError: the design lacks ``reward`` or ``gamma``.
    """
    missing = [a for a in ("reward", "gamma") if not hasattr(design, a)]
    if missing:
        raise ValueError(f"design: {getattr(design, 'name', design)!r} has no {missing}, needed "
                         f"by the long-term estimators")
    return longterm_estimator_spec(design.reward, design.gamma, n_boot=N_BOOT, batch_size=20,
                                   name=f"{design.name}-default")
