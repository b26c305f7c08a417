"""One-call API: ``longterm_effect`` and the study-engine ``EstimatorSpec`` factory.

Estimands (spec longterm.md §0, §2): the primary output is the seed's unnormalised
discounted effect Δ = E[Σ_t γ^t R_t | D=1] − E[Σ_t γ^t R_t | D=0]; secondary, labelled
outputs are Δ_γ = (1−γ)Δ and the long-run average-reward effect ρ_1 − ρ_0.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.longterm import baselines as _bl
from jaxmed._src.longterm.bootstrap import BOOTSTRAP_KINDS, bootstrap, summarize_replicates
from jaxmed._src.longterm.n2 import n2_estimate
from jaxmed._src.longterm.nonstationary import ANCHORS, BZ_SOLVERS, Z_PENALTIES, nonstationary_estimate
from jaxmed._src.longterm.panel import Panel, panel_from_arrays, panel_from_dataframe, validate_panel
from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.stationary import stationary_estimate
from jaxmed._src.longterm.stats import panel_stats
from jaxmed._src.longterm.streaming import is_stream_source, stream_stats
from jaxmed._src.longterm.values import STATUS_NAMES
from jaxmed._src.precision import precision

__all__ = ["EFFECTS", "METHODS", "STATS_METHODS", "effects_from_stats", "LongtermFit", "LongtermDiagnostics", "LongtermResult",
           "longterm_effect", "longterm_estimator_spec", "estimate_effects"]

EFFECTS = ("delta", "delta_gamma", "avg_reward")
METHODS = ("nonstationary", "stationary", "naive-window", "naive-last", "naive-scaling",
           "detrended", "sieve-lstd", "surrogate-index", "n2")
#: methods that are functions of the sufficient statistics only (these also run on parquet data)
STATS_METHODS = ("nonstationary", "stationary", "n2")


class LongtermFit(NamedTuple):
    """Fitted parameters (NaN where the method has none): M ``(2, d, d)``, b ``(2, d)``,
    z ``(T+1, d)`` exogenous path (zeros for stationary methods), theta ``(d,)``, c, m0 ``(d,)``."""

    M: object
    b: object
    z: object
    theta: object
    c: object
    m0: object


class LongtermDiagnostics(NamedTuple):
    """spectral_radius ``(2,)``; objective ``(n_iter+1,)`` (Alg. N) ; bz_condition (Alg. N);
    status int (0 ok, 1 unstable sr ≥ 1 − 1e-6, 2 non-finite; bits); n_boot_failed."""

    spectral_radius: object
    objective: object
    bz_condition: object
    status: object
    n_boot_failed: object


class LongtermResult(NamedTuple):
    """Result of ``longterm_effect``.

    Attributes:
      estimate: ``(3,)`` effects in the order of ``EFFECTS``: Δ (unnormalised discounted,
        primary), Δ_γ = (1−γ)Δ, ρ_1 − ρ_0 (average reward).
      se: ``(3,)`` bootstrap standard errors (NaN without bootstrap).
      ci_normal: ``(3, 2)`` normal 95% intervals; ci_percentile: ``(3, 2)`` percentile 95%.
      params: ``LongtermFit``; diagnostics: ``LongtermDiagnostics``.
      method, anchor: strings; gamma: float; n_boot: int.
    """

    estimate: object
    se: object
    ci_normal: object
    ci_percentile: object
    params: LongtermFit
    diagnostics: LongtermDiagnostics
    method: str
    anchor: str
    gamma: float
    n_boot: int

    @property
    def delta(self):
        """Δ, the seed's unnormalised discounted effect (primary)."""
        return self.estimate[0]

    @property
    def delta_gamma(self):
        """Δ_γ = (1−γ) Δ."""
        return self.estimate[1]

    @property
    def avg_reward(self):
        """ρ_1 − ρ_0, the long-run average-reward effect."""
        return self.estimate[2]

    def to_frame(self):
        """pandas DataFrame, one row per effect, with estimate, se, both CIs and metadata."""
        import pandas as pd

        est = np.asarray(self.estimate)
        df = pd.DataFrame({
            "effect": list(EFFECTS),
            "estimate": est,
            "se": np.asarray(self.se),
            "ci_low": np.asarray(self.ci_normal)[:, 0],
            "ci_high": np.asarray(self.ci_normal)[:, 1],
            "pct_low": np.asarray(self.ci_percentile)[:, 0],
            "pct_high": np.asarray(self.ci_percentile)[:, 1],
        })
        df["method"] = self.method
        df["anchor"] = self.anchor
        df["gamma"] = self.gamma
        df["status"] = int(self.diagnostics.status)
        df.attrs["status"] = STATUS_NAMES.get(int(self.diagnostics.status), "combined failure bits")
        return df.set_index("effect")


