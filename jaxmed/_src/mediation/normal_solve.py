"""Weighted normal-equation solves whose derivatives cost one pass over the rows (issue 13).

Every linear fit of the pipeline (the ridge nuisance fits, the three LSTD systems) solves, for
row features x_k (feature-major ``x`` ``(p, n)``), the regressors z_k of system j, targets y_k
and row weights w_k,

    Σ_j β_j = b_j,   Σ_j = Σ_k w_k x_k z_kᵀ / W + R,   b_j = Σ_k w_k x_k y_{k,T_j}ᵀ / W,

with W = Σ_k w_k, a penalty matrix R and the target rows T_j of system j (ridge regression:
z = x). Differentiated by the chain rule through the Gram products, each tangent or cotangent
costs a dense p×p tangent of Σ_j and O(n p²) work. Since b_j − Σ_j β_j = 0, the tangent is

    dβ_j = Σ_j⁻¹ ( [dx (w∘e_j)ᵀ + x (dw∘e_j + w∘(dy_{T_j} − β_jᵀ dz_j))ᵀ] / W
                   − R β_j dW / W − dR β_j ),

with the residuals e_j = y_{T_j} − β_jᵀ z_j ``(r_j, n)``: O(n p r_j) per tangent, and reverse
mode transposes it (one adjoint solve and one pass over the rows per cotangent). This is what
makes the infinitesimal-jackknife SE (``influence``), N reverse-mode derivatives with respect
to the trajectory weights, affordable. The values are those of the plain products and solves.

The action-coded design x = [z, a·z] (``action`` given) is never built: its normal matrix
comes by blocks from one product, as in the nuisance fits.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from jaxmed._src import small_linalg

__all__ = ["normal_solve", "cond_1norm", "is_zero_tangent", "row_blocked", "ROW_BLOCK",
           "solve_tangents", "dot_t"]


def dot_t(left, right):
    """``left @ right.T`` for feature-major blocks ``(p, n)``, ``(r, n)`` (rows contracted)."""
    return jax.lax.dot_general(left, right, (((1,), (1,)), ((), ())))


def cond_1norm(a, symmetric: bool = False):
    """1-norm condition number ‖A‖₁‖A⁻¹‖₁ of a square matrix (a diagnostic, not differentiated).

    From a solve against the identity (Cholesky for ``symmetric``, LU otherwise) rather than an
    SVD or ``eigvalsh``, which were measured to stall when vmapped over replications on CPU.
    """
    a = jax.lax.stop_gradient(a)
    solve = small_linalg.spd_solve if symmetric else small_linalg.general_solve
    inv = solve(a, jnp.eye(a.shape[0], dtype=a.dtype))
    norm1 = lambda m: jnp.max(jnp.sum(jnp.abs(m), axis=0))  # noqa: E731
    return norm1(a) * norm1(inv)


def _design_mul(x, action, m):
    """X @ mᵀ for rows ``m`` ``(r, n)``: X = x, or [x; a·x] when ``action`` is given."""
    if action is None:
        return dot_t(x, m)
    return jnp.concatenate([dot_t(x, m), dot_t(x, m * action[None, :])], axis=0)


def _design_rows(x, action, coef):
    """Per-row products coefᵀ X_k, ``(r, n)``, for ``coef`` ``(P, r)``."""
    if action is None:
        return jax.lax.dot_general(coef, x, (((0,), (0,)), ((), ())))
    p = x.shape[0]
    lo = jax.lax.dot_general(coef[:p], x, (((0,), (0,)), ((), ())))
    hi = jax.lax.dot_general(coef[p:], x, (((0,), (0,)), ((), ())))
    return lo + action[None, :] * hi


# rows per block of the Gram products: the concatenated right factor of a block (at most a few
# MB) stays in cache, where a whole (3q + r) × n factor (35 MB at n = 37,500) was written to
# fresh memory on every call (session 10 profile: 16-24 ms per product at N = 1500, T = 25)
ROW_BLOCK = 4096


def row_blocked(fn, arrays):
    """Σ over column blocks of ``fn(*blocks)``: ``arrays`` are ``(k, n)`` or ``(n,)`` with rows
    on the last axis, cut into blocks of ``ROW_BLOCK`` columns (a loop; the last, shorter
    block apart). ``fn`` must be a sum over columns (a product contracting the rows)."""
    n = arrays[0].shape[-1]
    full, rest = divmod(n, ROW_BLOCK)
    if full <= 1:
        return fn(*arrays)

    def cut(start, size):
        return [jax.lax.dynamic_slice_in_dim(a, start, size, axis=a.ndim - 1) for a in arrays]

    acc = fn(*cut(0, ROW_BLOCK))
    acc = jax.lax.fori_loop(1, full, lambda i, acc: acc + fn(*cut(i * ROW_BLOCK, ROW_BLOCK)),
                            acc)
    if rest:
        acc = acc + fn(*[a[..., full * ROW_BLOCK:] for a in arrays])
    return acc


def _grams(x, action, zs, y, w):
    """The normal matrices Σ_j − R (a list) and the right-hand sides ``(P, r)``, one product
    per block of rows (``row_blocked``)."""
    total = jnp.sum(w)
    if action is not None:  # symmetric, X = [x; a·x]: blocks xᵀWx, xᵀW a x, xᵀW a² x
        p, r = x.shape[0], y.shape[0]

        def product(x, y, w, action):
            wa = w * action
            right = jnp.concatenate([x * w[None, :], x * wa[None, :], x * (wa * action)[None, :],
                                     y * w[None, :], y * wa[None, :]], axis=0)
            return dot_t(x, right)  # (p, 3p + 2r)

        prod = row_blocked(product, [x, y, w, action]) / total
        g00, g01, g11 = prod[:, :p], prod[:, p:2 * p], prod[:, 2 * p:3 * p]
        gram = jnp.block([[g00, g01], [g01.T, g11]])
        rhs = jnp.concatenate([prod[:, 3 * p:3 * p + r], prod[:, 3 * p + r:]], axis=0)
        return [gram], rhs
    blocks = [x] if zs is None else list(zs)
    q = x.shape[0]

    def product(x, y, w, *blocks):
        return dot_t(x * w[None, :], jnp.concatenate(list(blocks) + [y], axis=0))

    prod = row_blocked(product, [x, y, w] + blocks) / total
    return [prod[:, j * q:(j + 1) * q] for j in range(len(blocks))], prod[:, len(blocks) * q:]


def _forward(x, action, zs, y, w, reg, targets, symmetric):
    grams, rhs = _grams(x, action, zs, y, w)
    solve = small_linalg.spd_solve if symmetric else small_linalg.general_solve
    sigmas = [g + reg for g in grams]
    betas = tuple(solve(s, rhs[:, np.asarray(t, dtype=np.int32)]) for s, t in zip(sigmas, targets))
    return betas, sigmas


@functools.partial(jax.custom_jvp, nondiff_argnums=(6, 7))
def _normal_solve(x, action, zs, y, w, reg, targets, symmetric):
    betas, sigmas = _forward(x, action, zs, y, w, reg, targets, symmetric)
    return betas, tuple(cond_1norm(s, symmetric) for s in sigmas)


def is_zero_tangent(t) -> bool:
    """A symbolic-zero (or absent) tangent in a ``custom_jvp`` rule with ``symbolic_zeros``."""
    return t is None or isinstance(t, SymbolicZero)




@functools.partial(_normal_solve.defjvp, symbolic_zeros=True)
def _normal_solve_jvp(targets, symmetric, primals, tangents):
    x, action, zs, y, w, reg = primals
    dx, daction, dzs, dy, dw, dreg = tangents
    betas, sigmas = _forward(x, action, zs, y, w, reg, targets, symmetric)
    conds = tuple(cond_1norm(s, symmetric) for s in sigmas)
    total = jnp.sum(w)
    sys_z = [None] * len(targets) if zs is None else list(zs)
    sys_dz = [None] * len(targets) if (zs is None or is_zero_tangent(dzs)) else list(dzs)
    dx_design = None  # the tangent of X (x, or [x; a·x])
    if not is_zero_tangent(dx) or (action is not None and not is_zero_tangent(daction)):
        dxx = jnp.zeros_like(x) if is_zero_tangent(dx) else dx
        if action is None:
            dx_design = (dxx, None)
        else:
            da = jnp.zeros_like(action) if is_zero_tangent(daction) else daction
            dx_design = (dxx, da)
    # residuals e_j and the per-row multipliers of x: dw∘e_j + w∘(dy_T − β_jᵀ dz_j)
    res, mult = [], []
    for beta, tgt, z, dz in zip(betas, targets, sys_z, sys_dz):
        fit = _design_rows(x if z is None else z, action if z is None else None, beta)
        e = y[np.asarray(tgt, dtype=np.int32)] - fit
        m = jnp.zeros_like(e)
        if not is_zero_tangent(dw):
            m = m + dw[None, :] * e
        inner = jnp.zeros_like(e)
        if not is_zero_tangent(dy):
            inner = inner + dy[np.asarray(tgt, dtype=np.int32)]
        if z is None and dx_design is not None:  # dz = dX
            ddx, da = dx_design
            dfit = _design_rows(ddx, action, beta)
            if da is not None:
                p = x.shape[0]
                dfit = dfit + da[None, :] * _design_rows(x, None, beta[p:])
            inner = inner - dfit
        elif dz is not None and not is_zero_tangent(dz):
            inner = inner - _design_rows(dz, None, beta)
        res.append(e)
        mult.append(m + w[None, :] * inner)
    sizes = [len(t) for t in targets]
    t_all = _design_mul(x, action, jnp.concatenate(mult, axis=0)) / total
    if dx_design is not None:
        ddx, da = dx_design
        we = jnp.concatenate(res, axis=0) * w[None, :]
        extra = _design_mul(ddx, action, we)
        if da is not None:  # d(a·x) = da·x + a·dx: the da·x part of the lower block
            p = x.shape[0]
            extra = extra.at[p:].add(dot_t(x, we * da[None, :]))
        t_all = t_all + extra / total
    dbetas = solve_tangents(t_all, betas, sigmas, sizes, reg, dw, dreg, total, symmetric)
    return (betas, conds), (dbetas, tuple(jnp.zeros_like(c) for c in conds))


def solve_tangents(t_all, betas, sigmas, sizes, reg, dw, dreg, total, symmetric: bool) -> tuple:
    """dβ_j = Σ_j⁻¹ (t_j − R β_j dW/W − dR β_j) for the systems' column blocks t_j of
    ``t_all`` (``sizes`` columns each): the last step of the row-wise rule (module doc)."""
    dbetas, start = [], 0
    for beta, sigma, size in zip(betas, sigmas, sizes):
        t = t_all[:, start:start + size]
        start += size
        if not is_zero_tangent(dw):
            t = t - (reg @ beta) * (jnp.sum(dw) / total)
        if not is_zero_tangent(dreg):
            t = t - dreg @ beta
        dbetas.append(small_linalg.tangent_solve(sigma, t, symmetric))
    return tuple(dbetas)


def normal_solve(x, y, w, reg, targets, *, zs=None, action=None, symmetric: bool = True):
    """Solves the weighted normal equations of the module doc for one or several systems.

    Args:
      x: ``(p, n)`` feature-major row features x_k.
      y: ``(r, n)`` feature-major targets.
      w: ``(n,)`` row weights.
      reg: ``(P, P)`` penalty matrix R (P = p, or 2p with ``action``), shared by the systems.
      targets: static tuple of tuples: the rows of ``y`` that are system j's right-hand sides.
      zs: per-system regressors ``(p, n)`` (LSTD: U − Ξ); ``None``: z = x (ridge regression).
      action: ``(n,)``: the action-coded design X = [x; a·x] (ridge regression only).
      symmetric: Σ is symmetric positive definite (Cholesky); otherwise LU.

    Returns:
      ``(betas, conds)``: per system ``(P, r_j)`` coefficients and the 1-norm condition number
      of Σ_j (a diagnostic: not differentiated).
    """
    if action is not None and zs is not None:
        raise ValueError("zs: the action-coded design is for ridge regression (zs=None) only")
    targets = tuple(tuple(int(i) for i in t) for t in targets)
    zs = None if zs is None else tuple(zs)
    return _normal_solve(x, action, zs, y, w, reg, targets, bool(symmetric))
