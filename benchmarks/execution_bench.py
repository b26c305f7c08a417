"""Issue-12 benchmarks: per replication against fdedcfc and numpy, study width sweep,
cold/warm command wall times, the paper's N-grid as a whole. Registered in ``run.py``:

    PYTHONPATH=. python3 benchmarks/run.py --only base widths commands ngrid      # the full set
    PYTHONPATH=. python3 benchmarks/run.py --quick --only base widths commands ngrid  # smoke test

* ``base``: one replication of the default mediation pipeline (``mediation_core`` under
  ``jit``, semi-synthetic data, every estimator, cluster SEs) at N in {100, 1500},
  T in {25, 100}, timed in two long-lived subprocesses: this working tree and main as of
  ``BASE_COMMIT`` (checked out by the benchmark with ``git worktree add`` into a temporary
  directory, removed afterwards); the numpy comparator runs in this process on the same data.
  Five rounds alternate the sides (base, new, new with huge pages, in reversed order every
  other round, then numpy); each round takes the median of 40 / 20 / 4 calls per side (N·T up
  to 2,500 / 10,000 / more), after one untimed call that wakes the side's threads; reported:
  per-side medians over rounds and the medians of the per-round
  ratios. The estimates of base and new are compared (max abs difference).
* ``widths``: replications per second through ``jaxmed.study.run`` at N=500, T=25 for
  ``batch_size`` (vmap width) 1, 2, 4, 8, 16, 32 (compile excluded, reported separately).
* ``commands``: wall time of the README quickstart command and of ``jaxmed estimate`` on a
  6,000-row CSV, each run twice in fresh processes sharing a new, empty compilation cache
  directory: cold (first) and warm (second).
* ``ngrid``: the paper's N-grid (N = 100..1500 step 100, T = 25, 100 reps) as one
  ``jaxmed study`` command with an empty cache: wall time, compilation included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BASE_COMMIT = "fdedcfc"

_SERVER = r"""
import json, sys, time
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxmed
from jaxmed.mediation import MediationConfig, mediation_core
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
pol = jaxmed.policies.semi_synthetic_target_policy()
f = jax.jit(lambda k, d: mediation_core(k, d, pol, 0, MediationConfig()))
key = jax.random.key(1)
cache = {}
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    n, t, reps = (int(v) for v in line.split())
    if (n, t) not in cache:
        data = simulate_semi_synthetic(jax.random.key(0), n, t)
        t0 = time.perf_counter(); res = jax.block_until_ready(f(key, data))
        cache[(n, t)] = (data, time.perf_counter() - t0, res)
    data, first, res = cache[(n, t)]
    jax.block_until_ready(f(key, data))  # untimed: wakes the thread pool after the other sides ran
    ts, cs = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(key, data))
        ts.append(time.perf_counter() - t0); cs.append(time.process_time() - c0)
    print(json.dumps(dict(first_s=first, run_s=float(np.median(ts)), cpu_s=float(np.median(cs)),
                          estimate=np.asarray(res.estimate).tolist())), flush=True)
