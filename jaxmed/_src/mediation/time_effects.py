"""Mediation effects with calendar-time terms, for a drifting environment (issue 15;
``docs/nonstationary_mediation.md``).

The environment may carry an exogenous path (trend, seasonality, platform changes) shared
by every trajectory at calendar time τ. The estimand is the window average at the periodic
steady state: the stationary estimand (spec mediation.md §2) of the Markov chain on the
augmented state (S, τ), τ ∈ {0..P−1} with τ' = (τ + 1) mod P, where P is the window length.
Its kernel is the observed window's kernels, so it is identified from the window's data
under the stationary method's assumptions; with no drift it is the stationary estimand.

The estimator runs the stationary pipeline on the augmented data: every model that sees
the state sees calendar time too.

* behaviour model: logistic in [1, standardised s, standardised τ];
* reward model: the spline state basis h(s, τ) is additive over coordinates, so it gains a
  calendar-time spline (a linear term and cubic B-splines with ``config.state_knots``
  quantile knots in τ), also interacted with the action;
* mediator model: with τ like the reward model (``mediator_time=True``, default), or the
  stationary one without τ (``mediator_time=False``: for drift that moves states and rewards
  only; measured: better without drift, worse under strong drift);
* Q-function features φ(s, τ, m) and ratio features ψ(s, τ): a calendar-time spline in Q and
  its products with the linear terms of s and m (``time_effects="spline"``, the default;
  ``config.q_time_interactions="linear"``), or the spline alone (``"additive"``: measured
  biased under strong drift, kept for comparison), and random Fourier features of (s, τ)
  jointly in the ratios;
* the next state of the window's last step is (S', 0): the wrap makes the LSTD and ratio
  equations those of a stationary chain, and the constant stays identified (the time
  features' differences sum to zero over a period, unlike a trend in t).

Results have the type of the stationary pipeline (``MediationResult`` /``EffectTable``):
MR, DM, MIS1, MIS2 and the baselines, with the same trajectory-cluster SEs and bootstrap.
``time_effects="none"`` is the stationary pipeline itself (identical numbers).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import (MediationResult, _control_action, mediation_core,
                                           mediation_effects, se_suffix, spec_settings)
from jaxmed._src.mediation.estimators import ESTIMATORS
from jaxmed._src.policies import as_policy
from jaxmed._src.state_slice_policy import StateSlicePolicy
from jaxmed._src.trajectories import Trajectories

__all__ = ["TIME_EFFECTS", "TIME_RATIO_FEATURES", "time_config", "check_calendar_time", "calendar_time_from_dataframe", "augment_with_time",
           "mediation_effects_time", "time_effects_estimator_spec", "COMPARISON_ESTIMATORS"]

TIME_EFFECTS = ("none", "spline", "additive")
# random Fourier ratio features of (s, τ) when the config has the stationary default (``time_config``)
TIME_RATIO_FEATURES = 40
# rows of the comparison spec: the stationary pipeline, then the calendar-time one
_CORE = ("MR", "DM", "MIS1", "MIS2")
COMPARISON_ESTIMATORS = _CORE + tuple(f"{e}-time" for e in _CORE)


def check_calendar_time(calendar_time, mask) -> tuple[np.ndarray, int]:
    """Validates calendar times and returns them shifted to start at 0, with the period P.

    Args:
      calendar_time: ``(N, T)`` integer calendar times of the steps (e.g. study day), or
        None: every trajectory starts at calendar time 0 (τ = t).
      mask: ``(N, T)`` observed-step indicator.

    Returns:
      ``(tau (N, T) float64, P)``: τ = calendar time − its minimum over observed steps, and
      P = max τ + 1, the window length (padding rows get τ = 0).

    Raises:
      ValueError: wrong shape, non-finite or non-integer values on observed steps, or
        consecutive observed steps whose calendar times do not increase by exactly 1.

    >>> tau, p = check_calendar_time(np.array([[3, 4, 5], [5, 6, 7]]), np.ones((2, 3)))
    >>> tau.tolist(), p
    ([[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]], 5)
    """
    mask = np.asarray(mask, bool)
    n, t = mask.shape
    if calendar_time is None:
        tau = np.broadcast_to(np.arange(t, dtype=np.float64), (n, t)).copy()
        return np.where(mask, tau, 0.0), t
    ct = np.asarray(calendar_time, dtype=np.float64)
    if ct.shape != (n, t):
        raise ValueError(f"calendar_time: expected shape {(n, t)} to match the data, got {ct.shape}")
    bad = mask & ~(np.isfinite(ct) & (ct == np.round(ct)))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"calendar_time: expected integer calendar times, got {ct[i, k]} at "
                         f"trajectory {i}, step {k}")
    both = mask[:, :-1] & mask[:, 1:]
    jump = both & (np.diff(ct, axis=1) != 1.0)
    if jump.any():
        i, k = np.argwhere(jump)[0]
        raise ValueError(f"calendar_time: consecutive steps must be one calendar unit apart; "
                         f"trajectory {i} goes from {ct[i, k]:g} to {ct[i, k + 1]:g} at step {k}")
    tau = np.where(mask, ct - ct[mask].min(), 0.0)
    return tau, int(tau[mask].max()) + 1


def calendar_time_from_dataframe(df, data: Trajectories, *, id: str = "id", time: str = "time",
                                 next_state=None) -> np.ndarray:
    """The ``(N, T)`` calendar times of ``trajectories_from_dataframe(df, ...)``'s steps.

    The same layout: rows sorted by (id, time), one trajectory per id in sorted order, each
    id's last row dropped unless ``next_state`` columns are given; padding gets 0. The
    ``time`` column must be numeric (integer calendar units, e.g. study day).

    >>> import pandas as pd
    >>> from jaxmed._src.trajectories import trajectories_from_dataframe
    >>> df = pd.DataFrame(dict(id=[1, 1, 1, 0, 0], time=[5, 6, 7, 3, 4], s=[0., 1, 2, 3, 4],
    ...                        a=[1, 0, 1, 0, 1], m=[.1, .2, .3, .4, .5], r=[1., 2, 3, 4, 5]))
    >>> d = trajectories_from_dataframe(df, state=["s"], mediator=["m"], action="a", reward="r")
    >>> calendar_time_from_dataframe(df, d).tolist()
    [[3.0, 0.0], [5.0, 6.0]]
    """
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(df[time]):
        raise ValueError(f"time: calendar-time effects need a numeric time column, got dtype "
                         f"{df[time].dtype} in column {time!r}")
    df = df.sort_values([id, time], kind="stable")
    mask = np.asarray(data.mask, bool)
    out = np.zeros(mask.shape)
    for i, (_, g) in enumerate(df.groupby(id, sort=True)):
        length = int(mask[i].sum())
        out[i, :length] = g[time].to_numpy(np.float64)[:length]
    return out


def augment_with_time(data: Trajectories, tau, period: int) -> Trajectories:
    """Appends calendar time to the state: S ↦ (S, τ), S' ↦ (S', (τ + 1) mod P).

    Works on numpy or jax arrays (inside ``jit`` with a static ``period``).

    Args:
      data: ``Trajectories``.
      tau: ``(N, T)`` calendar times in {0..P−1} (``check_calendar_time``).
      period: P, the window length (static).

    Returns:
      ``Trajectories`` with state dimension dS + 1.
    """
    tau = jnp.asarray(tau, data.state.dtype)
    nxt = jnp.mod(tau + 1.0, float(period))
    return Trajectories(jnp.concatenate([data.state, tau[..., None]], axis=-1), data.action,
                        data.mediator, data.reward,
                        jnp.concatenate([data.next_state, nxt[..., None]], axis=-1), data.mask)


def _check_time_effects(time_effects: str) -> None:
    if time_effects not in TIME_EFFECTS:
        raise ValueError(f"time_effects: expected one of {TIME_EFFECTS}, got {time_effects!r}")


def time_config(config: MediationConfig | None, time_effects: str = "spline",
                mediator_time: bool = True) -> MediationConfig:
    """The configuration the calendar-time pipeline runs with: ``config`` (default
    ``MediationConfig()``) with ``q_time_interactions`` "linear" for ``"spline"`` and
    "none" for ``"additive"``, ``mediator_time`` (default True: calendar time in the
    mediator model too; False leaves it out, for drift that moves states and rewards only),
    and ``TIME_RATIO_FEATURES`` (40) random Fourier ratio features of (s, τ) where
    ``config.ratio_features`` is ``None`` (the default; the stationary pipeline then uses 15,
    ``config.RATIO_FEATURES``); a number the user set, 15 included, is kept.

    Why 40: the ratios are functions of (s, τ) jointly, and under strong drift the state law
    moves with τ over the whole window. Measured on semi-synthetic-drift κ = 1, T = 100
    (``experiments/README.md``, 200 replications, same data and key, session 11's truth):
    MR-time DDE bias −0.027 ± 0.002 → −0.020 ± 0.002 at N = 1500 (−0.029 → −0.021 at
    N = 300) and ATE −0.016 → −0.006 (−0.014 → −0.002); 60 and 100 features gave the same as 40 over 12
    paired replications (``experiments/drift_gap_diagnosis/paired_variants.py``), and at T = 25
    the change stays within the Monte Carlo error.

    >>> time_config(None).q_time_interactions, time_config(None, "additive").q_time_interactions
    ('linear', 'none')
    >>> time_config(None).mediator_time, time_config(None, mediator_time=False).mediator_time
    (True, False)
    >>> time_config(None).ratio_features, time_config(MediationConfig(ratio_features=20)).ratio_features
    (40, 20)
    >>> time_config(MediationConfig(ratio_features=15)).ratio_features
    15
    """
    _check_time_effects(time_effects)
    config = MediationConfig() if config is None else config
    changes = dict(q_time_interactions="linear" if time_effects == "spline" else "none",
                   mediator_time=bool(mediator_time))
    if config.ratio_features is None and config.ratio_basis == "rff":
        changes["ratio_features"] = TIME_RATIO_FEATURES
    return config.replace(**changes)


def mediation_effects_time(data: Trajectories, target_policy, control_policy=None, *, key,
                           calendar_time=None, time_effects: str = "spline",
                           mediator_time: bool = True,
                           config: MediationConfig | None = None, dtype=np.float64,
                           check: bool = True) -> MediationResult:
    """IDE, IME, DDE, DME and ATE with calendar-time terms (module docstring).

    Estimand: η1..η5 of spec §2 for the chain on (S, τ) with the window's exogenous path
    repeated with period P (the window average at the periodic steady state); the
    effects are the same contrasts, IDE = η1 − η2, ..., ATE = η1 − η5. With no drift this
    is the stationary estimand of :func:`mediation_effects`.

    Args:
      data: ``Trajectories`` (one dataset).
      target_policy: π_e, a policy of S (calendar time is hidden from it).
      control_policy: always-0 (default) or always-1.
      key: ``jax.random`` key (the same use as in :func:`mediation_effects`).
      calendar_time: ``(N, T)`` integer calendar times (default: τ = t for every
        trajectory); consecutive observed steps must be one unit apart.
      time_effects: ``"spline"`` (default: calendar time in every model and its
        interactions with s and m in Q, module docstring), ``"additive"`` (no interactions)
        or ``"none"`` (exactly :func:`mediation_effects`).
      mediator_time: True (default): calendar time in the mediator model like in the reward
        model. False: left out, p̂_m(·|s, τ, a) = p̂_m(·|s, a) (drift that moves states and
        rewards, not the mediator law given the state; ``time_free_mediator``). Measured
        trade-off (``docs/nonstationary_mediation.md``): False removes half of the IME gap
        without drift but doubles the ATE bias under strong drift.
      config: ``MediationConfig``; ``state_knots`` also sets the knots of the time spline.
      dtype, check: as in :func:`mediation_effects`.

    Returns:
      ``MediationResult``.

    >>> import jax, jaxmed
    >>> from jaxmed._src.sim.drift import simulate_semi_synthetic_drift
    >>> d = simulate_semi_synthetic_drift(jax.random.key(0), 40, 10, strength=1.0)
    >>> res = mediation_effects_time(d, jaxmed.policies.semi_synthetic_target_policy(),
    ...                              key=jax.random.key(1))
    >>> res.estimate.shape
    (7, 5)
    """
    _check_time_effects(time_effects)
    if not isinstance(data, Trajectories):
        raise ValueError(f"data: expected a jaxmed Trajectories, got {type(data).__name__}")
    if time_effects == "none":
        if calendar_time is not None:
            check_calendar_time(calendar_time, np.asarray(data.mask))
        return mediation_effects(data, target_policy, control_policy, key=key, config=config,
                                 dtype=dtype, check=check)
    tau, period = check_calendar_time(calendar_time, np.asarray(data.mask))
    ds = np.asarray(data.state).shape[-1]
    target_policy = as_policy(target_policy, ds)  # "logistic:0.7" works too
    if not hasattr(target_policy, "prob_one"):
        raise ValueError(f"target_policy: expected a policy with prob_one(state), got "
                         f"{type(target_policy).__name__}")
    arrays = Trajectories(*(np.asarray(x, np.float64) for x in data))
    aug = Trajectories(*(np.asarray(x) for x in augment_with_time(arrays, tau, period)))
    return mediation_effects(aug, StateSlicePolicy(target_policy, ds), control_policy, key=key,
                             config=time_config(config, time_effects, mediator_time), dtype=dtype,
                             check=check)


def time_effects_estimator_spec(target_policy, control_policy=None,
                                config: MediationConfig | None = None, *,
                                compare: bool = True, time_effects: str = "spline",
                                mediator_time: bool = True) -> EstimatorSpec:
    """``EstimatorSpec`` of the calendar-time estimator for the study engine.

    Calendar time is the step index t (every simulated trajectory starts at the window's
    start), P = T. With ``compare`` (default) the stationary pipeline runs on the same data
    with the same key and the rows are ``COMPARISON_ESTIMATORS`` (MR, DM, MIS1, MIS2 of the
    stationary pipeline, then the same with ``-time``); otherwise the seven rows
    ``ESTIMATORS`` of the calendar-time pipeline. Columns IDE, IME, DDE, DME, ATE.
    ``time_effects``: ``"spline"`` (default) or ``"additive"`` (see
    :func:`mediation_effects_time`), ``mediator_time`` as there.
    """
    if time_effects == "none":
        raise ValueError("time_effects: the study spec needs 'spline' or 'additive'")
    config = MediationConfig() if config is None else config
    tconfig = time_config(config, time_effects, mediator_time)
    return _time_spec(target_policy, control_policy, config, tconfig, compare)


def _time_spec(target_policy, control_policy, config: MediationConfig, tconfig: MediationConfig,
               compare: bool) -> EstimatorSpec:
    """``time_effects_estimator_spec`` with the stationary (``config``) and calendar-time
    (``tconfig``) pipelines' configurations given."""
    a0 = _control_action(control_policy)
    rows = np.asarray([ESTIMATORS.index(e) for e in _CORE])

    def fn(key, data):
        n, t = data.action.shape[-2:]
        tau = jnp.broadcast_to(jnp.arange(t, dtype=data.state.dtype), (n, t))
        aug = augment_with_time(data, tau, t)
        sliced = StateSlicePolicy(as_policy(target_policy, data.state.shape[-1]),
                                  data.state.shape[-1])
        timed = mediation_core(key, aug, sliced, a0, tconfig).to_effect_table()
        if not compare:
            return timed
        plain = mediation_core(key, data, target_policy, a0, config).to_effect_table()
        cat = lambda f: jnp.concatenate([getattr(plain, f)[rows], getattr(timed, f)[rows]])  # noqa: E731
        return EffectTable(cat("estimate"), cat("se"), cat("ci_low"), cat("ci_high"),
                           jnp.bitwise_or(plain.status, timed.status))

    names = COMPARISON_ESTIMATORS if compare else ESTIMATORS
    name = ("mediation-time-compare" if compare else "mediation-time") + se_suffix(config)

    def restrict(asked):  # the IJ SE's reverse passes of the rows asked for only
        if compare:
            plain = tuple(e for e in asked if not e.endswith("-time"))
            timed = tuple(e.removesuffix("-time") for e in asked if e.endswith("-time"))
        else:
            plain, timed = config.ij_estimators, tuple(asked)
        return _time_spec(target_policy, control_policy, config.replace(ij_estimators=plain),
                          tconfig.replace(ij_estimators=timed), compare)

    # settings: the stationary config's (as for its own spec), then how the calendar-time one
    # differs from the default time terms (``time_effects``, ``mediator_time``)
    timed = tconfig.differences(time_config(config), ignore=("ij_estimators",))
    settings = (spec_settings(config) or ()) + ((("time", [list(p) for p in timed]),)
                                                if timed else ())
    if tconfig.ratio_features != config.ratio_features:
        # a store made before the calendar-time pipeline's own ratio-feature count (40; until
        # session 11 it used the stationary 15) holds other numbers: it is not resumed into
        settings += (("time_ratio_features", tconfig.ratio_features),)
    return EstimatorSpec(name, names, ("IDE", "IME", "DDE", "DME", "ATE"), fn,
                         restrict=restrict if config.se_method == "ij" else None,
                         settings=settings or None)
