"""Sufficient statistics of a long-format parquet dataset, out of core (spec longterm.md §3.2, §4.8).

Every stats-based estimator (Alg. S, Alg. N, N2) consumes only ``PanelStats``: sums over
individuals, per bucket and time, of o_t, o_t o_tᵀ, o_{t+1} o_tᵀ, ... (the lagged products
pair consecutive rows of the *same* individual). They are accumulated chunk by chunk:

* a chunk (all rows of a set of whole individuals) becomes a small zero-padded ``Panel`` and
  one jitted ``panel_stats_many`` call reduces it under B + 1 weightings at once: weight 1
  (the estimate) and B hash-Poisson(1) bootstrap weightings (``hash_bootstrap``), which
  depend only on (key, replicate, id), so a chunk's contribution does not depend on where or
  with which other rows it is processed;
* chunk statistics are added (float64), so memory is bounded by the chunk size, not by the
  number of individuals.

Sources (long format: one row per (id, time), columns id, time, bucket, metrics[, reward]):

* a parquet file or directory (embedded default): ``pyarrow.dataset`` fragments (files) are
  read in record batches of ``batch_rows`` rows. Each file must hold its rows sorted by id
  (the time order within an id is free), and files must hold disjoint id ranges; the rows of
  the last id of a batch are carried to the next batch.
* a ``dask.dataframe``: each partition is reduced by a task and the partial statistics are
  summed by a binary tree of tasks (on the ``distributed`` client if one is given or active).
  Partitions must hold disjoint id ranges (e.g. after ``set_index(id)`` or a sort by id).

The time grid is the sorted distinct times, with the gaps of a regular grid filled in
(integer times: every integer between the first and the last), as for DataFrames.
"""

from __future__ import annotations

import os
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from jaxmed._src.longterm.hash_bootstrap import hash_poisson_weights
from jaxmed._src.longterm.panel import Panel, time_grid
from jaxmed._src.longterm.stats import PanelStats, panel_stats_many
from jaxmed._src.precision import precision
from jaxmed._src.validation import plain as _py

__all__ = ["StreamColumns", "StreamedStats", "is_stream_source", "stream_stats"]


class StreamColumns(NamedTuple):
    """Column names of a long-format dataset."""

    metrics: tuple
    id: str = "id"
    time: str = "time"
    bucket: str = "bucket"
    reward: str | None = None

    @property
    def all(self) -> list:
        return [self.id, self.time, self.bucket, *self.metrics] + ([self.reward] if self.reward else [])


class StreamedStats(NamedTuple):
    """Result of ``stream_stats``.

    Attributes:
      stats: ``PanelStats`` of the data (weights 1), numpy float64.
      boot: ``PanelStats`` with a leading axis of ``n_boot`` hash-Poisson weightings, or None.
      times: the time grid ``(T+1,)``.
      n_individuals, n_rows: counts read.
      metric_min, metric_max: ``(d,)`` per-metric ranges over all rows.
    """

    stats: PanelStats
    boot: PanelStats | None
    times: np.ndarray
    n_individuals: int
    n_rows: int
    metric_min: np.ndarray
    metric_max: np.ndarray


def is_stream_source(obj) -> bool:
    """True for a path (str / ``os.PathLike``) or a ``dask.dataframe.DataFrame``."""
    if isinstance(obj, (str, os.PathLike)):
        return True
    return _is_dask_frame(obj)


def _is_dask_frame(obj) -> bool:
    mod = type(obj).__module__ or ""
    return mod.startswith("dask") and hasattr(obj, "to_delayed") and hasattr(obj, "npartitions")


class _Partial(NamedTuple):
    """Partial reduction: stats with leading axis B + 1, counts, ranges, id ranges per unit."""

    stats: PanelStats
    n_rows: int
    n_ids: int
    metric_min: np.ndarray
    metric_max: np.ndarray
    id_ranges: list            # [(min id, max id, unit label)]


_kernel = jax.jit(panel_stats_many)


