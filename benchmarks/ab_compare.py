"""Before/after timing of the mediation pipeline: a base git revision against the working tree.

    PYTHONPATH=. python3 benchmarks/ab_compare.py [--base main] [--rounds 3] [--sizes 500x25 1500x100]
        [--config '{"se_method": "ij", "ij_estimators": ["MR"]}']

The base revision's ``jaxmed/`` is exported with ``git archive`` into a temporary directory.
Each round runs one fresh subprocess per side (base, then working tree, alternating), each
timing ``mediation_core`` under ``jax.jit`` (median of repeats after compilation; wall and
process CPU time, the latter less sensitive to other load on a shared machine) and
returning its estimates; the ratio base/new is the median over rounds of the per-round
ratios, so both sides see the same machine load. Writes ``results/ab-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r"""
import json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxmed
from jaxmed.mediation import MediationConfig, mediation_core
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
n, t, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = MediationConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(sys.argv[4]).items()})
data = simulate_semi_synthetic(jax.random.key(0), n, t)
pol = jaxmed.policies.semi_synthetic_target_policy()
f = jax.jit(lambda k, d: mediation_core(k, d, pol, 0, config))
key = jax.random.key(1)
t0 = time.perf_counter(); res = jax.block_until_ready(f(key, data)); first = time.perf_counter() - t0
ts, cs = [], []
for _ in range(reps):
    t0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(f(key, data))
    ts.append(time.perf_counter() - t0); cs.append(time.process_time() - c0)
print(json.dumps(dict(first_s=first, run_s=float(np.median(ts)), run_all_s=ts, cpu_s=float(np.median(cs)),
                      estimate=np.asarray(res.estimate).tolist(), se=np.asarray(res.se).tolist())))
"""


def _child(src, n, t, reps, config):
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(t), str(reps), json.dumps(config)],
                         capture_output=True,
                         text=True, env=env, timeout=1800, cwd=src)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="main")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--sizes", nargs="+", default=["500x25", "1500x100"])
    p.add_argument("--config", default="{}",
                   help='MediationConfig fields as JSON, e.g. \'{"se_method": "ij"}\' (both sides)')
    a = p.parse_args(argv)
    config = json.loads(a.config)
    base_commit = subprocess.run(["git", "rev-parse", a.base], capture_output=True, text=True, cwd=ROOT,
                                 check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "jaxmed"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip())
    rec = {"timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "base": a.base, "base_commit": base_commit, "new_commit": head, "new_has_uncommitted_jaxmed_changes": dirty,
           "loadavg_start": list(os.getloadavg()), "config": config, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "archive", base_commit, "jaxmed"], capture_output=True, cwd=ROOT, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        for size in a.sizes:
            n, t = (int(v) for v in size.split("x"))
            rounds = []
            for r in range(a.rounds):
                b = _child(tmp, n, t, a.reps, config)
                w = _child(ROOT, n, t, a.reps, config)
                diff = float(np.nanmax(np.abs(np.asarray(b["estimate"], float) - np.asarray(w["estimate"], float))))
                rounds.append({"base": b["run_s"], "new": w["run_s"], "ratio": b["run_s"] / w["run_s"],
                               "base_cpu": b["cpu_s"], "new_cpu": w["cpu_s"], "cpu_ratio": b["cpu_s"] / w["cpu_s"],
                               "base_first_s": b["first_s"], "new_first_s": w["first_s"],
                               "max_abs_estimate_diff": diff, "loadavg": list(os.getloadavg())})
                print(f"  N={n} T={t} round {r}: base {b['run_s'] * 1e3:.1f} ms, new {w['run_s'] * 1e3:.1f} ms, "
                      f"ratio {b['run_s'] / w['run_s']:.2f} (CPU time {b['cpu_s'] / w['cpu_s']:.2f}), max |Δ estimate| {diff:.1e}", flush=True)
            rec["sizes"].append({"n": n, "T": t, "rounds": rounds,
                                 "median_ratio_base_over_new": float(np.median([x["ratio"] for x in rounds])),
                                 "median_cpu_ratio_base_over_new": float(np.median([x["cpu_ratio"] for x in rounds])),
                                 "max_abs_estimate_diff": max(x["max_abs_estimate_diff"] for x in rounds)})
    rec["loadavg_end"] = list(os.getloadavg())
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"ab-{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.json")
    with open(out, "w") as fh:
        json.dump(rec, fh, indent=1)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
