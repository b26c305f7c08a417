"""Benchmark: long-term effects from parquet, streamed vs pandas in memory; banded vs dense BZ solve.

    PYTHONPATH=. python3 benchmarks/longterm_parquet.py [--users 50000,200000,1000000] [--days 28]
        [--metrics 10] [--pandas-budget-gb 3] [--out benchmarks/results/longterm_parquet.json]

1. For each number of users, ``make_ab_parquet.write_dataset`` writes an S2 A/B dataset under
   /tmp (deleted afterwards). Each path runs in its own subprocess, which first compiles on a
   tiny dataset (warm-up), then records the wall time of one ``longterm_effect`` call
   (nonstationary, no bootstrap) and the peak resident memory (``resource.getrusage``
   ru_maxrss) of the process: "stream" reads the parquet directory in record batches;
   "pandas" does ``pd.read_parquet`` then ``longterm_effect(DataFrame)``. The pandas path is
   run only while its projected peak (linear in users from the measured ones) stays under
   ``--pandas-budget-gb``; otherwise it is reported as not run with the projection.
   One streamed run with a 20-replicate hash bootstrap is timed at the smallest size.
2. Step BZ solve time against T (d = 10): dense Cholesky where (T+2) d ≤ --dense-max, banded for all
   T; and the whole Alg. N fit at T = 365, d = 30 with the banded solve. Medians of 3 runs,
   the two solvers alternated, compile time separate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WORKER = r"""
import json, resource, sys, time
import numpy as np
import pandas as pd
import jax
from jaxmed.longterm import longterm_effect
mode, path, warm, d, n_boot = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
metrics = [f"m{k}" for k in range(d)]
theta = (np.eye(d)[0] + np.eye(d)[2], 0.0)
def run(p):
    if mode == "stream":
        return longterm_effect(p, reward=theta, metrics=metrics, n_boot=n_boot, key=jax.random.key(0))
    df = pd.read_parquet(p)
    return longterm_effect(df, reward=theta, metrics=metrics, n_boot=0)
run(warm)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
res = run(path)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(wall_s=wall, peak_rss_mb=peak, rss_after_warmup_mb=base,
                      estimate=np.asarray(res.estimate).tolist(), se=np.asarray(res.se).tolist(),
                      status=int(res.diagnostics.status))))
