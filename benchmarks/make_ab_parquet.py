"""Writes a synthetic long-format A/B parquet dataset from the S2 dynamics (not committed).

    python3 benchmarks/make_ab_parquet.py --users 5000000 --days 28 --metrics 10 --out /tmp/ab

Layout: one row per (id, time) with columns id (int64), time (int16, 0..days−1), bucket (int8)
and m0..m{d−1} (float32); files of ``--users-per-file`` users, each sorted by id (the layout the
streaming reader expects), row groups of ``--row-group-rows`` rows. Generated block by block
(``--block`` users at a time), so memory stays bounded whatever the number of users.

Dynamics: metrics 0..2 follow design S2 exactly (spec longterm.md §6.2: M_i, b_i, σ = 0.1,
steady-state start, exogenous z_t); metrics 3..d−1 are stationary AR(1) coordinates with
persistence 0.3..0.85, intercept 0.1, the same in both buckets, and a weekly exogenous sine
0.1 sin(2π t / 7 + k) shared by both buckets. The true effects are those of S2 with the reward
m0 + m2 (θ = e_0 + e_2).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def s2_block_params(d: int):
    """(M (2, d, d), b (2, d), z (days, d) function, init mean, init cov) of the d-metric design."""
    M = np.zeros((2, d, d))
    b = np.zeros((2, d))
    M0 = np.array([[0.90, 0.05, 0.00], [0.00, 0.70, 0.10], [0.00, 0.00, 0.50]])
    M[:, :3, :3] = M0
    M[1, 0, 0] = 0.88
    b[0, :3] = [0.10, 0.20, 0.50]
    b[1, :3] = [0.10, 0.20, 0.58]
    rho = np.linspace(0.3, 0.85, d - 3) if d > 3 else np.zeros(0)
    for k, r in enumerate(rho):
        M[:, 3 + k, 3 + k] = r
        b[:, 3 + k] = 0.1
    sigma = 0.1
    vec = np.linalg.solve(np.eye(d * d) - np.kron(M[0], M[0]), (sigma ** 2 * np.eye(d)).reshape(-1))
    cov = vec.reshape(d, d)
    cov = 0.5 * (cov + cov.T)
    mean = np.linalg.solve(np.eye(d) - M[0], b[0])
    return M, b, sigma, mean, cov


def exogenous(days: int, d: int):
    t = np.arange(days, dtype=np.float64)[:, None]
    z = np.zeros((days, d))
    a = np.array([0.30, 0.20, 0.10])
    kappa = np.array([0.20, 0.00, 0.10])
    h = np.array([0.50, 0.30, 0.00])
    z[:, :3] = a * np.sin(2 * np.pi * t / 7) + kappa * (t / 28) + h * ((t >= 9) & (t <= 11))
    for k in range(3, d):
        z[:, k] = 0.1 * np.sin(2 * np.pi * t[:, 0] / 7 + k) - 0.1 * np.sin(k)   # z_0 = 0
    return z


def block_table(rng, first_id: int, users: int, days: int, d: int, params):
    import pyarrow as pa

    M, b, sigma, mean, cov = params
    z = exogenous(days, d)
    bucket = (rng.random(users) < 0.5).astype(np.int8)
    chol = np.linalg.cholesky(cov)
    s = mean + rng.standard_normal((users, d)) @ chol.T
    Mj, bj = M[bucket], b[bucket]
    obs = np.empty((users, days, d), np.float32)
    obs[:, 0] = s + z[0]
    for t in range(1, days):
        s = np.einsum("jab,jb->ja", Mj, s) + bj + sigma * rng.standard_normal((users, d))
        obs[:, t] = s + z[t]
    ids = np.repeat(np.arange(first_id, first_id + users, dtype=np.int64), days)
    cols = {"id": ids, "time": np.tile(np.arange(days, dtype=np.int16), users),
            "bucket": np.repeat(bucket, days)}
    flat = obs.reshape(users * days, d)
    for k in range(d):
        cols[f"m{k}"] = flat[:, k]
    return pa.table(cols)


def write_dataset(out: str, users: int, days: int, d: int, *, users_per_file: int = 500_000,
                  block: int = 50_000, row_group_rows: int = 1 << 20, seed: int = 0, quiet: bool = False):
    """Writes the dataset; returns (rows, bytes on disk, seconds)."""
    import pyarrow.parquet as pq

    os.makedirs(out, exist_ok=True)
    params = s2_block_params(d)
    rng = np.random.default_rng(seed)
    t0 = time.time()
    rows = 0
    for f, start in enumerate(range(0, users, users_per_file)):
        n_file = min(users_per_file, users - start)
        path = os.path.join(out, f"part-{f:05d}.parquet")
        writer = None
        for bstart in range(start, start + n_file, block):
            tab = block_table(rng, bstart, min(block, start + n_file - bstart), days, d, params)
            if writer is None:
                writer = pq.ParquetWriter(path, tab.schema)
            writer.write_table(tab, row_group_size=row_group_rows)
            rows += tab.num_rows
        writer.close()
        if not quiet:
            print(f"{path}: {n_file} users, {time.time() - t0:.0f} s", flush=True)
    size = sum(os.path.getsize(os.path.join(out, p)) for p in os.listdir(out))
    return rows, size, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=5_000_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--out", default="/tmp/jaxmed_ab")
    ap.add_argument("--users-per-file", type=int, default=500_000)
    ap.add_argument("--block", type=int, default=50_000)
    ap.add_argument("--row-group-rows", type=int, default=1 << 20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.metrics < 3:
        raise SystemExit("--metrics: expected at least 3 (the S2 coordinates)")
    rows, size, secs = write_dataset(a.out, a.users, a.days, a.metrics, users_per_file=a.users_per_file,
                                     block=a.block, row_group_rows=a.row_group_rows, seed=a.seed)
    print(f"{rows} rows, {size / 1e9:.2f} GB, {secs:.0f} s")


if __name__ == "__main__":
    main()
