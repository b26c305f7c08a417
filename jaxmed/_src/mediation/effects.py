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
from jaxmed._src.mediation.influence import ij_influence, influence_se
from jaxmed._src.mediation.nuisance import NuisancePredictions
from jaxmed._src.mediation.knot_rule import resolve_state_knots
from jaxmed._src.mediation.padding import pad_trajectories, real_trajectories
from jaxmed._src.mediation.pipeline import PipelineDiagnostics, estimate_pipeline
from jaxmed._src.mediation.uncertainty import bootstrap_counts, cluster_influence, cluster_se
from jaxmed._src.policies import ConstantPolicy, as_policy
from jaxmed._src.precision import precision
from jaxmed._src.status import MediationStatus, status_text
from jaxmed._src.trajectories import Trajectories, validate_trajectories

__all__ = ["MediationResult", "mediation_effects", "mediation_estimator_spec", "ESTIMATORS",
           "EFFECTS"]

Z95 = 1.959963984540054
OVERLAP_LIMIT = 1e-3  # π̂_b(A|S) outside [1e-3, 1 − 1e-3] on an observed step: poor overlap
HUGE_FACTOR = 1e6  # |estimate| > 1e6 · max|R|: nonsense (a true effect is at most 2 max|R|)
ESS_FRACTION, ESS_FLOOR = 0.01, 10.0  # ratio ESS below max(10, 1% of observed steps): low
MIN_TRAJECTORIES, MIN_HORIZON = 10, 2
VARIANCE_RTOL = 1e-10  # a column with std <= 1e-10 · max|x| is constant up to rounding


