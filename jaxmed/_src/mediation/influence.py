"""Infinitesimal-jackknife (sandwich) standard errors of every mediation estimate (issue 13).

Every estimate θ̂ is a smooth function θ̂(v) of the trajectory weights v (``estimate_pipeline``:
row weights w_it = mask_it · v_i enter every fit: the nuisance models, the LSTD systems of the
Q-functions, the state-ratio least squares and the final weighted means). The infinitesimal
jackknife influence of trajectory i is

    IF_i = N · ∂θ̂/∂v_i  at v = 1,

computed here by reverse-mode autodiff through the whole pipeline: one linearisation (the
forward pass, once), then one transposed product per defined (estimator, effect) cell
(``lax.map`` over the cotangents), for one group of estimator rows at a time (``ROW_GROUPS``).
The nuisance fits are linearised apart (``pipeline.nuisance_stage``: the rest of the pipeline
sees them only through their predictions, computed from the fitted coefficients inside the
linearisation), so a cell's pass stops at the coefficients' cotangent, and the fits' own
reverse passes run once for all cells, batched by ``vmap`` (the chain rule, exact to rounding;
1.07x faster for the whole IJ SE at N = 1500, T = 25, paired against the passes through
the fits one cell at a time, ``benchmarks/results/ab-paired-20261202T154918Z.json``). Per group,
``linear_transpose`` of a group's cells keeps only the part of the linear program they depend
on, so the passes of the baselines (nuisance models only) and of MIS1/MIS2 (no Q-function) do
not run through the Q-function systems, and DM's not through the state ratios.
The standard error is

    se = sqrt( Σ_i (IF_i − mean IF)² / (N (N − 1)) ),

the trajectory-cluster sandwich of the stacked estimating equations (nuisance scores, LSTD
and ratio equations, each estimator's own equation): for an M-estimator, ∂θ̂/∂v_i is
−(∂θ/∂φ) H⁻¹ ψ_i(φ̂) plus the direct term, i.e. the sandwich. The factor N/(N − 1) (instead of
the jackknife's 1) is the usual small-sample correction; with every fitted piece (nuisances,
Q-functions, ratios) held fixed IF_i is the trajectory-cluster influence value ψ_i and se
equals the naive ``cluster_se``. (Σ_i IF_i is
not exactly 0: the ridges are not scaled with Σ v, so θ̂(c v) ≠ θ̂(v); the SE centres IF.)

What is held fixed (not differentiated): data-dependent choices of the bases — the quantile
knots of the spline bases (``stop_gradient``; with ``weighted_knots=False`` they do not depend
on v at all), the standardisers of states and mediators (mean and sd of the rows present,
``basis.fit_standardizer``: constant in v; affine, they do not change the span of the spline
and polynomial bases; they set the random Fourier features' scale), the random Fourier
feature draws (they depend on the key only) —
and hard clips (π̂_b clipped to [1e-6, 0.9999], ρ̃ = min(ρ, rho_trunc), ω̂ clipped to
[1/ratio_trunc, ratio_trunc]) have zero derivative on the clipped rows. The uncertainty of
those choices is not in the SE (the bootstrap, ``n_boot``, refits the knots when they are
weighted quantiles, ``weighted_knots=True``, the default, but never redraws the features).

The random Fourier draw matters: the SE is conditional on it. On multidim (N = 1500, T = 100,
D = 15 features) MR DDE / DME vary over the estimation key on one fixed dataset with SD
0.011 / 0.013, which accounts for the gap between their sampling SD over 400 replications
(0.025 / 0.021) and the mean IJ SE (0.023 / 0.018; coverage 0.927 / 0.892), while on two
fixed datasets the IJ SE of DME (0.0176, 0.0174) is within 15% of both bootstraps with the
key held (multinomial weights 0.0207, 0.0166; resampled trajectories, everything refit
0.0161, 0.0156; 100 resamples each). ``MediationConfig(ratio_draws=M)`` averages the ratios over M draws, dividing
that variance by M (``experiments/README.md``), and ``mediation_core`` then adds the draws'
variance, estimated from the M single-draw estimates, to the IJ SE: se² = (IJ SE)² + s²/M.

Cost. Every linear fit differentiates by a row-wise rule (``normal_solve``, the state-ratio
coefficients in ``state_ratio``): one adjoint solve and one pass over the rows per cotangent
instead of dense p×p cotangents of the Gram matrices; per-action and per-coordinate slices are
taken by one split (``unstack``), whose reverse is one concatenation instead of a zero-padded
copy per slice; the rows are linearised unstacked (``estimate_pipeline(..., stacked=False)``),
since the tangent of one ``(n, 7, 5)`` array would tie every group's passes to all rows. The
groups halved the cost (2.0x at N = 1500, T = 25, ``ab-paired-20261201T211025Z.json``).
Measured (``benchmarks/ij_se_cost.py``) in ``benchmarks/results/``; the numbers are in
``MediationConfig``'s doc of ``se_method``.

Checked (tests/test_mediation_influence.py, tests/test_row_wise_derivatives.py): IF_i equals N times a central finite difference
of the whole pipeline in v_i (relative error < 1e-5; smooth configuration); on one fixed
semi-synthetic dataset (N = 200, T = 10, default configuration) IJ SE / bootstrap SE (200
resamples) is 0.905..1.035 over MR, DM and MIS1, within the bootstrap's Monte Carlo error,
where the naive cluster SE gives 0.72..0.98 for MR. At N = 40 the bootstrap is heavy-tailed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.policies import as_policy
from jaxmed._src.mediation.estimators import EFFECTS, ESTIMATORS
from jaxmed._src.mediation.padding import real_trajectories
from jaxmed._src.mediation.pipeline import PipelineOutput, estimate_pipeline, nuisance_stage
from jaxmed._src.mediation.weighted_stats import row_weights

__all__ = ["defined_effect_cells", "InfluenceFit", "ij_influence", "influence_se", "ROW_GROUPS"]

# Estimator rows (names of ``ESTIMATORS``) whose IJ reverse passes share one transposed
# program: MR (every fitted piece), DM (Q-functions and nuisances), MIS1 and MIS2 (state
# ratios and nuisances, no Q-function), the three baselines (nuisances only). Fewer groups
# compile faster; each group's passes run through what its rows depend on.
ROW_GROUPS = (("MR",), ("DM",), ("MIS1", "MIS2"), ("Baseline_DM", "Baseline_IPW", "Baseline_MR"))
assert sorted(e for g in ROW_GROUPS for e in g) == sorted(ESTIMATORS)  # each row in one group


def defined_effect_cells(natural: bool = False, estimators=None) -> np.ndarray:
    """``(C, 2)`` (estimator, effect) indices that the pipeline defines, without ATE.

    ATE = IDE + IME + DDE + DME per row, so its influence is the sum of the four and needs no
    product of its own. Default decomposition: MR, DM, MIS1 all four effects, MIS2 and the
    baselines IDE and IME (C = 20); natural: MR and DM (C = 8). ``estimators`` (names of
    ``ESTIMATORS``; ``None``: all) keeps the cells of those rows only.
    """
    n_e = 2 if natural else len(ESTIMATORS)
    keep = range(n_e) if estimators is None else [ESTIMATORS.index(e) for e in estimators]
    return np.array([[e, k] for e in range(n_e) for k in range(4)
                     if (natural or e < 3 or k < 2) and e in keep], dtype=int).reshape(-1, 2)


class InfluenceFit(NamedTuple):
    """The pipeline's output at unit weights and the IJ influence of every estimate.

    Attributes:
      output: ``PipelineOutput`` of the full-data fit (same as ``estimate_pipeline`` at v = 1).
      influence: ``(N, 7, 5)`` IF_i = N ∂θ̂/∂v_i (NaN on undefined cells and on the rows
        that ``config.ij_estimators`` leaves out).
    """

    output: PipelineOutput
    influence: jax.Array


def ij_influence(key, data, target_policy, a0: int, config, nuisances=None) -> InfluenceFit:
    """Infinitesimal-jackknife influence of every estimate (see module doc), unbatched.

    Args:
      key: the pipeline's ``jax.random`` key (the one passed to ``estimate_pipeline``).
      data: ``Trajectories`` (one dataset).
      target_policy: a policy with ``prob_one``.
      a0: control action, static 0 or 1.
      config: ``MediationConfig``.
      nuisances: injected ``NuisancePredictions`` (held fixed: then the SE treats them as
        known).

    Returns:
      ``InfluenceFit``.
    """
    target_policy = as_policy(target_policy, data.state.shape[-1])  # text spelling too
    n = data.action.shape[-2]
    ones = jnp.ones(n, data.reward.dtype)
    n_real = jnp.sum(real_trajectories(data.mask))  # trajectories with an observed step
    cells = defined_effect_cells(config.natural_decomposition, config.ij_estimators)
    defined = np.zeros((len(ESTIMATORS), len(EFFECTS)), bool)
    defined[cells[:, 0], cells[:, 1]] = True

    fitted = nuisances is None
    if fitted:
        # the nuisance fits, linearised on their own: the rest of the pipeline depends on them
        # only through their predictions, computed from the fitted params inside the
        # linearisation, so each cell's reverse pass stops at the params (small), and the fits'
        # part of every cell's influence comes from one batched transposed pass of the fits
        # (``vmap`` over the cells' cotangents of the params) instead of one pass per cell
        fit, predict = nuisance_stage(key, data, config)  # the default models (HELD_FIELDS)
        params, fit_linear, predict_free = _linearize_fits(fit, predict, ones)
        fit_transpose = jax.linear_transpose(fit_linear, ones)

    def row_means(v, p=None):
        # the weighted mean of each estimator row on its own, from the unstacked rows
        # (``stacked=False``), undefined cells (NaN columns) zeroed by a static select
        preds = predict_free(p) if fitted else nuisances
        out = estimate_pipeline(key, data, v, target_policy, a0, config, preds, stacked=False)
        w = row_weights(data.mask, v)
        means = tuple(jnp.sum(w[:, None] * jnp.where(defined[e], r, 0.0), axis=0)
                      for e, r in enumerate(out.rows))
        return tuple(m / jnp.sum(w) for m in means), out

    if len(cells) == 0:  # no defined cell among config.ij_estimators: nothing to differentiate
        out = estimate_pipeline(key, data, ones, target_policy, a0, config, nuisances)
        infl = jnp.full((n, len(ESTIMATORS), len(EFFECTS)), jnp.nan, data.reward.dtype)
        return InfluenceFit(out, infl)
    # one linearisation (the forward pass and its residuals, once), then the transposed map
    # of one group of rows at a time: ``linear_transpose`` prunes the linear program to what
    # that group's cells depend on, so e.g. the baselines' and MIS rows' reverse passes do
    # not run through the Q-function systems (see ``ROW_GROUPS``)
    primals = (ones, params) if fitted else (ones,)
    _, linear, out = jax.linearize(row_means, *primals, has_aux=True)
    jac = jnp.zeros((len(cells), n), ones.dtype)
    bars = []  # (cells, their cotangents of the nuisance params) per group
    for group in ROW_GROUPS:
        sel = np.flatnonzero(np.isin(cells[:, 0], [ESTIMATORS.index(e) for e in group]))
        if len(sel) == 0:
            continue

        def group_cells(*dots, sel=sel):
            means = linear(*dots)
            return jnp.stack([means[e][k] for e, k in cells[sel]])

        # one reverse pass per cell, one after another: measured 1.7x faster than ``vmap``
        # over the cotangents at N = 200, T = 25, and less memory; the named scope labels the
        # group's ops in profiles
        with jax.named_scope("ijgroup_" + "_".join(group)):
            transpose = jax.linear_transpose(group_cells, *primals)
            bar = jax.lax.map(transpose, jnp.eye(len(sel), dtype=ones.dtype))
        if fitted:
            bars.append((sel, bar[1]))
        jac = jac.at[sel].set(bar[0])
    if fitted:  # the nuisance fits' part of every cell's influence, in one batched pass
        sel = np.concatenate([b[0] for b in bars])
        params_bar = jax.tree.map(lambda *x: jnp.concatenate(x), *[b[1] for b in bars])
        with jax.named_scope("ij_nuisance_fits"):
            (jac_n,) = jax.vmap(fit_transpose)(params_bar)
        jac = jac.at[sel].add(jac_n)
    out = out._replace(rows=jnp.stack(out.rows, axis=1))
    infl4 = jnp.full((n, len(ESTIMATORS), 4), jnp.nan, jac.dtype)
    infl4 = infl4.at[:, cells[:, 0], cells[:, 1]].set(n_real * jac.T)
    infl = jnp.concatenate([infl4, jnp.sum(infl4, axis=2, keepdims=True)], axis=2)
    return InfluenceFit(out, infl)


# fields of the default nuisance models' fitted params (``nuisance_models``, ``tabular_models``)
# that their fits hold fixed (the spline knots, the standardisers: see the module doc) or that
# are diagnostics: not differentiated through the predictions (the IJ SE uses the default
# models only; the tests compare its influence with one reverse program through the fits)
HELD_FIELDS = ("basis", "mediator_scale", "cond")


def _linearize_fits(fit, predict, ones):
    """The fits linearised at ``ones`` in their params' leaves that are not ``HELD_FIELDS``.

    Returns ``(free, linear, predict_free)``: those leaves' values, the linear map from the
    weights' tangent to theirs, and ``predict`` as a function of them (the held leaves, fitted
    at ``ones``, closed over)."""
    paths, tree = jax.tree_util.tree_flatten_with_path(jax.eval_shape(fit, ones))
    held = [any(getattr(k, "name", None) in HELD_FIELDS for k in path) for path, _ in paths]

    def split_fit(v):
        leaves = jax.tree.leaves(fit(v))
        return ([x for x, h in zip(leaves, held) if not h],
                [x for x, h in zip(leaves, held) if h])

    free, linear, consts = jax.linearize(split_fit, ones, has_aux=True)

    def predict_free(free_leaves):
        free_it, const_it = iter(free_leaves), iter(consts)
        return predict(jax.tree.unflatten(tree, [next(const_it) if h else next(free_it)
                                                 for h in held]))

    return free, linear, predict_free


def influence_se(influence, real=None):
    """sqrt(Σ_i (IF_i − mean IF)² / (N (N − 1))) over the leading (trajectory) axis.

    With ``real`` (``(N,)`` 0/1), the sums, the mean and N are over the real trajectories only
    (padding ignored).
    """
    if real is None:
        real = jnp.ones(influence.shape[0], influence.dtype)
    r = jnp.reshape(real > 0, (-1,) + (1,) * (influence.ndim - 1))
    n = jnp.sum(real > 0).astype(influence.dtype)
    mean = jnp.sum(jnp.where(r, influence, 0.0), axis=0) / n
    dev = jnp.where(r, influence - mean, 0.0)
    return jnp.sqrt(jnp.sum(dev ** 2, axis=0) / (n * (n - 1.0)))
