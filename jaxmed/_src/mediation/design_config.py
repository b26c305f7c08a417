"""Which ``MediationConfig`` fits a design: a lookup by what the design's data are.

Designs describe data only (``Design.support``: ``"continuous"`` or ``"binary"``); the
estimator configuration that fits them lives here, with the estimators. Binary states and
mediators get ``MediationConfig.binary()`` (Bernoulli mediator law, saturated models: the
Gaussian/polynomial defaults are misspecified there); anything else the defaults, and
continuous designs with d_S ≥ 2 states also get the state-interaction terms of the Q basis
(``q_state_interactions = MULTIDIM_STATE_INTERACTIONS``: for every pair of state coordinates
the products of their spline blocks; the additive basis left MR DME biased by about 5 Monte
Carlo SE on the multidim design, issue 13) and the state ratios averaged over
``MULTIDIM_RATIO_DRAWS`` random-feature draws (one draw left the SE of MR DME 16% short, since
the SE holds the draw fixed: coverage 0.892; four draws: 0.940 over 400 replications). One-
dimensional designs are unchanged.
"""

from __future__ import annotations

from jaxmed._src.effect_table import EstimatorSpec
from jaxmed._src.mediation.config import MediationConfig

__all__ = ["config_for_design", "default_mediation_estimator", "CONFIG_BY_SUPPORT",
           "MULTIDIM_STATE_INTERACTIONS", "MULTIDIM_RATIO_DRAWS"]

CONFIG_BY_SUPPORT = {"continuous": MediationConfig, "binary": MediationConfig.binary}
# k = 1: the products z_i·z_j of the linear terms of every pair of standardised state coordinates
# (screened at N = 900, T = 100, 16 paired replications: MR DME bias −0.034 ± 0.008 additive,
# −0.005 ± 0.007 with k = 1; see experiments/README.md, "Multidim: state interactions")
MULTIDIM_STATE_INTERACTIONS = 1
# the ratios' random Fourier features drawn 4 times and the ratios averaged (multidim, N = 1500,
# T = 100, 400 replications: MR DME IJ SE/SD 0.84 -> 0.94, coverage 0.892 -> 0.940; about 1.5x
# the point estimate's cost; see experiments/README.md, "Why the multidim DDE/DME SE falls short")
MULTIDIM_RATIO_DRAWS = 4


def config_for_design(design) -> MediationConfig:
    """The ``MediationConfig`` for a design's ``support`` (default ``"continuous"``) and state
    dimension (``state_dim`` ≥ 2 and continuous: ``q_state_interactions`` and
    ``ratio_draws``).

    >>> from jaxmed._src.sim.designs import get_design
    >>> config_for_design(get_design("toy1")) == MediationConfig.binary()
    True
    """
    support = getattr(design, "support", "continuous")
    if support not in CONFIG_BY_SUPPORT:
        raise ValueError(f"design: support must be one of {sorted(CONFIG_BY_SUPPORT)}, got "
                         f"{support!r}")
    config = CONFIG_BY_SUPPORT[support]()
    if support == "continuous" and int(getattr(design, "state_dim", 1)) >= 2:
        config = config.replace(q_state_interactions=MULTIDIM_STATE_INTERACTIONS,
                                ratio_draws=MULTIDIM_RATIO_DRAWS)
    return config


def default_mediation_estimator(design, *, se_method: str | None = None) -> EstimatorSpec:
    """``mediation_estimator_spec(design.target_policy, design.control_policy, config)``; for a
    design with ``exogenous_drift``, the stationary and calendar-time pipelines side by side
    (``mediation.time_effects.time_effects_estimator_spec``). ``se_method`` (``"cluster"`` or
    ``"ij"``; ``None``: the config's default) sets ``config.se_method``."""
    from jaxmed._src.mediation.effects import mediation_estimator_spec

    missing = [a for a in ("target_policy", "control_policy") if not hasattr(design, a)]
    if missing:
        raise ValueError(f"design: {getattr(design, 'name', design)!r} has no {missing}, needed "
                         f"by the mediation estimators")
    config = config_for_design(design)
    if se_method is not None:
        config = config.replace(se_method=se_method)
    if getattr(design, "exogenous_drift", False):  # calendar-time drift: both pipelines
        from jaxmed._src.mediation.time_effects import time_effects_estimator_spec

        return time_effects_estimator_spec(design.target_policy, design.control_policy, config)
    return mediation_estimator_spec(design.target_policy, design.control_policy, config)
