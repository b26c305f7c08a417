"""Validation study: jaxmed's mediation estimators on the semi-synthetic design (spec §7.1, §10.1).

T = 25, N ∈ {500, 1500}, R replications (keys fold_in(key(seed), rep)). Per replication the
data are simulated and every estimator is run with the default ``MediationConfig`` (no
bootstrap: the MR interval uses the trajectory-cluster SE). Reports bias, its Monte Carlo SE,
MSE, sd, mean SE and 95% coverage against the repository truths (spec §8.2), next to the
original's published MSE (spec §10.1), and the wall time per replication.

Usage:
  PYTHONPATH=. python3 experiments/mediation_semi_synthetic.py --reps 100 --n 500 1500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import EFFECTS, ESTIMATORS, mediation_core
from jaxmed._src.policies import semi_synthetic_target_policy
from jaxmed._src.precision import precision
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic

TRUTH = np.array([2.679841, 3.653535, 1.243782, 0.689031])  # IDE, IME, DDE, DME (spec §8.2)
ORIGINAL_MSE = {500: [0.166, 0.127, 0.0063, 0.0060], 1500: [0.069, 0.044, 0.0037, 0.0028]}


def run(n: int, horizon: int, reps: int, seed: int, config: MediationConfig):
    policy = semi_synthetic_target_policy()

    @jax.jit
    def one(key):
        k_data, k_est = jax.random.split(key)
        data = simulate_semi_synthetic(k_data, n, horizon)
        res = mediation_core(k_est, data, policy, 0, config)
        return res.estimate, res.se, res.diagnostics.status

    base = jax.random.key(seed)
    t0 = time.time()
    first = one(jax.random.fold_in(base, 0))
    jax.block_until_ready(first)
    compile_and_first = time.time() - t0
    est, se, status = [np.asarray(first[0])], [np.asarray(first[1])], [int(first[2])]
    t1 = time.time()
    for r in range(1, reps):
        e, s, st = one(jax.random.fold_in(base, r))
        est.append(np.asarray(e))
        se.append(np.asarray(s))
        status.append(int(st))
    per_rep = (time.time() - t1) / max(reps - 1, 1)
    return np.stack(est), np.stack(se), np.asarray(status), compile_and_first, per_rep


def summarise(n, est, se, status):
    truth = np.append(TRUTH, TRUTH.sum())
    rows = []
    reps = est.shape[0]
    for i, e in enumerate(ESTIMATORS):
        for j, k in enumerate(EFFECTS):
            x = est[:, i, j]
            if np.isnan(x).all():
                continue
            err = x - truth[j]
            cover = np.abs(err) <= 1.959963984540054 * se[:, i, j]
            rows.append(dict(
                N=n, estimator=e, effect=k, reps=reps, bias=float(err.mean()),
                bias_mcse=float(err.std(ddof=1) / np.sqrt(reps)), mse=float(np.mean(err ** 2)),
                sd=float(x.std(ddof=1)), mean_se=(float(np.mean(se[:, i, j])) if np.isfinite(se[:, i, j]).any() else float("nan")),
                coverage=float(np.mean(cover)) if np.isfinite(se[:, i, j]).all() else float("nan"),
                original_mse=(ORIGINAL_MSE[n][j] if (e == "MR" and j < 4 and n in ORIGINAL_MSE)
                              else float("nan")),
                n_status_nonzero=int(np.count_nonzero(status))))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[500, 1500])
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default="experiments/results/mediation_semi_synthetic.json")
    args = ap.parse_args()
    config = MediationConfig()
    all_rows, timing = [], {}
    with precision(np.float64):
        for n in args.n:
            est, se, status, first, per_rep = run(n, args.horizon, args.reps, args.seed, config)
            timing[n] = dict(compile_and_first_s=first, per_replication_s=per_rep)
            rows = summarise(n, est, se, status)
            all_rows += rows
            print(f"N={n} T={args.horizon} reps={args.reps}: compile+first {first:.1f}s, "
                  f"{per_rep:.2f}s per replication")
            for r in rows:
                if r["estimator"] in ("MR", "DM"):
                    print(f"  {r['estimator']:4s} {r['effect']}: bias {r['bias']:+.4f} "
                          f"(mcse {r['bias_mcse']:.4f}) mse {r['mse']:.5f} sd {r['sd']:.4f} "
                          f"se {r['mean_se']:.4f} cover {r['coverage']:.2f} "
                          f"orig_mse {r['original_mse']}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(args=vars(args), config=repr(config), timing=timing, rows=all_rows,
                       jax=jax.__version__, device=str(jax.devices()[0]),
                       machine=platform.processor() or platform.machine()), f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
