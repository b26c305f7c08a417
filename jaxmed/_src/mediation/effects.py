"""The one call: ``mediation_effects`` (spec mediation.md §2–§6), and its ``EstimatorSpec``.

Estimates the four-way decomposition IDE + IME + DDE + DME = ATE of the average-reward
contrast between a target policy π_e and an always-a0 control policy, with the estimators
MR, DM, MIS1, MIS2, Baseline_DM, Baseline_IPW and Baseline_MR; trajectory-cluster standard
errors, normal 95% intervals and (optionally) a trajectory bootstrap.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS
from jaxmed._src.mediation.nuisance import NuisancePredictions
from jaxmed._src.mediation.pipeline import PipelineDiagnostics, estimate_pipeline
from jaxmed._src.mediation.uncertainty import bootstrap_counts, cluster_influence, cluster_se
from jaxmed._src.policies import ConstantPolicy, as_policy
from jaxmed._src.precision import precision
from jaxmed._src.trajectories import Trajectories, validate_trajectories

__all__ = ["MediationResult", "mediation_effects", "mediation_estimator_spec", "ESTIMATORS",
           "EFFECTS"]

Z95 = 1.959963984540054


class MediationResult(NamedTuple):
    """Result of :func:`mediation_effects`; rows ``ESTIMATORS``, columns ``EFFECTS``.

    Attributes:
      estimate: ``(7, 5)`` point estimates (NaN where an estimator does not define an effect).
      se: ``(7, 5)`` standard errors used for the intervals: the trajectory-cluster SE, except
        for DM, whose per-row values are constant (cluster SE 0): DM uses the bootstrap SE
        (NaN when ``n_boot = 0``).
      ci_low, ci_high: ``(7, 5)`` normal 95% intervals estimate ∓ 1.96 se.
      cluster_se: ``(7, 5)`` trajectory-cluster SEs (§6.7, ddof = 1; NaN for DM).
      boot_se: ``(7, 5)`` trajectory-bootstrap SEs (NaN when ``n_boot = 0``).
      boot_estimates: ``(n_boot, 7, 5)`` bootstrap replicates.
      eta: ``(5,)`` η̂1..η̂5 (natural decomposition: η̂1, η̂6, η̂7, η̂8, η̂5).
      influence: ``(N, 7, 5)`` per-trajectory influence values ψ_i (``uncertainty``).
      diagnostics: ``PipelineDiagnostics`` of the full-data fit (incl. ``status``).
    """

    estimate: jax.Array
    se: jax.Array
    ci_low: jax.Array
    ci_high: jax.Array
    cluster_se: jax.Array
    boot_se: jax.Array
    boot_estimates: jax.Array
    eta: jax.Array
    influence: jax.Array
    diagnostics: PipelineDiagnostics

    @property
    def status(self):
        return self.diagnostics.status

    def to_effect_table(self) -> EffectTable:
        return EffectTable(self.estimate, self.se, self.ci_low, self.ci_high, self.diagnostics.status)

    def to_frame(self):
        """Long-format pandas DataFrame: estimator, effect, estimate, se, ci_low, ci_high.

        Undefined (estimator, effect) pairs (e.g. MIS2 DDE) are left out.
        """
        import pandas as pd

        est = np.asarray(self.estimate)
        recs = []
        for i, e in enumerate(ESTIMATORS):
            for j, k in enumerate(EFFECTS):
                if np.isnan(est[i, j]):
                    continue
                recs.append(dict(estimator=e, effect=k, estimate=float(est[i, j]),
                                 se=float(self.se[i, j]), ci_low=float(self.ci_low[i, j]),
                                 ci_high=float(self.ci_high[i, j])))
        return pd.DataFrame.from_records(
            recs, columns=["estimator", "effect", "estimate", "se", "ci_low", "ci_high"])


def mediation_core(key, data: Trajectories, target_policy, a0: int, config: MediationConfig,
                   nuisances: NuisancePredictions | None = None) -> MediationResult:
    """Pure, unbatched core of :func:`mediation_effects` (no validation; jit/vmap/grad-able).

    ``a0`` must be static. The bootstrap refits the whole pipeline (nuisances included, unless
    ``nuisances`` are injected, which then stay fixed) with multinomial trajectory weights.
    """
    n = data.action.shape[-2]
    k_fit, k_boot = jax.random.split(key)
    ones = jnp.ones(n, data.reward.dtype)
    out = estimate_pipeline(k_fit, data, ones, target_policy, a0, config, nuisances)
    mask = data.mask
    _, infl = cluster_influence(out.rows, mask)
    cse = cluster_se(out.rows, mask)
    dm = ESTIMATORS.index("DM")
    cse = cse.at[dm].set(jnp.nan)
    if config.n_boot > 0:
        def one(k):
            v = bootstrap_counts(k, n, data.reward.dtype)
            return estimate_pipeline(k_fit, data, v, target_policy, a0, config, nuisances).estimate

        boot = jax.lax.map(one, jax.random.split(k_boot, config.n_boot),
                           batch_size=min(config.boot_batch_size, config.n_boot))
        bse = jnp.std(boot, axis=0, ddof=1) if config.n_boot > 1 else jnp.full_like(cse, jnp.nan)
    else:
        boot = jnp.zeros((0,) + cse.shape, cse.dtype)
        bse = jnp.full_like(cse, jnp.nan)
    se = cse.at[dm].set(bse[dm])
    se = jnp.where(jnp.isnan(out.estimate), jnp.nan, se)
    return MediationResult(out.estimate, se, out.estimate - Z95 * se, out.estimate + Z95 * se,
                           cse, bse, boot, out.eta, infl, out.diagnostics)


_core_jit = jax.jit(mediation_core, static_argnames=("a0",))


def _control_action(control_policy) -> int:
    if control_policy is None:
        return 0
    if isinstance(control_policy, (int, np.integer)) and int(control_policy) in (0, 1):
        return int(control_policy)
    if isinstance(control_policy, ConstantPolicy):
        p = float(np.asarray(control_policy.p1))
        if p in (0.0, 1.0):
            return int(p)
    raise ValueError("control_policy: expected a deterministic constant policy (always 0 or always 1, "
                     f"e.g. jaxmed.policies.always_control()) or the action 0/1, got {control_policy!r}")


def _check_binary(name, values):
    bad = (values != 0) & (values != 1)
    if bad.any():
        k = int(np.argmax(bad.reshape(-1)))
        raise ValueError(f"{name}: expected values in {{0, 1}} (binary configuration), got "
                         f"{values.reshape(-1)[k]} at flat observed index {k}")


def _validate(data, target_policy, nuisances, dtype, config=None):
    if not isinstance(data, Trajectories):
        raise ValueError(f"data: expected a jaxmed Trajectories, got {type(data).__name__}")
    try:
        validate_trajectories(data)
    except ValueError as e:
        raise ValueError(f"data: {e}") from None
    mask = np.asarray(data.mask, bool)
    act = np.asarray(data.action)[mask]
    if act.min() == act.max():
        raise ValueError(f"data: both actions must be observed to estimate the behaviour policy; "
                         f"every observed action is {act[0]:g}")
    med = np.asarray(data.mediator)[mask]
    bernoulli = config is not None and config.mediator_law == "bernoulli"
    if bernoulli:
        _check_binary("data.mediator", med)
    if config is not None and (config.nuisance_model == "tabular" or config.q_basis == "binary"
                               or config.ratio_basis == "binary"):
        _check_binary("data.state", np.asarray(data.state)[mask])
        _check_binary("data.next_state", np.asarray(data.next_state)[mask])
    flat = np.nonzero(med.std(axis=0) == 0)[0]
    if flat.size:
        raise ValueError(f"data: mediator column {int(flat[0])} is constant over the observed steps; "
                         f"the mediator model needs variation")
    if not hasattr(target_policy, "prob_one"):
        raise ValueError(f"target_policy: expected a policy with prob_one(state), got "
                         f"{type(target_policy).__name__}")
    states = np.concatenate([np.asarray(data.state)[mask], np.asarray(data.next_state)[mask]])
    p = np.asarray(jax.vmap(target_policy.prob_one)(jnp.asarray(states, dtype)))
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"target_policy: expected probabilities in [0, 1] on the data, got {p[k]} at "
                         f"state {states[k].tolist()}")
    if nuisances is not None:
        if not isinstance(nuisances, NuisancePredictions):
            raise ValueError(f"nuisances: expected NuisancePredictions, got {type(nuisances).__name__}")
        n_rows, dm = mask.size, med.shape[1]
        want = NuisancePredictions((n_rows,), (n_rows, 2, dm), (n_rows, 2, dm), (n_rows, 2, dm),
                                   (n_rows, 2, dm), (n_rows, 2), (n_rows, 2, 2))
        for name, arr, shape in zip(NuisancePredictions._fields, nuisances, want):
            arr = np.asarray(arr)
            if arr.shape != shape:
                raise ValueError(f"nuisances.{name}: expected shape {shape}, got {arr.shape}")
            rows = mask.reshape(-1)
            if not np.isfinite(arr[rows]).all():
                raise ValueError(f"nuisances.{name}: non-finite value at row "
                                 f"{int(np.argwhere(~np.isfinite(arr[rows]))[0, 0])}")
        pb = np.asarray(nuisances.behaviour_prob)[mask.reshape(-1)]
        if (pb <= 0).any() or (pb > 1).any():
            raise ValueError(f"nuisances.behaviour_prob: expected values in (0, 1], got {pb.min()}..{pb.max()}")
        if bernoulli:
            for name in ("mediator_mean", "mediator_mean_next"):
                pm = np.asarray(getattr(nuisances, name))[mask.reshape(-1)]
                if (pm < 0).any() or (pm > 1).any():
                    raise ValueError(f"nuisances.{name}: expected Bernoulli probabilities in [0, 1] "
                                     f"(mediator_law='bernoulli'), got {pm.min()}..{pm.max()}")
        for name in () if bernoulli else ("mediator_sd", "mediator_sd_next"):
            sd = np.asarray(getattr(nuisances, name))[mask.reshape(-1)]
            if (sd <= 0).any():
                raise ValueError(f"nuisances.{name}: expected positive sds, got min {sd.min()}")


def mediation_effects(data: Trajectories, target_policy, control_policy=None, *, key,
                      config: MediationConfig | None = None,
                      nuisances: NuisancePredictions | None = None, dtype=np.float64,
                      check: bool = True) -> MediationResult:
    """Dynamic mediation analysis: IDE, IME, DDE, DME and ATE of π_e against always-a0.

    Estimands (spec §2): with the five long-run averages η1..η5,
    IDE = η1 − η2, IME = η2 − η3, DDE = η3 − η4, DME = η4 − η5, ATE = η1 − η5.
    Estimators (§6): MR (multiply robust), DM, MIS1, MIS2 (IDE/IME), Baseline_DM, Baseline_IPW,
    Baseline_MR (IDE/IME). Nuisances: logistic π̂_b, Gaussian p̂_m with spline means, polynomial
    r̂ (or ``nuisances`` injected); Q-functions by average-reward LSTD; state ratios by the
    linear closed-form estimator. Every expectation over mediators and actions is exact.
    For binary states and mediators use ``config=MediationConfig.binary()`` (Bernoulli mediator
    law, saturated tabular nuisances, indicator Q and ratio bases): the Gaussian/polynomial
    defaults are misspecified there.

    Args:
      data: ``Trajectories`` (one dataset).
      target_policy: a policy with ``prob_one(state)`` (e.g. ``LogisticPolicy``; its numeric
        parameters are traced, so ``grad`` of ``mediation_core`` works through them), or its
        text spelling as on the command line, e.g. ``"logistic:0.7"``.
      control_policy: always-0 (default) or always-1: ``ConstantPolicy(0.)``/``(1.)``, 0/1,
        or ``"constant:0"``/``"constant:1"``.
      key: a ``jax.random`` key (ratio features, bootstrap).
      config: ``MediationConfig`` (default ``MediationConfig()``).
      nuisances: optional injected ``NuisancePredictions`` (spec §13.1).
      dtype: float64 (default) or float32.
      check: raise ``ValueError`` when the fitted behaviour policy lacks overlap
        (π̂_b(A|S) < 1e-3) or a non-finite estimate is produced.

    Returns:
      ``MediationResult`` (use ``.to_frame()`` for a pandas table).

    >>> import jax, jaxmed
    >>> from jaxmed.mediation import mediation_effects, MediationConfig
    >>> from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    >>> data = simulate_semi_synthetic(jax.random.key(0), 40, 10)
    >>> res = mediation_effects(data, jaxmed.policies.semi_synthetic_target_policy(),
    ...                         key=jax.random.key(1))
    >>> list(res.to_frame().columns)
    ['estimator', 'effect', 'estimate', 'se', 'ci_low', 'ci_high']
    """
    config = MediationConfig() if config is None else config
    if not isinstance(config, MediationConfig):
        raise ValueError(f"config: expected a MediationConfig, got {type(config).__name__}")
    target_policy = as_policy(target_policy, np.shape(data.state)[-1])  # "logistic:0.7" works too
    control_policy = as_policy(control_policy, np.shape(data.state)[-1])
    a0 = _control_action(control_policy)
    with precision(dtype) as dt:
        _validate(data, target_policy, nuisances, dt, config)
        arrays = Trajectories(*(jnp.asarray(np.asarray(x), dt) for x in data))
        if nuisances is not None:
            nuisances = NuisancePredictions(*(jnp.asarray(np.asarray(x), dt) for x in nuisances))
        res = _core_jit(key, arrays, target_policy, a0, config, nuisances)
        res = jax.tree_util.tree_map(np.asarray, res)
    if check:
        d = res.diagnostics
        if float(d.behaviour_prob_min) < 1e-3:
            raise ValueError(f"data: no overlap: the fitted behaviour policy gives π̂_b(A|S) = "
                             f"{float(d.behaviour_prob_min):.3g} on an observed step (< 1e-3)")
        if not np.isfinite(res.estimate[0]).all():
            raise ValueError(f"data: the MR estimate is not finite (status {int(d.status)}); "
                             f"diagnostics: {d}")
    return res


def mediation_estimator_spec(target_policy, control_policy=None,
                             config: MediationConfig | None = None) -> EstimatorSpec:
    """``EstimatorSpec`` for the study engine: ``fn(key, data) -> EffectTable`` (jit/vmap-able).

    Rows ``ESTIMATORS`` (MR, DM, MIS1, MIS2, Baseline_DM, Baseline_IPW, Baseline_MR), columns
    ``EFFECTS`` (IDE, IME, DDE, DME, ATE). No validation happens inside ``fn``; the status
    field carries failures.
    """
    config = MediationConfig() if config is None else config
    a0 = _control_action(control_policy)

    def fn(key, data):
        return mediation_core(key, data, target_policy, a0, config).to_effect_table()

    name = ("mediation-natural" if config.natural_decomposition
            else "mediation-binary" if config.mediator_law == "bernoulli" else "mediation-default")
    return EstimatorSpec(name, ESTIMATORS, EFFECTS, fn)
