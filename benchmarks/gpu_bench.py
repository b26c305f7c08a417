"""The GPU benchmark in one short window (run through ``benchmarks/gpu.sh``).

    PYTHONPATH=. python3 benchmarks/gpu_bench.py [--smoke] [--budget-s 420] [--out FILE]

Nothing is installed: it uses the machine's own jax. Three parts, each chunked (replications
go through ``jaxmed.study.run``, which vmaps ``batch_size`` replications per block, chosen
from the device's free memory, and never materialises more than one chunk):

* ``throughput``: replications per second of simulate + the default mediation estimator
  at the paper's sizes (N = 100, 500, 1500 at T = 25; N = 1500 at T = 200), float64;
* ``precision``: the same pipeline in float32 and in float64 on the same (float64-simulated)
  datasets: time per replication of each, and the largest difference of the estimates in
  units of the float64 cluster SE;
* ``ngrid``: the paper's N-grid (N = 100..1500 step 100, T = 25, 100 reps) as one
  ``study.run`` call, wall time with compilation; stopped (cells done recorded) if the time
  budget runs out.

Writes JSON (default ``benchmarks/results/gpu-<timestamp>.json``; partial results are
saved after each part). ``--smoke`` runs every part at tiny sizes (e.g. on CPU).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import jax  # noqa: E402

import jaxmed  # noqa: E402
from jaxmed._src.study.catalog import get_design  # noqa: E402
from jaxmed.mediation import MediationConfig, mediation_core, mediation_estimator_spec  # noqa: E402
from jaxmed.study import run as study_run  # noqa: E402


def _environment():
    dev = jax.devices()[0]
    return {"jax": jax.__version__, "backend": jax.default_backend(), "device": str(dev.device_kind),
            "n_devices": len(jax.devices()), "python": sys.version.split()[0]}


def throughput(smoke, design, spec):
    cells = [(40, 10, 16)] if smoke else [(100, 25, 2048), (500, 25, 1024), (1500, 25, 1024),
                                           (1500, 200, 256)]
    out = []
    for n, t, reps in cells:
        res = study_run(design, spec, [(n, t)], reps, 0, progress=False, xla_opt_level=None)
        run_s = res.wall_s - res.compile_s
        out.append({"n": n, "T": t, "reps": reps, "batch_size": res.batch_size,
                    "chunk_size": res.chunk_size, "compile_s": res.compile_s, "run_s": run_s,
                    "reps_per_s": reps / run_s, "n_status_nonzero": int((res.status != 0).sum())})
        print(f"  throughput N={n} T={t}: {reps / run_s:.1f} reps/s (batch {res.batch_size}, "
              f"compile {res.compile_s:.1f}s)", flush=True)
    return out


def precision(smoke, design):
    n, t, width = (40, 10, 4) if smoke else (1500, 25, 64)
    pol = design.target_policy
    with jaxmed.precision(np.float64):
        keys = jax.vmap(lambda r: jax.random.fold_in(jax.random.key(0), r))(np.arange(width))
        data = jax.jit(jax.vmap(lambda k: design.simulate(k, n, t)))(keys)
        est_keys = jax.vmap(lambda r: jax.random.fold_in(jax.random.key(1), r))(np.arange(width))
    out = {"n": n, "T": t, "width": width}
    results = {}
    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        with jaxmed.precision(dtype), jax.enable_x64(dtype == np.float64):
            d = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype), data)
            f = jax.jit(jax.vmap(lambda k, x: mediation_core(k, x, pol, 0, MediationConfig())))
            t0 = time.perf_counter()
            res = jax.block_until_ready(f(est_keys, d))
            first = time.perf_counter() - t0
            ts = []
            for _ in range(3):
                t0 = time.perf_counter()
                jax.block_until_ready(f(est_keys, d))
                ts.append(time.perf_counter() - t0)
        results[name] = res
        out[f"{name}_per_rep_s"] = float(np.median(ts)) / width
        out[f"{name}_first_call_s"] = first
    e64 = np.asarray(results["float64"].estimate, np.float64)
    e32 = np.asarray(results["float32"].estimate, np.float64)
    se = np.asarray(results["float64"].cluster_se, np.float64)
    ok = np.isfinite(e64) & np.isfinite(e32) & np.isfinite(se) & (se > 0)
    diff = np.abs(e32 - e64)[ok] / se[ok]
    out.update(max_diff_in_se=float(diff.max()), median_diff_in_se=float(np.median(diff)),
               n_compared=int(ok.sum()), float64_over_float32=out["float64_per_rep_s"] / out["float32_per_rep_s"])
    print(f"  precision N={n} T={t}: f64 {out['float64_per_rep_s'] * 1e3:.2f} ms/rep, f32 "
          f"{out['float32_per_rep_s'] * 1e3:.2f} ms/rep, max |f32 - f64| = {out['max_diff_in_se']:.2g} SE",
          flush=True)
    return out


def ngrid(smoke, design, spec, deadline):
    ns = [40, 60] if smoke else list(range(100, 1501, 100))
    t, reps = (10, 4) if smoke else (25, 100)
    done, t0 = [], time.perf_counter()
    compile_s = 0.0
    for n in ns:  # one call per cell so that the budget can stop the grid between cells
        if time.perf_counter() > deadline:
            break
        res = study_run(design, spec, [(n, t)], reps, 0, progress=False, xla_opt_level=None)
        compile_s += res.compile_s
        done.append(n)
    wall = time.perf_counter() - t0
    print(f"  N-grid: {len(done)}/{len(ns)} cells x {reps} reps in {wall:.0f}s (compile {compile_s:.0f}s)",
          flush=True)
    return {"ns": ns, "ns_done": done, "complete": len(done) == len(ns), "T": t, "reps": reps,
            "wall_s": wall, "compile_s": compile_s}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes (runs on CPU)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="stop the N-grid between cells after this many seconds from the start (420; "
                        "no limit with --smoke)")
    p.add_argument("--parts", nargs="+", choices=("throughput", "precision", "ngrid"),
                   default=("throughput", "precision", "ngrid"), help="run only these parts")
    p.add_argument("--out", help="output JSON")
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    stamp = f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"
    out = a.out or os.path.join(HERE, "results", f"gpu-{'smoke-' if a.smoke else ''}{stamp}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    rec = {"environment": _environment(), "smoke": a.smoke, "results": {}}
    design = get_design("semi-synthetic")
    spec = mediation_estimator_spec(jaxmed.policies.semi_synthetic_target_policy())

    def save():
        rec["total_wall_s"] = time.perf_counter() - t_start
        with open(out, "w") as fh:
            json.dump(rec, fh, indent=1)

    parts = (("throughput", lambda: throughput(a.smoke, design, spec)),
             ("precision", lambda: precision(a.smoke, design)),
             ("ngrid", lambda: ngrid(a.smoke, design, spec,
                                     float("inf") if a.smoke else t_start + a.budget_s)))
    for name, fn in parts:
        if name not in a.parts:
            continue
        print(f"[{name}]", flush=True)
        try:
            rec["results"][name] = fn()
        except Exception as e:  # record and go on: one window, every part counts
            import traceback
            traceback.print_exc()
            rec["results"][name] = {"error": f"{type(e).__name__}: {str(e)[:2000]}"}
        save()
    print(f"wrote {out} ({rec['total_wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
