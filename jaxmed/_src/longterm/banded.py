"""Step BZ of Alg. N as a block-tridiagonal ("arrowhead") solve, linear in T (spec longterm.md §4.5).

The joint weighted least squares for u = (β, z_1..z_T), β = (b_0, b_1) (or b_1 alone under an
anchor, b_0 = (I − M_0) m fixed), has one block row per (bucket i, time t):

    P_i β + z_{t+1} − M_i z_t ≈ y_{i,t},  weight N_{i,t},   t = 0..T−1, z_0 = 0,

so its normal matrix H = AᵀWA (+ λ_z times the z penalty) couples z_k only with z_{k−1}, z_{k+1}
and β. Blocks (k = 1..T, N_{i,T} := 0):

    D_k   = Σ_i N_{i,k−1} I + N_{i,k} M_iᵀM_i  (+ λ_z pen_k I)          H[z_k, z_k]
    E_k   = −Σ_i N_{i,k} M_i                   (+ λ_z off I)            H[z_{k+1}, z_k]
    F_k   = Σ_i (N_{i,k−1} − N_{i,k} M_iᵀ) P_i                          H[z_k, β]
    g_k   = Σ_i N_{i,k−1} y_{i,k−1} − N_{i,k} M_iᵀ y_{i,k}               (Aᵀ W y)[z_k]

Elimination: a block Cholesky (block-Thomas) of the z–z part by ``lax.scan`` for the right-hand
sides [g, F], then the small Schur complement in β. Cost O(T d³), memory O(T d²), against
O((T d)³) and O((T d)²) for the dense solve; the result equals the dense solve (same equations).
The condition number is estimated (power and inverse iteration on H), never formed densely.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve, solve_triangular

__all__ = ["BandedSystem", "bz_banded_system", "solve_banded", "banded_matvec", "banded_condition",
           "solve_bz_banded"]


class BandedSystem(NamedTuple):
    """Normal equations H u = g of Step BZ in block form.

    Attributes:
      D: ``(T, d, d)`` diagonal z blocks; E: ``(T−1, d, d)`` sub-diagonal blocks H[z_{k+1}, z_k];
      F: ``(T, d, p)`` z–β coupling; Hbb: ``(p, p)`` β block; gz: ``(T, d)``; gb: ``(p,)``.
    """

    D: object
    E: object
    F: object
    Hbb: object
    gz: object
    gb: object


def _penalty_bands(T: int, kind: str, dtype):
    """Diagonal and off-diagonal scalars of the z penalty (``"smooth"``: first differences with
    z_0 = 0; ``"ridge"``: identity)."""
    if kind == "ridge":
        return jnp.ones(T, dtype), jnp.zeros(T - 1, dtype)
    diag = jnp.concatenate([jnp.full(T - 1, 2.0, dtype), jnp.ones(1, dtype)])
    return diag, -jnp.ones(T - 1, dtype)


def bz_banded_system(n, w, M, *, b0=None, lambda_z=0.0, z_penalty: str = "smooth") -> BandedSystem:
    """Blocks of the Step BZ normal equations.

    Args:
      n: ``(2, T)`` transition weights N_{i,t}; w: ``(2, T, d)`` w_{i,t} = ō'_{i,t} − M_i ō_{i,t}.
      M: ``(2, d, d)``.
      b0: ``(d,)`` fixed b_0 (anchored) or None (β = (b_0, b_1)).
      lambda_z: penalty weight; z_penalty: ``"smooth"`` or ``"ridge"`` (static).
    """
    T, d = w.shape[1], w.shape[2]
    dt = w.dtype
    eye = jnp.eye(d, dtype=dt)
    if b0 is None:
        P = jnp.stack([jnp.concatenate([eye, jnp.zeros_like(eye)], 1),
                       jnp.concatenate([jnp.zeros_like(eye), eye], 1)])          # (2, d, 2d)
        y = w
    else:
        P = jnp.stack([jnp.zeros_like(eye), eye])                                 # (2, d, d)
        y = w.at[0].add(-b0)
    n_prev = n                                                                    # N_{i,k−1}, k = 1..T
    n_next = jnp.concatenate([n[:, 1:], jnp.zeros((2, 1), dt)], axis=1)           # N_{i,k}, 0 at k = T
    y_next = jnp.concatenate([y[:, 1:], jnp.zeros((2, 1, d), dt)], axis=1)
    pen_d, pen_o = _penalty_bands(T, z_penalty, dt)
    mtm = jnp.einsum("iba,ibc->iac", M, M)
    D = (n_prev.sum(0) + lambda_z * pen_d)[:, None, None] * eye + jnp.einsum("ik,iac->kac", n_next, mtm)
    E = -jnp.einsum("ik,iab->kab", n[:, 1:], M) + (lambda_z * pen_o)[:, None, None] * eye
    F = jnp.einsum("ik,iap->kap", n_prev, P) - jnp.einsum("ik,iba,ibp->kap", n_next, M, P)
    Hbb = jnp.einsum("ik,iap,iaq->pq", n, P, P)
    gz = jnp.einsum("ik,ika->ka", n_prev, y) - jnp.einsum("ik,iba,ikb->ka", n_next, M, y_next)
    gb = jnp.einsum("ik,iap,ika->p", n, P, y)
    return BandedSystem(D, E, F, Hbb, gz, gb)


def _factor(sys: BandedSystem):
    """Block Cholesky of the z–z part and the β Schur complement.

    Returns (chol factors C_k of the Schur blocks S_k ``(T, d, d)``, L_k = E_{k−1} S_{k−1}^{-1}
    ``(T, d, d)`` (L_1 = 0), X_F = H_zz^{-1} F ``(T, d, p)``, Cholesky of the β Schur complement).
    """
    D, E, F = sys.D, sys.E, sys.F
    d = D.shape[-1]
    E_pad = jnp.concatenate([jnp.zeros((1, d, d), D.dtype), E], axis=0)          # E_pad[k] = E_{k−1}

    def fwd(carry, blk):
        c_prev, f_prev = carry
        Dk, Ek, Fk = blk
        # L = E_{k−1} S_{k−1}^{-1}: solve S_{k−1} Lᵀ = E_{k−1}ᵀ with the previous factor
        L = cho_solve((c_prev, True), Ek.T).T
        S = Dk - L @ Ek.T
        c = jnp.linalg.cholesky(S)
        f = Fk - L @ f_prev
        return (c, f), (c, L, f)

    init = (jnp.eye(d, dtype=D.dtype), jnp.zeros_like(F[0]))
    _, (C, L, Fy) = jax.lax.scan(fwd, init, (D, E_pad, F))
    XF = _back(C, E, Fy)
    schur = sys.Hbb - jnp.einsum("kap,kaq->pq", F, XF)
    return C, L, XF, jnp.linalg.cholesky(schur)


def _forward(L, r):
    def step(prev, blk):
        Lk, rk = blk
        cur = rk - Lk @ prev
        return cur, cur

    _, out = jax.lax.scan(step, jnp.zeros_like(r[0]), (L, r))
    return out


def _back(C, E, Y):
    """Back substitution X_T = S_T^{-1} Y_T, X_k = S_k^{-1}(Y_k − E_kᵀ X_{k+1})."""
    E_next = jnp.concatenate([E, jnp.zeros((1,) + E.shape[1:], E.dtype)], axis=0)   # E_k, 0 at k = T

    def step(x_next, blk):
        Ck, Ek, Yk = blk
        x = cho_solve((Ck, True), Yk - Ek.T @ x_next)
        return x, x

    _, X = jax.lax.scan(step, jnp.zeros_like(Y[0]), (C, E_next, Y), reverse=True)
    return X


def _solve_factored(sys: BandedSystem, factors, rz, rb):
    """Solves H (β, z) = (rb, rz) with the factors of ``_factor``."""
    C, L, XF, cs = factors
    xg = _back(C, sys.E, _forward(L, rz))
    beta = cho_solve((cs, True), rb - jnp.einsum("kap,ka->p", sys.F, xg))
    z = xg - jnp.einsum("kap,p->ka", XF, beta)
    return beta, z


def solve_banded(sys: BandedSystem):
    """Solution (β ``(p,)``, z ``(T, d)`` for z_1..z_T) of the Step BZ normal equations."""
    factors = _factor(sys)
    return _solve_factored(sys, factors, sys.gz, sys.gb), factors


def banded_matvec(sys: BandedSystem, beta, z):
    """H (β, z), without forming H."""
    hz = jnp.einsum("kab,kb->ka", sys.D, z) + jnp.einsum("kap,p->ka", sys.F, beta)
    hz = hz.at[1:].add(jnp.einsum("kab,kb->ka", sys.E, z[:-1]))
    hz = hz.at[:-1].add(jnp.einsum("kba,kb->ka", sys.E, z[1:]))
    hb = sys.Hbb @ beta + jnp.einsum("kap,ka->p", sys.F, z)
    return hb, hz


def banded_condition(sys: BandedSystem, factors, n_iter: int = 25):
    """Estimate of cond(H) = λ_max / λ_min by ``n_iter`` power and inverse-power iterations
    (a lower bound of the exact value that converges to it)."""
    p, (T, d) = sys.gb.shape[0], sys.gz.shape
    dt = sys.gz.dtype
    v0 = (jnp.linspace(1.0, 2.0, p, dtype=dt), jnp.linspace(1.0, 2.0, T * d, dtype=dt).reshape(T, d))

    def norm(v):
        return jnp.sqrt(jnp.sum(v[0] ** 2) + jnp.sum(v[1] ** 2))

    def power(op):
        def step(_, v):
            hv = op(v)
            s = norm(hv)
            return (hv[0] / s, hv[1] / s)

        v = jax.lax.fori_loop(0, n_iter, step, (v0[0] / norm(v0), v0[1] / norm(v0)))
        hv = op(v)
        return jnp.sum(v[0] * hv[0]) + jnp.sum(v[1] * hv[1])

    lam_max = power(lambda v: banded_matvec(sys, *v))
    inv_min = power(lambda v: _solve_factored(sys, factors, v[1], v[0]))
    return jax.lax.stop_gradient(lam_max * inv_min)


def solve_bz_banded(n, w, M, *, b0=None, lambda_z=0.0, z_penalty: str = "smooth"):
    """Step BZ by the banded solve. Returns (b ``(2, d)``, z ``(T+1, d)`` with z_0 = 0,
    condition-number estimate)."""
    d = w.shape[-1]
    sys = bz_banded_system(n, w, M, b0=b0, lambda_z=lambda_z, z_penalty=z_penalty)
    (beta, z), factors = solve_banded(sys)
    b = beta.reshape(2, d) if b0 is None else jnp.stack([b0, beta])
    z = jnp.concatenate([jnp.zeros((1, d), z.dtype), z])
    return b, z, banded_condition(sys, factors)
