"""Coverage of the infinitesimal-jackknife SE against the naive trajectory-cluster SE
(issue 13, deliverable 2), semi-synthetic design (spec §7.1), T = 25.

One run of ``mediation_core(..., MediationConfig(se_method="ij"))`` per replication gives both
SEs: ``se`` (the IJ sandwich through the whole pipeline) and ``cluster_se`` (the naive one,
which treats the nuisances, Q-functions and ratios as known). Per cell, estimator and effect:
bias and its Monte Carlo SE, SD of the estimates, mean SE and 95% coverage of each SE
(with its binomial SE), and SE/SD, against the repository truths (spec §8.2).
Replication r uses ``fold_in(key(seed), r)`` (data and estimation keys split from it), as
``mediation_semi_synthetic.py``.

Usage:
  PYTHONPATH=. python3 experiments/mediation_ij_coverage.py --reps 400 --n 200 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np
import pandas as pd

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import EFFECTS, ESTIMATORS, mediation_core
from jaxmed._src.policies import semi_synthetic_target_policy
from jaxmed._src.precision import precision
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic

TRUTH = np.array([2.679841, 3.653535, 1.243782, 0.689031])  # IDE, IME, DDE, DME (spec §8.2)
Z = 1.959963984540054


def run(n: int, horizon: int, reps: int, seed: int):
    policy = semi_synthetic_target_policy()
    config = MediationConfig(se_method="ij")

    @jax.jit
    def one(key):
        k_data, k_est = jax.random.split(key)
        res = mediation_core(k_est, simulate_semi_synthetic(k_data, n, horizon), policy, 0, config)
        return res.estimate, res.se, res.cluster_se, res.diagnostics.status

    base = jax.random.key(seed)
    t0 = time.time()
    out = [jax.device_get(one(jax.random.fold_in(base, 0)))]
    first = time.time() - t0
    t1 = time.time()
    for r in range(1, reps):
        out.append(jax.device_get(one(jax.random.fold_in(base, r))))
    per_rep = (time.time() - t1) / max(reps - 1, 1)
    est, se, cse, status = (np.stack([np.asarray(o[k]) for o in out]) for k in range(4))
    return est, se, cse, status, first, per_rep


def summarise(n, horizon, est, se, cse, status):
    truth = np.append(TRUTH, TRUTH.sum())
    ok = status == 0
    rows = []
    for i, e in enumerate(ESTIMATORS):
        for j, k in enumerate(EFFECTS):
            x = est[ok, i, j]
            if np.isnan(x).all():
                continue
            reps = x.size
            err = x - truth[j]
            sd = x.std(ddof=1)
            row = dict(N=n, T=horizon, estimator=e, effect=k, reps=reps,
                       bias=err.mean(), bias_mcse=err.std(ddof=1) / np.sqrt(reps), sd=sd)
            for name, s in (("ij", se[ok, i, j]), ("cluster", cse[ok, i, j])):
                if not np.isfinite(s).all():
                    row.update({f"{name}_mean_se": np.nan, f"{name}_coverage": np.nan,
                                f"{name}_coverage_se": np.nan, f"{name}_se_over_sd": np.nan})
                    continue
                cov = np.mean(np.abs(err) <= Z * s)
                row.update({f"{name}_mean_se": s.mean(), f"{name}_coverage": cov,
                            f"{name}_coverage_se": np.sqrt(cov * (1 - cov) / reps),
                            f"{name}_se_over_sd": s.mean() / sd})
            rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[200, 500])
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="experiments/results/mediation_ij_coverage")
    args = ap.parse_args()
    rows, timing = [], {}
    with precision(np.float64):
        for n in args.n:
            est, se, cse, status, first, per_rep = run(n, args.horizon, args.reps, args.seed)
            timing[n] = dict(compile_and_first_s=first, per_replication_s=per_rep,
                             status_nonzero=int(np.count_nonzero(status)))
            rows += summarise(n, args.horizon, est, se, cse, status)
            print(f"N={n}: compile+first {first:.0f} s, {per_rep:.2f} s per replication, "
                  f"{np.count_nonzero(status)} with status != 0", flush=True)
            table = pd.DataFrame(rows)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            table.to_csv(args.out + ".csv", index=False, float_format="%.6g")
            with open(args.out + ".json", "w") as f:
                json.dump(dict(args=vars(args), timing=timing, jax=jax.__version__,
                               device=str(jax.devices()[0]), python=platform.python_version(),
                               rows=table.to_dict(orient="records")), f, indent=1)
            print(table[table.N == n][["estimator", "effect", "bias", "bias_mcse", "sd",
                                       "ij_coverage", "cluster_coverage", "ij_se_over_sd",
                                       "cluster_se_over_sd"]].round(3).to_string(index=False),
                  flush=True)


if __name__ == "__main__":
    main()
