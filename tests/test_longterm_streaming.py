"""Out-of-core long-term effects: parquet / dask streaming equals the in-memory DataFrame path."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaxmed._src.longterm.api import effects_from_stats
from jaxmed._src.longterm.bootstrap import summarize_replicates
from jaxmed._src.longterm.hash_bootstrap import hash_poisson_weights
from jaxmed._src.longterm.panel import Panel, panel_from_dataframe, panel_to_dataframe
from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.simulate import simulate_longterm
from jaxmed._src.longterm.stats import panel_stats, panel_stats_many
from jaxmed._src.longterm.streaming import stream_stats
from jaxmed.longterm import longterm_effect

METRICS = ["visits", "carts", "buys"]
THETA = (np.array([1.0, 0.0, 1.0]), 0.0)
N, T = 240, 10


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """An S2 panel with rewards and ~10% missing entries, as a long DataFrame (time order
    shuffled within id) and as a parquet directory of 3 files with small row groups."""
    p = simulate_longterm(jax.random.key(0), N, T, design="s2", reward_noise=0.05)
    keep = np.asarray(jax.random.uniform(jax.random.key(1), (N, T + 1)) > 0.1).astype(float)
    keep[:, 0] = 1.0
    p = Panel(np.asarray(p.obs) * keep[..., None], np.asarray(p.bucket), keep, np.asarray(p.rewards) * keep)
    df = panel_to_dataframe(p, metric_names=METRICS)
    df["id"] = df["id"] * 7 + 1000                                # non-contiguous integer ids
    df = df.sample(frac=1.0, random_state=0).sort_values("id", kind="stable").reset_index(drop=True)
    root = tmp_path_factory.mktemp("ab")
    for k, ids in enumerate(np.array_split(np.sort(df.id.unique()), 3)):
        part = df[df.id.isin(ids)]
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), root / f"part{k}.parquet",
                       row_group_size=170)
    return df, str(root)


def _close(a, b, tol=1e-10):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def test_panel_stats_many_equals_vmapped_panel_stats(data):
    df, _ = data
    panel = panel_from_dataframe(df, metrics=METRICS, reward="reward")
    W = jnp.asarray(hash_poisson_weights(jax.random.key(3), np.arange(N), 4))
    _close(panel_stats_many(panel, W), jax.vmap(lambda w: panel_stats(panel, w))(W), 1e-12)


def test_streamed_stats_and_hash_bootstrap_equal_in_memory(data):
    df, root = data
    key = jax.random.key(5)
    ss = stream_stats(root, metrics=METRICS, reward="reward", key=key, n_boot=6, batch_rows=97)
    panel = panel_from_dataframe(df, metrics=METRICS, reward="reward")
    assert ss.n_individuals == N and ss.n_rows == len(df)
    np.testing.assert_array_equal(ss.times, np.arange(T + 1))
    with jax.enable_x64(True):
        _close(ss.stats, panel_stats(panel))
        ids = np.sort(df.id.unique())                             # panel rows = sorted ids
        W = jnp.asarray(hash_poisson_weights(key, ids, 6))
        _close(ss.boot, jax.vmap(lambda w: panel_stats(panel, w))(W))


def test_longterm_effect_parquet_equals_dataframe(data):
    df, root = data
    # the ALS sweeps (n_iter > 0) with their early stop (tol) take the same path on both sources
    for method, kw in (("nonstationary", {}), ("n2", {}), ("nonstationary", dict(n_iter=2, tol=1e-6))):
        mem = longterm_effect(df, reward=THETA, metrics=METRICS, method=method, n_boot=0, **kw)
        out = longterm_effect(root, reward=THETA, metrics=METRICS, method=method, n_boot=0, batch_rows=128,
                              **kw)
        np.testing.assert_allclose(out.estimate, mem.estimate, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(out.params.M, mem.params.M, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(out.params.z, mem.params.z, rtol=1e-10, atol=1e-10)
        assert int(out.diagnostics.status) == 0


def test_streamed_bootstrap_equals_in_memory_hash_bootstrap(data):
    df, root = data
    key = jax.random.key(11)
    out = longterm_effect(root, reward=THETA, metrics=METRICS, n_boot=12, key=key, batch_rows=300)
    panel = panel_from_dataframe(df, metrics=METRICS)
    W = hash_poisson_weights(key, np.sort(df.id.unique()), 12)
    with jax.enable_x64(True):
        rw = LinearReward(jnp.asarray(THETA[0]), jnp.asarray(0.0))
        est = effects_from_stats(panel_stats(panel), rw, 0.99)[0]
        reps = jax.jit(jax.vmap(lambda w: effects_from_stats(panel_stats(panel, w), rw, 0.99)[0]))(jnp.asarray(W))
        ref = summarize_replicates(est, reps, jnp.zeros(12, bool))
    np.testing.assert_allclose(out.se, ref.se, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.ci_percentile, ref.ci_percentile, rtol=1e-10, atol=1e-10)
    # the default spelled out: the same hash-Poisson replicates
    named = longterm_effect(root, reward=THETA, metrics=METRICS, n_boot=12, key=key, batch_rows=300,
                            bootstrap="hash-poisson")
    np.testing.assert_allclose(named.se, ref.se, rtol=1e-10, atol=1e-12)


def test_dask_partitions_equal_parquet(data):
    dd = pytest.importorskip("dask.dataframe")
    import dask

    df, root = data
    key = jax.random.key(2)
    splits = np.array_split(np.sort(df.id.unique()), 5)           # whole ids per partition, id a column
    ddf = dd.concat([dd.from_pandas(df[df.id.isin(ids)], npartitions=1) for ids in splits[::-1]])
    with dask.config.set(scheduler="synchronous"):
        a = stream_stats(ddf, metrics=METRICS, reward="reward", key=key, n_boot=3)
    b = stream_stats(root, metrics=METRICS, reward="reward", key=key, n_boot=3)
    _close(a.stats, b.stats)
    _close(a.boot, b.boot)


def test_dask_distributed_client(data):
    pytest.importorskip("distributed")
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    df, root = data
    ddf = dd.from_pandas(df.set_index("id"), npartitions=3, sort=True)      # id as the sorted index
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        out = longterm_effect(ddf, reward=THETA, metrics=METRICS, n_boot=0, client=client)
    mem = longterm_effect(df, reward=THETA, metrics=METRICS, n_boot=0)
    np.testing.assert_allclose(out.estimate, mem.estimate, rtol=1e-10, atol=1e-10)


def test_streamed_peak_memory_does_not_grow_with_users(tmp_path):
    """Peak traced (numpy / Python) memory of the parquet reduction at 4x the users stays within
    25% of the smaller run (batch size fixed)."""
    import tracemalloc

    peaks = []
    for n in (500, 2000):
        p = simulate_longterm(jax.random.key(n), n, 6, design="s1")
        pq.write_table(pa.Table.from_pandas(panel_to_dataframe(p), preserve_index=False), tmp_path / f"{n}.parquet",
                       row_group_size=700)
        stream_stats(tmp_path / f"{n}.parquet", metrics=["o0", "o1", "o2"], batch_rows=700)   # compile first
        tracemalloc.start()
        ss = stream_stats(tmp_path / f"{n}.parquet", metrics=["o0", "o1", "o2"], batch_rows=700)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert ss.n_individuals == n
    assert peaks[1] < 1.25 * peaks[0], peaks


def test_streaming_errors(data, tmp_path):
    df, root = data
    shuffled = df.sample(frac=1.0, random_state=1)
    pq.write_table(pa.Table.from_pandas(shuffled, preserve_index=False), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="^id: the rows of file .* are not sorted by id"):
        stream_stats(tmp_path / "x.parquet", metrics=METRICS, batch_rows=100)
    os.makedirs(tmp_path / "two")
    for k in range(2):                                           # both files hold every id
        pq.write_table(pa.Table.from_pandas(df[df.time % 2 == k], preserve_index=False),
                       tmp_path / "two" / f"{k}.parquet")
    with pytest.raises(ValueError, match="^id: file .* overlap"):
        stream_stats(tmp_path / "two", metrics=METRICS)
    # one file holds the even-ranked ids (read in several batches), the other one odd-ranked id
    # that lies inside the first file's range, above its smallest id only
    ids = np.sort(df.id.unique())
    os.makedirs(tmp_path / "inside")
    pq.write_table(pa.Table.from_pandas(df[df.id.isin(ids[0:20:2])], preserve_index=False),
                   tmp_path / "inside" / "a.parquet")
    pq.write_table(pa.Table.from_pandas(df[df.id == ids[1]], preserve_index=False),
                   tmp_path / "inside" / "b.parquet")
    with pytest.raises(ValueError, match="^id: file .* overlap"):
        stream_stats(tmp_path / "inside", metrics=METRICS, batch_rows=50)
    with pytest.raises(ValueError, match="^metrics: column"):
        stream_stats(root, metrics=["visits", "nope"])
    with pytest.raises(ValueError, match="^method: a parquet"):
        longterm_effect(root, reward=THETA, metrics=METRICS, method="naive-window")
    with pytest.raises(ValueError, match="^bootstrap: a parquet"):
        longterm_effect(root, reward=THETA, metrics=METRICS, bootstrap="multinomial")
    bad = df.copy()
    bad.loc[bad.index[3], "bucket"] = 1 - bad.loc[bad.index[3], "bucket"]
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "b.parquet")
    with pytest.raises(ValueError, match="^bucket: the bucket changes within id"):
        stream_stats(tmp_path / "b.parquet", metrics=METRICS)
    with pytest.raises(ValueError, match="^panel: parquet path"):
        stream_stats(str(tmp_path / "missing"), metrics=METRICS)