def _nan(shape, dtype):
    return jnp.full(shape, jnp.nan, dtype)


def effects_from_stats(stats, reward, gamma, *, method: str = "nonstationary", anchor: str = "steady0",
                       anchor_mean=None, ridge=0.0, lambda_z=0.0, z_penalty: str = "smooth",
                       n_iter: int = 0, tol=0.0, bz_solver: str = "auto"):
    """Effects ``(3,)``, status, ``LongtermFit`` and diagnostics of a method in ``STATS_METHODS``
    from ``PanelStats`` (unbatched, jit/vmap/grad-able). For ``"n2"`` the ``z`` field holds the
    exogenous input path u (u_0 = 0) and ``bz_condition`` the condition number of its normal matrix.
    """
    dt = stats.sum_x.dtype
    nan_obj = _nan((n_iter + 1,), dt)
    if method == "nonstationary":
        f = nonstationary_estimate(stats, reward, gamma, anchor=anchor, anchor_mean=anchor_mean,
                                   ridge=ridge, lambda_z=lambda_z, z_penalty=z_penalty,
                                   n_iter=n_iter, tol=tol, bz_solver=bz_solver)
        fit = LongtermFit(f.M, f.b, f.z, f.reward.theta, jnp.asarray(f.reward.c, dt), f.m0)
        diag = (f.spectral_radius, f.objective, f.bz_condition)
    elif method == "stationary":
        f = stationary_estimate(stats, reward, gamma, ridge=ridge)
        z0 = jnp.zeros((stats.sum_o.shape[1], stats.sum_o.shape[2]), dt)
        fit = LongtermFit(f.M, f.b, z0, f.reward.theta, jnp.asarray(f.reward.c, dt), f.m0)
        diag = (f.spectral_radius, nan_obj, _nan((), dt))
    elif method == "n2":
        f = n2_estimate(stats, reward, gamma, ridge=ridge)
        fit = LongtermFit(f.M, f.b, f.u, f.reward.theta, jnp.asarray(f.reward.c, dt), f.m0)
        diag = (f.spectral_radius, nan_obj, f.condition)
    else:
        raise ValueError(f"method: expected one of {STATS_METHODS}, got {method!r}")
    values = f.values
    eff = jnp.stack([values.delta, values.delta_gamma, values.avg_reward]).astype(dt)
    return eff, f.status, fit, diag


def estimate_effects(panel, weights, reward, gamma, *, method: str = "nonstationary",
                     anchor: str = "steady0", anchor_mean=None, ridge=0.0, lambda_z=0.0,
                     z_penalty: str = "smooth", n_iter: int = 0, tol=0.0, surrogate=None,
                     sieve_degree: int = 2, bz_solver: str = "auto"):
    """Unbatched, jit/vmap/grad-able core: effects ``(3,)``, status, ``LongtermFit``, diagnostics.

    ``panel`` is a (validated) ``Panel`` of arrays; ``weights`` per-individual weights or
    None; ``reward`` a ``LinearReward`` or None (fit / observed rewards).
    """
    obs = jnp.asarray(panel.obs)
    dt = obs.dtype
    n_t, d = obs.shape[-2], obs.shape[-1]
    nanfit = LongtermFit(_nan((2, d, d), dt), _nan((2, d), dt), jnp.zeros((n_t, d), dt), _nan((d,), dt),
                         _nan((), dt), _nan((d,), dt))
    nandiag = (_nan((2,), dt), _nan((n_iter + 1,), dt), _nan((), dt))
    if method in STATS_METHODS:
        return effects_from_stats(panel_stats(panel, weights), reward, gamma, method=method, anchor=anchor,
                                  anchor_mean=anchor_mean, ridge=ridge, lambda_z=lambda_z,
                                  z_penalty=z_penalty, n_iter=n_iter, tol=tol, bz_solver=bz_solver)
    if method == "naive-window":
        bf = _bl.naive_window(panel, reward, gamma, weights=weights)
    elif method == "naive-last":
        bf = _bl.naive_last(panel, reward, gamma, weights=weights)
    elif method == "naive-scaling":
        bf = _bl.naive_scaling(panel, reward, gamma, weights=weights)
    elif method == "detrended":
        bf = _bl.detrended_stationary(panel, reward, gamma, weights=weights, ridge=ridge)
    elif method == "sieve-lstd":
        bf = _bl.sieve_lstd(panel, reward, gamma, weights=weights, degree=sieve_degree)
    elif method == "surrogate-index":
        bf = _bl.surrogate_index(panel, reward, gamma, surrogate=surrogate, weights=weights)
    else:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    values, status, fit, diag = bf.values, bf.status, nanfit, nandiag
    eff = jnp.stack([values.delta, values.delta_gamma, values.avg_reward]).astype(dt)
    return eff, status, fit, diag


