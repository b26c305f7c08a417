"""The benchmark comparators (plain numpy float64, ``benchmarks/numpy_*.py``) agree with jaxmed.

Agreement criterion: |jaxmed − numpy| ≤ 1e-8 + 1e-8 · |numpy| elementwise (measured max
differences are ~1e-12), for every estimator × effect, the cluster SEs and η (mediation),
and Δ, Δ_γ, ρ_1 − ρ_0 with bootstrap SEs and intervals (long-term). NaN patterns must match.
The comparators are independent implementations: raw moments instead of Gauss–Hermite,
scipy B-splines, lstsq on raw transitions instead of sufficient statistics.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import numpy_longterm as nl  # noqa: E402
import numpy_mediation as nm  # noqa: E402

import jaxmed  # noqa: E402
from jaxmed._src.longterm.panel import Panel  # noqa: E402
from jaxmed._src.longterm.simulate import simulate_longterm  # noqa: E402
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic  # noqa: E402
from jaxmed._src.trajectories import Trajectories  # noqa: E402
from jaxmed.longterm import longterm_effect  # noqa: E402
from jaxmed._src.mediation.config import RATIO_FEATURES  # noqa: E402
from jaxmed.mediation import MediationConfig, mediation_core  # noqa: E402

TOL = 1e-8


def _close(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(b)
    np.testing.assert_allclose(a[ok], b[ok], rtol=TOL, atol=TOL)


@pytest.fixture(scope="module")
def core():
    return jax.jit(mediation_core, static_argnames=("a0",))


def _masked(data, seed):
    """Random attrition: trajectory i is observed for its first L_i ≥ 3 steps."""
    n, t = data.mask.shape
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, t + 1, size=n)
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float64)
    return data._replace(mask=jnp.asarray(mask))


@pytest.mark.parametrize("n,t,a0,masked,boundary", [
    (40, 10, 0, False, None), pytest.param(60, 8, 1, True, None, marks=pytest.mark.slow),
    (40, 10, 0, False, 0.0), (40, 10, 0, False, 0.02)])
def test_numpy_mediation_agrees(core, n, t, a0, masked, boundary):
    """Both sides' defaults (``boundary=None``: quantile boundary knots 0.0025, ρ̃ ≤ 50), the
    range knots of the defaults before session 21 (0.0) and another boundary quantile."""
    data = simulate_semi_synthetic(jax.random.key(n), n, t)
    if masked:
        data = _masked(data, n)
    pol = jaxmed.policies.semi_synthetic_target_policy()
    key = jax.random.key(7)
    config = MediationConfig() if boundary is None else MediationConfig(
        nuisance_boundary_quantile=boundary)
    params = None if boundary is None else dict(nuisance_boundary_quantile=boundary)
    res = core(key, data, pol, a0, config)
    w, b = nm.jaxmed_rff(key, data.state.shape[-1], RATIO_FEATURES)
    out = nm.mediation_numpy(*(np.asarray(x) for x in data), np.asarray(pol.weights),
                             float(pol.intercept), w, b, a0=a0, params=params)
    assert int(res.diagnostics.status) == 0
    _close(res.estimate, out["estimate"])
    _close(res.cluster_se, out["se"])
    _close(res.se, out["se"])  # n_boot = 0: DM's se is NaN on both sides
    _close(res.eta, out["eta"])
    # every estimator × effect that the spec defines is finite (4 NaN blocks: MIS2, baselines DDE/DME/ATE)
    assert np.isfinite(out["estimate"]).sum() == 3 * 5 + 4 * 2
    if boundary is not None:  # the boundary quantile changes the numbers: not the default's
        plain = nm.mediation_numpy(*(np.asarray(x) for x in data), np.asarray(pol.weights),
                                   float(pol.intercept), w, b, a0=a0)
        assert np.nanmax(np.abs(out["estimate"] - plain["estimate"])) > 1e-4


def _attrited_panel(panel, seed):
    n, t1 = panel.mask.shape
    rng = np.random.default_rng(seed)
    drop = rng.integers(t1 // 2, t1 + 1, size=n)
    mask = (np.arange(t1)[None, :] < drop[:, None]).astype(np.float64)
    return Panel(jnp.asarray(np.asarray(panel.obs) * mask[..., None]), panel.bucket, jnp.asarray(mask))


@pytest.mark.parametrize("method", ["nonstationary", "stationary"])
@pytest.mark.parametrize("masked", [False, True])
def test_numpy_longterm_agrees(method, masked):
    panel = simulate_longterm(jax.random.key(0), 400, 10, design="s2")
    if masked:
        panel = _attrited_panel(panel, 1)
    key = jax.random.key(3)
    n_boot = 40
    res = longterm_effect(panel, reward=0, method=method, n_boot=n_boot, key=key)
    d = panel.obs.shape[-1]
    wts = nl.jaxmed_boot_weights(key, panel.bucket, n_boot)
    out = nl.longterm_numpy(panel.obs, panel.bucket, panel.mask, np.eye(d)[0], 0.0, 0.99, method,
                            boot_weights=wts)
    assert int(res.diagnostics.status) == 0 and out["ok"]
    assert int(res.diagnostics.n_boot_failed) == out["n_failed"]
    _close(res.estimate, out["estimate"])
    _close(res.se, out["se"])
    _close(res.ci_normal, out["ci_normal"])
    _close(res.ci_percentile, out["ci_percentile"])
