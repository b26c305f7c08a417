"""Paired before/after timing of one replication: a base git revision against the working tree,
alternated call by call in two long-lived processes.

    PYTHONPATH=. python3 benchmarks/ab_paired.py --base fdedcfc --size 1500x25 [--rounds 25]
        [--calls 3] [--config '{"se_method": "ij"}']

``ab_compare.py`` starts fresh processes and times a few calls per side: on this shared
2-core machine its per-round medians moved by 1.5x from one round to the next. Here the base
revision's ``jaxmed/`` (``git archive``) and this tree each run in one server process that
compiles ``mediation_core`` once; the rounds then alternate the two sides (the order flipped
every round), each side timing ``--calls`` calls, so both see the same load. Reported: each
side's median, the ratio of the medians and the median of the per-round ratios, and the
largest differences of the estimates and SEs. Both servers get ``OPENBLAS_NUM_THREADS=1``
(what ``import jaxmed`` sets since session 15; ``run.py``'s base benchmark does the same) unless
the variable is already set. Writes ``results/ab-paired-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SERVER = r"""
import json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxmed
from jaxmed.mediation import MediationConfig, mediation_core
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
n, t = int(sys.argv[1]), int(sys.argv[2])
cfg = MediationConfig(**{k: tuple(v) if isinstance(v, list) else v
                         for k, v in json.loads(sys.argv[3]).items()})
data = simulate_semi_synthetic(jax.random.key(0), n, t)
pol = jaxmed.policies.semi_synthetic_target_policy()
f = jax.jit(lambda k, d: mediation_core(k, d, pol, 0, cfg))
key = jax.random.key(1)
t0 = time.perf_counter()
res = jax.block_until_ready(f(key, data))
first = time.perf_counter() - t0
print(json.dumps(dict(first_s=first, estimate=np.asarray(res.estimate).tolist(),
                      se=np.asarray(res.se).tolist())), flush=True)
for line in sys.stdin:
    k = int(line)
    t0 = time.perf_counter()
    for _ in range(k):
        jax.block_until_ready(f(key, data))
    print((time.perf_counter() - t0) / k, flush=True)
"""


def _git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout.strip()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="HEAD")
    p.add_argument("--size", default="1500x25", help="NxT")
    p.add_argument("--rounds", type=int, default=25)
    p.add_argument("--calls", type=int, default=3, help="calls per side per round (their mean)")
    p.add_argument("--config", default="{}", help="MediationConfig fields as JSON (both sides)")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    n, t = (int(x) for x in a.size.lower().split("x"))
    base_commit = _git("rev-parse", a.base)
    tmp = tempfile.mkdtemp(prefix="jaxmed-ab-")
    procs = {}
    try:
        subprocess.run(f"git -C {ROOT} archive {base_commit} jaxmed | tar -x -C {tmp}", shell=True,
                       check=True)
        for side, src in (("base", tmp), ("new", ROOT)):
            env = dict(os.environ, PYTHONPATH=src)
            env.setdefault("OPENBLAS_NUM_THREADS", "1")
            procs[side] = subprocess.Popen([sys.executable, "-c", SERVER, str(n), str(t), a.config],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True, env=env, cwd=src)
        first = {side: json.loads(proc.stdout.readline()) for side, proc in procs.items()}
        times = {side: [] for side in procs}
        load_start = os.getloadavg()
        for r in range(a.rounds):
            order = ("base", "new") if r % 2 == 0 else ("new", "base")
            for side in order:
                procs[side].stdin.write(f"{a.calls}\n")
                procs[side].stdin.flush()
                times[side].append(float(procs[side].stdout.readline()))
        load_end = os.getloadavg()
    finally:
        for proc in procs.values():
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
    b, nw = np.asarray(times["base"]), np.asarray(times["new"])
    est = {s: np.asarray(first[s]["estimate"], float) for s in first}
    se = {s: np.asarray(first[s]["se"], float) for s in first}
    rec = {
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "base": a.base, "base_commit": base_commit, "new_commit": _git("rev-parse", "HEAD"),
        "new_has_uncommitted_jaxmed_changes": bool(_git("status", "--porcelain", "jaxmed")),
        "n": n, "T": t, "config": json.loads(a.config), "rounds": a.rounds, "calls": a.calls,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "loadavg_start": load_start, "loadavg_end": load_end,
        "first_call_s": {s: first[s]["first_s"] for s in first},
        "base_run_s": float(np.median(b)), "new_run_s": float(np.median(nw)),
        "base_all_s": b.tolist(), "new_all_s": nw.tolist(),
        "ratio_of_medians": float(np.median(b) / np.median(nw)),
        "median_paired_ratio": float(np.median(b / nw)),
        "max_abs_estimate_diff": float(np.nanmax(np.abs(est["base"] - est["new"]))),
        "max_abs_se_diff": float(np.nanmax(np.abs(se["base"] - se["new"]))),
    }
    out = a.out or os.path.join(HERE, "results", "ab-paired-" + datetime.datetime.now(
        datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".json")
    with open(out, "w") as fh:
        json.dump(rec, fh, indent=1)
    print(f"N={n} T={t} {a.config}: base {base_commit[:10]} {rec['base_run_s'] * 1e3:.1f} ms, new "
          f"{rec['new_run_s'] * 1e3:.1f} ms; ratio of medians {rec['ratio_of_medians']:.3f}, median "
          f"paired ratio {rec['median_paired_ratio']:.3f}; max |Δ estimate| "
          f"{rec['max_abs_estimate_diff']:.1e}, max |Δ se| {rec['max_abs_se_diff']:.1e}")
    print(f"wrote {out}")
    return rec


if __name__ == "__main__":
    main()
