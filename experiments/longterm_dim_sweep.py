"""Dimension sweep (spec longterm.md §6.2): random stable M_i (eigenvalues in [0.3, 0.95]) for
d ∈ {3, 10, 30}, an S2-like random exogenous path, n individuals, T steps; bias / SD / RMSE of
the nonstationary and stationary estimators against the closed-form truth of each design.

    PYTHONPATH=. python3 experiments/longterm_dim_sweep.py --reps 50 --n 2000 --T 28
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed._src.longterm.api import EFFECTS, estimate_effects  # noqa: E402
from jaxmed._src.longterm.reward import LinearReward  # noqa: E402
from jaxmed._src.longterm.simulate import (random_exogenous, random_stable_params,  # noqa: E402
                                           simulate_longterm)
from jaxmed._src.longterm.truth import longterm_truth  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", default="3,10,30")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--T", type=int, default=28)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--gamma", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    methods = ("nonstationary", "stationary")
    summary = dict(n=args.n, T=args.T, reps=args.reps, gamma=args.gamma, seed=args.seed, dims={})
    for d in (int(x) for x in args.dims.split(",")):
        key = jax.random.fold_in(jax.random.key(args.seed), d)
        params = random_stable_params(jax.random.fold_in(key, 0), d)
        z = random_exogenous(jax.random.fold_in(key, 1), args.T, d)
        truth = longterm_truth(params, args.gamma)
        tv = np.array([truth.delta, truth.delta_gamma, truth.avg_reward])
        reward = LinearReward(params.theta, params.c)

        def one(k):
            p = simulate_longterm(k, args.n, args.T, params=params, exogenous=z)
            return jnp.stack([estimate_effects(p, None, reward, args.gamma, method=m)[0] for m in methods])

        t0 = time.time()
        est = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.fold_in(key, 2), args.reps)))
        row = dict(truth=dict(zip(EFFECTS, tv.tolist())), wall_s=round(time.time() - t0, 1))
        for i, m in enumerate(methods):
            err = est[:, i] - tv
            row[m] = {e: dict(bias=float(err[:, k].mean()), sd=float(err[:, k].std(ddof=1)),
                              rmse=float(np.sqrt((err[:, k] ** 2).mean())))
                      for k, e in enumerate(EFFECTS)}
        summary["dims"][d] = row
        print(d, json.dumps(row), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