"""


def _env(tree, **extra):
    env = dict(os.environ, PYTHONPATH=tree, OPENBLAS_NUM_THREADS="1", JAXMED_NO_CACHE="1")
    env.update(extra)
    return env


class _Server:
    """A subprocess timing ``mediation_core`` of one source tree on request (``code``: the
    server's program, reading one request of numbers per line and answering one JSON line)."""

    def __init__(self, tree, code=_SERVER, **extra_env):
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=tree,
                                     env=_env(tree, **extra_env),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark subprocess died (exit {self.proc.wait()})")
        return json.loads(line)

    def time(self, *request):
        self.proc.stdin.write(" ".join(str(v) for v in request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _base_tree():
    path = os.path.join(tempfile.gettempdir(), f"jaxmed-base-{BASE_COMMIT}-{os.getpid()}")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", path, BASE_COMMIT],
                   check=True, capture_output=True)
    return path


def _remove_tree(path):
    subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", path], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def bench_base(quick, numpy_call):
    """Per replication: this tree vs ``BASE_COMMIT`` vs numpy, alternating rounds, medians."""
    sizes = [(100, 25)] if quick else [(100, 25), (1500, 25), (100, 100), (1500, 100)]
    # 5 rounds, the sides' order reversed every other round: with 3 rounds in a fixed order the
    # same commit measured 61 and 84 ms per replication at N = 1500, T = 25 half an hour apart
    rounds = 1 if quick else 5
    base_path = _base_tree()
    servers = {}
    try:
        # "new_hugepages": this tree in the environment the ``jaxmed`` command line restarts
        # itself with (``jaxmed._src.hugepages``: glibc's huge-page tunable); "new" and "base"
        # run without it, as a library import does
        servers = {"base": _Server(base_path), "new": _Server(ROOT),
                   "new_hugepages": _Server(ROOT, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")}
        out = []
        for n, t in sizes:
            call = numpy_call(n, t)
            per = {"base": [], "new": [], "new_hugepages": [], "numpy": []}
            ratios = {"base_over_new": [], "numpy_over_new": [], "base_over_new_hugepages": [],
                      "numpy_over_new_hugepages": []}
            est = {}
            # calls per side and round (their median is the round's time): about 0.2-0.4 s of
            # calls, after one untimed call; with 3 calls of 4-8 ms at N = 100, T = 25 the
            # per-round ratio to the base varied 1.5-2.6x within one run (session 22)
            reps = 40 if n * t <= 2_500 else 20 if n * t <= 10_000 else 4
            for k in range(rounds):
                sides = ("base", "new", "new_hugepages")
                for side in (sides if k % 2 == 0 else sides[::-1]):
                    r = servers[side].time(n, t, reps)
                    per[side].append(r["run_s"])
                    est[side] = np.asarray(r["estimate"], np.float64)
                    est[side + "_first"] = r["first_s"]
                t0 = time.perf_counter()
                call()
                per["numpy"].append(time.perf_counter() - t0)
                ratios["base_over_new"].append(per["base"][-1] / per["new"][-1])
                ratios["numpy_over_new"].append(per["numpy"][-1] / per["new"][-1])
                ratios["base_over_new_hugepages"].append(per["base"][-1] / per["new_hugepages"][-1])
                ratios["numpy_over_new_hugepages"].append(per["numpy"][-1]
                                                          / per["new_hugepages"][-1])
            ok = np.isfinite(est["base"]) & np.isfinite(est["new"])
            row = {"n": n, "T": t, "rounds": rounds,
                   **{f"{k}_run_s": float(np.median(v)) for k, v in per.items()},
                   **{f"{k}_all_s": v for k, v in per.items()},
                   **{k: float(np.median(v)) for k, v in ratios.items()},
                   "base_first_call_s": est["base_first"], "new_first_call_s": est["new_first"],
                   "base_vs_new_max_abs_diff": float(np.abs(est["base"] - est["new"])[ok].max()),
                   "new_hugepages_same_estimates": bool(np.array_equal(
                       est["new"], est["new_hugepages"], equal_nan=True))}
            out.append(row)
            print(f"  base N={n} T={t}: new {row['new_run_s'] * 1e3:.1f} ms, {BASE_COMMIT} "
                  f"{row['base_run_s'] * 1e3:.1f} ms ({row['base_over_new']:.2f}x), numpy "
                  f"{row['numpy_run_s'] * 1e3:.1f} ms ({row['numpy_over_new']:.2f}x); with huge "
                  f"pages {row['new_hugepages_run_s'] * 1e3:.1f} ms "
                  f"({row['base_over_new_hugepages']:.2f}x {BASE_COMMIT}); first call "
                  f"new {row['new_first_call_s']:.1f}s base {row['base_first_call_s']:.1f}s", flush=True)
        return {"base_commit": BASE_COMMIT, "sizes": out}
    finally:
        for s in servers.values():
            s.close()
        _remove_tree(base_path)


def bench_widths(quick):
    """Replications per second of ``study.run`` at N=500, T=25 for vmap widths 1..32."""
    import jaxmed
    from jaxmed._src.study.catalog import get_design
    from jaxmed.mediation import mediation_estimator_spec
    from jaxmed.study import run as study_run

    design = get_design("semi-synthetic")
    spec = mediation_estimator_spec(jaxmed.policies.semi_synthetic_target_policy())
    n, t = (100, 10) if quick else (500, 25)
    out = []
    for w in ((1, 8) if quick else (1, 2, 4, 8, 16, 32)):
        reps = 2 * w if quick else max(16, 2 * w)
        res = study_run(design, spec, [(n, t)], reps, 0, batch_size=w, chunk_size=w, progress=False,
                        xla_opt_level=None)  # throughput at XLA's default level
        run_s = res.wall_s - res.compile_s
        out.append({"n": n, "T": t, "width": w, "reps": reps, "run_s": run_s, "compile_s": res.compile_s,
                    "reps_per_s": reps / run_s, "n_status_nonzero": int((res.status != 0).sum()),
                    "device": res.device})
        print(f"  width {w} N={n} T={t}: {reps / run_s:.2f} reps/s (compile {res.compile_s:.1f}s)",
              flush=True)
    return out


def _timed(cmd, env, cwd):
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return wall


def _estimate_csv(path, rows):
    import jax

    import jaxmed
    from jaxmed._src.study.catalog import get_design

    design = get_design("semi-synthetic")
    with jaxmed.precision():
        data = design.simulate(jax.random.key(0), rows // 25, 25)
    jaxmed.trajectories_to_dataframe(data).to_csv(path, index=False)


def bench_commands(quick):
    """Cold and warm wall time of the README quickstart and of ``jaxmed estimate`` (6,000 rows)."""
    work = tempfile.mkdtemp(prefix="jaxmed-bench-commands-")
    try:
        env = dict(os.environ, PYTHONPATH=ROOT, JAXMED_CACHE_DIR=os.path.join(work, "xla"))
        env.pop("JAXMED_NO_CACHE", None)
        n = "50,60" if quick else "100,200"
        quick_cmd = [sys.executable, "-m", "jaxmed", "study", "semi-synthetic", "--n", n, "--horizon",
                     "10" if quick else "25", "--reps", "8", "--seed", "0", "--no-progress"]
        rows = 1000 if quick else 6000
        csv = os.path.join(work, "data.csv")
        _estimate_csv(csv, rows)
        est_cmd = [sys.executable, "-m", "jaxmed", "estimate", csv, "--state", "s0", "--mediator",
                   "m0,m1", "--action", "action", "--reward", "reward", "--id", "id", "--time", "time",
                   "--target-policy", "logistic:0.7", "--seed", "0"]
        out = {"quickstart_command": " ".join(quick_cmd[2:]), "estimate_rows": rows}
        for name, cmd in (("quickstart", quick_cmd), ("estimate", est_cmd)):
            for phase in ("cold", "warm"):
                run_cmd = cmd + (["--out", os.path.join(work, f"q-{phase}")] if name == "quickstart" else [])
                out[f"{name}_{phase}_s"] = _timed(run_cmd, env, work)
            print(f"  {name}: cold {out[f'{name}_cold_s']:.1f}s warm {out[f'{name}_warm_s']:.1f}s",
                  flush=True)
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_ngrid(quick):
    """The paper's N-grid as one ``jaxmed study`` command, empty cache, compile included."""
    work = tempfile.mkdtemp(prefix="jaxmed-bench-ngrid-")
    try:
        env = dict(os.environ, PYTHONPATH=ROOT, JAXMED_CACHE_DIR=os.path.join(work, "xla"))
        env.pop("JAXMED_NO_CACHE", None)
        ns = [100, 200] if quick else list(range(100, 1501, 100))
        t, reps = (10, 4) if quick else (25, 100)
        cmd = [sys.executable, "-m", "jaxmed", "study", "semi-synthetic", "--n", ",".join(map(str, ns)),
               "--horizon", str(t), "--reps", str(reps), "--seed", "0", "--no-progress",
               "--out", os.path.join(work, "study")]
        wall = _timed(cmd, env, work)
        with open(os.path.join(work, "study", "manifest.json")) as fh:
            batch = json.load(fh)["batch_size"]
        fits = len(ns) * reps
        print(f"  N-grid ({len(ns)} cells x {reps} reps, T={t}): {wall:.0f}s wall, compile included",
              flush=True)
        return {"ns": ns, "T": t, "reps": reps, "fits": fits, "wall_s": wall, "batch_size": batch,
                "command": " ".join(cmd[2:-2])}
    finally:
        shutil.rmtree(work, ignore_errors=True)
