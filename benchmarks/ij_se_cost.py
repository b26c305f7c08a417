"""Cost of the infinitesimal-jackknife SE (``MediationConfig(se_method="ij")``) against the
point estimate with the naive cluster SE (``se_method="cluster"``), in one process: the IJ SE of
every estimator (20 reverse passes) and of MR only (``ij_estimators=("MR",)``, 4 passes: what
``jaxmed study ... --se ij --estimators MR`` computes).

    PYTHONPATH=. python3 benchmarks/ij_se_cost.py [--sizes 40x8,200x25,1500x25] [--rounds 5]

For each size N x T (semi-synthetic), both programs are ``jax.jit``-ed ``mediation_core`` on the same semi-synthetic dataset;
compile (first call) times are reported separately; then the two are called alternately
``rounds`` times (wall and process CPU time, ``block_until_ready``), and the cost ratio is the
median of the per-round ratios ij/cluster. Writes ``results/ij-se-cost-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

import jax
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(n, horizon, rounds):
    """Compile and alternated run times of the cluster and IJ programs at one size."""
    import jaxmed
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    from jaxmed.mediation import MediationConfig, mediation_core

    data = simulate_semi_synthetic(jax.random.key(0), n, horizon)
    pol = jaxmed.policies.semi_synthetic_target_policy()
    key = jax.random.key(1)
    configs = {"cluster": MediationConfig(), "ij": MediationConfig(se_method="ij"),
               "ij_mr": MediationConfig(se_method="ij", ij_estimators=("MR",))}
    fns = {m: jax.jit(lambda k, d, c=c: mediation_core(k, d, pol, 0, c))
           for m, c in configs.items()}
    compile_s, results = {}, {}
    for m, f in fns.items():
        t0 = time.perf_counter()
        results[m] = jax.block_until_ready(f(key, data))
        compile_s[m] = time.perf_counter() - t0
    wall = {m: [] for m in fns}
    cpu = {m: [] for m in fns}
    for _ in range(rounds):
        for m, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(f(key, data))
            wall[m].append(time.perf_counter() - t0)
            cpu[m].append(time.process_time() - c0)
    ratios = [b / a for a, b in zip(wall["cluster"], wall["ij"])]
    cpu_ratios = [b / a for a, b in zip(cpu["cluster"], cpu["ij"])]
    mr_ratios = [b / a for a, b in zip(wall["cluster"], wall["ij_mr"])]
    mr_cpu_ratios = [b / a for a, b in zip(cpu["cluster"], cpu["ij_mr"])]
    same = all(np.allclose(np.asarray(results[m].estimate), np.asarray(results["cluster"].estimate),
                           rtol=1e-12, atol=1e-12, equal_nan=True) for m in ("ij", "ij_mr"))
    same_mr_se = np.allclose(np.asarray(results["ij_mr"].se[0]), np.asarray(results["ij"].se[0]),
                             rtol=1e-10, atol=0.0)
    return dict(
        n=n, horizon=horizon, rounds=rounds, load_average_after=list(os.getloadavg()),
        compile_first_call_s=compile_s, wall_s=wall, cpu_s=cpu,
        median_wall_s={m: float(np.median(v)) for m, v in wall.items()},
        median_ratio_ij_over_cluster=float(np.median(ratios)),
        median_cpu_ratio_ij_over_cluster=float(np.median(cpu_ratios)),
        compile_ratio_ij_over_cluster=compile_s["ij"] / compile_s["cluster"],
        median_ratio_ij_mr_over_cluster=float(np.median(mr_ratios)),
        median_cpu_ratio_ij_mr_over_cluster=float(np.median(mr_cpu_ratios)),
        compile_ratio_ij_mr_over_cluster=compile_s["ij_mr"] / compile_s["cluster"],
        same_point_estimates=bool(same), same_mr_se_ij_mr_and_ij=bool(same_mr_se),
        mr_se_ij=np.asarray(results["ij"].se[0]).tolist(),
        mr_se_cluster=np.asarray(results["cluster"].se[0]).tolist())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="40x8", help="comma-separated NxT, e.g. 40x8,200x25")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    out = dict(benchmark="ij_se_cost", device=str(jax.devices()[0]), jax=jax.__version__,
               jaxlib=jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
               python=platform.python_version(), cpu_count=os.cpu_count(),
               load_average_start=list(os.getloadavg()), note=args.note, sizes=[])
    for size in args.sizes.split(","):
        n, horizon = (int(x) for x in size.lower().split("x"))
        rec = measure(n, horizon, args.rounds)
        out["sizes"].append(rec)
        print(json.dumps({k: rec[k] for k in ("n", "horizon", "compile_first_call_s", "median_wall_s",
                                              "median_ratio_ij_over_cluster",
                                              "compile_ratio_ij_over_cluster",
                                              "median_ratio_ij_mr_over_cluster",
                                              "compile_ratio_ij_mr_over_cluster",
                                              "same_point_estimates", "same_mr_se_ij_mr_and_ij")}),
              flush=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = args.out or os.path.join(HERE, "results", f"ij-se-cost-{stamp}.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=1)
    print(path)


if __name__ == "__main__":
    main()
