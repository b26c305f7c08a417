"""The calendar-time pipeline's mediator model without calendar time (issue 15,
``jaxmed._src.mediation.time_free_mediator``): it is the stationary mediator model of s."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.nuisance import default_nuisance_models
from jaxmed._src.mediation.nuisance_models import GaussianMediatorModel
from jaxmed._src.mediation.time_effects import augment_with_time, time_config
from jaxmed._src.mediation.time_free_mediator import TimeFreeMediatorModel
from jaxmed._src.sim.drift import simulate_semi_synthetic_drift
from jaxmed._src.trajectories import Trajectories


def _rows(n=600, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, 3.0, n)
    tau = rng.integers(0, 25, n).astype(float)
    a = rng.integers(0, 2, n).astype(float)
    return s, tau, a


def test_time_free_mediator_recovers_a_linear_mediator_law_at_every_calendar_time():
    # M = 1 + 0.5 s + a (0.3 − 0.2 s) exactly (no noise): [1, h(s), a, a h(s)] contains it
    s, tau, a = _rows()
    m = 1.0 + 0.5 * s + a * (0.3 - 0.2 * s)
    rows = dict(state=jnp.asarray(np.stack([s, tau], 1)), action=jnp.asarray(a),
                mediator=jnp.asarray(m[:, None]))
    model = TimeFreeMediatorModel(GaussianMediatorModel(ridge=1e-10))
    fit = jax.jit(model.fit)(None, rows, jnp.ones(s.size))
    s_new = np.linspace(-6.0, 6.0, 13)
    for tau_new in (0.0, 7.0, 24.0):
        x = jnp.asarray(np.stack([s_new, np.full_like(s_new, tau_new)], 1))
        for act in (0.0, 1.0):
            want = 1.0 + 0.5 * s_new + act * (0.3 - 0.2 * s_new)
            got = np.asarray(jax.jit(model.mean)(fit, x, jnp.full(s_new.size, act)))[:, 0]
            np.testing.assert_allclose(got, want, atol=1e-6)
    assert float(fit.sd[0]) < 1e-6


def test_time_free_mediator_equals_the_stationary_mediator_model_on_s():
    s, tau, a = _rows(seed=1)
    m = np.sqrt(np.abs(s)) + (a - 0.5) + np.random.default_rng(2).normal(0, 2.0, s.size)
    inner = GaussianMediatorModel()
    aug = dict(state=jnp.asarray(np.stack([s, tau], 1)), action=jnp.asarray(a),
               mediator=jnp.asarray(m[:, None]))
    plain = dict(aug, state=jnp.asarray(s[:, None]))
    w = jnp.ones(s.size)
    f_aug = jax.jit(TimeFreeMediatorModel(inner).fit)(None, aug, w)
    f_plain = jax.jit(inner.fit)(None, plain, w)
    np.testing.assert_array_equal(np.asarray(f_aug.coef), np.asarray(f_plain.coef))
    np.testing.assert_array_equal(np.asarray(f_aug.sd), np.asarray(f_plain.sd))
    with pytest.raises(ValueError, match="^state"):
        TimeFreeMediatorModel(inner).fit(None, plain, w)


def test_calendar_time_pipeline_mediator_predictions_are_the_stationary_ones():
    # with mediator_time=False the mediator model of mediation_effects_time's nuisance stage
    # on (S, τ) predicts the mediator law at S and S' exactly as the stationary pipeline's on S
    d = simulate_semi_synthetic_drift(jax.random.key(3), 60, 10, strength=1.0)
    d = Trajectories(*(jnp.asarray(x, jnp.float64) for x in d))
    tau = jnp.broadcast_to(jnp.arange(10.0), d.mask.shape)
    aug = augment_with_time(d, tau, 10)
    cfg_t, cfg_s = time_config(None, mediator_time=False), MediationConfig()
    assert cfg_t.mediator_time is False and cfg_s.mediator_time is True
    assert time_config(None).mediator_time is True  # the default keeps τ in the mediator model
    w = jnp.ones(d.mask.size)

    @jax.jit
    def predict(model, rows):
        fit = model.fit(None, rows, w)
        return jnp.stack([model.mean(fit, x, jnp.full(w.size, b))
                          for x in (rows["state"], rows["next_state"]) for b in (0.0, 1.0)]), fit.sd

    mt, sdt = predict(default_nuisance_models(cfg_t).mediator, aug.flat())
    ms, sds = predict(default_nuisance_models(cfg_s).mediator, d.flat())
    np.testing.assert_allclose(mt, ms, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sdt, sds, rtol=1e-12, atol=1e-12)
    # the default (mediator_time=True): the τ terms do move the mediator means (under drift)
    m1, _ = predict(default_nuisance_models(time_config(None)).mediator,
                    aug.flat())
    assert float(jnp.max(jnp.abs(m1 - ms))) > 1e-3
