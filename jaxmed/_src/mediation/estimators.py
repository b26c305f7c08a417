"""Per-row values ("ind_est") of DM, MIS1, MIS2, MR and the point-exposure baselines (spec §6).

Every estimator is the weighted mean over rows of a per-row value; this module builds the
``(n, E, K)`` array of those values for E = 7 estimators (``ESTIMATORS``) and K = 5 effects
(``EFFECTS``, ATE = IDE + IME + DDE + DME). Effects an estimator does not define are NaN.
Expectations over the mediator and over binary actions are closed-form inputs
(``NuisancePredictions.reward_expected``, the Q-function's Δ's).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmed._src.mediation.binary import bernoulli_pmf
from jaxmed._src.mediation.clipping import clip_above
from jaxmed._src.mediation.unstack import unstack

__all__ = ["ESTIMATORS", "EFFECTS", "RowWeights", "row_importance_weights", "estimator_rows"]

ESTIMATORS = ("MR", "DM", "MIS1", "MIS2", "Baseline_DM", "Baseline_IPW", "Baseline_MR")
EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")


class RowWeights(NamedTuple):
    """Per-row importance weights (§3.4).

    Attributes:
      kappa_e: π_e(A|S) / π̂_b(A|S).
      kappa_0: π_0(A|S) / π̂_b(A|S).
      rho: Σ_a π_e(a|S) p̂_m(M|S,a) / p̂_m(M|S,A) (natural decomposition: p̂_m(M|S,a0)/p̂_m(M|S,A)).
      rho_tilde: min(ρ, rho_trunc).
    """

    kappa_e: jax.Array
    kappa_0: jax.Array
    rho: jax.Array
    rho_tilde: jax.Array


def _log_density(m, mean, sd):
    z = (m - mean) / sd
    return jnp.sum(-0.5 * z ** 2 - jnp.log(sd) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def _gaussian_density_ratio(a, m, mean, sd, pe_s, a0: int, natural: bool):
    """ρ = Σ_b c_b p̂(M|S, b) / p̂(M|S, A) for diagonal Gaussian mediator laws without a
    logarithm: each ratio is Π_j (σ_{A,j} / σ_{b,j}) · exp(Σ_j (z_{A,j}² − z_{b,j}²) / 2).

    The same value as the exponentiated log-density difference up to rounding; XLA's CPU
    ``log`` cost 2.7 ms for the 2 × (n, d_M) log-densities at N = 1500, T = 25, more than the
    rest of the importance weights.
    """
    # by mediator coordinate (``unstack``): XLA CPU's reductions over a short minor axis went
    # to a slow library kernel (1.3 ms per (37,500, 2) sum)
    cols = lambda x: unstack(x, -1)  # noqa: E731
    ms, means, sds = cols(m), [cols(x) for x in mean], [cols(x) for x in sd]
    taken = a > 0.5
    mean_a = [jnp.where(taken, u1, u0) for u0, u1 in zip(*means)]
    sd_a = [jnp.where(taken, u1, u0) for u0, u1 in zip(*sds)]

    def ratio(b):
        out, expo = 1.0, 0.0
        for mj, ma, sa, mb, sb in zip(ms, mean_a, sd_a, means[b], sds[b]):
            out = out * (sa / sb)
            expo = expo + 0.5 * (((mj - ma) / sa) ** 2 - ((mj - mb) / sb) ** 2)
        return out * jnp.exp(expo)

    if natural:
        return ratio(a0)
    return (1 - pe_s) * ratio(0) + pe_s * ratio(1)


def row_importance_weights(rows, preds, pe_s, a0: int, rho_trunc, *, clip_densities: bool = False,
                           natural: bool = False, mediator_law: str = "gaussian",
                           soft_clip: float = 0.0) -> RowWeights:
    """κ_e, κ_0, ρ and ρ̃ per row.

    π̂_b(A|S) is clipped to [1e-6, 0.9999] (§3.3). With ``clip_densities`` the mediator densities
    (Gaussian, or Bernoulli probabilities with ``mediator_law="bernoulli"``) are clipped to
    [1e-6, 0.9999] before forming ρ (parity, B5); otherwise ρ is unclipped: for Gaussian
    mediators the density ratios without a logarithm (``_gaussian_density_ratio``), for
    Bernoulli ones the ratios of the pmfs. ``soft_clip`` > 0 replaces min(ρ, rho_trunc) by the smooth clip of
    ``jaxmed._src.mediation.clipping``.
    """
    a, m = rows["action"], rows["mediator"]
    pb = jnp.clip(preds.behaviour_prob, 1e-6, 0.9999)
    pe_a = a * pe_s + (1 - a) * (1 - pe_s)
    p0_a = a if a0 == 1 else 1 - a
    mean = unstack(preds.mediator_mean, 1)  # per action, by one split (see ``unstack``)
    sd = unstack(preds.mediator_sd, 1) if mediator_law != "bernoulli" else None
    if not clip_densities and mediator_law != "bernoulli":
        rho = _gaussian_density_ratio(a, m, mean, sd, pe_s, a0, natural)
        return RowWeights(pe_a / pb, p0_a / pb, rho, clip_above(rho, rho_trunc, soft_clip))
    if mediator_law == "bernoulli":
        # the pmfs themselves, no logarithm: a pmf of 0 (P̂(M = m|S, a) = 0 for the action not
        # taken, e.g. a tabular cell where every mediator was 1) has a finite derivative, where
        # log 0 = −inf made every reverse pass 0·∞ = NaN (the IJ SE of thin binary data)
        dens = [bernoulli_pmf(m, mean[b]) for b in (0, 1)]
        if clip_densities:
            dens = [jnp.clip(d, 1e-6, 0.9999) for d in dens]
    elif clip_densities:
        dens = [jnp.clip(jnp.exp(_log_density(m, mean[b], sd[b])), 1e-6, 0.9999) for b in (0, 1)]
    # a select, not a·x + (1 − a)·y, for the density of the action taken
    dens_a = jnp.where(a > 0.5, dens[1], dens[0])
    num = dens[a0] if natural else (1 - pe_s) * dens[0] + pe_s * dens[1]
    rho = num / dens_a
    return RowWeights(pe_a / pb, p0_a / pb, rho, clip_above(rho, rho_trunc, soft_clip))


def _stack_rows(rows, stacked: bool):
    """``(n, 7, 5)`` from the 7 ``(n, 5)`` rows, or (``stacked=False``) the tuple of the rows."""
    return jnp.stack(rows, axis=1) if stacked else tuple(rows)


def estimator_rows(rows, preds, pe_s, a0: int, iw: RowWeights, ratios, eta, delta,
                   natural: bool = False, stacked: bool = True):
    """The ``(n, 7, 5)`` per-row values of every estimator (rows ``ESTIMATORS``, columns ``EFFECTS``).

    Args:
      rows: flat rows (reward, action used).
      preds: ``NuisancePredictions``.
      pe_s: ``(n,)`` π_e(1 | S_k).
      a0: control action (static).
      iw: ``RowWeights``.
      ratios: ``(n, 3)`` ω̂ at S_k for π_e, G (natural: G'), π_0.
      eta: ``(5,)`` η̂ (natural: η̂1, η̂6, η̂7, η̂8, η̂5).
      delta: ``(n, 6)`` Δ1, Δ2, Δ3, Δ4a, Δ4b, Δ5.
      natural: natural decomposition (§6.6): MR and DM only, other rows NaN.
      stacked: ``True``: one ``(n, 7, 5)`` array; ``False``: the tuple of the 7 ``(n, 5)``
        rows, unstacked. The IJ SE linearises the unstacked rows once and transposes one
        group of rows at a time: a stacked array's tangent would tie every row's reverse pass
        to all the others' (``jaxmed._src.mediation.influence``).
    """
    r, a = rows["reward"], rows["action"]
    n = r.shape[0]
    ke, k0, rho, rhot = iw
    # columns by one split each (``unstack``: in reverse mode, one concatenation instead of a
    # zero-padded copy of the whole array per column)
    we, wg, w0 = unstack(ratios, 1)
    d1, d2, d3, d4a, d4b, d5 = unstack(delta, 1)
    er = [unstack(e, 1) for e in unstack(preds.reward_expected, 1)]  # er[i][j] = Ê r(S, i, j)
    rm = unstack(preds.reward_at_mediator, 1)
    r_hat = a * rm[1] + (1 - a) * rm[0]  # r̂(S, A, M)
    r_a0m = rm[a0]  # r̂(S, a0, M)
    e_a = a * er[1][1] + (1 - a) * er[0][0]  # Ê r(S, A)
    e_0 = er[a0][a0]  # Ê r(S, a0)
    e_am = (1 - pe_s) * er[0][0] + pe_s * er[1][1]
    e_g = (1 - pe_s) * er[a0][0] + pe_s * er[a0][1]
    e_ag = a * er[a0][1] + (1 - a) * er[a0][0]
    nan = jnp.full(n, jnp.nan, r.dtype)
    ones = jnp.ones(n, r.dtype)

    def four(ide, ime, dde, dme):
        return jnp.stack([ide, ime, dde, dme, ide + ime + dde + dme], axis=1)

    def two(ide, ime):
        return jnp.stack([ide, ime, nan, nan, nan], axis=1)

    if not natural:
        i1 = we * ke * (r + d1 - eta[0])
        i2 = we * k0 * rhot * (r - r_hat) + we * ke * (r_a0m + d2 - eta[1])
        i3 = we * k0 * (r - e_a) + we * ke * (e_0 + d3 - eta[2])
        i4 = wg * k0 * (r - e_a + rho * (e_0 + d4a - eta[3])) + wg * ke * d4b
        i5 = w0 * k0 * (r + d5 - eta[4])
        mr = four(eta[0] - eta[1] + i1 - i2, eta[1] - eta[2] + i2 - i3,
                  eta[2] - eta[3] + i3 - i4, eta[3] - eta[4] + i4 - i5)
        dm = four(*((eta[j] - eta[j + 1]) * ones for j in range(4)))
        w1, w2, w3 = we * ke * r, we * k0 * rhot * r, we * k0 * r
        w4, w5 = wg * k0 * r, w0 * k0 * r
        mis1 = four(w1 - w2, w2 - w3, w3 - w4, w4 - w5)
        w2p = we * ke * r_a0m
        mis2 = two(w1 - w2p, w2p - w3)
        bdm = two(e_am - e_g, e_g - e_0)
        bipw = two(ke * r - k0 * rhot * r, k0 * rhot * r - k0 * r)
        j1, j2 = ke * (r - e_a), k0 * rhot * (r - r_hat)
        j3, j4 = ke * (r_a0m - e_ag), k0 * (r - e_a)
        bmr = two(j1 + e_am - j2 - j3 - e_g, j2 + j3 + e_g - j4 - e_0)
        return _stack_rows([mr, dm, mis1, mis2, bdm, bipw, bmr], stacked)
    # natural decomposition (§6.6): eta = (η1, η6, η7, η8, η5); ρ = ρ' and wg = ω^{G'}
    x = e_am
    y2 = (1 - pe_s) * rm[0] + pe_s * rm[1]
    i1 = we * ke * (r + d1 - eta[0])
    i2 = w0 * ke * rhot * (r - r_hat) + w0 * k0 * (y2 + d2 - eta[1])
    i3 = w0 * ke * (r - e_a) + w0 * k0 * (x + d3 - eta[2])
    i4 = wg * ke * (r - e_a + rho * (x + d4a - eta[3])) + wg * k0 * d4b
    i5 = w0 * k0 * (r + d5 - eta[4])
    mr = four(eta[1] - eta[4] + i2 - i5, eta[2] - eta[1] + i3 - i2,
              eta[3] - eta[2] + i4 - i3, eta[0] - eta[3] + i1 - i4)
    dm = four((eta[1] - eta[4]) * ones, (eta[2] - eta[1]) * ones, (eta[3] - eta[2]) * ones,
              (eta[0] - eta[3]) * ones)
    blank = jnp.full((n, 5), jnp.nan, r.dtype)
    return _stack_rows([mr, dm, blank, blank, blank, blank, blank], stacked)
