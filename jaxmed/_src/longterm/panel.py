"""The ``Panel`` data model for long-term A/B analyses (spec longterm.md §2).

A ``Panel`` holds n individuals observed at times t = 0..T in one of two buckets
(0 = control, 1 = treatment), assigned once and kept for the whole experiment. It is
a NamedTuple of arrays, hence a pytree: it passes through ``jit`` and ``vmap``
(a leading replication axis). Ragged panels (late entry, attrition, missing days)
are zero-filled and described by ``mask``; only transitions t -> t+1 with both ends
observed are used by the estimators.

Validation happens here, in numpy, before anything is traced.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from jaxmed._src.validation import (as_float as _as_float, check_finite_where,
                                   check_long_dataframe, check_values_in, plain as _py)

__all__ = ["Panel", "panel_from_arrays", "panel_from_dataframe", "panel_to_dataframe",
           "validate_panel"]


class Panel(NamedTuple):
    """One A/B experiment: n individuals, T+1 time points, d metrics.

    Attributes:
      obs: ``(n, T+1, d)`` observations o_{j,t} (zero where ``mask`` is 0).
      bucket: ``(n,)`` bucket D_j in {0, 1} (float).
      mask: ``(n, T+1)`` 1.0 where o_{j,t} is observed, 0.0 otherwise.
      rewards: optional ``(n, T+1)`` observed rewards R_{j,t} (None when the reward is a
        known linear function of ``obs``).
    """

    obs: object
    bucket: object
    mask: object
    rewards: object = None

    @property
    def n_individuals(self) -> int:
        return self.obs.shape[-3]

    @property
    def n_times(self) -> int:
        """T + 1, the number of time points."""
        return self.obs.shape[-2]

    @property
    def dim(self) -> int:
        return self.obs.shape[-1]


def validate_panel(panel: Panel, *, min_transitions: int = 2) -> None:
    """Raises ``ValueError`` naming the argument and the offending index if ``panel`` is invalid.

    Checks: shapes (obs ``(n, T+1, d)`` with T >= 1, bucket ``(n,)``, mask and rewards
    ``(n, T+1)``); mask in {0, 1}; bucket binary; each bucket has at least
    ``min_transitions`` observed transitions (o_t and o_{t+1} both observed); finite values
    where observed; no metric column constant over all observed entries (its regression
    would be singular).
    """
    obs = _as_float("obs", panel.obs, 3)
    n, tp1, d = obs.shape
    if n == 0:
        raise ValueError("obs: expected at least one individual (n >= 1), got n = 0")
    if tp1 < 2:
        raise ValueError(f"obs: expected at least two time points (T >= 1), got {tp1}")
    if d == 0:
        raise ValueError("obs: expected at least one metric (d >= 1), got d = 0")
    bucket = _as_float("bucket", panel.bucket, 1)
    if bucket.shape != (n,):
        raise ValueError(f"bucket: expected shape ({n},) to match obs {obs.shape}, got {bucket.shape}")
    check_values_in("bucket", bucket, (0.0, 1.0), ("individual",))
    mask = _as_float("mask", panel.mask, 2)
    if mask.shape != (n, tp1):
        raise ValueError(f"mask: expected shape ({n}, {tp1}) to match obs {obs.shape}, got {mask.shape}")
    check_values_in("mask", mask, (0.0, 1.0), ("individual", "time"))
    observed = mask.astype(bool)
    bad = ~np.isfinite(obs).all(axis=-1) & observed
    if bad.any():
        j, t = np.argwhere(bad)[0]
        k = int(np.argmax(~np.isfinite(obs[j, t])))
        raise ValueError(f"obs: non-finite value (NaN or inf) at individual {j}, time {t}, metric {k}; "
                         f"{int(bad.sum())} such observation(s) in all")
    if panel.rewards is not None:
        rewards = _as_float("rewards", panel.rewards, 2)
        if rewards.shape != (n, tp1):
            raise ValueError(f"rewards: expected shape ({n}, {tp1}) to match obs {obs.shape}, got "
                             f"{rewards.shape}")
        check_finite_where("rewards", rewards, mask, ("individual", "time"), what="observation")
    transitions = observed[:, :-1] & observed[:, 1:]
    for i in (0, 1):
        count = int(transitions[bucket == i].sum())
        if (bucket == i).sum() == 0:
            raise ValueError(f"bucket: bucket {i} has no individuals; both buckets are needed")
        if count < min_transitions:
            raise ValueError(f"mask: bucket {i} has {count} observed transition(s) t -> t+1, expected "
                             f"at least {min_transitions}")
    for k in range(d):
        vals = obs[..., k][observed]
        if vals.size and np.ptp(vals) <= 1e-12 * (1.0 + np.abs(vals).max()):
            raise ValueError(f"obs: metric {k} is constant ({vals[0]}) over all observed entries; drop it "
                             f"(the intercept b_i already models a constant)")


def panel_from_arrays(obs, bucket, mask=None, rewards=None, *, dtype=np.float64) -> Panel:
    """Builds a validated ``Panel`` from arrays.

    Args:
      obs: ``(n, T+1, d)`` observations, or ``(n, T+1)`` for d = 1. Entries where ``mask``
        is 0 may hold anything (NaN included); they are replaced by 0.
      bucket: ``(n,)`` bucket in {0, 1}.
      mask: ``(n, T+1)`` observed indicator (default: all observed).
      rewards: optional ``(n, T+1)`` observed rewards.
      dtype: float64 (default) or float32.

    Returns:
      A validated ``Panel`` of numpy arrays.

    >>> import numpy as np
    >>> p = panel_from_arrays(np.arange(12.0).reshape(2, 3, 2) ** 1.5, [0, 1])
    >>> p.obs.shape, float(p.mask.sum())
    ((2, 3, 2), 6.0)
    """
    obs = np.asarray(obs, dtype=np.float64) if not isinstance(obs, np.ndarray) else obs.astype(np.float64)
    if obs.ndim == 2:
        obs = obs[..., None]
    obs = _as_float("obs", obs, 3)
    bucket = _as_float("bucket", bucket, 1)
    mask = np.ones(obs.shape[:2]) if mask is None else _as_float("mask", mask, 2)
    rewards = None if rewards is None else _as_float("rewards", rewards, 2)
    panel = Panel(obs, bucket, mask, rewards)
    validate_panel(panel)
    keep = mask.astype(bool)
    obs = np.where(keep[..., None], obs, 0.0)
    if rewards is not None:
        rewards = np.where(keep, rewards, 0.0).astype(dtype)
    return Panel(obs.astype(dtype), bucket.astype(dtype), mask.astype(dtype), rewards)


def panel_from_dataframe(df, *, metrics: Sequence[str], id: str = "id", time: str = "time",
                         bucket: str = "bucket", reward: str | None = None,
                         dtype=np.float64) -> Panel:
    """Builds a ``Panel`` from a long-format DataFrame, one row per (id, time).

    Times are the sorted distinct values of the ``time`` column, with the gaps of a regular
    grid filled in (integer times: every integer from the first to the last; datetimes: every
    multiple of the smallest spacing), so a day missing for everyone is a masked time point;
    individuals are the sorted distinct ids. Missing (id, time) pairs are masked.

    Args:
      df: a pandas DataFrame.
      metrics: names of the metric columns (the d coordinates of o).
      id, time, bucket: column names.
      reward: optional name of an observed reward column.
      dtype: float64 (default) or float32.

    Returns:
      A validated ``Panel``.

    >>> import pandas as pd
    >>> df = pd.DataFrame(dict(id=[0, 0, 0, 1, 1, 1], time=[0, 1, 2, 0, 1, 2],
    ...                        bucket=[0, 0, 0, 1, 1, 1], x=[1.0, 2.0, 4.0, 3.0, 5.0, 6.0]))
    >>> panel_from_dataframe(df, metrics=["x"]).obs[:, :, 0].tolist()
    [[1.0, 2.0, 4.0], [3.0, 5.0, 6.0]]
    """
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics: expected at least one metric column name")
    extra = [reward] if reward is not None else []
    check_long_dataframe(df, {"df": [id, time, bucket] + metrics + extra}, metrics + [bucket] + extra,
                         id=id, time=time)
    per_id = df.groupby(id, sort=True)[bucket].nunique()
    if (per_id > 1).any():
        bad_id = per_id.index[np.argmax((per_id > 1).to_numpy())]
        raise ValueError(f"{bucket}: the bucket changes within id {_py(bad_id)!r}; each individual must stay "
                         f"in one bucket")
    ids = np.sort(df[id].unique())
    times = time_grid(df[time].unique())
    row_of = np.searchsorted(ids, df[id].to_numpy())
    col_of = np.searchsorted(times, df[time].to_numpy())
    n, tp1, d = len(ids), len(times), len(metrics)
    obs = np.zeros((n, tp1, d))
    mask = np.zeros((n, tp1))
    obs[row_of, col_of] = df[metrics].to_numpy(np.float64)
    mask[row_of, col_of] = 1.0
    rewards = None
    if reward is not None:
        rewards = np.zeros((n, tp1))
        rewards[row_of, col_of] = df[reward].to_numpy(np.float64)
    b = np.zeros(n)
    b[row_of] = df[bucket].to_numpy(np.float64)
    return panel_from_arrays(obs, b, mask, rewards, dtype=dtype)


def time_grid(times) -> np.ndarray:
    """The sorted distinct times with the gaps of a regular grid filled in.

    Integer-valued numeric times become every integer from the first to the last, and
    datetimes every multiple of the smallest spacing, so a day missing for everyone is a
    masked time point (as in ``panel_from_arrays``), not two days merged into one step.
    Other times (strings, irregular floats) are kept as given. Shared by the in-memory
    DataFrame path and the streaming (parquet/Dask) path.
    """
    times = np.unique(np.asarray(times))
    if times.size < 2:
        return times
    if np.issubdtype(times.dtype, np.datetime64):
        step = np.diff(times).min()
        if np.all((times - times[0]) % step == np.timedelta64(0)):
            return np.arange(times[0], times[-1] + step, step)
        return times
    if np.issubdtype(times.dtype, np.number) and np.all(np.mod(times, 1) == 0):
        return np.arange(times[0], times[-1] + 1).astype(times.dtype)
    return times


def panel_to_dataframe(panel: Panel, *, metric_names: Sequence[str] | None = None):
    """Long-format DataFrame (one row per observed (id, time)) with id, time, bucket, metrics
    and, if present, ``reward``. Round-trips with ``panel_from_dataframe``.
    """
    import pandas as pd

    obs = np.asarray(panel.obs)
    n, tp1, d = obs.shape
    names = list(metric_names) if metric_names is not None else [f"o{k}" for k in range(d)]
    if len(names) != d:
        raise ValueError(f"metric_names: expected {d} names, got {len(names)}")
    keep = np.asarray(panel.mask).reshape(-1).astype(bool)
    ids, times = np.meshgrid(np.arange(n), np.arange(tp1), indexing="ij")
    cols = {"id": ids.reshape(-1)[keep], "time": times.reshape(-1)[keep],
            "bucket": np.repeat(np.asarray(panel.bucket), tp1)[keep].astype(np.int64)}
    for k, c in enumerate(names):
        cols[c] = obs[..., k].reshape(-1)[keep]
    if panel.rewards is not None:
        cols["reward"] = np.asarray(panel.rewards).reshape(-1)[keep]
    return pd.DataFrame(cols)
