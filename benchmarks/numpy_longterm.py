"""Plain numpy float64 comparator of ``jaxmed.longterm_effect`` (spec longterm.md §3, §4.5).

Benchmark-only (not used by the library). Works on the raw panel, not on sufficient
statistics: per bucket and time it forms the (weighted) transition sets directly.

* ``stationary``: per bucket, pooled least squares of o_{t+1} on [o_t, 1] (Alg. S, §3.2).
* ``nonstationary`` (default, anchor ``"steady0"``, λ_M = λ_z = 0, no ALS sweeps): Step W,
  the within-(bucket, time) estimator M_i = (Σ ỹ x̃ᵀ)(Σ x̃ x̃ᵀ)^{-1}; Step BZ, weighted least
  squares (``lstsq`` on √N-scaled rows) for (b_1, z_1..z_T) with z_0 = 0 and
  b_0 = (I − M_0) ō_{·,0} (§4.3(4a)); the anchor ``"none"`` estimates b_0 too.
* closed forms (§3.4): V_i = θᵀ(I − γM_i)^{-1}(m_0 + γ/(1−γ) b_i) + c/(1−γ), Δ = V_1 − V_0,
  Δ_γ = (1−γ)Δ, ρ_i = θᵀ(I − M_i)^{-1} b_i + c.
* bootstrap: given a ``(B, n)`` matrix of individual weights (jaxmed's draws, so that both
  sides resample the same individuals), a Python loop over replicates; replicates with an
  unstable fit (spectral radius ≥ 1 − 1e-6) or a non-finite estimate are dropped.
"""

from __future__ import annotations

import numpy as np

SR_LIMIT = 1.0 - 1e-6
Z95 = 1.959963984540054


def _transitions(obs, mask, bucket, weights, i):
    """Per time t: (weights (n_t,), x (n_t, d), y (n_t, d)) of bucket i's transitions t → t+1."""
    out = []
    for t in range(obs.shape[1] - 1):
        sel = (bucket == i) & (mask[:, t] > 0) & (mask[:, t + 1] > 0) & (weights > 0)
        out.append((weights[sel], obs[sel, t], obs[sel, t + 1]))
    return out


def _initial_mean(obs, mask, weights):
    sel = (mask[:, 0] > 0)
    w = weights * sel
    return (w[:, None] * obs[:, 0]).sum(0) / w.sum()


def _values(M, b, theta, c, m0, gamma):
    d = M.shape[-1]
    eye = np.eye(d)
    v, rho = [], []
    for i in (0, 1):
        v.append(theta @ np.linalg.solve(eye - gamma * M[i], m0 + gamma / (1 - gamma) * b[i])
                 + c / (1 - gamma))
        rho.append(theta @ np.linalg.solve(eye - M[i], b[i]) + c)
    delta = v[1] - v[0]
    est = np.array([delta, (1 - gamma) * delta, rho[1] - rho[0]])
    sr = max(np.max(np.abs(np.linalg.eigvals(M[i]))) for i in (0, 1))
    ok = sr < SR_LIMIT and np.isfinite(est[0]) and np.isfinite(est[2])
    return est, ok


def stationary(obs, mask, bucket, theta, c, gamma, weights):
    d = obs.shape[-1]
    M, b = np.zeros((2, d, d)), np.zeros((2, d))
    for i in (0, 1):
        tr = _transitions(obs, mask, bucket, weights, i)
        w = np.concatenate([t[0] for t in tr])
        x = np.concatenate([t[1] for t in tr])
        y = np.concatenate([t[2] for t in tr])
        X = np.concatenate([x, np.ones((len(x), 1))], axis=1)
        sw = np.sqrt(w)[:, None]
        coef = np.linalg.lstsq(X * sw, y * sw, rcond=None)[0]            # (d+1, d)
        M[i], b[i] = coef[:d].T, coef[d]
    return _values(M, b, theta, c, _initial_mean(obs, mask, weights), gamma)


