"""``default_nuisance_models`` builds the parametric models with the configuration's values.

Every setting of a non-default ``MediationConfig`` (knots, degree, iterations, basis, the three
ridges, weighted knots) arrives in the field of the model it configures (spec mediation.md §3,
the config's documented meaning), none shifted into another field.
"""

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.nuisance import default_nuisance_models
from jaxmed._src.mediation.nuisance_models import (GaussianMediatorModel, LogisticBehaviourModel,
                                                   PolynomialRewardModel)


def test_default_models_carry_the_config_values():
    cfg = MediationConfig(state_knots=3, reward_degree=2, behaviour_iterations=7,
                          behaviour_basis="spline", reward_ridge=0.25, mediator_ridge=0.5,
                          behaviour_ridge=0.125, weighted_knots=False,
                          nuisance_boundary_quantile=0.03)
    models = default_nuisance_models(cfg)
    assert models.behaviour == LogisticBehaviourModel("spline", 3, 7, 0.125, False, 0.03)
    assert models.mediator == GaussianMediatorModel(3, 0.5, False, 0.03)
    assert models.reward == PolynomialRewardModel(3, 2, 0.25, False, 0.03)
    r = models.reward
    assert (r.n_knots, r.degree, r.ridge, r.weighted_knots) == (3, 2, 0.25, False)


def test_nuisance_boundary_quantile_default_and_range():
    """0.0025 by default (since session 21; 0 = the data's range before), in every model and
    in the calendar-time pipeline's configuration; out-of-range values are refused."""
    from jaxmed._src.mediation.time_effects import time_config

    models = default_nuisance_models(MediationConfig())
    assert {m.boundary_quantile for m in models} == {0.0025}
    assert time_config(None).nuisance_boundary_quantile == 0.0025
    assert time_config(None).rho_trunc == MediationConfig().rho_trunc == 50.0
    assert {m.boundary_quantile for m in default_nuisance_models(
        MediationConfig(nuisance_boundary_quantile=0.0))} == {0.0}
    # parity() keeps the original's choices (ρ̃ ≤ 500, B5; range knots)
    assert (MediationConfig.parity().rho_trunc, MediationConfig.parity().nuisance_boundary_quantile) == (500.0, 0.0)
    assert time_config(MediationConfig(nuisance_boundary_quantile=0.02)).nuisance_boundary_quantile == 0.02
    for bad in (-0.01, 0.2, "0.01", None, True):
        try:
            MediationConfig(nuisance_boundary_quantile=bad)
        except ValueError as e:
            assert "nuisance_boundary_quantile" in str(e)
        else:
            raise AssertionError(bad)
