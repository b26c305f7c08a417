"""Per-replication time of ``jaxmed study`` as users run it (``python -m jaxmed``), this tree
with and without the huge-page restart (``JAXMED_HUGEPAGES=0``) against an older commit.

    PYTHONPATH=. python3 benchmarks/cli_per_rep.py [--base 2d9761e] [--n 1500] [--horizon 25]
                                                   [--reps 40] [--rounds 3]

Each side gets its own persistent compilation cache, warmed by one untimed run, so the timed
runs compile nothing. Then the sides run one after another, ``rounds`` times, each a fresh
``python -m jaxmed study semi-synthetic`` process writing a fresh store. Per replication: the
median gap between consecutive chunk files' modification times (chunks of one replication;
what the engine spends per replication, startup excluded); wall: the whole command. Writes
``results/cli-per-rep-<timestamp>.json``.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from bench_worktree import ROOT, main_against_base, write_result


def one_run(tree, cache, out, args, hugepages: bool):
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES",)}
    env.update(PYTHONPATH=tree, JAXMED_CACHE_DIR=cache, JAXMED_HUGEPAGES="1" if hugepages else "0")
    cmd = [sys.executable, "-m", "jaxmed", "study", "semi-synthetic", "--n", str(args.n),
           "--horizon", str(args.horizon), "--reps", str(args.reps), "--seed", "0",
           "--no-progress", "--out", out]
    if tree == ROOT:  # per replication at XLA's default level, however small the study
        cmd += ["--xla-opt-level", "default"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    ts = sorted(os.path.getmtime(f) for f in glob.glob(os.path.join(out, "chunks", "*.npz")))
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    return {"wall_s": wall, "per_rep_s": statistics.median(gaps), "chunks": len(ts)}


def main(argv=None):
    main_against_base(argv, __doc__, "2d9761e", "jaxmed-cli-per-rep-",
                      {"n": 1500, "horizon": 25, "reps": 40, "rounds": 3}, _compare)


def _compare(args, work, base):
    sides = {"base": (base, True), "new_hugepages_off": (ROOT, False), "new": (ROOT, True)}
    caches = {"base": os.path.join(work, "cache-base"), "new_hugepages_off": os.path.join(work, "cache-new"),
              "new": os.path.join(work, "cache-new")}
    for side in ("base", "new"):  # warm each side's cache (compile once, untimed)
        tree, hp = sides[side]
        one_run(tree, caches[side], os.path.join(work, "warm"), args, hp)
    runs = {s: [] for s in sides}
    for r in range(args.rounds):
        for s, (tree, hp) in sides.items():
            runs[s].append(one_run(tree, caches[s], os.path.join(work, "out"), args, hp))
            print(f"round {r} {s}: wall {runs[s][-1]['wall_s']:.2f} s, per replication "
                  f"{runs[s][-1]['per_rep_s'] * 1e3:.1f} ms", flush=True)
    med = {s: {k: statistics.median(x[k] for x in v) for k in ("wall_s", "per_rep_s")}
           for s, v in runs.items()}
    ratios = {f"{a}_over_{b}_per_rep": statistics.median(
        x["per_rep_s"] / y["per_rep_s"] for x, y in zip(runs[a], runs[b]))
        for a, b in (("base", "new"), ("new_hugepages_off", "new"), ("base", "new_hugepages_off"))}
    out = dict(benchmark="cli_per_rep", base_commit=args.base, n=args.n, horizon=args.horizon,
               reps=args.reps, rounds=args.rounds, python=platform.python_version(),
               kernel=platform.release(), cpu_count=os.cpu_count(),
               load_average_end=list(os.getloadavg()), runs=runs, medians=med, ratios=ratios)
    print(json.dumps({"medians": med, "ratios": ratios}), flush=True)
    write_result(out, "cli-per-rep", args.out)


if __name__ == "__main__":
    main()