def nonstationary(obs, mask, bucket, theta, c, gamma, weights, anchor="steady0"):
    n, T1, d = obs.shape
    T = T1 - 1
    M = np.zeros((2, d, d))
    means = np.zeros((2, T, 2, d))        # [i, t, (x̄, ȳ)]
    counts = np.zeros((2, T))
    for i in (0, 1):
        sxx, syx = np.zeros((d, d)), np.zeros((d, d))
        for t, (w, x, y) in enumerate(_transitions(obs, mask, bucket, weights, i)):
            if w.sum() == 0:
                continue
            xb, yb = w @ x / w.sum(), w @ y / w.sum()
            means[i, t] = xb, yb
            counts[i, t] = w.sum()
            xc, yc = x - xb, y - yb
            sxx += (xc * w[:, None]).T @ xc
            syx += (yc * w[:, None]).T @ xc
        M[i] = np.linalg.solve(sxx.T, syx.T).T       # Ỹᵀ X̃ (X̃ᵀ X̃)^{-1}
    m0 = _initial_mean(obs, mask, weights)
    # Step BZ: w_{i,t} = ȳ_{i,t} − M_i x̄_{i,t} ≈ b_i + z_{t+1} − M_i z_t, weights N_{i,t}
    nb = 1 if anchor == "steady0" else 2
    b0 = (np.eye(d) - M[0]) @ m0 if anchor == "steady0" else None
    rows, rhs, rw = [], [], []
    for i in (0, 1):
        for t in range(T):
            blk = np.zeros((d, (nb + T) * d))
            target = means[i, t, 1] - M[i] @ means[i, t, 0]
            if anchor == "steady0":
                if i == 0:
                    target = target - b0
                else:
                    blk[:, :d] = np.eye(d)
            else:
                blk[:, i * d:(i + 1) * d] = np.eye(d)
            zc = nb + t            # column block of z_{t+1}
            blk[:, zc * d:(zc + 1) * d] += np.eye(d)
            if t >= 1:
                blk[:, (zc - 1) * d:zc * d] -= M[i]
            rows.append(blk)
            rhs.append(target)
            rw.append(np.full(d, counts[i, t]))
    A, y, sw = np.vstack(rows), np.concatenate(rhs), np.sqrt(np.concatenate(rw))
    u = np.linalg.lstsq(A * sw[:, None], y * sw, rcond=None)[0]
    b = np.stack([b0, u[:d]]) if anchor == "steady0" else u[:2 * d].reshape(2, d)
    return _values(M, b, theta, c, m0, gamma)


def longterm_numpy(obs, bucket, mask, theta, c=0.0, gamma=0.99, method="nonstationary",
                   anchor="steady0", boot_weights=None):
    """Point estimates ``(3,)`` (Δ, Δ_γ, ρ_1 − ρ_0) and, with ``boot_weights`` ``(B, n)``,
    bootstrap SEs and normal / percentile 95% intervals.

    Returns:
      dict ``estimate``, ``ok``, and with a bootstrap ``se``, ``ci_normal`` ``(3, 2)``,
      ``ci_percentile`` ``(3, 2)``, ``n_failed``.
    """
    obs, bucket, mask = (np.asarray(x, np.float64) for x in (obs, bucket, mask))
    theta = np.asarray(theta, np.float64)

    def fit(weights):
        if method == "stationary":
            return stationary(obs, mask, bucket, theta, c, gamma, weights)
        return nonstationary(obs, mask, bucket, theta, c, gamma, weights, anchor)

    est, ok = fit(np.ones(obs.shape[0]))
    out = dict(estimate=est, ok=ok)
    if boot_weights is not None:
        reps = []
        for wb in np.asarray(boot_weights, np.float64):
            e, okb = fit(wb)
            reps.append(e if okb else np.full(3, np.nan))
        reps = np.array(reps)
        se = np.nanstd(reps, axis=0, ddof=1)
        out.update(se=se, ci_normal=np.stack([est - Z95 * se, est + Z95 * se], axis=-1),
                   ci_percentile=np.nanquantile(reps, [0.025, 0.975], axis=0).T,
                   n_failed=int(np.isnan(reps[:, 0]).sum()))
    return out


def jaxmed_boot_weights(key, bucket, n_boot: int, kind: str = "multinomial"):
    """The ``(n_boot, n)`` individual weights jaxmed's bootstrap draws from ``key``
    (replicate b: ``fold_in(key, b)``). Uses jax only to reproduce the random draws."""
    import jax
    import jax.numpy as jnp

    from jaxmed._src.longterm.bootstrap import bootstrap_weights
    bucket = jnp.asarray(bucket, jnp.float64)
    draw = jax.jit(jax.vmap(lambda b: bootstrap_weights(jax.random.fold_in(key, b), bucket, kind)))
    return np.asarray(draw(jnp.arange(n_boot)))