_STATIC = ("method", "anchor", "z_penalty", "n_iter", "n_boot", "kind", "batch_size", "sieve_degree",
           "bz_solver")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _run(key, panel, reward, gamma, anchor_mean, ridge, lambda_z, tol, surrogate, *, method, anchor,
         z_penalty, n_iter, n_boot, kind, batch_size, sieve_degree, bz_solver):
    opts = dict(method=method, anchor=anchor, anchor_mean=anchor_mean, ridge=ridge, lambda_z=lambda_z,
                z_penalty=z_penalty, n_iter=n_iter, tol=tol, surrogate=surrogate,
                sieve_degree=sieve_degree, bz_solver=bz_solver)
    eff, status, fit, diag = estimate_effects(panel, None, reward, gamma, **opts)
    if n_boot > 0:
        def fn(w):
            e, s, _, _ = estimate_effects(panel, w, reward, gamma, **opts)
            return e, s

        bs = bootstrap(key, fn, panel.bucket, n_boot=n_boot, kind=kind, batch_size=batch_size)
        se, ci_n, ci_p, failed = bs.se, bs.ci_normal, bs.ci_percentile, bs.n_failed
    else:
        se = _nan((3,), eff.dtype)
        ci_n = ci_p = _nan((3, 2), eff.dtype)
        failed = jnp.zeros((), jnp.int32)
    return eff, se, ci_n, ci_p, fit, LongtermDiagnostics(*diag, status, failed)


_STATS_STATIC = ("method", "anchor", "z_penalty", "n_iter", "batch_size", "bz_solver")


@functools.partial(jax.jit, static_argnames=_STATS_STATIC)
def _run_stats(stats, boot, reward, gamma, anchor_mean, ridge, lambda_z, tol, *, method, anchor, z_penalty,
               n_iter, batch_size, bz_solver):
    """Estimate from ``PanelStats`` and, if ``boot`` (stats with a leading replicate axis) is
    given, the bootstrap summary of the replicate estimates."""
    opts = dict(method=method, anchor=anchor, anchor_mean=anchor_mean, ridge=ridge, lambda_z=lambda_z,
                z_penalty=z_penalty, n_iter=n_iter, tol=tol, bz_solver=bz_solver)
    eff, status, fit, diag = effects_from_stats(stats, reward, gamma, **opts)
    if boot is None:
        se = _nan((3,), eff.dtype)
        return eff, se, _nan((3, 2), eff.dtype), _nan((3, 2), eff.dtype), fit, \
            LongtermDiagnostics(*diag, status, jnp.zeros((), jnp.int32)), None

    def one(st):
        e, s, _, _ = effects_from_stats(st, reward, gamma, **opts)
        ok = (s == 0) & jnp.all(jnp.isfinite(e))
        return jnp.where(ok, e, jnp.nan), ~ok

    n_boot = boot.n_tr.shape[0]
    reps, failed = jax.lax.map(one, boot, batch_size=batch_size or min(n_boot, 64))
    bs = summarize_replicates(eff, reps, failed)
    return eff, bs.se, bs.ci_normal, bs.ci_percentile, fit, LongtermDiagnostics(*diag, status, bs.n_failed), \
        reps


