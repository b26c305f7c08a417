"""The whole estimation pipeline for one dataset: nuisances → Q-fits → ratios → estimators.

``estimate_pipeline`` is pure, unbatched and jit/vmap/grad-able. It takes per-trajectory
weights v_i (row weights w_k = mask_k · v_i): unit weights give the estimate, multinomial
counts give one trajectory-bootstrap replicate, and derivatives with respect to v_i give
the sensitivity to observation weights.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src.policies import as_policy
from jaxmed._src.mediation.estimators import estimator_rows, row_importance_weights
from jaxmed._src.mediation.knot_rule import resolve_state_knots
from jaxmed._src.mediation.nuisance import (NuisancePredictions, default_nuisance_models,
                                            fit_nuisance_params, predict_nuisances)
from jaxmed._src.mediation.q_function import fit_q_basis, fit_q_functions, q_feature_rows
from jaxmed._src.mediation.state_ratio import (binary_ratio_features, fit_ratio_features,
                                               fit_state_ratios, ratio_features)
from jaxmed._src.mediation.weighted_stats import row_weights

__all__ = ["PipelineDiagnostics", "PipelineOutput", "PolicyFreeFit", "estimate_pipeline",
           "fit_policy_free", "nuisance_stage", "policy_probs", "policy_stage"]

# status bits
STATUS_NONFINITE = 1
STATUS_Q_ILL_CONDITIONED = 2
STATUS_RATIO_ILL_CONDITIONED = 4
COND_LIMIT = 1e12


class PipelineDiagnostics(NamedTuple):
    """Diagnostics of one pipeline run.

    Attributes:
      q_cond: ``(3,)`` condition numbers of the LSTD matrices Σ^{π_e}, Σ^{G}, Σ^{π_0}.
      ratio_cond: ``(3,)`` condition numbers of the ratio normal matrices (π_e, G, π_0).
      ratio_ess: ``(3,)`` effective sample sizes (rows) of ω̂^{π_e}, ω̂^{G}, ω̂^{π_0}.
      ratio_clipped: ``(3,)`` weighted number of rows whose ω̂ was clipped.
      rho_clipped: weighted number of rows with ρ > rho_trunc.
      behaviour_prob_min, behaviour_prob_max: range of π̂_b(A|S) over observed rows.
      mediator_sd_min: smallest mediator sd over observed rows.
      status: int32 bit field: 1 non-finite estimate, 2 an LSTD matrix has condition number
        > 1e12, 4 a ratio normal matrix has condition number > 1e12; 0 = ok.
    """

    q_cond: jax.Array
    ratio_cond: jax.Array
    ratio_ess: jax.Array
    ratio_clipped: jax.Array
    rho_clipped: jax.Array
    behaviour_prob_min: jax.Array
    behaviour_prob_max: jax.Array
    mediator_sd_min: jax.Array
    status: jax.Array


class PipelineOutput(NamedTuple):
    """``estimate`` ``(7, 5)``, per-row values ``rows`` ``(n, 7, 5)`` (``stacked=False``: a tuple
    of the 7 ``(n, 5)`` rows), ``eta`` ``(5,)``, diagnostics.

    ``value_rows`` ``(n, 2)``: per-row MR values of the policy values η^{π_e} and η^{π_0}
    (η̂1 + ω̂^{π_e}κ_e(R + Δ1 − η̂1) and η̂5 + ω̂^{π_0}κ_0(R + Δ5 − η̂5)); their difference is
    the MR ATE row, and the second column does not depend on π_e.

    ``draw_estimates`` ``(M, 7, 5)``: with ``config.ratio_draws = M > 1``, the estimates of each
    single draw of the ratio features (their mean is ``estimate``; held fixed in derivatives);
    ``None`` with one draw.
    """

    estimate: jax.Array
    rows: jax.Array
    eta: jax.Array
    diagnostics: PipelineDiagnostics
    value_rows: jax.Array | None = None
    draw_estimates: jax.Array | None = None


def policy_probs(policy, states):
    """P(A = 1 | s) for rows ``(n, dS)``, computed in the states' dtype (the policy's float
    parameters are cast: a float64 weight must not promote a float32 pipeline to float64)."""
    def cast(x):  # float leaves only; anything else (e.g. a user's policy object) unchanged
        if isinstance(x, float) or (hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)):
            return jnp.asarray(x, states.dtype)
        return x

    return jax.vmap(jax.tree.map(cast, policy).prob_one)(states)


class PolicyFreeFit(NamedTuple):
    """Everything of the pipeline that does not depend on the target policy.

    Attributes:
      rows: the flat rows of the data.
      w: ``(n,)`` row weights.
      preds: ``NuisancePredictions`` (fitted or injected).
      feats: ``QFeatures`` of the Q basis (knots fitted on the weighted rows).
      psi, psi_next: ``(D + 1, n)`` ratio features ψ(S_k)ᵀ, ψ(S'_k)ᵀ, feature-major;
        ``(M, D + 1, n)``, one set per draw, with ``config.ratio_draws = M > 1``.
    """

    rows: dict
    w: jax.Array
    preds: NuisancePredictions
    feats: object
    psi: jax.Array
    psi_next: jax.Array


def nuisance_stage(key, data, config, models=None):
    """The nuisance fits of :func:`fit_policy_free` (the same key: the first half of
    ``split(key)``) as two functions: ``fit(v) -> params`` (the fits on the rows weighted by
    v) and ``predict(params) -> NuisancePredictions`` on every row. Everything after them
    depends on the nuisance models only through the predictions (the IJ SE's reverse passes
    stop there, ``influence``)."""
    config = resolve_state_knots(config, data.mask.size)
    models = default_nuisance_models(config) if models is None else models
    k_nuis, _ = jax.random.split(key)
    rows = data.flat()

    def fit(v):
        return fit_nuisance_params(k_nuis, rows, row_weights(data.mask, v), models)

    def predict(params):
        return predict_nuisances(params, rows, models)

    return fit, predict


def fit_policy_free(key, data, trajectory_weights, config,
                    nuisances: NuisancePredictions | None = None, models=None) -> PolicyFreeFit:
    """The target-policy-free stage of :func:`estimate_pipeline` (nuisances, bases, ψ).

    Fit it once and call :func:`policy_stage` for many target policies (policy search).
    Arguments as in :func:`estimate_pipeline`.
    """
    config = resolve_state_knots(config, data.mask.size)  # knots grow with N·T (knot_rule)
    rows = data.flat()
    w = row_weights(data.mask, trajectory_weights)
    _, k_ratio = jax.random.split(key)
    if nuisances is None:
        fit, predict = nuisance_stage(key, data, config, models)
        preds = predict(fit(trajectory_weights))
    else:
        preds = nuisances
    basis = fit_q_basis(rows, w, config)
    feats = q_feature_rows(basis, rows, preds, config)
    if config.ratio_basis == "binary":
        psi, psi_next = (binary_ratio_features(rows["state"]).T,
                         binary_ratio_features(rows["next_state"]).T)
    else:
        def draw(k):
            rf = fit_ratio_features(k, rows["state"], w, config)
            return (ratio_features(rf, rows["state"], feature_major=True),
                    ratio_features(rf, rows["next_state"], feature_major=True))

        if config.ratio_draws == 1:
            psi, psi_next = draw(k_ratio)
        else:  # (M, rows, D + 1): one feature set per draw (config.ratio_draws)
            psi, psi_next = jax.vmap(draw)(jax.random.split(k_ratio, config.ratio_draws))
    return PolicyFreeFit(rows, w, preds, feats, psi, psi_next)


def policy_stage(fit: PolicyFreeFit, target_policy, a0: int, config,
                 stacked: bool = True) -> PipelineOutput:
    """The target-policy-dependent stage of :func:`estimate_pipeline`: importance weights,
    Q-fits, state ratios and the estimator rows, given a :class:`PolicyFreeFit`
    (``stacked``: see :func:`estimate_pipeline`)."""
    rows, w, preds, feats, psi, psi_next = fit
    natural = config.natural_decomposition
    pe_s = policy_probs(target_policy, rows["state"])
    pe_next = policy_probs(target_policy, rows["next_state"])
    iw = row_importance_weights(rows, preds, pe_s, a0, config.rho_trunc,
                                clip_densities=config.clip_densities, natural=natural,
                                mediator_law=config.mediator_law, soft_clip=config.soft_clip)
    q = fit_q_functions(rows, w, preds, feats, pe_s, pe_next, a0, config.q_ridge, config)
    # state ratios: π_e, G (natural: G'), π_0
    c_g = iw.kappa_e * iw.rho if natural else iw.kappa_0 * iw.rho
    cs = jnp.stack([iw.kappa_e, c_g, iw.kappa_0], axis=1)

    def ratio_fits(p, p_next):
        return fit_state_ratios(p, p_next, cs, w, config.ratio_ridge, config.ratio_trunc,
                                config.ratio_normalize, config.soft_clip, feature_major=True)

    if psi.ndim == 2:
        fits = ratio_fits(psi, psi_next)
        ratios = jnp.stack([f.values for f in fits], axis=1)
        ratio_cond = jnp.stack([f.cond for f in fits])
        ratio_ess = jnp.stack([f.ess for f in fits])
        ratio_clipped = jnp.stack([f.n_clipped for f in fits])
    else:  # config.ratio_draws > 1: the ratios averaged over the draws; worst diagnostics
        fits = jax.vmap(ratio_fits)(psi, psi_next)
        draw_ratios = jnp.stack([f.values for f in fits], axis=-1)  # (M, n, 3)
        ratios = jnp.mean(draw_ratios, axis=0)
        ratio_cond = jnp.max(jnp.stack([f.cond for f in fits], axis=-1), axis=0)
        ratio_ess = jnp.min(jnp.stack([f.ess for f in fits], axis=-1), axis=0)
        ratio_clipped = jnp.max(jnp.stack([f.n_clipped for f in fits], axis=-1), axis=0)
    values = estimator_rows(rows, preds, pe_s, a0, iw, ratios, q.eta, q.delta, natural=natural,
                            stacked=stacked)
    draw_est = None
    if psi.ndim == 3:  # each draw's estimates (every estimator is linear in the ratios)
        # held fixed in derivatives: only the IJ SE's draw-variance term reads them
        p_, pe_, iw_, eta_, delta_, w_ = jax.lax.stop_gradient(
            (preds, pe_s, iw, q.eta, q.delta, w))

        def one_draw(r):
            v = estimator_rows(rows, p_, pe_, a0, iw_, r, eta_, delta_, natural=natural)
            return jnp.sum(w_[:, None, None] * v, axis=0) / jnp.sum(w_)

        draw_est = jax.lax.map(one_draw, jax.lax.stop_gradient(draw_ratios))
    r = rows["reward"]
    value_rows = jnp.stack(
        [q.eta[0] + ratios[:, 0] * iw.kappa_e * (r + q.delta[:, 0] - q.eta[0]),
         q.eta[4] + ratios[:, 2] * iw.kappa_0 * (r + q.delta[:, 5] - q.eta[4])], axis=1)
    if stacked:
        est = jnp.sum(w[:, None, None] * values, axis=0) / jnp.sum(w)
    else:  # each row's mean on its own (no (n, 7, 5) array: see ``estimator_rows``)
        est = jnp.stack([jnp.sum(w[:, None] * v, axis=0) for v in values]) / jnp.sum(w)
    # diagnostics
    observed = w > 0
    pb = preds.behaviour_prob
    finite = jnp.all(jnp.isfinite(est[0])) & jnp.all(jnp.isfinite(est[1]))
    status = (jnp.where(finite, 0, STATUS_NONFINITE)
              + jnp.where(jnp.all(q.cond < COND_LIMIT), 0, STATUS_Q_ILL_CONDITIONED)
              + jnp.where(jnp.all(ratio_cond < COND_LIMIT), 0, STATUS_RATIO_ILL_CONDITIONED))
    diag = PipelineDiagnostics(
        q_cond=q.cond, ratio_cond=ratio_cond, ratio_ess=ratio_ess, ratio_clipped=ratio_clipped,
        rho_clipped=jnp.sum(w * (iw.rho > config.rho_trunc)),
        behaviour_prob_min=jnp.min(jnp.where(observed, pb, jnp.inf)),
        behaviour_prob_max=jnp.max(jnp.where(observed, pb, -jnp.inf)),
        mediator_sd_min=jnp.min(jnp.where(observed[:, None, None], preds.mediator_sd, jnp.inf)),
        status=status.astype(jnp.int32))
    return PipelineOutput(est, values, q.eta, diag, value_rows, draw_est)


def estimate_pipeline(key, data, trajectory_weights, target_policy, a0: int, config,
                      nuisances: NuisancePredictions | None = None, models=None,
                      stacked: bool = True) -> PipelineOutput:
    """Runs every estimator of spec §6 on one dataset.

    Args:
      key: ``jax.random`` key (random Fourier features; passed to the nuisance fits).
      data: ``Trajectories`` (one dataset).
      trajectory_weights: ``(N,)`` non-negative v_i.
      target_policy: a policy with ``prob_one``.
      a0: control action, static 0 or 1.
      config: ``MediationConfig``.
      nuisances: injected ``NuisancePredictions`` (then no nuisance model is fit).
      models: ``NuisanceModels`` (default: from ``config``).
      stacked: ``True``: ``rows`` is one ``(n, 7, 5)`` array; ``False``: the tuple of the 7
        ``(n, 5)`` estimator rows (same values), for the IJ SE's reverse passes one row group
        at a time (``estimator_rows``).

    Returns:
      ``PipelineOutput``.
    """
    target_policy = as_policy(target_policy, data.state.shape[-1])  # text spelling too
    fit = fit_policy_free(key, data, trajectory_weights, config, nuisances, models)
    return policy_stage(fit, target_policy, a0, config, stacked)