"""


def _worker(mode, path, warm, d, n_boot=0, timeout=1800):
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", os.path.dirname(HERE))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", WORKER, mode, path, warm, str(d), str(n_boot)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        return dict(error=proc.stderr.strip().splitlines()[-1] if proc.stderr else f"rc {proc.returncode}",
                    returncode=proc.returncode, process_s=time.time() - t0)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = time.time() - t0
    return out


def _dataset_rows(path):
    import pyarrow.dataset as pads

    ds = pads.dataset(path, format="parquet")
    size = sum(os.path.getsize(f) for f in ds.files)
    return ds.count_rows(), size


def parquet_section(users_list, days, d, budget_gb, tmp, save=lambda rows: None, existing=(),
                    pandas_per_user=None):
    from make_ab_parquet import write_dataset

    warm = os.path.join(tmp, "warm")
    write_dataset(warm, 2000, days, d, users_per_file=1000, quiet=True)
    rows_out = []
    for users in users_list:
        free = shutil.disk_usage(tmp).free
        need = users * days * (8 + 2 + 1 + 4 * d) * 1.2
        if need > 0.5 * free:
            rows_out.append(dict(users=users, skipped=f"needs ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free"))
            continue
        path = os.path.join(tmp, f"ab{users}")
        rows, size, gen_s = write_dataset(path, users, days, d, users_per_file=min(users, 500_000), quiet=True)
        entry = dict(users=users, rows=rows, days=days, metrics=d, parquet_bytes=size, generate_s=gen_s)
        st = _worker("stream", path, warm, d)
        if "wall_s" in st:
            st["rows_per_s"] = rows / st["wall_s"]
        entry["stream"] = st
        projected = None if pandas_per_user is None else pandas_per_user * users / 1024
        if projected is not None and projected > budget_gb:
            entry["pandas"] = dict(not_run=f"projected peak {projected:.1f} GB > budget {budget_gb} GB "
                                           f"(linear in users from the smaller runs)")
        else:
            pdres = _worker("pandas", path, warm, d)
            if "wall_s" in pdres:
                pdres["rows_per_s"] = rows / pdres["wall_s"]
                pandas_per_user = (pdres["peak_rss_mb"] - pdres["rss_after_warmup_mb"]) / users
                if "estimate" in st:
                    entry["max_abs_diff_stream_vs_pandas"] = float(np.max(np.abs(
                        np.array(st["estimate"]) - np.array(pdres["estimate"]))))
            entry["pandas"] = pdres
        if users == users_list[0]:
            bs = _worker("stream", path, warm, d, n_boot=20)
            if "wall_s" in bs:
                bs["rows_per_s"] = rows / bs["wall_s"]
            entry["stream_hash_bootstrap_20"] = bs
        shutil.rmtree(path, ignore_errors=True)
        rows_out.append(entry)
        save(rows_out)
        print(json.dumps(entry), flush=True)
    for path, users in existing:        # datasets written beforehand by make_ab_parquet.py (kept)
        rows, size = _dataset_rows(path)
        entry = dict(users=users, rows=rows, days=days, metrics=d, parquet_bytes=size, dataset=path,
                     generate_s="written beforehand by make_ab_parquet.py")
        st = _worker("stream", path, warm, d, timeout=4 * 3600)
        if "wall_s" in st:
            st["rows_per_s"] = rows / st["wall_s"]
        entry["stream"] = st
        projected = None if pandas_per_user is None else pandas_per_user * users / 1024
        entry["pandas"] = dict(not_run=(
            f"projected peak {projected:.1f} GB (linear in users from the smaller runs' "
            f"{pandas_per_user:.4f} MB/user) > budget {budget_gb} GB" if projected is not None
            else "no smaller pandas run to project from"))
        rows_out.append(entry)
        save(rows_out)
        print(json.dumps(entry), flush=True)
    return rows_out


def _timeit(fn, *args, reps=3):
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return compile_s, times


def solver_section(t_list, d, dense_max, big):
    import jax
    import jax.numpy as jnp

    from jaxmed._src.longterm.nonstationary import nonstationary_estimate, solve_bz, within_dynamics
    from jaxmed._src.longterm.reward import LinearReward
    from jaxmed._src.longterm.simulate import random_exogenous, random_stable_params, simulate_longterm
    from jaxmed._src.longterm.stationary import initial_mean
    from jaxmed._src.longterm.stats import panel_stats

    out = []
    with jax.enable_x64(True):
        params = random_stable_params(jax.random.key(1), d)
        for T in t_list:
            z = random_exogenous(jax.random.key(2), T, d)
            st = jax.jit(panel_stats)(simulate_longterm(jax.random.key(3), 200, T, design="s2", params=params,
                                                         exogenous=z))
            M, m0 = within_dynamics(st), initial_mean(st)
            fns = {s: jax.jit(lambda st, M, m0, s=s: solve_bz(st, M, anchor="steady0", anchor_mean=m0, solver=s))
                   for s in ("dense", "banded")}
            use = ["banded"] + (["dense"] if (T + 2) * d <= dense_max else [])
            entry = dict(T=T, d=d, unknowns=(T + 2) * d)
            comp = {s: _timeit(fns[s], st, M, m0, reps=0)[0] for s in use}
            runs = {s: [] for s in use}
            for _ in range(3):
                for s in use:
                    runs[s].append(_timeit(fns[s], st, M, m0, reps=1)[1][0])
            for s in use:
                entry[s] = dict(compile_s=comp[s], median_s=float(np.median(runs[s])), runs_s=runs[s])
            if "dense" in use:
                bd, zd, _ = fns["dense"](st, M, m0)
                bb, zb, _ = fns["banded"](st, M, m0)
                entry["max_abs_diff"] = float(max(jnp.max(jnp.abs(bd - bb)), jnp.max(jnp.abs(zd - zb))))
                entry["dense_over_banded"] = entry["dense"]["median_s"] / entry["banded"]["median_s"]
            out.append(entry)
            print(json.dumps(entry), flush=True)
        T, D = big
        params = random_stable_params(jax.random.key(4), D)
        st = jax.jit(panel_stats)(simulate_longterm(jax.random.key(5), 300, T, design="s2", params=params,
                                                     exogenous=random_exogenous(jax.random.key(6), T, D)))
        rw = LinearReward(params.theta, 0.0)
        fit = jax.jit(lambda st: nonstationary_estimate(st, rw, 0.99, bz_solver="banded"))
        comp, runs = _timeit(fit, st)
        res = fit(st)
        big_entry = dict(T=T, d=D, unknowns=(T + 2) * D, compile_s=comp, median_s=float(np.median(runs)),
                         runs_s=runs, status=int(res.status), delta=float(res.values.delta),
                         dense_normal_matrix_gb=((T + 2) * D) ** 2 * 8 / 1e9)
        print(json.dumps(big_entry), flush=True)
    return out, big_entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", default="50000,200000,1000000",
                    help="sizes generated under --tmp, measured and deleted ('' for none)")
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--pandas-budget-gb", type=float, default=3.0)
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--t-list", default="14,28,56,112,224,365")
    ap.add_argument("--dense-max", type=int, default=1200, help="largest (T+2) d solved densely")
    ap.add_argument("--skip-parquet", action="store_true")
    ap.add_argument("--skip-solver", action="store_true")
    ap.add_argument("--existing", action="append", default=[], metavar="DIR:USERS",
                    help="also stream a dataset written beforehand (e.g. 5M users), not deleted")
    ap.add_argument("--pandas-mb-per-user", type=float, default=None,
                    help="pandas peak MB per user measured before, for the projection of --existing sizes")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "longterm_parquet.json"))
    a = ap.parse_args()
    import jax
    import pandas
    import pyarrow

    record = dict(
        benchmark="longterm_parquet", started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        environment=dict(platform=platform.platform(), python=platform.python_version(), cpu_count=os.cpu_count(),
                         jax=jax.__version__, numpy=np.__version__, pandas=pandas.__version__,
                         pyarrow=pyarrow.__version__, backend=jax.default_backend(),
                         load_avg_start=os.getloadavg()),
        notes="peak_rss_mb: ru_maxrss of the subprocess (includes the Python/JAX runtime; "
              "rss_after_warmup_mb is that baseline after compiling on a 2000-user dataset). "
              "wall_s excludes compilation (warm-up). The machine is shared (see load averages).")
    tmp = tempfile.mkdtemp(prefix="jaxmed_ab_", dir=a.tmp)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)

    def save(**parts):
        record.update(parts)
        record["environment"]["load_avg_last"] = os.getloadavg()
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)

    try:                                   # the JSON is rewritten after every step (partial runs kept)
        if not a.skip_solver:
            t_list = [int(t) for t in a.t_list.split(",")]
            scaling, big = solver_section(t_list, 10, a.dense_max, (365, 30))
            save(bz_solver_scaling=scaling, alg_n_T365_d30_banded=big)
        if not a.skip_parquet:
            users = [int(u) for u in a.users.split(",") if u]
            existing = [(e.rsplit(":", 1)[0], int(e.rsplit(":", 1)[1])) for e in a.existing]
            parquet_section(users, a.days, a.metrics, a.pandas_budget_gb, tmp,
                            save=lambda rows: save(parquet=rows), existing=existing,
                            pandas_per_user=a.pandas_mb_per_user)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
