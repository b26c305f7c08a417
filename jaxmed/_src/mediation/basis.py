"""Feature maps of states and mediators (spec mediation.md §4.1).

* ``state_basis``: the default flexible state basis h(s), additive over state
  coordinates: for each standardised coordinate z = (s_j − mean_j)/sd_j (mean and sd of the
  rows present, ``fit_standardizer``) a linear term z
  and the cubic B-splines (clamped knot vector: boundary knots at the sample minimum and
  maximum, ``n_knots`` interior knots at equally spaced quantiles), less the first one
  (the B-splines sum to one, the intercept lives elsewhere). z is clamped to the knot
  range before the B-splines are evaluated, so h is linear outside the data range.
* ``monomials``: all monomials of standardised m of total degree 1..degree.
* ``deboor_fixed_span``: the original's quirky "spline" features: with 8 quantile knots
  and the knot span fixed at l = 3 for every x, each feature is one global cubic
  (§4.1 step 5; equals scipy's extrapolating ``BSpline``).

Fitting a basis (``fit_*``) computes its data-dependent constants from weighted rows;
evaluating it is a pure function of those constants.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.unstack import unstack
from jaxmed._src.mediation.weighted_stats import weighted_mean, weighted_quantile, weighted_std

__all__ = ["Standardizer", "fit_standardizer", "StateBasis", "fit_state_basis", "state_basis",
           "pairwise_interactions",
           "bspline_basis", "monomial_exponents", "monomials", "deboor_fixed_span",
           "ParityBasis", "fit_parity_basis", "parity_basis"]


class Standardizer(NamedTuple):
    """Column centres and scales: z = (x − center) / scale."""

    center: jax.Array
    scale: jax.Array

    def __call__(self, x):
        return (x - self.center) / self.scale


def _knot_weights(w):
    """Unweighted rows with positive weight: piecewise constant in w (zero derivative)."""
    return (jax.lax.stop_gradient(w) > 0).astype(w.dtype)


def fit_standardizer(x, w) -> Standardizer:
    """Mean and sd (ddof = 1) of the columns of ``x`` ``(n, d)`` over the rows with ``w > 0``,
    unweighted; sd 0 becomes 1.

    A data-dependent choice of the bases, like their knots: it depends on which rows are
    present, not on their weights, so it is constant under differentiation in the weights
    (the infinitesimal jackknife) and under the small weight changes of finite differences.
    At 0/1 weights (every estimate, padding) it is the weighted mean and sd; a bootstrap
    resample standardises by its distinct rows. Affine in each coordinate, it leaves the
    span of the spline and polynomial bases unchanged (their intercepts included); it sets
    the random Fourier features' scale.
    """
    present = _knot_weights(w)
    sd = weighted_std(x, present)
    return Standardizer(weighted_mean(x, present), jnp.where(sd > 0, sd, 1.0))


def _safe_div(num, den):
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def bspline_basis(x, knots, degree: int = 3, feature_major: bool = False):
    """All B-splines of ``degree`` on the clamped knot vector ``knots`` at points ``x`` ``(n,)``.

    ``knots`` ``(m,)`` must repeat each boundary knot ``degree + 1`` times; x is clamped to
    [knots[0], knots[-1]] and the right end belongs to the last non-empty interval.
    Returns ``(n, m − degree − 1)`` values that sum to one (``(m − degree − 1, n)`` with
    ``feature_major``, built in that layout).

    Only the ``degree + 1`` B-splines that can be nonzero on x's knot interval μ are computed
    (the triangular Cox–de Boor scheme, Piegl & Tiller's ``BasisFuns``: O(degree²) per point)
    and placed in their columns. The dense recursion over every column, fused by XLA, recomputed
    each lower-degree column for every higher one (2^degree times): 8.7 ms for one (37,500, 9)
    basis at N = 1500, T = 25, about 20 ms per replication. μ is the dense recursion's: the
    interval [t_μ, t_{μ+1}) holding x, and the last one, m − degree − 2, at the right end; a
    zero knot span gives a zero term (as ``_safe_div``), so repeated interior knots give the
    dense recursion's values too (tested against it).
    """
    m = knots.shape[0]
    lo, hi = knots[0], knots[-1]
    x = jnp.clip(x, lo, hi)
    last = m - degree - 2  # index of the interval [t_{m-d-2}, t_{m-d-1}] ending at hi
    # the largest i with t_i <= x (an interval [t_i, t_{i+1}) holding x when x < hi)
    mu = jnp.sum(knots[None, :] <= x[:, None], axis=1) - 1
    mu = jnp.where(x >= hi, last, jnp.clip(mu, degree, last))
    t = [jnp.take(knots, mu + k) for k in range(-degree + 1, degree + 1)]  # t_{μ−d+1..μ+d}
    knot = lambda k: t[k + degree - 1]  # noqa: E731  t_{μ+k}
    left = [None] + [x - knot(1 - j) for j in range(1, degree + 1)]
    right = [None] + [knot(j) - x for j in range(1, degree + 1)]
    vals = [jnp.ones_like(x)]
    for j in range(1, degree + 1):
        saved = jnp.zeros_like(x)
        new = []
        for r in range(j):
            temp = _safe_div(vals[r], right[r + 1] + left[j - r])
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        vals = new + [saved]
    cols = jnp.arange(m - degree - 1)
    first = mu - degree  # B_{μ−d+k} = vals[k]
    if feature_major:
        cols, first, vals = cols[:, None], first[None, :], [v[None, :] for v in vals]
    else:
        cols, first, vals = cols[None, :], first[:, None], [v[:, None] for v in vals]
    out = jnp.zeros(jnp.broadcast_shapes(cols.shape, first.shape), x.dtype)
    for k in range(degree + 1):
        out = out + jnp.where(cols == first + k, vals[k], 0.0)
    return out


class StateBasis(NamedTuple):
    """Constants of h(s): a standardiser and, per state coordinate, a clamped knot vector."""

    standardizer: Standardizer
    knots: jax.Array  # (dS, n_knots + 8), standardised units


def fit_state_basis(state, w, n_knots: int, weighted_knots: bool = True,
                    boundary_quantile: float = 0.0) -> StateBasis:
    """Fits h(s) on weighted rows ``state`` ``(n, dS)``; ``n_knots`` interior quantile knots.

    The boundary knots are the quantiles ``boundary_quantile`` and ``1 − boundary_quantile``
    (0: the range of the data); the B-splines are constant beyond them (``bspline_basis``
    clamps), so h extrapolates linearly through its linear term. The interior knots are the
    quantiles j/(n_knots + 1) either way.

    The standardiser is constant in ``w`` (``fit_standardizer``). ``weighted_knots`` (default):
    the knots are ``w``-weighted quantiles of the standardised states, held fixed under
    differentiation. Otherwise they are unweighted quantiles of the raw states over the rows
    with w > 0 (same numbers at 0/1 weights; constant in w near them: then h is constant in w).
    """
    std = fit_standardizer(state, w)
    z = std(state)
    b = float(boundary_quantile)
    if not 0.0 <= b < 1.0 / (n_knots + 1):
        raise ValueError(f"boundary_quantile: expected 0 <= b < 1/(n_knots + 1) = "
                         f"{1.0 / (n_knots + 1):.3g} (inside the first interior knot), got {b}")
    probs = jnp.linspace(0.0, 1.0, n_knots + 2, dtype=z.dtype)
    if b > 0.0:
        probs = probs.at[0].set(b).at[-1].set(1.0 - b)
    knots = []
    for j in range(state.shape[1]):
        if weighted_knots:
            qs = jax.lax.stop_gradient(weighted_quantile(z[:, j], w, probs))
        else:
            raw = weighted_quantile(state[:, j], _knot_weights(w), probs)
            qs = (raw - std.center[j]) / std.scale[j]
        knots.append(jnp.concatenate([jnp.repeat(qs[:1], 3), qs, jnp.repeat(qs[-1:], 3)]))
    return StateBasis(std, jnp.stack(knots))


def state_basis(params: StateBasis, state, feature_major: bool = False):
    """h(s) ``(n, dS * (n_knots + 4))`` for states ``(n, dS)``: [z_j, B_1(z_j), ...] per
    coordinate (``(dS * (n_knots + 4), n)`` with ``feature_major``, built in that layout: a
    transpose of the row-major basis was a strided copy of 1.3 ms per basis at N = 1500,
    T = 25)."""
    z = params.standardizer(state)
    cols = []
    for j in range(state.shape[1]):
        if feature_major:
            cols.append(z[:, j][None, :])
            cols.append(bspline_basis(z[:, j], params.knots[j], feature_major=True)[1:])
        else:
            cols.append(z[:, j:j + 1])
            cols.append(bspline_basis(z[:, j], params.knots[j])[:, 1:])
    return jnp.concatenate(cols, axis=0 if feature_major else 1)


def pairwise_interactions(h, n_coords: int, k: int):
    """Products of the first ``k`` terms of each pair of coordinates' blocks of ``h``.

    ``h`` ``(n, n_coords · b)`` is ``state_basis`` output: per coordinate j a block of b terms
    [z_j, B_{j,1}, ...]. For every pair i < j (in order) and every a, c < k the column
    h_{i,a} · h_{j,c} (a-major) is returned: ``(n, C(n_coords, 2) · k²)``; with k = b the
    full tensor product of the two blocks. Nothing (zero columns) when ``n_coords < 2`` or
    ``k = 0``.
    """
    b = h.shape[-1] // n_coords
    k = min(int(k), b)
    cols = []
    for i in range(n_coords):
        for j in range(i + 1, n_coords):
            hi = h[..., i * b: i * b + k]
            hj = h[..., j * b: j * b + k]
            cols.append((hi[..., :, None] * hj[..., None, :]).reshape(h.shape[:-1] + (k * k,)))
    if not cols:
        return h[..., :0]
    return jnp.concatenate(cols, axis=-1)


def monomial_exponents(dim: int, degree: int, cross: bool = True) -> np.ndarray:
    """Exponent rows ``(p, dim)`` of the monomials of total degree 1..degree.

    With ``cross=False`` only pure powers x_j^k are kept (an additive basis).
    """
    rows = []
    for total in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(dim), total):
            e = np.bincount(np.asarray(combo), minlength=dim)
            if cross or np.count_nonzero(e) == 1:
                rows.append(e)
    return np.asarray(rows, dtype=np.int64)


def monomials(z, exponents: np.ndarray, feature_major: bool = False):
    """Π_j z_j^{e_j} for each exponent row; ``z`` ``(n, dim)`` -> ``(n, p)`` (``(p, n)`` with
    ``feature_major``)."""
    parts = unstack(z, -1)  # one split: a cheap reverse pass (see ``unstack``)
    cols = []
    for e in exponents:
        term = jnp.ones(z.shape[:-1], dtype=z.dtype)
        for j, k in enumerate(e):
            if k:
                term = term * parts[j] ** int(k)
        cols.append(term)
    return jnp.stack(cols, axis=0 if feature_major else -1)


def deboor_fixed_span(x, knots, span: int = 3, degree: int = 3):
    """B_{span−degree}..B_{span}(x) by de Boor's triangular scheme with the span fixed.

    With the original's 8 knots and span 3 every value is the cubic polynomial that
    equals the B-spline on [t_3, t_4], extrapolated (spec §4.1 step 5).

    Args:
      x: ``(n,)`` points.
      knots: ``(m,)`` knots (not augmented).

    Returns:
      ``(n, degree + 1)`` values.
    """
    left = [None] + [x - knots[span + 1 - j] for j in range(1, degree + 1)]
    right = [None] + [knots[span + j] - x for j in range(1, degree + 1)]
    n = [jnp.ones_like(x)]
    for j in range(1, degree + 1):
        saved = jnp.zeros_like(x)
        new = []
        for r in range(j):
            temp = n[r] / (right[r + 1] + left[j - r])
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        new.append(saved)
        n = new
    return jnp.stack(n, axis=-1)


class ParityBasis(NamedTuple):
    """Knots ``(d_x, L + 1)`` of the original's additive basis over columns x = (s, m)."""

    knots: jax.Array


def fit_parity_basis(state, mediator, w, n_basis: int = 7, weighted_knots: bool = True) -> ParityBasis:
    """Quantile knots at 0, 1/L, ..., 1 of each column of (s, m) (spec §4.1 steps 1–3).

    ``weighted_knots=False``: unweighted quantiles over the rows with w > 0 (constant in w).
    """
    x = jnp.concatenate([state, mediator], axis=1)
    if not weighted_knots:
        w = _knot_weights(w)
    probs = jnp.linspace(0.0, 1.0, n_basis + 1, dtype=x.dtype)
    knots = jnp.stack([weighted_quantile(x[:, j], w, probs) for j in range(x.shape[1])])
    return ParityBasis(jax.lax.stop_gradient(knots))


def parity_basis(params: ParityBasis, state, mediator):
    """φ(s, m) = concat_j (b_{j,1}, b_{j,2}, b_{j,3}) ``(n, 3 d_x)`` (spec §4.1 step 6)."""
    x = jnp.concatenate([state, mediator], axis=-1)
    cols = [deboor_fixed_span(x[..., j], params.knots[j])[..., 1:] for j in range(x.shape[-1])]
    return jnp.concatenate(cols, axis=-1)
