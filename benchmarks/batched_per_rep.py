"""Per replication in batches: ``vmap`` of ``mediation_core`` over W datasets, this tree against an
older commit, at the widths each can run.

    PYTHONPATH=. python3 benchmarks/batched_per_rep.py [--base fdedcfc] [--n 100] [--horizon 25]
                                                       [--rounds 5] [--calls 5]

``run.py``'s per-replication benchmark times one dataset per call. A study computes a block of
replications per call (``vmap``; width 8 by default on CPU), and fdedcfc could not: its vmap
deadlocked at width 8 on 2 cores (issue 12), so its studies ran one replication per call on
CPU. This benchmark times both trees at widths 1, 2, 4 and 8 where they run (fdedcfc at 1, 2
and 4, where it completed 20 of 20 calls in the issue; 8 is skipped), each width a jitted
``vmap(mediation_core)`` over W semi-synthetic datasets (fixed keys), in one server process per
tree. Rounds alternate the trees; per round and width the median of ``calls`` calls, divided
by W. Ratios: the base's best width against this tree's best width, per round, median over
rounds. Estimates of the two trees on the width-1 dataset are compared. Writes
``results/batched-per-rep-<timestamp>.json``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys

import numpy as np

from bench_worktree import ROOT, main_against_base, write_result

_SERVER = r"""
import json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxmed
from jaxmed.mediation import MediationConfig, mediation_core
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
pol = jaxmed.policies.semi_synthetic_target_policy()
f = jax.jit(jax.vmap(lambda k, d: mediation_core(k, d, pol, 0, MediationConfig())))
programs = {}
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    n, t, width, calls = (int(v) for v in line.split())
    if (n, t, width) not in programs:
        keys = jax.random.split(jax.random.key(0), width)
        data = jax.vmap(lambda k: simulate_semi_synthetic(k, n, t))(keys)
        ekeys = jax.random.split(jax.random.key(1), width)
        t0 = time.perf_counter(); res = jax.block_until_ready(f(ekeys, data))
        programs[(n, t, width)] = (ekeys, data, time.perf_counter() - t0, res)
    ekeys, data, first, res = programs[(n, t, width)]
    ts = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(f(ekeys, data))
        ts.append(time.perf_counter() - t0)
    print(json.dumps(dict(first_s=first, call_s=float(np.median(ts)),
                          estimate=np.asarray(res.estimate[0]).tolist())), flush=True)
"""

WIDTHS = {"base": (1, 2, 4), "new": (1, 2, 4, 8)}


def main(argv=None):
    main_against_base(argv, __doc__, "fdedcfc", "jaxmed-batched-per-rep-",
                      {"n": 100, "horizon": 25, "rounds": 5, "calls": 5}, _compare)


def _compare(args, work, base):
    import jax

    from execution_bench import _Server  # OPENBLAS_NUM_THREADS=1, JAXMED_NO_CACHE=1

    servers = {"base": _Server(base, _SERVER), "new": _Server(ROOT, _SERVER)}
    per_rep = {s: {w: [] for w in WIDTHS[s]} for s in servers}
    first, estimate = {}, {}
    try:
        for r in range(args.rounds):
            for side in (("base", "new") if r % 2 == 0 else ("new", "base")):
                for w in WIDTHS[side]:
                    res = servers[side].time(args.n, args.horizon, w, args.calls)
                    per_rep[side][w].append(res["call_s"] / w)
                    first[f"{side}_w{w}"] = res["first_s"]
                    if w == 1:
                        estimate[side] = np.asarray(res["estimate"], np.float64)
                    print(f"round {r} {side} width {w}: {res['call_s'] / w * 1e3:.2f} ms per rep",
                          flush=True)
    finally:
        for s in servers.values():
            s.close()
    best = {s: [min(per_rep[s][w][r] for w in WIDTHS[s]) for r in range(args.rounds)]
            for s in servers}
    ratios = [b / a for a, b in zip(best["new"], best["base"])]
    same1 = [per_rep["base"][1][r] / per_rep["new"][1][r] for r in range(args.rounds)]
    ok = np.isfinite(estimate["base"]) & np.isfinite(estimate["new"])
    out = dict(
        base=args.base, n=args.n, horizon=args.horizon, rounds=args.rounds, calls=args.calls,
        platform=platform.platform(), cpus=os.cpu_count(), jax=jax.__version__,
        load_average_after=list(os.getloadavg()),
        per_rep_s={s: {str(w): v for w, v in d.items()} for s, d in per_rep.items()},
        median_per_rep_s={s: {str(w): statistics.median(v) for w, v in d.items()}
                          for s, d in per_rep.items()},
        first_call_s=first,
        median_ratio_base_best_over_new_best=statistics.median(ratios),
        median_ratio_width1=statistics.median(same1),
        max_abs_estimate_diff_width1=float(np.abs(estimate["base"] - estimate["new"])[ok].max()))
    print(f"best width: base/new {out['median_ratio_base_best_over_new_best']:.2f}x; width 1: "
          f"{out['median_ratio_width1']:.2f}x; max abs estimate diff "
          f"{out['max_abs_estimate_diff_width1']:.1e}")
    write_result(out, "batched-per-rep", args.out)


if __name__ == "__main__":
    main()
