"""Nonstationary estimator "Alg. N" (spec longterm.md §4): endogenous Markov state plus a
shared exogenous path.

Model N1 (§4.1): o_{j,t} = s_{j,t} + z_t, s_{j,t+1} = M_{D_j} s_{j,t} + b_{D_j} + ε, with z_t
common to both buckets and z_0 = 0 (gauge, §4.3(1)). Steps, all functions of ``PanelStats``:

* Step W (§4.5): within-time estimator of M_i from deviations from the bucket-time means
  (z drops out); consistent for fixed T as n_i → ∞.
* Step BZ (§4.5): given M, the joint weighted LS for u = (b_0, b_1, z_1..z_T) from the
  bucket means, w_{i,t} = ō'_{i,t} − M_i ō_{i,t} ≈ b_i + z_{t+1} − M_i z_t, weights N_{i,t},
  optional penalty λ_z R(z) (``"smooth"``: Σ_t ||z_{t+1} − z_t||², ``"ridge"``: Σ_t ||z_t||²),
  solved by Cholesky. Anchors (§4.3(4)): ``"none"`` (z_0 = 0 only), ``"steady0"``
  (b_0 = (I − M_0) ō_{·,0}, pooled over buckets), ``"preperiod"`` (b_0 = (I − M_0) m_pre with
  m_pre the mean of A/A pre-period data at the same exogenous level as t = 0).
* Optional refinement "ALS2" (§4.6): ``n_iter`` sweeps of Step M (exact block minimisation
  over M_i, with b_0 tied to M_0 under an anchor) then Step BZ, as a fixed-length
  ``lax.scan``; the objective L of §4.4 is non-increasing over sweeps.

The effects are the closed forms of §4.2 (``values.longterm_values`` with the endogenous
M_i, b_i and m_0^s = ō_{·,0} − z_0); the exogenous path cancels.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_factor, cho_solve

from jaxmed._src.longterm.banded import solve_bz_banded
from jaxmed._src.longterm.reward import LinearReward, fit_reward
from jaxmed._src.longterm.stationary import initial_mean, ls_with_intercept
from jaxmed._src.longterm.values import EffectValues, longterm_values, value_status

__all__ = ["NonstationaryFit", "ANCHORS", "BZ_SOLVERS", "Z_PENALTIES", "within_dynamics", "solve_bz",
           "nonstationary_objective", "step_m", "nonstationary_estimate"]

ANCHORS = ("none", "steady0", "preperiod")
BZ_SOLVERS = ("auto", "dense", "banded")
BANDED_ABOVE = 240   # "auto" switches to the banded BZ solve above this many unknowns
Z_PENALTIES = ("smooth", "ridge")


class NonstationaryFit(NamedTuple):
    """Result of Alg. N.

    Attributes:
      values: ``EffectValues`` (delta = unnormalised discounted Δ, delta_gamma, avg_reward).
      M: ``(2, d, d)`` endogenous transition matrices; b: ``(2, d)`` endogenous intercepts.
      z: ``(T+1, d)`` exogenous path with z_0 = 0.
      reward: ``LinearReward`` used; m0: ``(d,)`` initial endogenous mean m_0^s.
      spectral_radius: ``(2,)``; objective: ``(n_iter + 1,)`` objective L after the initial
        W + BZ step and after each sweep; bz_condition: condition number of the final BZ
        system; status: int32 (0 ok; bits of ``values.STATUS_*``).
    """

    values: EffectValues
    M: object
    b: object
    z: object
    reward: LinearReward
    m0: object
    spectral_radius: object
    objective: object
    bz_condition: object
    status: object


def _safe(n):
    return jnp.where(n > 0, n, 1.0)


def within_dynamics(stats, ridge=0.0):
    """Step W: M_i = Ỹᵀ X̃ (X̃ᵀ X̃ + λ_M I)^{-1} on within-(bucket, time) deviations. ``(2, d, d)``."""
    def one(n, sx, sy, sxx, syx):
        ns = _safe(n)[:, None, None]
        xx = (sxx - sx[:, :, None] * sx[:, None, :] / ns).sum(0)
        yx = (syx - sy[:, :, None] * sx[:, None, :] / ns).sum(0)
        xx = xx + ridge * jnp.eye(xx.shape[0], dtype=xx.dtype)
        return cho_solve(cho_factor(xx), yx.T).T

    return jax.vmap(one)(stats.n_tr, stats.sum_x, stats.sum_y, stats.sum_xx, stats.sum_yx)


def _design(M, T: int):
    """Block design A ``(2T d, (T+2) d)`` of the BZ equations b_i + z_{t+1} − M_i z_t."""
    d = M.shape[-1]
    K = T + 2
    i_idx = jnp.arange(2)[:, None]
    t_idx = jnp.arange(T)[None, :]
    e_b = jax.nn.one_hot(jnp.broadcast_to(i_idx, (2, T)), K, dtype=M.dtype)
    e_next = jax.nn.one_hot(jnp.broadcast_to(2 + t_idx, (2, T)), K, dtype=M.dtype)
    e_cur = jax.nn.one_hot(jnp.broadcast_to(1 + t_idx, (2, T)), K, dtype=M.dtype) * (t_idx >= 1)[..., None]
    eye = jnp.eye(d, dtype=M.dtype)
    A = jnp.einsum("itk,ab->itakb", e_b + e_next, eye) - jnp.einsum("itk,iab->itakb", e_cur, M)
    return A.reshape(2 * T * d, K * d)


def _z_penalty(T: int, d: int, kind: str, dtype):
    if kind == "ridge":
        return jnp.eye(T * d, dtype=dtype)
    diff = jnp.eye(T, dtype=dtype) - jnp.eye(T, k=-1, dtype=dtype)   # z_{t+1} − z_t, z_0 = 0
    g = jnp.kron(diff, jnp.eye(d, dtype=dtype))
    return g.T @ g


def solve_bz(stats, M, *, anchor: str = "steady0", anchor_mean=None, lambda_z=0.0,
             z_penalty: str = "smooth", solver: str = "auto"):
    """Step BZ: joint weighted LS for (b_0, b_1, z_1..z_T) given M.

    Args:
      stats: ``PanelStats``; M: ``(2, d, d)``.
      anchor: ``"none"``, ``"steady0"`` or ``"preperiod"`` (static).
      anchor_mean: ``(d,)`` level for the anchor (``"steady0"``: the pooled ō_{·,0};
        ``"preperiod"``: the pre-period mean). Ignored for ``"none"``.
      lambda_z: penalty weight (traced); z_penalty: ``"smooth"`` or ``"ridge"`` (static).
      solver: ``"dense"`` (Cholesky of the ((T+2)d)² normal matrix, exact condition number),
        ``"banded"`` (block-tridiagonal elimination, O(T d³), estimated condition number; see
        ``banded``) or ``"auto"`` (banded when (T+2) d > ``BANDED_ABOVE``) (static).

    Returns:
      (b ``(2, d)``, z ``(T+1, d)`` with z_0 = 0, condition number of the normal matrix).
    """
    if solver not in BZ_SOLVERS:
        raise ValueError(f"solver: expected one of {BZ_SOLVERS}, got {solver!r}")
    n = stats.n_tr                                            # (2, T)
    T, d = stats.sum_x.shape[1], stats.sum_x.shape[2]
    ns = _safe(n)[..., None]
    w = stats.sum_y / ns - jnp.einsum("iab,itb->ita", M, stats.sum_x / ns)
    if solver == "banded" or (solver == "auto" and (T + 2) * d > BANDED_ABOVE):
        b0 = None if anchor == "none" else anchor_mean - M[0] @ anchor_mean
        return solve_bz_banded(n, w, M, b0=b0, lambda_z=lambda_z, z_penalty=z_penalty)
    A = _design(M, T)
    y = w.reshape(-1)
    rw = jnp.repeat(n.reshape(-1), d)
    if anchor == "none":
        b0 = None
    else:
        b0 = anchor_mean - M[0] @ anchor_mean
        y = y - A[:, :d] @ b0
        A = A[:, d:]
    H = A.T @ (rw[:, None] * A)
    H = H.at[-T * d:, -T * d:].add(lambda_z * _z_penalty(T, d, z_penalty, H.dtype))
    g = A.T @ (rw * y)
    u = cho_solve(cho_factor(H), g)
    ev = jnp.linalg.eigvalsh(jax.lax.stop_gradient(H))
    cond = ev[-1] / ev[0]
    if b0 is None:
        b = u[:2 * d].reshape(2, d)
    else:
        b = jnp.stack([b0, u[:d]])
    z = jnp.concatenate([jnp.zeros((1, d), u.dtype), u[-T * d:].reshape(T, d)])
    return b, z, cond


def nonstationary_objective(stats, M, b, z, *, ridge=0.0, lambda_z=0.0, z_penalty: str = "smooth"):
    """L(M, b, z) of §4.4 from the sufficient statistics (weighted sum of squared residuals
    o_{t+1} − z_{t+1} − M_i (o_t − z_t) − b_i, plus λ_M Σ||M_i||² + λ_z R(z))."""
    g = b[:, None, :] + z[None, 1:] - jnp.einsum("iab,tb->ita", M, z[:-1])        # (2, T, d)
    quad = (jnp.einsum("itaa->", stats.sum_yy) - 2.0 * jnp.einsum("iab,itab->", M, stats.sum_yx)
            + jnp.einsum("iab,itbc,iac->", M, stats.sum_xx, M))
    lin = stats.sum_y - jnp.einsum("iab,itb->ita", M, stats.sum_x)
    loss = quad - 2.0 * jnp.sum(g * lin) + jnp.sum(stats.n_tr[..., None] * g * g)
    pen = jnp.sum(z[1:] ** 2) if z_penalty == "ridge" else jnp.sum(jnp.diff(z, axis=0) ** 2)
    return loss + ridge * jnp.sum(M * M) + lambda_z * pen


def _shifted_moments(n, sx, sy, sxx, syx, a, c):
    """Moment sums of (x − a_t, y − c_t) pooled over t."""
    nn = n[:, None]
    sxx2 = (sxx - sx[:, :, None] * a[:, None, :] - a[:, :, None] * sx[:, None, :]
            + nn[..., None] * a[:, :, None] * a[:, None, :]).sum(0)
    sx2 = (sx - nn * a).sum(0)
    syx2 = (syx - sy[:, :, None] * a[:, None, :] - c[:, :, None] * sx[:, None, :]
            + nn[..., None] * c[:, :, None] * a[:, None, :]).sum(0)
    sy2 = (sy - nn * c).sum(0)
    return sxx2, sx2, n.sum(), syx2, sy2


def step_m(stats, z, *, anchor: str = "steady0", anchor_mean=None, ridge=0.0):
    """Step M: exact minimisation of L over M_i given z (and over b_i, except b_0 tied to
    M_0 by the anchor). Returns M ``(2, d, d)``."""
    a, c = z[:-1], z[1:]
    ms = []
    for i in (0, 1):
        args = (stats.n_tr[i], stats.sum_x[i], stats.sum_y[i], stats.sum_xx[i], stats.sum_yx[i])
        if i == 0 and anchor != "none":
            sxx2, _, _, syx2, _ = _shifted_moments(*args, a + anchor_mean, c + anchor_mean)
            sxx2 = sxx2 + ridge * jnp.eye(sxx2.shape[0], dtype=sxx2.dtype)
            ms.append(cho_solve(cho_factor(sxx2), syx2.T).T)
        else:
            sxx2, sx2, n2, syx2, sy2 = _shifted_moments(*args, a, c)
            ms.append(ls_with_intercept(sxx2, sx2, n2, syx2, sy2, ridge)[0])
    return jnp.stack(ms)


def nonstationary_estimate(stats, reward: LinearReward | None, gamma, *, anchor: str = "steady0",
                           anchor_mean=None, ridge=0.0, lambda_z=0.0, z_penalty: str = "smooth",
                           n_iter: int = 0, tol=0.0, bz_solver: str = "auto") -> NonstationaryFit:
    """Alg. N (§4.6): Step W, Step BZ, optional ``n_iter`` ALS sweeps, closed-form effects.

    Args:
      stats: ``PanelStats``.
      reward: known ``LinearReward`` or None (pooled LS fit on observed rewards, §3.3).
      gamma: discount factor (traced).
      anchor: ``"none"``, ``"steady0"`` (default) or ``"preperiod"`` (static).
      anchor_mean: ``(d,)`` pre-period mean, required for ``"preperiod"``.
      ridge: λ_M (traced); lambda_z: λ_z (traced); z_penalty: ``"smooth"``/``"ridge"`` (static).
      n_iter: number of ALS sweeps (static; 0 = within + BZ, the recommended default).
      tol: sweeps stop changing the estimate once |L_k − L_{k−1}| ≤ tol · L_{k−1} (traced).
      bz_solver: Step BZ solver, ``"auto"``, ``"dense"`` or ``"banded"`` (static; ``solve_bz``).

    Returns:
      ``NonstationaryFit``.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"anchor: expected one of {ANCHORS}, got {anchor!r}")
    if z_penalty not in Z_PENALTIES:
        raise ValueError(f"z_penalty: expected one of {Z_PENALTIES}, got {z_penalty!r}")
    reward = fit_reward(stats) if reward is None else reward
    m0 = initial_mean(stats)
    if anchor == "steady0":
        anchor_mean = m0
    elif anchor == "preperiod" and anchor_mean is None:
        raise ValueError("anchor_mean: the 'preperiod' anchor needs the pre-period mean")
    opts = dict(ridge=ridge, lambda_z=lambda_z, z_penalty=z_penalty)
    bz = dict(anchor=anchor, anchor_mean=anchor_mean, lambda_z=lambda_z, z_penalty=z_penalty,
              solver=bz_solver)
    M = within_dynamics(stats, ridge)
    b, z, cond = solve_bz(stats, M, **bz)
    loss = nonstationary_objective(stats, M, b, z, **opts)
    path = loss[None]
    if n_iter > 0:
        def sweep(carry, _):
            M, b, z, cond, loss, done = carry
            M2 = step_m(stats, z, anchor=anchor, anchor_mean=anchor_mean, ridge=ridge)
            b2, z2, cond2 = solve_bz(stats, M2, **bz)
            loss2 = nonstationary_objective(stats, M2, b2, z2, **opts)
            new = jax.tree.map(lambda o, nw: jnp.where(done, o, nw), (M, b, z, cond, loss),
                               (M2, b2, z2, cond2, loss2))
            done2 = done | (jnp.abs(loss - new[4]) <= tol * jnp.abs(loss))
            return (*new, done2), new[4]

        init = (M, b, z, cond, loss, jnp.zeros((), bool))
        (M, b, z, cond, loss, _), losses = jax.lax.scan(sweep, init, None, length=n_iter)
        path = jnp.concatenate([path, losses])
    m0s = m0 - z[0]
    values = longterm_values(M, b, reward.theta, reward.c, m0s, gamma)
    status, sr = value_status(M, values)
    return NonstationaryFit(values, M, b, z, reward, m0s, sr, path, cond, status)
