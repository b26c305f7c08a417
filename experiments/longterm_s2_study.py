"""Monte Carlo study of the long-term estimators on S1/S2 (spec longterm.md §6.2, §8.2, §11).

For each replication: simulate S2 (or S1), run every estimator of the EstimatorSpec with a
within-bucket multinomial bootstrap (n_boot replicates), and compare with the closed-form
truth. Reports bias, SD, RMSE per estimator and effect, and the coverage of the normal and
percentile 95% bootstrap CIs of the nonstationary estimator.

    PYTHONPATH=. python3 experiments/longterm_s2_study.py --design s2 --T 28 --n 2000 --reps 100
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed._src.longterm.api import EFFECTS, _run, longterm_estimator_spec  # noqa: E402
from jaxmed._src.longterm.reward import LinearReward  # noqa: E402
from jaxmed._src.longterm.simulate import design_params, simulate_longterm  # noqa: E402
from jaxmed._src.longterm.truth import longterm_truth  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--design", default="s2")
    ap.add_argument("--T", type=int, default=28)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--n_boot", type=int, default=200)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--chunk", type=int, default=10)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    params = design_params(args.design)
    reward = LinearReward(params.theta, params.c)
    truth = longterm_truth(params, args.gamma)
    truth_vec = np.array([truth.delta, truth.delta_gamma, truth.avg_reward])
    estimators = ("nonstationary", "stationary", "naive-window", "naive-last", "detrended")
    spec = longterm_estimator_spec(reward, args.gamma, estimators=estimators, n_boot=0)
    key = jax.random.key(args.seed)

    def one(rep):
        k = jax.random.fold_in(key, rep)
        panel = simulate_longterm(jax.random.fold_in(k, 0), args.n, args.T, design=args.design)
        table = spec.fn(k, panel)
        _, se, ci_n, ci_p, _, diag = _run.__wrapped__(
            jax.random.fold_in(k, 1), panel, reward, args.gamma, jnp.zeros(3), 0.0, 0.0, 0.0, None,
            method="nonstationary", anchor="steady0", z_penalty="smooth", n_iter=0,
            n_boot=args.n_boot, kind="multinomial", batch_size=50, sieve_degree=2, bz_solver="auto")
        return table.estimate, table.status, se, ci_n, ci_p, diag.n_boot_failed

    run = jax.jit(jax.vmap(one))
    t0 = time.time()
    outs = []
    for start in range(0, args.reps, args.chunk):
        reps = jnp.arange(start, min(start + args.chunk, args.reps))
        outs.append(jax.device_get(run(reps)))
        print(f"  reps {start}..{int(reps[-1])} done, {time.time() - t0:.1f}s", flush=True)
    est, status, se, ci_n, ci_p, failed = (np.concatenate(x) for x in zip(*outs))
    wall = time.time() - t0

    summary = dict(design=args.design, T=args.T, n=args.n, reps=args.reps, n_boot=args.n_boot,
                   gamma=args.gamma, seed=args.seed, wall_s=round(wall, 1),
                   truth=dict(zip(EFFECTS, truth_vec.tolist())), estimators={})
    for e, name in enumerate(estimators):
        err = est[:, e, :] - truth_vec
        row = {}
        for k, eff in enumerate(EFFECTS):
            bias = float(err[:, k].mean())
            sd = float(err[:, k].std(ddof=1))
            row[eff] = dict(bias=bias, sd=sd, rmse=float(np.sqrt((err[:, k] ** 2).mean())),
                            bias_mc_se=sd / np.sqrt(args.reps))
        summary["estimators"][name] = row
    cover_n = ((ci_n[..., 0] <= truth_vec) & (truth_vec <= ci_n[..., 1])).mean(0)
    cover_p = ((ci_p[..., 0] <= truth_vec) & (truth_vec <= ci_p[..., 1])).mean(0)
    summary["nonstationary_coverage"] = dict(
        normal=dict(zip(EFFECTS, cover_n.tolist())), percentile=dict(zip(EFFECTS, cover_p.tolist())),
        mean_boot_se=dict(zip(EFFECTS, se.mean(0).tolist())))
    summary["status_nonzero"] = int((status != 0).sum())
    summary["boot_failed_total"] = int(failed.sum())
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