def _capacity(n: int) -> int:
    """Padded number of individuals of a chunk: powers of two up to 512, then multiples of 512
    (few distinct shapes, hence few compilations, and little padding)."""
    n = int(n)
    return max(64, 1 << (n - 1).bit_length()) if n <= 512 else -(-n // 512) * 512


def _frame_partial(pdf, cols: StreamColumns, times, key, n_boot: int, label: str) -> _Partial:
    """Reduces a pandas frame holding all rows of its individuals."""
    import pandas as pd

    if len(pdf) == 0:
        return None
    ids = pdf[cols.id].to_numpy()
    if pd.isna(ids).any():
        raise ValueError(f"{cols.id}: missing id in {label}")
    tvals = pdf[cols.time].to_numpy()
    tidx = np.searchsorted(times, tvals)
    tidx_c = np.clip(tidx, 0, len(times) - 1)
    off = times[tidx_c] != tvals
    if off.any():
        r = int(np.argmax(off))
        raise ValueError(f"{cols.time}: value {_py(tvals[r])!r} (id {_py(ids[r])!r}, {label}) is not on the time grid")
    numeric = {}
    for c in list(cols.metrics) + [cols.bucket] + ([cols.reward] if cols.reward else []):
        v = pd.to_numeric(pdf[c], errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            r = int(np.argmax(bad))
            raise ValueError(f"{c}: non-finite or non-numeric value {_py(pdf[c].iloc[r])!r} at id {_py(ids[r])!r}, "
                             f"time {_py(tvals[r])!r} ({label})")
        numeric[c] = v
    b = numeric[cols.bucket]
    if not np.isin(b, (0.0, 1.0)).all():
        r = int(np.argmax(~np.isin(b, (0.0, 1.0))))
        raise ValueError(f"{cols.bucket}: expected 0 or 1, got {b[r]} at id {_py(ids[r])!r} ({label})")
    codes, uniq = pd.factorize(ids, sort=False)
    n_ids, tp1 = len(uniq), len(times)
    cell = codes.astype(np.int64) * tp1 + tidx
    if np.unique(cell).size < cell.size:
        _, first = np.unique(cell, return_index=True)
        r = int(np.setdiff1d(np.arange(cell.size), first)[0])
        raise ValueError(f"df: duplicate (id, time) = ({_py(ids[r])!r}, {_py(tvals[r])!r}) in {label}")
    cnt = np.bincount(codes, minlength=n_ids)
    s = np.bincount(codes, weights=b, minlength=n_ids)
    changes = (s != 0) & (s != cnt)
    if changes.any():
        raise ValueError(f"{cols.bucket}: the bucket changes within id {_py(uniq[int(np.argmax(changes))])!r}; each "
                         f"individual must stay in one bucket")
    cap = _capacity(n_ids)
    d = len(cols.metrics)
    met = np.stack([numeric[c] for c in cols.metrics], axis=1)
    obs = np.zeros((cap, tp1, d))
    mask = np.zeros((cap, tp1))
    obs[codes, tidx] = met
    mask[codes, tidx] = 1.0
    rewards = None
    if cols.reward:
        rewards = np.zeros((cap, tp1))
        rewards[codes, tidx] = numeric[cols.reward]
    bucket = np.zeros(cap)
    bucket[codes] = b
    w = np.zeros((1 + n_boot, cap))
    w[0, :n_ids] = 1.0
    if n_boot:
        w[1:, :n_ids] = hash_poisson_weights(key, uniq, n_boot)
    with precision(np.float64):
        st = jax.device_get(_kernel(Panel(obs, bucket, mask, rewards), w))
    st = PanelStats(*(np.asarray(x, np.float64) for x in st))
    return _Partial(st, len(pdf), n_ids, met.min(0), met.max(0), [(uniq.min(), uniq.max(), label)])


def _combine(a: _Partial | None, b: _Partial | None) -> _Partial | None:
    if a is None:
        return b
    if b is None:
        return a
    return _Partial(PanelStats(*(x + y for x, y in zip(a.stats, b.stats))), a.n_rows + b.n_rows,
                    a.n_ids + b.n_ids, np.minimum(a.metric_min, b.metric_min),
                    np.maximum(a.metric_max, b.metric_max), a.id_ranges + b.id_ranges)


def _check_disjoint(ranges, id_col: str, unit: str):
    ranges = sorted(ranges, key=lambda r: r[0])
    for (lo0, hi0, l0), (lo1, hi1, l1) in zip(ranges, ranges[1:]):
        if not hi0 < lo1:
            lo0, hi0, lo1, hi1 = (_py(v) for v in (lo0, hi0, lo1, hi1))
            raise ValueError(f"{id_col}: {l0} (ids {lo0!r}..{hi0!r}) and {l1} (ids {lo1!r}..{hi1!r}) overlap; "
                             f"each individual's rows must lie in one {unit}, with disjoint id ranges "
                             f"(sort by id / set_index(id))")


# --------------------------------------------------------------------------- pyarrow (embedded)

def _arrow_dataset(path):
    import pyarrow.dataset as pads

    if not os.path.exists(path):
        raise ValueError(f"panel: parquet path {os.fspath(path)!r} does not exist")
    return pads.dataset(os.fspath(path), format="parquet")


def _check_columns(names, cols: StreamColumns):
    missing = [c for c in cols.all if c not in names]
    if missing:
        arg = "metrics" if any(c in cols.metrics for c in missing) else "panel"
        raise ValueError(f"{arg}: column(s) {missing} not in the dataset (columns: {list(names)})")


def _arrow_times(ds, cols, batch_rows):
    seen = set()
    for batch in ds.to_batches(columns=[cols.time], batch_size=batch_rows):
        seen.update(np.unique(batch.column(0).to_numpy(zero_copy_only=False)).tolist())
    return time_grid(np.array(sorted(seen)))


def _arrow_reduce(ds, cols, times, key, n_boot, batch_rows, progress):
    import pandas as pd

    total = None
    for frag in ds.get_fragments():
        label = f"file {frag.path}"
        carry, last = None, None
        for batch in frag.to_batches(columns=cols.all, batch_size=batch_rows):
            if batch.num_rows == 0:
                continue
            pdf = batch.to_pandas()
            ids = pdf[cols.id].to_numpy()
            if (ids[1:] < ids[:-1]).any() or (last is not None and ids[0] < last):
                raise ValueError(f"{cols.id}: the rows of {label} are not sorted by id; sort each file by id "
                                 f"(time order within an id is free)")
            last = ids[-1]
            if carry is not None:
                pdf = pd.concat([carry, pdf], ignore_index=True)
            tail = (pdf[cols.id] == last).to_numpy()
            carry = pdf[tail]
            part = _frame_partial(pdf[~tail], cols, times, key, n_boot, label)
            total = _combine(total, part)
            if progress is not None:
                progress(batch.num_rows)
        if carry is not None:
            part = _frame_partial(carry, cols, times, key, n_boot, label)
            total = _combine(total, part)
        total = _merge_unit_ranges(total, label)
    return total


def _merge_unit_ranges(total, label):
    """Collapses the per-batch ranges of one file into one (min, max) range of that file."""
    if total is None:
        return None
    mine = [r for r in total.id_ranges if r[2] == label]
    rest = [r for r in total.id_ranges if r[2] != label]
    if not mine:
        return total
    return total._replace(id_ranges=rest + [(min(r[0] for r in mine), max(r[1] for r in mine), label)])


# --------------------------------------------------------------------------- dask

def _dask_reduce(ddf, cols, times, key, n_boot, client):
    import dask

    def part_fn(pdf, i):
        if cols.id not in pdf.columns and pdf.index.name == cols.id:
            pdf = pdf.reset_index()
        return _frame_partial(pdf, cols, times, key, n_boot, f"partition {i}")

    parts = [dask.delayed(part_fn)(p, i) for i, p in enumerate(ddf.to_delayed())]
    while len(parts) > 1:                                    # binary tree reduce
        parts = [dask.delayed(_combine)(*parts[k:k + 2]) if k + 1 < len(parts) else parts[k]
                 for k in range(0, len(parts), 2)]
    if client is not None:
        return client.compute(parts[0]).result()
    return dask.compute(parts[0])[0]


def _dask_times(ddf, cols, client):
    col = ddf[cols.time] if cols.time in ddf.columns else ddf.index.to_series()
    fut = col.unique()
    vals = client.compute(fut).result() if client is not None else fut.compute()
    return time_grid(np.asarray(vals))


# --------------------------------------------------------------------------- entry point

def stream_stats(source, *, metrics: Sequence[str], id: str = "id", time: str = "time",
                 bucket: str = "bucket", reward: str | None = None, key=None, n_boot: int = 0,
                 times=None, batch_rows: int = 1 << 15, client=None,
                 progress: Callable[[int], None] | None = None) -> StreamedStats:
    """Sufficient statistics (and hash-Poisson bootstrap statistics) of a long-format dataset.

    Args:
      source: parquet file or directory path, or a ``dask.dataframe.DataFrame``.
      metrics: metric column names; id, time, bucket: column names; reward: optional observed
        reward column.
      key: ``jax.random`` key of the bootstrap weights (needed when ``n_boot > 0``).
      n_boot: number of hash-Poisson(1) bootstrap weightings (0: none).
      times: optional time grid (default: the distinct times of the data, gaps filled).
      batch_rows: rows per record batch (pyarrow path); bounds the memory.
      client: a ``distributed.Client`` (dask path; default: the active scheduler).
      progress: optional callback receiving the number of rows of each batch read.

    Returns:
      ``StreamedStats``.

    >>> import os, tempfile, pandas as pd
    >>> df = pd.DataFrame(dict(id=[1, 1, 2, 2, 3, 3, 4, 4], time=[0, 1] * 4,
    ...                        bucket=[0, 0, 1, 1, 0, 0, 1, 1], x=[1.0, 2.0, 3.0, 5.0, 2.0, 1.0, 1.0, 1.0]))
    >>> path = os.path.join(tempfile.mkdtemp(), "ab.parquet"); df.to_parquet(path)
    >>> ss = stream_stats(path, metrics=["x"])
    >>> ss.stats.sum_yx[:, 0, 0, 0].tolist(), ss.n_individuals
    ([4.0, 16.0], 4)
    """
    cols = StreamColumns(tuple(metrics), id, time, bucket, reward)
    if not cols.metrics:
        raise ValueError("metrics: expected at least one metric column name")
    if int(n_boot) < 0:
        raise ValueError(f"n_boot: expected >= 0, got {n_boot}")
    if n_boot and key is None:
        raise ValueError("key: the hash bootstrap needs a jax.random key")
    if int(batch_rows) < 1:
        raise ValueError(f"batch_rows: expected >= 1, got {batch_rows}")
    dask_src = _is_dask_frame(source)
    if dask_src:
        names = list(source.columns) + ([source.index.name] if source.index.name else [])
        _check_columns(names, cols)
        grid = _dask_times(source, cols, client) if times is None else time_grid(times)
    else:
        ds = _arrow_dataset(source)
        _check_columns(ds.schema.names, cols)
        grid = _arrow_times(ds, cols, batch_rows) if times is None else time_grid(times)
    if grid.size < 2:
        raise ValueError(f"{time}: expected at least two time points (T >= 1), got {grid.size}")
    if dask_src:
        total = _dask_reduce(source, cols, grid, key, int(n_boot), client)
        unit = "partition"
    else:
        total = _arrow_reduce(ds, cols, grid, key, int(n_boot), int(batch_rows), progress)
        unit = "file"
    if total is None:
        raise ValueError("panel: the dataset has no rows")
    _check_disjoint(total.id_ranges, id, unit)
    st = total.stats
    point = PanelStats(*(x[0] for x in st))
    boot = PanelStats(*(x[1:] for x in st)) if n_boot else None
    _check_stats(point, cols, total)
    return StreamedStats(point, boot, grid, total.n_ids, total.n_rows, total.metric_min, total.metric_max)


def _check_stats(st: PanelStats, cols: StreamColumns, total: _Partial):
    """The checks of ``validate_panel`` that need the whole dataset, from the statistics."""
    for i in (0, 1):
        if st.n_obs[i].sum() == 0:
            raise ValueError(f"bucket: bucket {i} has no individuals; both buckets are needed")
        count = st.n_tr[i].sum()
        if count < 2:
            raise ValueError(f"panel: bucket {i} has {int(count)} observed transition(s) t -> t+1, expected "
                             f"at least 2")
    lo, hi = total.metric_min, total.metric_max
    for k, name in enumerate(cols.metrics):
        if hi[k] - lo[k] <= 1e-12 * (1.0 + max(abs(lo[k]), abs(hi[k]))):
            raise ValueError(f"metrics: metric {name!r} is constant ({lo[k]}) over all rows; drop it "
                             f"(the intercept b_i already models a constant)")
