"""Per-replication time and compile time of the mediation pipeline with and without glibc's
huge-page tunable (``jaxmed._src.hugepages``), in fresh processes, alternated.

    PYTHONPATH=. python3 benchmarks/hugepages_bench.py [--rounds 3] [--sizes 100x25,1500x25,1500x100]

Variants (environment of the child process):

* ``default``: the environment as it is (``GLIBC_TUNABLES`` removed);
* ``hugetlb``: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (what the ``jaxmed`` command line
  runs with);
* ``arena1``: ``MALLOC_ARENA_MAX=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=16 GiB`` (the
  alternative not taken).

Each child compiles ``mediation_core`` (default configuration, cluster SE) at each size with
JAX's persistent cache off, then times ``reps`` calls per size; it reports the compile time,
the median call, and its page faults and kernel time per call (``getrusage``). The variants
run one after another within each round; ratios are medians over rounds of
``default / variant``. Writes ``results/hugepages-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import numpy as np

from bench_worktree import ROOT, write_result

CHILD = r"""
import json, resource, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_compilation_cache_dir", None)
import jaxmed
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.mediation import MediationConfig, mediation_core
pol = jaxmed.policies.semi_synthetic_target_policy()
out = {}
for size in sys.argv[1].split(","):
    n, t = (int(x) for x in size.split("x"))
    reps = max(3, min(15, 20000 // (n * t // 100)))
    data = simulate_semi_synthetic(jax.random.key(0), n, t)
    f = jax.jit(lambda k, d: mediation_core(k, d, pol, 0, MediationConfig()))
    t0 = time.perf_counter()
    est = jax.block_until_ready(f(jax.random.key(1), data)).estimate
    comp = time.perf_counter() - t0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(jax.random.key(1), data))
        ts.append(time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out[size] = dict(compile_s=comp, run_s=float(np.median(ts)), runs_s=ts, reps=reps,
                     minflt_per_call=(r1.ru_minflt - r0.ru_minflt) / reps,
                     sys_s_per_call=(r1.ru_stime - r0.ru_stime) / reps,
                     user_s_per_call=(r1.ru_utime - r0.ru_utime) / reps,
                     mr=np.asarray(est)[0].tolist())
print("RESULT " + json.dumps(out))
"""

VARIANTS = {
    "default": {},
    "hugetlb": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
    "arena1": {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0",
               "MALLOC_TRIM_THRESHOLD_": str(16 << 30)},
}


def child(sizes: str, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_",
                        "MALLOC_TRIM_THRESHOLD_")}
    env.update(extra, PYTHONPATH=ROOT, JAXMED_HUGEPAGES="0")
    res = subprocess.run([sys.executable, "-c", CHILD, sizes], env=env, capture_output=True,
                         text=True, check=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="100x25,1500x25,1500x100")
    ap.add_argument("--variants", default="default,hugetlb,arena1")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    from jaxmed._src.hugepages import thp_mode

    names = a.variants.split(",")
    rounds = {v: [] for v in names}
    for r in range(a.rounds):
        for v in names:
            rounds[v].append(child(a.sizes, VARIANTS[v]))
            print(f"round {r} {v}: " + ", ".join(
                f"{s} run {x['run_s'] * 1e3:.1f} ms compile {x['compile_s']:.1f} s "
                f"faults/call {x['minflt_per_call']:.0f}" for s, x in rounds[v][-1].items()),
                flush=True)
    summary = {}
    for s in a.sizes.split(","):
        row = {}
        for v in names:
            row[v] = dict(run_s_median=float(np.median([x[s]["run_s"] for x in rounds[v]])),
                          compile_s_median=float(np.median([x[s]["compile_s"] for x in rounds[v]])),
                          minflt_per_call_median=float(np.median(
                              [x[s]["minflt_per_call"] for x in rounds[v]])),
                          sys_s_per_call_median=float(np.median(
                              [x[s]["sys_s_per_call"] for x in rounds[v]])))
            if v != "default":
                row[v]["run_ratio_default_over_variant"] = float(np.median(
                    [d[s]["run_s"] / x[s]["run_s"] for d, x in zip(rounds["default"], rounds[v])]))
                row[v]["compile_ratio_variant_over_default"] = float(np.median(
                    [x[s]["compile_s"] / d[s]["compile_s"]
                     for d, x in zip(rounds["default"], rounds[v])]))
                row[v]["same_mr_estimates"] = bool(all(
                    np.allclose(d[s]["mr"], x[s]["mr"], rtol=0, atol=0)
                    for d, x in zip(rounds["default"], rounds[v])))
        summary[s] = row
        print(s, json.dumps(row), flush=True)
    out = dict(benchmark="hugepages", python=platform.python_version(), libc=platform.libc_ver(),
               kernel=platform.release(), thp=thp_mode(), cpu_count=os.cpu_count(),
               load_average_end=list(os.getloadavg()), rounds=rounds, summary=summary)
    import jax
    out["jax"] = jax.__version__
    write_result(out, "hugepages", a.out)


if __name__ == "__main__":
    main()