class MediationResult(NamedTuple):
    """Result of :func:`mediation_effects`; rows ``ESTIMATORS``, columns ``EFFECTS``.

    Attributes:
      estimate: ``(7, 5)`` point estimates (NaN where an estimator does not define an effect).
      se: ``(7, 5)`` standard errors used for the intervals. ``config.se_method="cluster"``
        (default): the naive ``cluster_se``, and for DM the bootstrap SE (NaN when
        ``n_boot = 0``). ``se_method="ij"``: the infinitesimal-jackknife sandwich SE
        sqrt(Σ_i (IF_i − mean IF)² / (N (N − 1))), IF_i = N ∂θ̂/∂v_i by reverse-mode autodiff
        through the whole pipeline (nuisances, Q-functions, ratios; knots, Fourier draws and
        hard clips held fixed; see ``jaxmed._src.mediation.influence``), for every
        estimator, DM included. With ``ratio_draws = M > 1`` it adds the draws' own
        variance: se² = (IJ SE)² + s²/M, s² the sample variance of the M single-draw
        estimates.
      ci_low, ci_high: ``(7, 5)`` normal 95% intervals estimate ∓ 1.96 se.
      cluster_se: ``(7, 5)`` naive trajectory-cluster SEs (§6.7, ddof = 1; nuisances, Q and
        ratios treated as known; NaN for DM), for comparison.
      boot_se: ``(7, 5)`` trajectory-bootstrap SEs (NaN when ``n_boot = 0``).
      boot_estimates: ``(n_boot, 7, 5)`` bootstrap replicates.
      eta: ``(5,)`` η̂1..η̂5 (natural decomposition: η̂1, η̂6, η̂7, η̂8, η̂5).
      influence: ``(N, 7, 5)`` per-trajectory influence values: IF_i = N ∂θ̂/∂v_i
        (``se_method="ij"``) or the naive cluster values ψ_i (``"cluster"``, ``uncertainty``);
        NaN on undefined cells.
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
        """Long-format pandas DataFrame: estimator, effect, estimate, se, ci_low, ci_high, status.

        ``status`` is the fit's status in words (``jaxmed.status.status_text``: ``"ok"`` or
        the names of the set bits, e.g. ``"poor_overlap"``). Undefined (estimator, effect)
        pairs (e.g. MIS2 DDE) are left out; pairs that could not be estimated (NaN with a
        non-zero status) are kept, with NaN values; so are the rows that
        ``MediationConfig.ij_estimators`` left without an IJ SE (estimate kept, NaN SE).
        """
        import pandas as pd

        est = np.asarray(self.estimate)
        code = int(np.asarray(self.diagnostics.status))
        words = status_text(code)
        # undefined by design: no estimate and the per-row values NaN for every trajectory
        # (e.g. MIS2 DDE); a row whose IJ passes were skipped (``ij_estimators``) keeps its
        # estimate with a NaN influence, and stays
        undefined = np.isnan(np.asarray(self.influence)).all(axis=0) & np.isnan(est)
        recs = []
        for i, e in enumerate(ESTIMATORS):
            for j, k in enumerate(EFFECTS):
                if undefined[i, j] or (np.isnan(est[i, j]) and code == 0):
                    continue
                recs.append(dict(estimator=e, effect=k, estimate=float(est[i, j]),
                                 se=float(self.se[i, j]), ci_low=float(self.ci_low[i, j]),
                                 ci_high=float(self.ci_high[i, j]), status=words))
        return pd.DataFrame.from_records(
            recs, columns=["estimator", "effect", "estimate", "se", "ci_low", "ci_high", "status"])


def guard_estimates(estimate, diagnostics, data: Trajectories):
    """Named status bits for what cannot be estimated, and NaN for its estimates (in jit).

    Adds to ``diagnostics.status`` (bits of :class:`jaxmed.status.MediationStatus`):
    POOR_OVERLAP when π̂_b(A|S) leaves [1e-3, 1 − 1e-3] on an observed step (every estimate
    NaN: the effects are not identified from the data); LOW_RATIO_ESS when a ratio weight
    vector has effective sample size below max(10, 1% of the observed steps) (flag only);
    HUGE_ESTIMATE when an estimate is infinite or exceeds 1e6 · max|R| in magnitude (that
    entry NaN). Entries NaN by design (e.g. MIS2 DDE) stay NaN and flag nothing.

    Returns:
      ``(estimate, diagnostics)`` with the NaNs and bits applied.
    """
    mask = data.mask > 0
    n_obs = jnp.sum(mask)
    r_max = jnp.max(jnp.where(mask, jnp.abs(data.reward), 0.0))
    bound = HUGE_FACTOR * jnp.maximum(r_max, jnp.finfo(estimate.dtype).tiny)
    d = diagnostics
    poor = ((d.behaviour_prob_min < OVERLAP_LIMIT) | (d.behaviour_prob_max > 1.0 - OVERLAP_LIMIT)
            | ~jnp.isfinite(d.behaviour_prob_min) | ~jnp.isfinite(d.behaviour_prob_max))
    ess = d.ratio_ess
    low_ess = jnp.any(~(ess >= jnp.maximum(ESS_FLOOR, ESS_FRACTION * n_obs)))
    defined = ~jnp.isnan(estimate)
    huge = defined & (jnp.isinf(estimate) | (jnp.abs(estimate) > bound))
    status = (d.status
              | jnp.where(poor, int(MediationStatus.POOR_OVERLAP), 0)
              | jnp.where(low_ess, int(MediationStatus.LOW_RATIO_ESS), 0)
              | jnp.where(jnp.any(huge), int(MediationStatus.HUGE_ESTIMATE), 0))
    estimate = jnp.where(huge | poor, jnp.nan, estimate)
    return estimate, d._replace(status=status.astype(jnp.int32))


def se_rows(config: MediationConfig) -> np.ndarray:
    """``(7,)`` bool (static): the estimator rows whose ``se`` the configuration asks for.

    Cluster SE: every row but DM, and DM with a bootstrap (``n_boot > 1``); IJ SE: the rows of
    ``config.ij_estimators`` (all when ``None``).

    >>> se_rows(MediationConfig()).astype(int).tolist()
    [1, 0, 1, 1, 1, 1, 1]
    >>> se_rows(MediationConfig(se_method="ij", ij_estimators=("DM",))).astype(int).tolist()
    [0, 1, 0, 0, 0, 0, 0]
    """
    if config.se_method == "ij":
        names = ESTIMATORS if config.ij_estimators is None else config.ij_estimators
        return np.isin(np.asarray(ESTIMATORS), np.asarray(names))
    rows = np.ones(len(ESTIMATORS), bool)
    rows[ESTIMATORS.index("DM")] = config.n_boot > 1
    return rows


def guard_se(estimate, se, rows, diagnostics):
    """SE_NONFINITE for a finite estimate whose asked-for SE is not finite (in jit).

    Args:
      estimate: ``(7, 5)`` estimates after :func:`guard_estimates`.
      se: ``(7, 5)`` standard errors.
      rows: ``(7,)`` static bool, the rows whose SE is asked for (:func:`se_rows`).
      diagnostics: ``PipelineDiagnostics``.

    Returns:
      ``(se, diagnostics)``: such SEs set to NaN (an infinite SE too), the bit added. SEs of
      rows not asked for, and of NaN estimates, are left as they are and flag nothing.
    """
    bad = jnp.isfinite(estimate) & ~jnp.isfinite(se) & jnp.asarray(rows)[:, None]
    status = diagnostics.status | jnp.where(jnp.any(bad), int(MediationStatus.SE_NONFINITE), 0)
    return (jnp.where(bad, jnp.nan, se),
            diagnostics._replace(status=status.astype(jnp.int32)))


def mediation_core(key, data: Trajectories, target_policy, a0: int, config: MediationConfig,
                   nuisances: NuisancePredictions | None = None) -> MediationResult:
    """Pure, unbatched core of :func:`mediation_effects` (no validation; jit/vmap/grad-able).

    ``a0`` must be static. The bootstrap refits the whole pipeline (nuisances included, unless
    ``nuisances`` are injected, which then stay fixed) with multinomial trajectory weights.
    """
    target_policy = as_policy(target_policy, data.state.shape[-1])  # "logistic:0.7" works too
    n = data.action.shape[-2]
    k_fit, k_boot = jax.random.split(key)
    mask = data.mask
    real = real_trajectories(mask)  # trajectories with an observed step (not padding)
    dm = ESTIMATORS.index("DM")
    if config.se_method == "ij":
        out, infl = ij_influence(k_fit, data, target_policy, a0, config, nuisances)
    else:
        ones = jnp.ones(n, data.reward.dtype)
        out = estimate_pipeline(k_fit, data, ones, target_policy, a0, config, nuisances)
        _, infl = cluster_influence(out.rows, mask)
    cse = cluster_se(out.rows, mask)
    cse = cse.at[dm].set(jnp.nan)
    if config.n_boot > 0:
        def one(k):
            v = bootstrap_counts(k, n, data.reward.dtype, real=real)
            return estimate_pipeline(k_fit, data, v, target_policy, a0, config, nuisances).estimate

        boot = jax.lax.map(one, jax.random.split(k_boot, config.n_boot),
                           batch_size=min(config.boot_batch_size, config.n_boot))
        bse = jnp.std(boot, axis=0, ddof=1) if config.n_boot > 1 else jnp.full_like(cse, jnp.nan)
    else:
        boot = jnp.zeros((0,) + cse.shape, cse.dtype)
        bse = jnp.full_like(cse, jnp.nan)
    estimate, diagnostics = guard_estimates(out.estimate, out.diagnostics, data)
    se = influence_se(infl, real) if config.se_method == "ij" else cse.at[dm].set(bse[dm])
    if config.se_method == "ij" and out.draw_estimates is not None:
        # M > 1 ratio draws: the IJ SE holds the draws fixed; add their own variance,
        # estimated from the M single-draw estimates, divided by M (the estimate is their mean)
        m_draws = out.draw_estimates.shape[0]
        se = jnp.sqrt(se ** 2 + jnp.var(out.draw_estimates, axis=0, ddof=1) / m_draws)
    se = jnp.where(jnp.isnan(estimate), jnp.nan, se)
    se, diagnostics = guard_se(estimate, se, se_rows(config), diagnostics)
    return MediationResult(estimate, se, estimate - Z95 * se, estimate + Z95 * se,
                           cse, bse, boot, out.eta, infl, diagnostics)


_core_jit = jax.jit(mediation_core, static_argnames=("a0",))
_RESULT_TREE = jax.tree.structure(MediationResult(
    *range(len(MediationResult._fields) - 1), PipelineDiagnostics(*range(len(PipelineDiagnostics._fields)))))


def _core_call(key, data, target_policy, a0: int, config, nuisances):
    """``_core_jit(...)``; while lowered programs are kept on disk (the command line,
    ``jaxmed.study.run``), through the kept program (``kept_program``: a warm ``jaxmed
    estimate`` neither traces nor lowers the pipeline), else by ``jax.jit``. The same numbers
    either way."""
    from jaxmed._src.study.kept_program import kept_call

    def core(k, d, policy, c, nuis):
        return mediation_core(k, d, policy, a0, c, nuis)

    # what the program depends on besides the argument arrays: a0, the configuration (its
    # static fields; the others are arguments too), the classes of the policy and nuisances
    settings = (a0, config, type(target_policy),
                None if nuisances is None else type(nuisances))
    res = kept_call("mediation_core", core, settings,
                    (key, data, target_policy, config, nuisances), _RESULT_TREE)
    if res is None:
        res = _core_jit(key, data, target_policy, a0, config, nuisances)
    return res


def se_suffix(config: MediationConfig) -> str:
    """``"+ij"`` when ``config.se_method == "ij"``, else ``""``: part of an ``EstimatorSpec``'s
    name, so that a study store (whose fingerprint holds the name) never mixes the two SEs."""
    return "+ij" if config.se_method == "ij" else ""


# the defaults before session 21 (ρ̃ ≤ 500, the nuisance splines' boundary knots at the range):
# spec settings are measured from them, so a store made with the old defaults (settings None)
# refuses to resume under the new ones instead of mixing their numbers
_LEGACY_DEFAULTS = dict(rho_trunc=500.0, nuisance_boundary_quantile=0.0)


def spec_settings(config: MediationConfig) -> tuple | None:
    """``EstimatorSpec.settings`` of a mediation spec: the fields of ``config`` that differ from
    the preset its name stands for (``mediation-default``: ``MediationConfig()``,
    ``-binary``: ``MediationConfig.binary()``, ``-natural``: ``natural_decomposition=True``;
    ``se_method`` as the name's ``+ij`` says), with the presets' ``rho_trunc`` and
    ``nuisance_boundary_quantile`` as they were before session 21 (500 and 0), so that the
    current defaults are recorded and a study store made before the change refuses to resume
    rather than mix numbers; ``ij_estimators`` (which rows get an IJ SE) is left out. ``None``
    when the name says everything.

    >>> spec_settings(MediationConfig(se_method="ij", rho_trunc=500.0,
    ...                               nuisance_boundary_quantile=0.0)) is None
    True
    >>> spec_settings(MediationConfig(ratio_draws=4))
    (('nuisance_boundary_quantile', 0.0025), ('ratio_draws', 4), ('rho_trunc', 50.0))
    """
    base = (MediationConfig.binary() if config.mediator_law == "bernoulli"
            and not config.natural_decomposition else MediationConfig())
    base = base.replace(natural_decomposition=config.natural_decomposition,
                        se_method=config.se_method, **_LEGACY_DEFAULTS)
    return config.differences(base, ignore=("ij_estimators",)) or None


def _control_action(control_policy) -> int:
    if control_policy is None:
        return 0
    control_policy = as_policy(control_policy, 1)  # "constant:0" / "constant:1"
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


def _constant_columns(x):
    """Indices of the columns of ``x`` ``(rows, d)`` that are constant up to rounding."""
    scale = np.abs(x).max(axis=0)
    return np.nonzero(x.std(axis=0) <= VARIANCE_RTOL * scale)[0]


def _check_sizes_and_scales(data, mask, dtype):
    """Minimum N and T, variation of S, M and R, and magnitudes float arithmetic can square."""
    n, t = mask.shape
    if n < MIN_TRAJECTORIES:
        raise ValueError(f"data: expected at least {MIN_TRAJECTORIES} trajectories (the "
                         f"trajectory-cluster standard errors and the nuisance fits need them), got N = {n}")
    lengths = mask.sum(axis=1)
    if lengths.max() < MIN_HORIZON:
        raise ValueError(f"data: expected trajectories of at least {MIN_HORIZON} observed steps "
                         f"(transitions S -> S' of one trajectory), the longest has {int(lengths.max())}")
    n_obs = int(mask.sum())
    limit = float(np.sqrt(np.finfo(dtype).max)) / max(n_obs, 1)
    fields = (("data.state", data.state), ("data.next_state", data.next_state),
              ("data.mediator", data.mediator), ("data.reward", data.reward))
    for name, arr in fields:
        x = np.asarray(arr, np.float64)
        big = np.abs(x) > limit
        if big.ndim == 3:
            big = big.any(axis=-1)
        big &= mask
        if big.any():
            i, k = np.argwhere(big)[0]
            raise ValueError(f"{name}: magnitude {np.abs(x[i, k]).max():.3g} at trajectory {i}, time "
                             f"{k} exceeds {limit:.3g} = sqrt(largest {np.dtype(dtype).name}) / "
                             f"{n_obs} observed steps (its sums of squares would overflow); rescale it")
    for name, arr in (("data.state", data.state), ("data.mediator", data.mediator),
                      ("data.reward", np.asarray(data.reward)[..., None])):
        x = np.asarray(arr, np.float64)[mask]
        flat = _constant_columns(x)
        if flat.size:
            j = int(flat[0])
            raise ValueError(f"{name}: column {j} is constant (std {x[:, j].std():.3g} <= "
                             f"{VARIANCE_RTOL:g} * max|x|) over the observed steps; the models "
                             f"need variation")


def _validate(data, target_policy, nuisances, dtype, config=None):
    if not isinstance(data, Trajectories):
        raise ValueError(f"data: expected a jaxmed Trajectories, got {type(data).__name__}")
    try:
        validate_trajectories(data)
    except ValueError as e:
        raise ValueError(f"data: {e}") from None
    mask = np.asarray(data.mask, bool)
    _check_sizes_and_scales(data, mask, dtype)
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
        (π̂_b(A|S) outside [1e-3, 1 − 1e-3] on an observed step) or the MR estimate is not
        finite. With ``check=False`` these come back as NaN estimates with named status bits
        (``jaxmed.status.MediationStatus``; ``to_frame()`` prints them in words).

    Before anything is traced, ``data`` must have at least 10 trajectories, a trajectory of at
    least 2 observed steps, both actions, states, mediators and rewards that vary (std above
    1e-10 · max|x| per column) and magnitudes below sqrt(largest float) / (observed steps);
    otherwise a ``ValueError`` names the argument.

    Returns:
      ``MediationResult`` (use ``.to_frame()`` for a pandas table).

    >>> import jax, jaxmed
    >>> from jaxmed.mediation import mediation_effects, MediationConfig
    >>> from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    >>> data = simulate_semi_synthetic(jax.random.key(0), 40, 10)
    >>> res = mediation_effects(data, jaxmed.policies.semi_synthetic_target_policy(),
    ...                         key=jax.random.key(1))
    >>> list(res.to_frame().columns)
    ['estimator', 'effect', 'estimate', 'se', 'ci_low', 'ci_high', 'status']
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
        res = _core_call(key, arrays, target_policy, a0, config, nuisances)
        res = jax.tree_util.tree_map(np.asarray, res)
    if check:
        d = res.diagnostics
        lo, hi = float(d.behaviour_prob_min), float(d.behaviour_prob_max)
        if int(d.status) & MediationStatus.POOR_OVERLAP:
            raise ValueError(f"data: no overlap: the fitted behaviour policy gives π̂_b(A|S) in "
                             f"[{lo:.6g}, {hi:.6g}] on the observed steps, outside "
                             f"[{OVERLAP_LIMIT:g}, 1 - {OVERLAP_LIMIT:g}]: an action is (almost) never "
                             f"taken in some states, so its effects are not identified")
        if not np.isfinite(res.estimate[0]).all():
            raise ValueError(f"data: the MR estimate is not finite (status {int(d.status)}: "
                             f"{status_text(d.status)}); diagnostics: {d}")
    return res


def mediation_estimator_spec(target_policy, control_policy=None,
                             config: MediationConfig | None = None) -> EstimatorSpec:
    """``EstimatorSpec`` for the study engine: ``fn(key, data) -> EffectTable`` (jit/vmap-able).

    Rows ``ESTIMATORS`` (MR, DM, MIS1, MIS2, Baseline_DM, Baseline_IPW, Baseline_MR), columns
    ``EFFECTS`` (IDE, IME, DDE, DME, ATE). No validation happens inside ``fn``; the status
    field carries failures. The policies may be given in the command line's spelling
    (``"logistic:0.7"``, ``"constant:0"``), read when ``fn`` first sees the data's state dimension.
    """
    config = MediationConfig() if config is None else config
    a0 = _control_action(control_policy)

    def fn(key, data):
        return mediation_core(key, data, target_policy, a0, config).to_effect_table()

    name = ("mediation-natural" if config.natural_decomposition
            else "mediation-binary" if config.mediator_law == "bernoulli" else "mediation-default")
    name += se_suffix(config)
    # trajectories without an observed step are ignored (padding.py): N-grids may be padded,
    # between sizes for which the knot rule (which reads the padded N·T) picks the same knots
    def restrict(names):  # the IJ SE's reverse passes for the rows ``names`` only
        return mediation_estimator_spec(target_policy, control_policy,
                                        config.replace(ij_estimators=tuple(names)))

    return EstimatorSpec(name, ESTIMATORS, EFFECTS, fn, pad=pad_trajectories,
                         pad_group=lambda n, h: resolve_state_knots(config, n * h).state_knots,
                         restrict=restrict if config.se_method == "ij" else None,
                         settings=spec_settings(config))
