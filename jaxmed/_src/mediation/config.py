"""``MediationConfig``: static design choices and traced hyper-parameters of the pipeline.

Static fields (basis sizes, parity flags, number of bootstrap draws) change shapes or
branches and are part of the compiled program; numeric fields (ridges, truncation
levels) are pytree leaves, so ``jit`` does not recompile when they change and
``grad``/``vmap`` work over them.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxmed._src.mediation.estimators import ESTIMATORS

__all__ = ["MediationConfig", "RATIO_FEATURES"]

# random Fourier ratio features of the stationary pipeline (``MediationConfig.ratio_features``
# None); the calendar-time pipeline's own default is ``time_effects.TIME_RATIO_FEATURES``
RATIO_FEATURES = 15

_TRACED = ("q_ridge", "ratio_ridge", "reward_ridge", "mediator_ridge", "behaviour_ridge",
           "rho_trunc", "ratio_trunc")


@dataclasses.dataclass(frozen=True)
class MediationConfig:
    """Configuration of :func:`jaxmed.mediation_effects` (spec mediation.md §3–§6).

    Static choices:
      state_knots: interior quantile knots of the cubic B-spline state basis h(s)
        (h has ``state_knots + 4`` columns per state coordinate: a linear term and
        ``state_knots + 3`` B-splines; the B-splines are constant outside the data range, in
        the nuisance models outside the quantiles of ``nuisance_boundary_quantile``).
        With ``state_knots_rule="rate"`` (default) this is the largest number: the pipeline
        uses min(state_knots, ⌊(N·T)^{1/5}⌋) (``jaxmed._src.mediation.knot_rule``).
      state_knots_rule: ``"rate"`` (default: knots grow with the rows as n^{1/5}, capped at
        ``state_knots``; equal to ``"fixed"`` from N·T ≥ 3,125 on) or ``"fixed"``.
      reward_degree: total degree of the monomials of standardised m in the reward model,
        1..5 (default 3; the expectations over the Gaussian mediator model are exact at any
        degree, ``gaussian_expectation.expected_monomials``).
      q_basis: ``"spline"`` (default: [h(s), monomials of standardised m]), ``"parity"``
        (the original's fixed-span de Boor cubics, spec §4.1, unscaled) or ``"binary"``
        (binary s and m: the products of every non-empty subset of the coordinates of
        (s, m), i.e. with the action coding the saturated cell-indicator basis of the
        original's Toy II Q-learner, §7.5).
      q_state_interactions: k ≥ 0; with d_S ≥ 2 the spline Q basis also gets, for every pair of
        state coordinates i < j, the products of the first k terms of their blocks of h
        ([z, B_1, B_2, ...]; k = state_knots + 4 is the full tensor product). 0 (default):
        additive in the state coordinates. No effect when d_S = 1. The design lookup
        (``design_config``) sets it for multi-dimensional states.
      q_mediator_degree: total degree of the mediator monomials in the Q basis (≤ 3, so that
        the two-node Gauss–Hermite expectation is exact).
      q_mediator_cross: include cross monomials (m1·m2, m1²·m2, ...) in the Q basis.
      q_ridge_eta: the Q ridge also penalises the η coordinate (parity, bug B2).
      q_time_interactions: ``"none"`` (default) or ``"linear"``: the last state coordinate
        is calendar time τ (``mediation_effects_time`` sets this), and the spline Q basis
        gains the products of τ's block of h (its linear term and B-splines) with the
        linear terms of the other state coordinates and of standardised m, so that the
        value's dependence on s and m may change over the calendar window
        (``docs/nonstationary_mediation.md``).
      mediator_time: True (default): the mediator model sees every state coordinate. False:
        the last state coordinate (calendar time, appended by ``mediation_effects_time``) is
        left out of the mediator model, p̂_m(·|s, τ, a) = p̂_m(·|s, a): the exogenous drift
        moves states and rewards but not the mediator law given the state
        (``time_free_mediator``; needs dS ≥ 2).
      ratio_features: D, the number of random Fourier features of the state ratios (§5.1).
        ``None`` (default): ``RATIO_FEATURES`` (15) in the stationary pipeline and
        ``time_effects.TIME_RATIO_FEATURES`` (40) in the calendar-time one
        (``mediation_effects_time``); a number is used as given by both.
      ratio_basis: ``"rff"`` (default: ψ = [1, random Fourier features], §5.1) or
        ``"binary"`` (binary s: ψ = [1, products of subsets of s's coordinates]; for d_S = 1
        the original's Toy II ψ(s) = [1, s], §5.1).
      ratio_standardize: standardise s before the random Fourier features (default). Raw
        semi-synthetic states span about −15..25, where cos(w s + b) with w ~ N(0, 2)
        oscillates many times over the support and the 15 features are nearly orthogonal
        noise; on standardised states they are smooth functions of s.
      ratio_fixed_features: use the original's exact W, b (spec §5.1, d_S = 1 only).
      ratio_draws: M independent draws of the random Fourier features (default 1); the state
        ratios are fitted on each and averaged (every estimator is linear in the ratios, so
        the estimate is the mean of the M single-draw estimates). The cluster SE and the
        bootstrap hold the draws fixed, so the draws' own variance is not in them; averaging
        divides it by M. The IJ SE (``se_method="ij"``) adds it: se² = (IJ SE)² + s²/M,
        s² the sample variance of the M single-draw estimates
        (``PipelineOutput.draw_estimates``). Measured (multidim, N = 1500, T = 100, one
        dataset, 30 keys, D = 15):
        SD over the draws of MR DDE / DME 0.011 / 0.013, about the gap between the sampling
        SD (0.025 / 0.021 over 400 replications) and the mean IJ SE (0.023 / 0.018)
        (``experiments/README.md``). ``"rff"`` basis only; the cost of the ratio fits and of
        their reverse passes grows M-fold.
      ratio_normalize: divide ω̂ by its (weighted) mean over the observed states (§5.3).
      mediator_law: ``"gaussian"`` (default: p̂_m = N(mean, diag sd²)) or ``"bernoulli"``
        (binary mediators: p̂_m(m|s, a) = Π_j p_j^{m_j}(1 − p_j)^{1 − m_j} with p = the
        ``mediator_mean`` of the nuisance predictions; expectations are exact corner sums).
      nuisance_model: ``"parametric"`` (default: logistic π̂_b, Gaussian p̂_m, polynomial r̂)
        or ``"tabular"`` (binary s and m: saturated cell frequencies for π̂_b, P̂(M = 1|s, a)
        and r̂(s, a, m); needs ``mediator_law="bernoulli"``).
      clip_densities: clip mediator densities to [1e-6, 0.9999] before forming ρ (parity, B5).
      natural_decomposition: MR and DM for the natural decomposition (§2.1, §6.6) instead of
        the default one; MIS and the baselines are NaN then.
      behaviour_iterations: Newton iterations of the logistic behaviour model.
      behaviour_basis: ``"linear"`` (intercept + standardised s) or ``"spline"`` (h(s)).
      weighted_knots: where the spline knots come from. True (default): weighted quantiles of
        the standardised states (``stop_gradient``-ed; at integer weights they jump with the
        weights, so d/d v_i holds them fixed in standardised units and a finite difference of
        the pipeline does not converge to it). False: unweighted quantiles of the raw states
        over the rows with positive weight, standardised with the weighted standardiser.
        Identical numbers at unit weights; the estimate is then a smooth function of the
        trajectory weights near them (knots fixed in raw state units) and ``jacfwd`` w.r.t.
        the weights matches central finite differences.
      nuisance_boundary_quantile: b: the boundary knots of the state splines h(s) of the
        nuisance models (mediator mean, reward, and a spline behaviour model) are the
        weighted quantiles b and 1 − b of each state coordinate, with the B-splines constant
        beyond them (h then extrapolates linearly through its linear term); 0: the range of
        the data. Default 0.0025 (with ``rho_trunc = 50``, since session 21). The Q basis
        always keeps the range. With range knots one extreme state (31.3 against a 99%
        quantile of 18.7 at semi-synthetic N = 200) left the outermost B-spline of the
        mediator and reward models resting on a few rows and put MR's DDE / DME 3–5 off with
        status 0; b = 0.0025 removes it. Alone, b can make the second small-sample failure
        (a large mediator density ratio, see ``rho_trunc``) worse; the pair was as good as or
        better than range knots with ρ̃ ≤ 500 on every cell screened, and moves MR's DDE,
        DME and ATE by at most 0.003 at N·T ≥ 7,500 (``experiments/README.md``,
        "Small-sample defaults").
      soft_clip: temperature τ of a smooth clip (0, default: hard clips). With τ > 0,
        ρ̃ = softmin(ρ, rho_trunc) and ω̂ = softclip(ψᵀβ, 1/ratio_trunc, ratio_trunc), where
        softmin(x, c) = c − τc·softplus((c − x)/(τc)) and softmax(x, l) = l + τl·softplus((x − l)/(τl))
        (the temperature is relative to each bound). The estimate is then differentiable in
        ``rho_trunc`` and ``ratio_trunc`` everywhere; values far inside the bounds move by
        about τc·exp(−(c − x)/(τc)).
      se_method: ``"cluster"`` (default): ``se`` is the naive trajectory-cluster SE
        (nuisances, Q-functions and ratios treated as known; for DM the bootstrap SE, NaN
        without ``n_boot``). ``"ij"``: the infinitesimal-jackknife sandwich SE through the whole
        pipeline, for every estimator, DM included (``jaxmed._src.mediation.influence``; one
        linearisation, then one transposed product per defined cell, 20 in all, each pruned to
        what its estimator row depends on, the nuisance fits' own passes batched over the
        cells: measured 4.7x / 4.4x the point estimate's run time (37 / 341 ms against 7.8 /
        77 ms) and 2.4x / 2.7x its compile time at N = 200 / 1500, T = 25
        (``benchmarks/results/ij-se-cost-20261202T155051Z.json``); MR alone,
        ``ij_estimators=("MR",)``: 2.6x / 2.7x (same file; the issue's bound is 3x for every
        estimator, which is why it is not the default). On the command line:
        ``--se ij``. Coverage of the MR intervals at N = 500 (400 replications): 0.93–0.94
        with the IJ SE, 0.88–0.94 with the naive one; over 1,000 other replications at
        N = 500 and 1500, MR's and DM's consistent effects 0.941–0.961 with the IJ SE
        (``experiments/README.md``).
      ij_estimators: with ``se_method="ij"``, the rows (names of ``ESTIMATORS``) whose
        influence and IJ SE are computed; ``None`` (default): every row. The cost of the IJ SE
        is one reverse pass per (estimator, effect) cell, so asking for fewer rows costs
        less (``("MR",)``: 4 of the 20 passes; ``()``: none); the other rows keep their point
        estimates and get a NaN ``se`` and ``influence`` (not computed). The study engine
        sets it from ``--estimators`` (``jaxmed.study.select_estimators``). Ignored by
        ``"cluster"``.
      n_boot: trajectory-bootstrap replicates (0: none; ``boot_se`` is then NaN).
      boot_batch_size: bootstrap replicates evaluated at once (``lax.map`` batch size). Default 1
        (sequential): on CPU, vmapping the pipeline over bootstrap weights was measured to be
        pathologically slow (see the report).

    Traced hyper-parameters:
      q_ridge: λ_Q of the LSTD systems (§4.2).
      ratio_ridge: λ_ω of the ratio least squares (§5.2).
      reward_ridge, mediator_ridge, behaviour_ridge: ridges of the nuisance fits.
      rho_trunc: ρ̃ = min(ρ, rho_trunc) (§3.4). Default 50 (since session 21; the original
        and ``parity()`` use 500, B5): a few rows with ρ in the hundreds, from the fitted
        mediator law's tails, put MR's IDE and IME 1–2 off in opposite directions at
        N = 100–200; at 50 no replication screened had them, and no truncation bias was
        measurable: paired shifts ≤ 0.009 ± 0.004 (IDE / IME on variance-1 and multidim,
        whose MSE it halves) and ≤ 0.003 on the delayed effects (``experiments/README.md``,
        "Small-sample defaults").
      ratio_trunc: ω̂ clipped to [1/ratio_trunc, ratio_trunc] (§5.3).
    """

    state_knots: int = 5
    state_knots_rule: str = "rate"
    reward_degree: int = 3
    q_basis: str = "spline"
    q_state_interactions: int = 0
    q_mediator_degree: int = 3
    q_mediator_cross: bool = True
    q_ridge_eta: bool = False
    ratio_basis: str = "rff"
    mediator_law: str = "gaussian"
    nuisance_model: str = "parametric"
    ratio_features: int | None = None
    ratio_standardize: bool = True
    ratio_fixed_features: bool = False
    ratio_draws: int = 1
    ratio_normalize: bool = True
    clip_densities: bool = False
    natural_decomposition: bool = False
    behaviour_iterations: int = 25
    behaviour_basis: str = "linear"
    weighted_knots: bool = True
    nuisance_boundary_quantile: float = 0.0025
    soft_clip: float = 0.0
    se_method: str = "cluster"
    ij_estimators: tuple[str, ...] | None = None
    n_boot: int = 0
    boot_batch_size: int = 1
    q_ridge: float = 1e-4
    ratio_ridge: float = 1e-4
    reward_ridge: float = 1e-6
    mediator_ridge: float = 1e-6
    behaviour_ridge: float = 1e-4
    rho_trunc: float = 50.0
    ratio_trunc: float = 500.0
    q_time_interactions: str = "none"
    mediator_time: bool = True

    def __post_init__(self):
        if self.q_basis not in ("spline", "parity", "binary"):
            raise ValueError(f"config.q_basis: expected 'spline', 'parity' or 'binary', got "
                             f"{self.q_basis!r}")
        if self.q_time_interactions not in ("none", "linear"):
            raise ValueError(f"config.q_time_interactions: expected 'none' or 'linear', got "
                             f"{self.q_time_interactions!r}")
        if self.q_time_interactions != "none" and self.q_basis != "spline":
            raise ValueError("config.q_time_interactions: needs q_basis='spline'")
        if self.ratio_basis not in ("rff", "binary"):
            raise ValueError(f"config.ratio_basis: expected 'rff' or 'binary', got {self.ratio_basis!r}")
        if self.mediator_law not in ("gaussian", "bernoulli"):
            raise ValueError(f"config.mediator_law: expected 'gaussian' or 'bernoulli', got "
                             f"{self.mediator_law!r}")
        if self.nuisance_model not in ("parametric", "tabular"):
            raise ValueError(f"config.nuisance_model: expected 'parametric' or 'tabular', got "
                             f"{self.nuisance_model!r}")
        if self.nuisance_model == "tabular" and self.mediator_law != "bernoulli":
            raise ValueError("config.nuisance_model: 'tabular' needs mediator_law='bernoulli'")
        if self.state_knots_rule not in ("rate", "fixed"):
            raise ValueError(f"config.state_knots_rule: expected 'rate' or 'fixed', got "
                             f"{self.state_knots_rule!r}")
        if self.behaviour_basis not in ("linear", "spline"):
            raise ValueError(f"config.behaviour_basis: expected 'linear' or 'spline', got "
                             f"{self.behaviour_basis!r}")
        if not 1 <= int(self.q_mediator_degree) <= 3:
            raise ValueError(f"config.q_mediator_degree: expected 1, 2 or 3, got {self.q_mediator_degree}")
        if not 1 <= int(self.reward_degree) <= 5:
            raise ValueError(f"config.reward_degree: expected 1..5, got {self.reward_degree}")
        if self.se_method not in ("ij", "cluster"):
            raise ValueError(f"config.se_method: expected 'ij' or 'cluster', got {self.se_method!r}")
        if self.ij_estimators is not None:
            names = self.ij_estimators
            names = (names,) if isinstance(names, str) else tuple(names)
            unknown = [e for e in names if e not in ESTIMATORS]
            if unknown:
                raise ValueError(f"config.ij_estimators: {unknown} not among "
                                 f"{list(ESTIMATORS)}")
            object.__setattr__(self, "ij_estimators", names)  # hashable, static
        b = self.nuisance_boundary_quantile
        if isinstance(b, bool) or not (isinstance(b, (int, float, np.floating))
                                       and 0.0 <= float(b) < 0.1):
            raise ValueError(f"config.nuisance_boundary_quantile: expected a quantile "
                             f"0 <= b < 0.1, got {b!r}")
        if not float(self.soft_clip) >= 0.0:
            raise ValueError(f"config.soft_clip: expected a temperature >= 0, got {self.soft_clip}")
        for name in ("state_knots", "n_boot", "q_state_interactions"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"config.{name}: expected a non-negative int, got {getattr(self, name)}")
        if int(self.ratio_draws) > 1 and (self.ratio_basis != "rff" or self.ratio_fixed_features):
            raise ValueError("config.ratio_draws: more than one draw needs ratio_basis='rff' with "
                             "random features (ratio_fixed_features=False)")
        for name in ("ratio_features", "ratio_draws", "behaviour_iterations", "boot_batch_size"):
            if name == "ratio_features" and self.ratio_features is None:
                continue
            if int(getattr(self, name)) < 1:
                raise ValueError(f"config.{name}: expected a positive int, got {getattr(self, name)}")
        self._check_traced()

    def _check_traced(self):
        """Ranges of the traced hyper-parameters, checked when they are concrete numbers
        (under ``jit`` the dataclass is rebuilt from tracers, which are not checked)."""
        def concrete(name):
            v = getattr(self, name)
            if isinstance(v, (bool, int, float, np.generic)) or (
                    isinstance(v, np.ndarray) and v.ndim == 0):
                return float(v)
            return None

        for name in ("q_ridge", "ratio_ridge", "reward_ridge", "mediator_ridge", "behaviour_ridge"):
            v = concrete(name)
            if v is not None and not (np.isfinite(v) and v >= 0.0):
                raise ValueError(f"config.{name}: expected a finite ridge >= 0, got {v}")
        v = concrete("rho_trunc")
        if v is not None and not v > 0.0:
            raise ValueError(f"config.rho_trunc: expected a truncation level > 0 (ρ̃ = min(ρ, "
                             f"rho_trunc)), got {v}")
        v = concrete("ratio_trunc")
        if v is not None and not v >= 1.0:
            raise ValueError(f"config.ratio_trunc: expected a truncation level >= 1 (ω̂ is clipped "
                             f"to [1/ratio_trunc, ratio_trunc]), got {v}")

    @classmethod
    def parity(cls, **overrides) -> "MediationConfig":
        """The original's choices where they are not trees or Monte Carlo (spec §4.1, §5.1, B2, B5).

        Fixed-span de Boor Q basis, ridge on η, raw states with the original's W, b in the
        ratio features, clipped mediator densities, ``state_knots`` fixed at any sample size,
        ρ̃ = min(ρ, 500) and the nuisance splines' boundary knots at the data's range.
        Expectations stay exact (closed form).
        """
        base = dict(q_basis="parity", q_ridge_eta=True, ratio_standardize=False,
                    ratio_fixed_features=True, clip_densities=True, state_knots_rule="fixed",
                    rho_trunc=500.0, nuisance_boundary_quantile=0.0)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def binary(cls, **overrides) -> "MediationConfig":
        """Exact, saturated choices for binary states and mediators (toy designs, spec §7.5).

        Bernoulli mediator law, tabular (saturated) nuisance models, the saturated
        indicator Q basis and ψ(s) = [1, s] ratio features with the original's Toy II ratio
        ridge 1e-9. Every nuisance model is then correctly specified for any law of binary
        (S, A, M, R).
        """
        base = dict(mediator_law="bernoulli", nuisance_model="tabular", q_basis="binary",
                    ratio_basis="binary", ratio_ridge=1e-9)
        base.update(overrides)
        return cls(**base)

    def replace(self, **changes) -> "MediationConfig":
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def differences(self, base: "MediationConfig", *,
                    ignore: tuple[str, ...] = ()) -> tuple[tuple[str, object], ...]:
        """The fields whose values differ from ``base``'s, as sorted ``(name, value)`` pairs
        with JSON-ready values (tuples become lists, traced floats Python floats); fields in
        ``ignore`` are skipped.

        >>> MediationConfig(ratio_draws=4).differences(MediationConfig())
        (('ratio_draws', 4),)
        """
        out = []
        for f in dataclasses.fields(self):
            if f.name in ignore:
                continue
            mine, theirs = _plain(getattr(self, f.name)), _plain(getattr(base, f.name))
            if mine != theirs:
                out.append((f.name, mine))
        return tuple(sorted(out))


def _plain(value):
    """A config value as JSON would store it (concrete arrays as Python floats)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError):
        return repr(value)


jax.tree_util.register_dataclass(
    MediationConfig, data_fields=list(_TRACED),
    meta_fields=[f.name for f in dataclasses.fields(MediationConfig) if f.name not in _TRACED])