def _longterm_effect_stream(source, *, reward, gamma, method, anchor, key, n_boot, bootstrap_kind, ridge,
                            lambda_z, z_penalty, n_iter, tol, pre_period, metrics, id, time, bucket,
                            reward_col, batch_size, bz_solver, client, batch_rows, dtype):
    if method not in STATS_METHODS:
        raise ValueError(f"method: a parquet / dask source supports the sufficient-statistics methods "
                         f"{STATS_METHODS}, got {method!r}")
    if metrics is None:
        raise ValueError("metrics: a parquet / dask source needs the metric column names")
    if bootstrap_kind not in (None, "hash-poisson", "poisson"):
        raise ValueError(f"bootstrap: a parquet / dask source uses the hash-Poisson bootstrap "
                         f"('hash-poisson'), got {bootstrap_kind!r}")
    key = jax.random.key(0) if key is None else key
    names = list(metrics)
    ss = stream_stats(source, metrics=names, id=id, time=time, bucket="bucket" if bucket is None else bucket,
                      reward=reward_col, key=key, n_boot=int(n_boot), client=client, batch_rows=batch_rows)
    with precision(dtype) as dt:
        d = len(names)
        r = _to_reward(reward, d, names, reward_col is not None, dt)
        anchor_mean = (jnp.asarray(_pre_mean(pre_period, d), dt) if anchor == "preperiod"
                       else jnp.zeros((d,), dt))
        cast = lambda tree: None if tree is None else jax.tree.map(lambda x: jnp.asarray(x, dt), tree)  # noqa: E731
        out = _run_stats(cast(ss.stats), cast(ss.boot), r, jnp.asarray(gamma, dt), anchor_mean,
                         jnp.asarray(ridge, dt), jnp.asarray(lambda_z, dt), jnp.asarray(tol, dt), method=method,
                         anchor=anchor, z_penalty=z_penalty, n_iter=int(n_iter), batch_size=batch_size,
                         bz_solver=bz_solver)
        eff, se, ci_n, ci_p, fit, diag, _ = jax.device_get(out)
    return eff, se, ci_n, ci_p, fit, diag


def _to_panel(panel, bucket, *, metrics, id, time, reward_col, mask, dtype):
    try:
        import pandas as pd
        is_df = isinstance(panel, pd.DataFrame)
    except ImportError:  # pragma: no cover
        is_df = False
    if is_df:
        if metrics is None:
            raise ValueError("metrics: a DataFrame panel needs the metric column names")
        return panel_from_dataframe(panel, metrics=metrics, id=id, time=time,
                                    bucket="bucket" if bucket is None else bucket,
                                    reward=reward_col, dtype=dtype), list(metrics)
    if isinstance(panel, Panel):
        if bucket is not None:
            raise ValueError("bucket: the Panel already carries the buckets; pass bucket=None")
        p = panel_from_arrays(np.asarray(panel.obs), np.asarray(panel.bucket), np.asarray(panel.mask),
                              None if panel.rewards is None else np.asarray(panel.rewards), dtype=dtype)
        return p, metrics
    if bucket is None:
        raise ValueError("bucket: an array panel needs bucket (n,) in {0, 1}")
    return panel_from_arrays(panel, bucket, mask, dtype=dtype), metrics


def _to_reward(reward, d, names, has_rewards, dtype):
    if isinstance(reward, LinearReward):
        theta, c = reward
    elif isinstance(reward, str) and reward == "fit":
        if not has_rewards:
            raise ValueError("reward: 'fit' needs observed rewards in the panel (rewards= / reward_col=)")
        return None
    elif isinstance(reward, str):
        if names is None or reward not in names:
            raise ValueError(f"reward: metric name {reward!r} not among the metrics {names}")
        theta, c = np.eye(d)[names.index(reward)], 0.0
    elif isinstance(reward, (int, np.integer)):
        if not 0 <= int(reward) < d:
            raise ValueError(f"reward: metric index {reward} out of range for d = {d}")
        theta, c = np.eye(d)[int(reward)], 0.0
    elif isinstance(reward, tuple) and len(reward) == 2:
        theta, c = reward
    else:
        theta, c = reward, 0.0
    theta = np.asarray(theta, np.float64)
    if theta.shape != (d,):
        raise ValueError(f"reward: expected θ_r of shape ({d},), got {theta.shape}")
    if not (np.isfinite(theta).all() and np.isfinite(c)):
        raise ValueError("reward: θ_r and c_r must be finite")
    return LinearReward(jnp.asarray(theta, dtype), jnp.asarray(float(c), dtype))


