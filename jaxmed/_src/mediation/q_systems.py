"""The three LSTD systems of the Q-fits, solved from their unmaterialised factors (issue 12).

The Q-fits (spec mediation.md §4.2, ``q_function.fit_q_functions``) solve three systems

    Σ_j β_j = b_j,  Σ_j = Σ_k w_k U_k (U_k − Ξ^j_k)ᵀ / W + R,  b_j = Σ_k w_k U_k Y_kᵀ / W,

that share the action-coded regressors U = [(1−a)φ; aφ; a; 1] (q = 2p + 2 rows, feature-major)
and differ in the expected next regressors, each of the form Ξ = [c⁰; c¹; s; 0]:

* ``"pe"`` (π_e):      c⁰ = (1−π')F₀,  c¹ = π'F₁,  s = π';
* ``"p0"`` (π_0):      c^{a0} = F_{a0}, the other half 0, s = a0;
* ``"g"`` (G):         c^{a0} = (1−π')F₀ + π'F₁, the other half 0, s = a0;
* ``"g_natural"``:     c⁰ = (1−π')F_{a0},  c¹ = π'F_{a0},  s = π';

with F_a = E_{m~p̂(·|S',a)} φ(S', m) ``(p, n)`` and π' = π_e(1 | S'). Materialising U and the
three U − Ξ^j as (q, n) arrays cost about a third of a replication at N = 1500, T = 25
(session 14 profile: seven 23 MB arrays written and read). Here the Gram matrices come, one
block of rows at a time (``normal_solve.row_blocked``), from one product

    U · [w U; w(1−π')F₀; w π'F₁; w F_{a0}; w π'; w Y]ᵀ / W,

whose column blocks assemble every Σ_j (``_xi_gram``), and the derivative rule of
``normal_solve`` (one pass over the rows per tangent or cotangent, module doc there) is
written with per-row products of the coefficients with φ, F₀ and F₁ only: no (q, n) array is
built in either direction. The values equal ``normal_solve`` on the materialised factors up
to rounding, and so do the derivatives (tested).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src import small_linalg
from jaxmed._src.mediation import feature_blocks as fb
from jaxmed._src.mediation.normal_solve import (cond_1norm, dot_t, is_zero_tangent,
                                                row_blocked, solve_tangents)

__all__ = ["KINDS", "q_systems"]

KINDS = ("pe", "p0", "g", "g_natural")


_rows = fb.rows_dot  # per-row products coefᵀ f_k ``(r, n)`` of ``coef`` ``(p, r)`` and blocks f


def _u_block(phi, a):
    """U = [(1−a)φ; aφ; a; 1] of a block of rows ``(2p + 2, n)`` (φ as feature blocks)."""
    one = jnp.ones_like(a)
    return jnp.concatenate([(1 - a)[None] * b for b in phi] + [a[None] * b for b in phi]
                           + [a[None], one[None]], axis=0)


def _gram_product(phi, f0, f1, pn, a, w, y, *, a0):
    u = _u_block(phi, a)
    fa = (f0, f1)[a0]
    right = jnp.concatenate([u] + [(1 - pn)[None] * b for b in f0] + [pn[None] * b for b in f1]
                            + list(fa) + [pn[None], y], axis=0)
    return dot_t(u, right * w[None, :])


def _blocked_gram_product(phi, f0, f1, pn, a, w, y, a0):
    """``_gram_product`` summed over blocks of rows (``row_blocked``) for feature blocks."""
    sizes = (len(phi), len(f0), len(f1))

    def product(*arrays):
        i, j = sizes[0], sizes[0] + sizes[1]
        k = j + sizes[2]
        return _gram_product(arrays[:i], arrays[i:j], arrays[j:k], *arrays[k:], a0=a0)

    return row_blocked(product, list(phi) + list(f0) + list(f1) + [pn, a, w, y])


def _xi_gram(kind, a0, p, u_w, b1, b2, b3, bp):
    """Σ_k w_k U_k Ξ_kᵀ / W ``(q, q)`` from the column blocks of the product (module doc):
    ``u_w`` = U wᵀ/W, b1 = U[w(1−π')F₀]ᵀ/W, b2 = U[wπ'F₁]ᵀ/W, b3 = U[wF_{a0}]ᵀ/W, bp = U[wπ']ᵀ/W."""
    zero_p = jnp.zeros_like(b1)
    zero_1 = jnp.zeros_like(bp)
    if kind == "pe":
        c0, c1, s = b1, b2, bp
    elif kind in ("p0", "g"):
        c = b3 if kind == "p0" else b1 + b2
        c0, c1 = (c, zero_p) if a0 == 0 else (zero_p, c)
        s = a0 * u_w
    elif kind == "g_natural":  # (1−π')F_{a0} and π'F_{a0} from b1, b2, b3
        c0, c1 = (b1, b3 - b1) if a0 == 0 else (b3 - b2, b2)
        s = bp
    else:
        raise ValueError(f"kind: {kind!r} is not one of {KINDS}")
    return jnp.concatenate([c0, c1, s[:, None], zero_1[:, None]], axis=1)


def _forward(phi, f0, f1, pn, a, y, w, reg, systems, a0):
    p, r = fb.dim(phi), y.shape[0]
    q = 2 * p + 2
    total = jnp.sum(w)
    prod = _blocked_gram_product(phi, f0, f1, pn, a, w, y, a0) / total
    uu = prod[:, :q]
    b1, b2, b3 = (prod[:, q + i * p:q + (i + 1) * p] for i in range(3))
    bp = prod[:, q + 3 * p]
    rhs = prod[:, q + 3 * p + 1:]
    assert rhs.shape[1] == r
    betas, sigmas = [], []
    for kind, tgt in systems:
        sigma = uu - _xi_gram(kind, a0, p, uu[:, q - 1], b1, b2, b3, bp) + reg
        sigmas.append(sigma)
        betas.append(small_linalg.general_solve(sigma, rhs[:, np.asarray(tgt, dtype=np.int32)]))
    return tuple(betas), sigmas


def _u_rows(beta, phi, a):
    """βᵀU_k per row ``(r, n)`` for ``beta`` ``(q, r)``."""
    p = fb.dim(phi)
    return ((1 - a)[None] * _rows(beta[:p], phi) + a[None] * _rows(beta[p:2 * p], phi)
            + a[None] * beta[2 * p][:, None] + beta[2 * p + 1][:, None])


def _du_rows(beta, dphi, a):
    """βᵀdU_k per row for U's tangent in φ, [(1−a)dφ; a dφ; 0; 0]."""
    p = fb.dim(dphi)
    return (1 - a)[None] * _rows(beta[:p], dphi) + a[None] * _rows(beta[p:2 * p], dphi)


def _xi_rows(kind, a0, beta, f0, f1, pn):
    """βᵀΞ_k per row ``(r, n)`` (bilinear in (F₀, F₁) and π')."""
    p = fb.dim(f0)
    b0, b1, ba = beta[:p], beta[p:2 * p], beta[2 * p][:, None]
    fa = (f0, f1)[a0]
    pn = pn[None]
    if kind == "pe":
        return (1 - pn) * _rows(b0, f0) + pn * _rows(b1, f1) + ba * pn
    ba0 = (b0, b1)[a0]
    if kind == "p0":
        return _rows(ba0, fa) + a0 * ba
    if kind == "g":
        return (1 - pn) * _rows(ba0, f0) + pn * _rows(ba0, f1) + a0 * ba
    if kind == "g_natural":
        return (1 - pn) * _rows(b0, fa) + pn * _rows(b1, fa) + ba * pn
    raise ValueError(f"kind: {kind!r} is not one of {KINDS}")


def _u_mul(phi, a, m):
    """U mᵀ ``(q, r)`` for per-row multipliers ``m`` ``(r, n)``."""
    am = a[None] * m
    return jnp.concatenate([fb.dot_t(phi, m - am), fb.dot_t(phi, am), jnp.sum(am, axis=1)[None],
                            jnp.sum(m, axis=1)[None]], axis=0)


def _blocks_tangent(t, x):
    """The tangent of feature blocks ``x``: a symbolic zero when every block's is, else
    arrays (zeros where a block's tangent is symbolic)."""
    if is_zero_tangent(t) or all(is_zero_tangent(b) for b in t):
        return None
    return tuple(jnp.zeros_like(xb) if is_zero_tangent(tb) else tb for tb, xb in zip(t, x))


@functools.partial(jax.custom_jvp, nondiff_argnums=(8, 9))
def _q_systems(phi, f0, f1, pn, a, y, w, reg, systems, a0):
    betas, sigmas = _forward(phi, f0, f1, pn, a, y, w, reg, systems, a0)
    return betas, tuple(cond_1norm(s) for s in sigmas)


@functools.partial(_q_systems.defjvp, symbolic_zeros=True)
def _q_systems_jvp(systems, a0, primals, tangents):
    phi, f0, f1, pn, a, y, w, reg = primals
    dphi, df0, df1, dpn, da, dy, dw, dreg = tangents
    a_moves = not is_zero_tangent(da)
    dphi, df0, df1 = (_blocks_tangent(t, x) for t, x in ((dphi, phi), (df0, f0), (df1, f1)))
    betas, sigmas = _forward(phi, f0, f1, pn, a, y, w, reg, systems, a0)
    conds = tuple(cond_1norm(s) for s in sigmas)
    total = jnp.sum(w)
    xi_moves = not all(is_zero_tangent(t) for t in (df0, df1, dpn))
    if xi_moves:
        df0, df1, dpn = (jax.tree.map(jnp.zeros_like, x) if is_zero_tangent(t) else t
                         for x, t in ((f0, df0), (f1, df1), (pn, dpn)))
    # e_j = y_T − β_jᵀ(U − Ξ_j), and the multipliers dw∘e_j + w∘(dy_T − β_jᵀ d(U − Ξ_j)) of U
    res, mult = [], []
    for beta, (kind, tgt) in zip(betas, systems):
        tgt = np.asarray(tgt, dtype=np.int32)
        xi = functools.partial(_xi_rows, kind, a0, beta)
        e = y[tgt] - _u_rows(beta, phi, a) + xi(f0, f1, pn)
        inner = jnp.zeros_like(e)
        if not is_zero_tangent(dy):
            inner = inner + dy[tgt]
        if not is_zero_tangent(dphi):
            inner = inner - _du_rows(beta, dphi, a)
        if a_moves:  # U's tangent in a: [−da φ; da φ; da; 0]
            p = fb.dim(phi)
            inner = inner - da[None] * (_rows(beta[p:2 * p] - beta[:p], phi)
                                        + beta[2 * p][:, None])
        if xi_moves:
            inner = inner + jax.jvp(xi, (f0, f1, pn), (df0, df1, dpn))[1]
        m = w[None] * inner
        if not is_zero_tangent(dw):
            m = m + dw[None] * e
        res.append(e)
        mult.append(m)
    t_all = _u_mul(phi, a, jnp.concatenate(mult, axis=0)) / total
    if not is_zero_tangent(dphi) or a_moves:
        # dU (w∘e)ᵀ: U's tangent [(1−a)dφ − da φ; a dφ + da φ; da; 0]
        we = jnp.concatenate(res, axis=0) * w[None]
        p, r = fb.dim(phi), we.shape[0]
        extra = jnp.zeros((2 * p + 2, r), we.dtype)
        if not is_zero_tangent(dphi):
            awe = a[None] * we
            extra = extra.at[:2 * p].add(jnp.concatenate([fb.dot_t(dphi, we - awe),
                                                          fb.dot_t(dphi, awe)], axis=0))
        if a_moves:
            dawe = da[None] * we
            dphi_a = fb.dot_t(phi, dawe)
            extra = extra + jnp.concatenate([-dphi_a, dphi_a, jnp.sum(dawe, axis=1)[None],
                                             jnp.zeros((1, r), we.dtype)], axis=0)
        t_all = t_all + extra / total
    dbetas = solve_tangents(t_all, betas, sigmas, [len(t) for _, t in systems], reg, dw, dreg,
                            total, False)
    return (betas, conds), (dbetas, tuple(jnp.zeros_like(c) for c in conds))


def q_systems(phi, f0, f1, pn, a, y, w, reg, systems, a0: int):
    """Solves the LSTD systems of the module doc from their factors.

    Args:
      phi: ``(p, n)`` φ(S_k, M_k), feature-major, or a tuple of feature blocks
        (``feature_blocks``).
      f0, f1: ``(p, n)`` E_{m~p̂(·|S'_k, a)} φ(S'_k, m) for a = 0, 1 (arrays or blocks).
      pn: ``(n,)`` π_e(1 | S'_k).
      a: ``(n,)`` actions (differentiable too: U is linear in a).
      y: ``(r, n)`` targets.
      w: ``(n,)`` row weights.
      reg: ``(q, q)`` penalty matrix, q = 2p + 2.
      systems: static tuple of ``(kind, targets)``: the kind of Ξ (``KINDS``) and the rows of
        ``y`` that are the system's right-hand sides.
      a0: the control action (static 0 or 1).

    Returns:
      ``(betas, conds)``: per system ``(q, r_j)`` coefficients and the 1-norm condition number
      of Σ_j (a diagnostic: not differentiated).
    """
    systems = tuple((str(k), tuple(int(i) for i in t)) for k, t in systems)
    for kind, _ in systems:
        if kind not in KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {KINDS}")
    if int(a0) not in (0, 1):
        raise ValueError(f"a0: the control action is 0 or 1, got {a0!r}")
    phi, f0, f1 = (fb.as_blocks(x) for x in (phi, f0, f1))
    return _q_systems(phi, f0, f1, pn, a, y, w, reg, systems, int(a0))
