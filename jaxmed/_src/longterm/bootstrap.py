"""Bootstrap over individuals within bucket (spec longterm.md §4.8).

Each replicate draws per-individual weights — multinomial within bucket (n_i draws among
the n_i members of bucket i, the classic resample) or Poisson(1) — and re-evaluates the
estimator on the weighted sufficient statistics (a weighted reduction of the data; nothing
else is recomputed per individual). The exogenous path stays shared: inference is
conditional on it. Replicates run in chunks (``jax.lax.map`` with ``batch_size``), so a
large ``n_boot`` never materialises all replicates' statistics at once.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["BootstrapResult", "bootstrap_weights", "bootstrap", "summarize_replicates", "BOOTSTRAP_KINDS"]

BOOTSTRAP_KINDS = ("multinomial", "poisson")


class BootstrapResult(NamedTuple):
    """Attributes:
      estimate: ``(K,)`` point estimates (unweighted data).
      se: ``(K,)`` bootstrap standard deviations over successful replicates.
      ci_normal: ``(K, 2)`` estimate ± 1.959964 se.
      ci_percentile: ``(K, 2)`` 2.5% and 97.5% quantiles of the replicates.
      replicates: ``(B, K)`` replicate estimates (NaN for failed ones).
      n_failed: number of replicates with a non-zero status or non-finite estimate.
    """

    estimate: object
    se: object
    ci_normal: object
    ci_percentile: object
    replicates: object
    n_failed: object


def bootstrap_weights(key, bucket, kind: str = "multinomial"):
    """One replicate's weights ``(n,)``.

    ``"multinomial"``: each bucket's n_i individuals are resampled with replacement n_i
    times (weights are the counts, summing to n_i per bucket). ``"poisson"``: i.i.d.
    Poisson(1) weights.

    >>> import jax, jax.numpy as jnp
    >>> w = bootstrap_weights(jax.random.key(0), jnp.array([0., 0., 1., 1., 1.]))
    >>> float(w[:2].sum()), float(w[2:].sum())
    (2.0, 3.0)
    """
    bucket = jnp.asarray(bucket)
    n = bucket.shape[0]
    if kind == "poisson":
        return jax.random.poisson(key, 1.0, (n,)).astype(bucket.dtype)
    if kind != "multinomial":
        raise ValueError(f"bootstrap: expected one of {BOOTSTRAP_KINDS}, got {kind!r}")
    is1 = bucket > 0.5
    order = jnp.argsort(is1, stable=True)          # bucket-0 members first, then bucket-1
    n0 = jnp.sum(~is1)
    n1 = n - n0
    u = jax.random.uniform(key, (n,), dtype=bucket.dtype)
    pos = jnp.where(is1, n0 + jnp.floor(u * n1).astype(jnp.int32),
                    jnp.floor(u * n0).astype(jnp.int32))
    pos = jnp.clip(pos, 0, n - 1)
    return jnp.bincount(order[pos], length=n).astype(bucket.dtype)


def bootstrap(key, estimate_fn: Callable, bucket, *, n_boot: int, kind: str = "multinomial",
              batch_size: int | None = None) -> BootstrapResult:
    """Bootstrap of ``estimate_fn(weights) -> (estimates (K,), status)``.

    Args:
      key: ``jax.random`` key; replicate b uses ``fold_in(key, b)``.
      estimate_fn: maps per-individual weights ``(n,)`` (or None for the point estimate)
        to ``(estimates (K,), status int)``.
      bucket: ``(n,)`` buckets.
      n_boot: number of replicates (static, ≥ 2).
      kind: ``"multinomial"`` or ``"poisson"`` (static).
      batch_size: replicates per vectorised chunk (static; default min(n_boot, 64)).
    """
    est, _ = estimate_fn(None)

    def one(b):
        w = bootstrap_weights(jax.random.fold_in(key, b), bucket, kind)
        e, status = estimate_fn(w)
        ok = (status == 0) & jnp.all(jnp.isfinite(e))
        return jnp.where(ok, e, jnp.nan), ~ok

    reps, failed = jax.lax.map(one, jnp.arange(n_boot), batch_size=batch_size or min(n_boot, 64))
    return summarize_replicates(est, reps, failed)


def summarize_replicates(est, reps, failed) -> BootstrapResult:
    """SEs and 95% intervals from replicate estimates ``(B, K)`` (NaN rows = failed replicates)."""
    se = jnp.nanstd(reps, axis=0, ddof=1)
    z = 1.959963984540054
    ci_normal = jnp.stack([est - z * se, est + z * se], axis=-1)
    ci_pct = jnp.nanquantile(reps, jnp.array([0.025, 0.975], reps.dtype), axis=0).T
    return BootstrapResult(est, se, ci_normal, ci_pct, reps, jnp.sum(failed))
