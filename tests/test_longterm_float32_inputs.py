"""Long-term building blocks keep float32 inputs in float32, with the values of a float64 reference.

The suite runs with x64 on, so a default-dtype array (``jnp.eye(d)``, ``x.astype(None)``) is
float64: a float32 input would silently come back float64. Checked against plain numpy:

* ``panel_from_arrays(..., dtype=float32)``: every field float32, equal to the zero-filled inputs;
* ``steady_state_cov``: Σ = M Σ Mᵀ + σ² I against the series Σ_k σ² M^k (M^k)ᵀ in float64.
"""

import numpy as np
import pytest

from jaxmed._src.longterm.panel import panel_from_arrays
from jaxmed._src.longterm.simulate import steady_state_cov


def test_panel_from_arrays_float32_fields():
    rng = np.random.default_rng(3)
    obs = rng.normal(size=(5, 4, 2))
    mask = (rng.random((5, 4)) < 0.8).astype(np.float64)
    mask[:, 0] = 1.0
    rewards = rng.normal(size=(5, 4))
    bucket = np.array([0, 1, 0, 1, 1], np.float64)
    p = panel_from_arrays(obs, bucket, mask, rewards, dtype=np.float32)
    for name in ("obs", "bucket", "mask", "rewards"):
        assert getattr(p, name).dtype == np.float32, name
    np.testing.assert_array_equal(p.mask, mask.astype(np.float32))
    np.testing.assert_array_equal(p.bucket, bucket.astype(np.float32))
    np.testing.assert_array_equal(p.obs, np.where(mask[..., None] > 0, obs, 0.0).astype(np.float32))
    np.testing.assert_array_equal(p.rewards, np.where(mask > 0, rewards, 0.0).astype(np.float32))


def _lyapunov_series(M, sigma, terms=2000):
    M = np.asarray(M, np.float64)
    out, Mk = np.zeros_like(M), np.eye(len(M))
    for _ in range(terms):
        out += sigma ** 2 * Mk @ Mk.T
        Mk = M @ Mk
    return out


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-5)])
def test_steady_state_cov_dtype_and_value(dtype, rtol):
    M = np.array([[0.90, 0.05, 0.00], [0.00, 0.70, 0.10], [0.00, 0.00, 0.50]])
    got = steady_state_cov(M.astype(dtype), dtype(0.1))
    assert got.dtype == dtype
    want = _lyapunov_series(M, 0.1)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=rtol * want.max())


def test_stationary_effects_from_float32_stats_stay_float32():
    """``effects_from_stats(method="stationary")`` on float32 statistics: every fit field (the
    zero exogenous path z included) is float32, and the effects agree with the float64 run."""
    import jax

    from jaxmed._src.longterm.api import effects_from_stats
    from jaxmed._src.longterm.reward import LinearReward
    from jaxmed._src.longterm.simulate import simulate_longterm
    from jaxmed._src.longterm.stats import panel_stats

    p = simulate_longterm(jax.random.key(2), 200, 8, design="s1")
    out = {}
    for dt in (np.float32, np.float64):
        panel = panel_from_arrays(np.asarray(p.obs), np.asarray(p.bucket), dtype=dt)
        reward = LinearReward(np.array([1.0, 0.0, 1.0], dt), dt(0.0))
        eff, status, fit, _ = effects_from_stats(panel_stats(panel), reward, dt(0.9), method="stationary")
        assert int(status) == 0
        for leaf in jax.tree.leaves(fit):
            assert leaf.dtype == dt
        np.testing.assert_array_equal(np.asarray(fit.z), 0.0)
        out[dt] = np.asarray(eff, np.float64)
    np.testing.assert_allclose(out[np.float32], out[np.float64], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("z_penalty", ["ridge", "smooth"])
def test_penalised_bz_solve_stays_float32_without_a_cast(z_penalty):
    """``solve_bz`` (dense, penalised z) on float32 statistics: no float64 intermediate is cast
    back (a scatter of a float64 penalty into the float32 normal matrix warns, and JAX will make
    it an error), every output is float32, and (b, z) equal a plain float64 numpy solution of
    min Σ_{i,t} n_it ||w_it − b_i − z_{t+1} + M_i z_t||² + λ R(z), R = ||z||² or Σ ||z_{t+1} − z_t||²."""
    import warnings

    import jax

    from jaxmed._src.longterm.nonstationary import solve_bz
    from jaxmed._src.longterm.simulate import simulate_longterm
    from jaxmed._src.longterm.stats import panel_stats

    p = simulate_longterm(jax.random.key(5), 120, 6, design="s1")
    panel = panel_from_arrays(np.asarray(p.obs), np.asarray(p.bucket), dtype=np.float32)
    stats = panel_stats(panel)
    d = stats.sum_x.shape[2]
    rng = np.random.default_rng(0)
    M = np.stack([0.5 * np.eye(d), 0.3 * np.eye(d)]) + 0.05 * rng.normal(size=(2, d, d))
    lam = 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b, z, cond = solve_bz(stats, np.asarray(M, np.float32), anchor="none", lambda_z=np.float32(lam),
                              z_penalty=z_penalty, solver="dense")
    assert b.dtype == z.dtype == cond.dtype == np.float32
    # float64 numpy reference, unknowns u = (b_0, b_1, z_1..z_T)
    n = np.asarray(stats.n_tr, np.float64)
    T = n.shape[1]
    w = (np.asarray(stats.sum_y, np.float64) / n[..., None]
         - np.einsum("iab,itb->ita", M, np.asarray(stats.sum_x, np.float64) / n[..., None]))
    rows, ys, wts = [], [], []
    for i in range(2):
        for t in range(T):
            for a in range(d):
                r = np.zeros((T + 2) * d)
                r[i * d + a] = 1.0                                   # b_i
                r[(2 + t) * d + a] += 1.0                            # z_{t+1}
                if t >= 1:
                    r[(1 + t) * d:(2 + t) * d] -= M[i, a]            # − M_i z_t
                rows.append(r), ys.append(w[i, t, a]), wts.append(n[i, t])
    A, y, wt = np.array(rows), np.array(ys), np.array(wts)
    if z_penalty == "ridge":
        R = np.eye(T * d)
    else:
        D = np.kron(np.eye(T) - np.eye(T, k=-1), np.eye(d))
        R = D.T @ D
    H = A.T @ (wt[:, None] * A)
    H[2 * d:, 2 * d:] += lam * R
    u = np.linalg.solve(H, A.T @ (wt * y))
    np.testing.assert_allclose(np.asarray(b, np.float64), u[:2 * d].reshape(2, d), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(np.asarray(z, np.float64)[1:], u[2 * d:].reshape(T, d), rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(np.asarray(z)[0], 0.0)