def _pre_mean(pre_period, d):
    pre = pre_period.obs if isinstance(pre_period, Panel) else pre_period
    mask = pre_period.mask if isinstance(pre_period, Panel) else None
    arr = np.asarray(pre, np.float64)
    if arr.ndim == 2 and d == 1:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] != d:
        raise ValueError(f"pre_period: expected shape (m, T_pre, {d}), got {arr.shape}")
    m = np.ones(arr.shape[:2]) if mask is None else np.asarray(mask, np.float64)
    if m.sum() == 0:
        raise ValueError("pre_period: no observed pre-period entries")
    bad = ~np.isfinite(arr).all(-1) & m.astype(bool)
    if bad.any():
        j, t = np.argwhere(bad)[0]
        raise ValueError(f"pre_period: non-finite value at individual {j}, time {t}")
    return (np.where(m[..., None] > 0, arr, 0.0)).sum((0, 1)) / m.sum()


def longterm_effect(panel, bucket=None, *, reward, gamma=0.99, method: str = "nonstationary",
                    anchor: str = "steady0", key=None, n_boot: int = 200,
                    bootstrap: str | None = None, ridge=0.0, lambda_z=0.0, z_penalty: str = "smooth",
                    n_iter: int = 0, tol=0.0, pre_period=None, surrogate=None, sieve_degree: int = 2,
                    metrics: Sequence[str] | None = None, id: str = "id", time: str = "time",
                    reward_col: str | None = None, mask=None, batch_size: int | None = None,
                    check: bool = False, dtype=np.float64, bz_solver: str = "auto", client=None,
                    batch_rows: int = 1 << 15) -> LongtermResult:
    """Long-term treatment effect of a short A/B test (spec longterm.md).

    Estimand (primary): Δ = E[Σ_{t≥0} γ^t R_t | D=1] − E[Σ_{t≥0} γ^t R_t | D=0] (the seed's,
    unnormalised); secondary: Δ_γ = (1−γ)Δ and ρ_1 − ρ_0 (average reward). With
    ``method="nonstationary"`` (Alg. N, §4) a shared exogenous path z_t is estimated and
    cancels; ``"stationary"`` is Alg. S (§3); the others are the baselines of §5.

    Args:
      panel: a ``Panel``; an array ``(n, T+1, d)`` with ``bucket`` given; a long
        DataFrame (columns id, time, bucket, metrics; pass ``metrics``); or, out of core, a
        parquet file or directory path or a ``dask.dataframe`` in the same long format
        (``streaming.py``: sufficient statistics accumulated chunk by chunk, memory independent
        of the number of individuals; methods in ``STATS_METHODS``; hash-Poisson bootstrap).
      bucket: ``(n,)`` buckets for an array panel; for a DataFrame, the bucket column name
        (default ``"bucket"``).
      reward: the reward r(o) = θᵀ o + c: an int (metric index, θ = e_k), a metric name, an
        array θ, a tuple (θ, c), a ``LinearReward``, or ``"fit"`` (pooled LS on observed rewards).
      gamma: discount factor in (0, 1).
      method: one of ``METHODS``.
      anchor: ``"steady0"`` (default), ``"none"`` or ``"preperiod"`` (with ``pre_period``).
      key: ``jax.random`` key for the bootstrap (default ``key(0)``).
      n_boot: bootstrap replicates (0 disables; then se and CIs are NaN).
      bootstrap: ``"multinomial"`` (within bucket; the in-memory default) or ``"poisson"``;
        parquet / dask sources use ``"hash-poisson"`` (Poisson(1) weights from a keyed hash of
        the id, identical wherever a partition is processed; their default).
      ridge: λ_M; lambda_z: λ_z with ``z_penalty`` ``"smooth"`` or ``"ridge"``.
      n_iter: ALS refinement sweeps (0 = within + BZ); tol: early stop of the sweeps.
      pre_period: ``(m, T_pre, d)`` A/A pre-period observations (or a ``Panel``) for
        ``anchor="preperiod"``; its mean anchors b_0 (held fixed in the bootstrap).
      surrogate: a ``SurrogateModel`` for ``method="surrogate-index"``.
      metrics, id, time, reward_col: DataFrame column names.
      mask: ``(n, T+1)`` observed indicator for an array panel.
      batch_size: bootstrap replicates per vectorised chunk.
      check: if True, raise ``ValueError`` when the fit's status is non-zero (unstable
        dynamics or a singular system) instead of returning it in ``diagnostics.status``.
      dtype: float64 (default) or float32.
      bz_solver: Step BZ solver of Alg. N: ``"auto"``, ``"dense"`` or ``"banded"`` (linear in T).
      client: a ``distributed.Client`` for a dask source (default: the active scheduler).
      batch_rows: rows per record batch when streaming parquet (bounds the memory).

    Returns:
      ``LongtermResult`` (``.delta``, ``.delta_gamma``, ``.avg_reward``, ``.to_frame()``).

    >>> import jax
    >>> from jaxmed._src.longterm.simulate import simulate_longterm
    >>> with jax.enable_x64(True):
    ...     p = simulate_longterm(jax.random.key(0), 400, 14, design="s2")
    >>> res = longterm_effect(p, reward=(np.array([1.0, 0.0, 1.0]), 0.0), n_boot=20)
    >>> bool(res.to_frame().loc["avg_reward", "estimate"] < 0)
    True
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if anchor not in ANCHORS:
        raise ValueError(f"anchor: expected one of {ANCHORS}, got {anchor!r}")
    if z_penalty not in Z_PENALTIES:
        raise ValueError(f"z_penalty: expected one of {Z_PENALTIES}, got {z_penalty!r}")
    if bz_solver not in BZ_SOLVERS:
        raise ValueError(f"bz_solver: expected one of {BZ_SOLVERS}, got {bz_solver!r}")
    stream = is_stream_source(panel)
    if not stream and bootstrap is not None and bootstrap not in BOOTSTRAP_KINDS:
        raise ValueError(f"bootstrap: expected one of {BOOTSTRAP_KINDS}, got {bootstrap!r}")
    if not np.isfinite(gamma) or not 0.0 < float(gamma) < 1.0:
        raise ValueError(f"gamma: expected a discount in (0, 1), got {gamma}")
    if int(n_boot) < 0 or int(n_boot) == 1:
        raise ValueError(f"n_boot: expected 0 or at least 2 replicates, got {n_boot}")
    if int(n_iter) < 0:
        raise ValueError(f"n_iter: expected a non-negative number of sweeps, got {n_iter}")
    for name, v in (("ridge", ridge), ("lambda_z", lambda_z), ("tol", tol)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite value >= 0, got {v}")
    if method == "surrogate-index" and surrogate is None:
        raise ValueError("surrogate: method 'surrogate-index' needs a SurrogateModel "
                         "(see fit_surrogate_index)")
    if anchor == "preperiod" and pre_period is None:
        raise ValueError("pre_period: anchor 'preperiod' needs pre-period observations")
    if stream:
        out = _longterm_effect_stream(
            panel, reward=reward, gamma=gamma, method=method, anchor=anchor, key=key, n_boot=n_boot,
            bootstrap_kind=bootstrap, ridge=ridge, lambda_z=lambda_z, z_penalty=z_penalty, n_iter=n_iter,
            tol=tol, pre_period=pre_period, metrics=metrics, id=id, time=time, bucket=bucket,
            reward_col=reward_col, batch_size=batch_size, bz_solver=bz_solver, client=client,
            batch_rows=batch_rows, dtype=dtype)
        return _finish(out, method, anchor, gamma, n_boot, check)
    bootstrap = "multinomial" if bootstrap is None else bootstrap
    with precision(dtype) as dt:
        p, names = _to_panel(panel, bucket, metrics=metrics, id=id, time=time, reward_col=reward_col,
                             mask=mask, dtype=dt)
        d = p.obs.shape[-1]
        r = _to_reward(reward, d, names, p.rewards is not None, dt)
        if method == "surrogate-index" and r is None:
            raise ValueError("reward: the surrogate index needs a known linear reward")
        if method == "sieve-lstd" and int(sieve_degree) < 1:
            raise ValueError(f"sieve_degree: expected >= 1, got {sieve_degree}")
        anchor_mean = (jnp.asarray(_pre_mean(pre_period, d), dt) if anchor == "preperiod"
                       else jnp.zeros((d,), dt))
        key = jax.random.key(0) if key is None else key
        jp = jax.tree.map(lambda x: jnp.asarray(x, dt), p)
        out = _run(key, jp, r, jnp.asarray(gamma, dt), anchor_mean, jnp.asarray(ridge, dt),
                   jnp.asarray(lambda_z, dt), jnp.asarray(tol, dt), surrogate, method=method,
                   anchor=anchor, z_penalty=z_penalty, n_iter=int(n_iter), n_boot=int(n_boot),
                   kind=bootstrap, batch_size=batch_size, sieve_degree=int(sieve_degree), bz_solver=bz_solver)
        out = jax.device_get(out)
    return _finish(out, method, anchor, gamma, n_boot, check)


def _finish(out, method, anchor, gamma, n_boot, check) -> LongtermResult:
    eff, se, ci_n, ci_p, fit, diag = out
    if check and int(diag.status) != 0:
        raise ValueError(f"panel: the {method} fit failed with status {int(diag.status)} "
                         f"({STATUS_NAMES.get(int(diag.status), 'combined failure bits')}); spectral "
                         f"radii {np.asarray(diag.spectral_radius).tolist()}")
    return LongtermResult(eff, se, ci_n, ci_p, fit, diag, method, anchor, float(gamma), int(n_boot))


def longterm_estimator_spec(reward: LinearReward | None, gamma, *,
                            estimators: Sequence[str] = ("nonstationary", "stationary",
                                                         "naive-window", "naive-last"),
                            anchor: str = "steady0", n_boot: int = 0, bootstrap: str = "multinomial",
                            ridge=0.0, lambda_z=0.0, z_penalty: str = "smooth", n_iter: int = 0,
                            batch_size: int | None = None, name: str | None = None) -> EstimatorSpec:
    """``EstimatorSpec`` for the study engine: rows = ``estimators`` (names from ``METHODS``,
    except ``"surrogate-index"``), columns = ``EFFECTS``.

    ``fn(key, panel) -> EffectTable`` is unbatched and jit/vmap-able; ``panel`` is a
    ``Panel`` of arrays (e.g. from ``simulate_longterm``). With ``n_boot > 0`` the SEs and
    normal CIs come from one shared within-bucket bootstrap (same weights for all rows);
    otherwise they are NaN. ``status`` ORs the rows' status bits.
    """
    estimators = tuple(estimators)
    for e in estimators:
        if e not in METHODS or e == "surrogate-index":
            raise ValueError(f"estimators: {e!r} is not one of {tuple(m for m in METHODS if m != 'surrogate-index')}")
    if anchor == "preperiod":
        raise ValueError("anchor: 'preperiod' needs pre-period data; not available in an EstimatorSpec")
    if bootstrap not in BOOTSTRAP_KINDS:
        raise ValueError(f"bootstrap: expected one of {BOOTSTRAP_KINDS}, got {bootstrap!r}")

    def all_rows(panel, w):
        effs, stats = [], []
        for e in estimators:
            eff, status, _, _ = estimate_effects(panel, w, reward, gamma, method=e, anchor=anchor,
                                                 ridge=ridge, lambda_z=lambda_z, z_penalty=z_penalty,
                                                 n_iter=n_iter)
            effs.append(eff)
            stats.append(status)
        return jnp.stack(effs), functools.reduce(jnp.bitwise_or, stats)

    # Under vmap (study batches, bootstrap weights) the rows are computed one replication after
    # another (``sequential_vmap``): their Cholesky/LU/eigenvalue calls are LAPACK kernels whose
    # batched form deadlocked the 2-core CPU thread pool (a width-32 study hung; issue 12).
    @jax.custom_batching.sequential_vmap
    def rows_at(panel, w):
        return _flat(all_rows(panel, w))

    @jax.custom_batching.sequential_vmap
    def fn(key, panel):
        est, status = all_rows(panel, None)
        if n_boot > 0:
            bs = bootstrap_fn(key, lambda w: rows_at(panel, w), panel.bucket, n_boot=n_boot,
                              kind=bootstrap, batch_size=batch_size)
            se = bs.se.reshape(est.shape)
        else:
            se = jnp.full(est.shape, jnp.nan, est.dtype)
        z = 1.959963984540054
        return EffectTable(est, se, est - z * se, est + z * se, status.astype(jnp.int32))

    return EstimatorSpec(name or f"longterm-{anchor}", estimators, EFFECTS, fn)


def _flat(pair):
    est, status = pair
    return est.reshape(-1), status


bootstrap_fn = bootstrap
