"""Per-stage and whole-pipeline timing of one mediation replication: before vs after.

"before" is the pipeline at a base commit (default fdedcfc, checked out by this script in a
temporary ``git worktree``), "after" the working tree this script lives in. Each side runs in
its own subprocess (its own ``jaxmed`` import), compiles every stage once, and then times one
call per request; the parent alternates the two sides call by call and reports medians of wall
and process-CPU time, so both sides see the same load. The numpy comparator
(``numpy_mediation.py``) is timed in the "after" process, and its agreement with the "after"
pipeline (max |jaxmed − numpy| ≤ 1e-10 · (1 + |numpy|)) is checked first; a disagreement stops
the benchmark.

Usage::

    python benchmarks/pipeline_stages.py [--reps 7] [--base fdedcfc] [--whole-only]

Writes ``benchmarks/results/pipeline_stages.json`` (times in ms, ratios before/after and
numpy/after, machine load from ``os.getloadavg`` before and after the timed loop).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
AGREE_TOL = 1e-10
STAGES = ("behaviour_fit", "mediator_fit", "reward_fit", "nuisances", "q_basis_features",
          "q_fits", "ratios", "policy_free", "policy_stage")
SIZES = ((1500, 25), (100, 25))

# ------------------------------------------------------------------------------- the child side
WORKER = r'''
import json, sys, time
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import jaxmed
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
from jaxmed.mediation import MediationConfig, mediation_core
from jaxmed._src.mediation.config import RATIO_FEATURES
from jaxmed._src.mediation import pipeline as P, state_ratio as SR
from jaxmed._src.mediation.nuisance import default_nuisance_models, fit_nuisances
from jaxmed._src.mediation.q_function import fit_q_basis, fit_q_functions, q_feature_rows
from jaxmed._src.mediation.estimators import row_importance_weights
from jaxmed._src.mediation.weighted_stats import row_weights

with_numpy, stage_n, sizes = sys.argv[1] == "1", int(sys.argv[2]), json.loads(sys.argv[3])
cfg = MediationConfig()
pol = jaxmed.policies.semi_synthetic_target_policy()
key = jax.random.key(1)
calls, info = {}, {}


def block(x):
    return jax.block_until_ready(x)


def add(name, fn, *args):
    t0 = time.perf_counter()
    block(fn(*args))
    info[name + ":first_call_s"] = time.perf_counter() - t0
    calls[name] = lambda: fn(*args)


for n, t in sizes:
    data = simulate_semi_synthetic(jax.random.key(0), n, t)
    whole = jax.jit(lambda k, d: mediation_core(k, d, pol, 0, cfg))
    add(f"whole_{n}x{t}", whole, key, data)
    comp = whole.lower(key, data).compile()
    ca = comp.cost_analysis()
    ca = ca[0] if isinstance(ca, list) else ca
    info[f"whole_{n}x{t}:gflop"] = float(ca.get("flops", float("nan"))) / 1e9
    info[f"whole_{n}x{t}:gbytes"] = float(ca.get("bytes accessed", float("nan"))) / 1e9
    if with_numpy:
        sys.path.insert(0, sys.argv[4])
        import numpy_mediation as nm
        arrays = [np.asarray(x, np.float64) for x in data]
        wr, br = nm.jaxmed_rff(key, arrays[0].shape[-1], RATIO_FEATURES if cfg.ratio_features is None else cfg.ratio_features)
        res = whole(key, data)
        out = nm.mediation_numpy(*arrays, np.asarray(pol.weights), float(pol.intercept), wr, br, a0=0)
        diffs = []
        for a, b in ((res.estimate, out["estimate"]), (res.cluster_se, out["se"]), (res.eta, out["eta"])):
            a, b = np.asarray(a), np.asarray(b)
            if not np.array_equal(np.isnan(a), np.isnan(b)):
                diffs.append(float("inf"))
                continue
            ok = ~np.isnan(b)
            diffs.append(float(np.max(np.abs(a[ok] - b[ok]) / (1.0 + np.abs(b[ok])))))
        info[f"agreement_{n}x{t}"] = max(diffs)
        calls[f"numpy_{n}x{t}"] = lambda arrays=arrays, wr=wr, br=br: nm.mediation_numpy(
            *arrays, np.asarray(pol.weights), float(pol.intercept), wr, br, a0=0)

if stage_n:
    n, t = stage_n, 25
    data = simulate_semi_synthetic(jax.random.key(0), n, t)
    rows = data.flat()
    w = row_weights(data.mask, jnp.ones(n))
    models = default_nuisance_models(cfg)
    add("behaviour_fit", jax.jit(lambda r, w: models.behaviour.fit(None, r, w)), rows, w)
    add("mediator_fit", jax.jit(lambda r, w: models.mediator.fit(None, r, w)), rows, w)
    add("reward_fit", jax.jit(lambda r, w: models.reward.fit(None, r, w)), rows, w)
    fn = jax.jit(lambda k, r, w: fit_nuisances(k, r, w, models)[0])
    add("nuisances", fn, key, rows, w)
    preds = fn(key, rows, w)
    fq = jax.jit(lambda r, w, p: q_feature_rows(fit_q_basis(r, w, cfg), r, p, cfg))
    add("q_basis_features", fq, rows, w, preds)
    feats = fq(rows, w, preds)
    pe_s, pe_n = P.policy_probs(pol, rows["state"]), P.policy_probs(pol, rows["next_state"])
    add("q_fits", jax.jit(lambda r, w, p, f, a, b: fit_q_functions(r, w, p, f, a, b, 0, cfg.q_ridge, cfg)),
        rows, w, preds, feats, pe_s, pe_n)

    def ratios(k, r, w, p, pe_s):
        iw = row_importance_weights(r, p, pe_s, 0, cfg.rho_trunc)
        rf = SR.fit_ratio_features(k, r["state"], w, cfg)
        psi, psin = SR.ratio_features(rf, r["state"]), SR.ratio_features(rf, r["next_state"])
        cs = (iw.kappa_e, iw.kappa_0 * iw.rho, iw.kappa_0)
        if hasattr(SR, "fit_state_ratios"):
            return SR.fit_state_ratios(psi, psin, jnp.stack(cs, 1), w, cfg.ratio_ridge, cfg.ratio_trunc)
        return [SR.fit_state_ratio(psi, psin, c, w, cfg.ratio_ridge, cfg.ratio_trunc) for c in cs]

    add("ratios", jax.jit(ratios), key, rows, w, preds, pe_s)
    fpf = jax.jit(lambda k, d: P.fit_policy_free(k, d, jnp.ones(n), cfg))
    add("policy_free", fpf, key, data)
    add("policy_stage", jax.jit(lambda f: P.policy_stage(f, pol, 0, cfg)), fpf(key, data))

print(json.dumps({"ready": sorted(calls), "info": info}), flush=True)
for line in sys.stdin:
    name = line.strip()
    if not name:
        break
    t0, c0 = time.perf_counter(), time.process_time()
    block(calls[name]())
    print(json.dumps([time.perf_counter() - t0, time.process_time() - c0]), flush=True)
'''


class Side:
    """One subprocess importing ``jaxmed`` from ``root``."""

    def __init__(self, root, with_numpy, stage_n, sizes):
        env = dict(os.environ, PYTHONPATH=root)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, "1" if with_numpy else "0", str(stage_n),
             json.dumps([list(s) for s in sizes]), HERE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=root)
        header = json.loads(self._readline())
        self.names, self.info = header["ready"], header["info"]

    def _readline(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker exited with {self.proc.wait()}")
        return line

    def time(self, name):
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline())

    def close(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def _base_worktree(commit):
    path = f"/tmp/jaxmed_base_{commit}"
    if not os.path.isdir(path):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", path, commit], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def _median(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else 0.5 * (xs[m - 1] + xs[m])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--base", default="fdedcfc")
    ap.add_argument("--whole-only", action="store_true", help="skip the per-stage timings")
    ap.add_argument("--keep-worktree", action="store_true")
    ap.add_argument("--out", default=os.path.join(RESULTS, "pipeline_stages.json"))
    args = ap.parse_args(argv)
    base_root = _base_worktree(args.base)
    stage_n = 0 if args.whole_only else SIZES[0][0]
    t0 = time.perf_counter()
    after = Side(ROOT, True, stage_n, SIZES)
    for n, t in SIZES:
        agree = after.info[f"agreement_{n}x{t}"]
        print(f"agreement with numpy at N={n}, T={t}: max |diff|/(1+|numpy|) = {agree:.1e}", flush=True)
        if not agree <= AGREE_TOL:
            raise RuntimeError(f"numpy comparator disagrees with jaxmed at N={n}, T={t}: {agree}")
    before = Side(base_root, False, stage_n, SIZES)
    setup_s = time.perf_counter() - t0
    names = [f"whole_{n}x{t}" for n, t in SIZES] + ([] if args.whole_only else list(STAGES))
    times = {side: {k: [] for k in names} for side in ("before", "after")}
    np_names = [f"numpy_{n}x{t}" for n, t in SIZES]
    times["numpy"] = {k: [] for k in np_names}
    load_before = os.getloadavg()
    for rep in range(args.reps):
        for k in names:  # alternate sides call by call (order flipped every repetition)
            sides = (("before", before), ("after", after))
            for label, side in (sides if rep % 2 == 0 else sides[::-1]):
                times[label][k].append(side.time(k))
        for k in np_names:
            times["numpy"][k].append(after.time(k))
    load_after = os.getloadavg()
    before.close()
    after.close()
    if not args.keep_worktree:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", base_root], check=False)
    med = {side: {k: {"wall_ms": 1e3 * _median([x[0] for x in v]),
                      "cpu_ms": 1e3 * _median([x[1] for x in v]),
                      "wall_all_ms": [1e3 * x[0] for x in v]} for k, v in d.items()}
           for side, d in times.items()}
    ratios = {k: {"before_over_after_wall": med["before"][k]["wall_ms"] / med["after"][k]["wall_ms"],
                  "before_over_after_cpu": med["before"][k]["cpu_ms"] / med["after"][k]["cpu_ms"]}
              for k in names}
    for n, t in SIZES:
        k, kn = f"whole_{n}x{t}", f"numpy_{n}x{t}"
        ratios[k]["numpy_over_after_wall"] = med["numpy"][kn]["wall_ms"] / med["after"][k]["wall_ms"]
        ratios[k]["numpy_over_after_cpu"] = med["numpy"][kn]["cpu_ms"] / med["after"][k]["cpu_ms"]
    import jax
    out = {"base_commit": args.base, "reps": args.reps, "sizes": [list(s) for s in SIZES],
           "stage_n": stage_n, "load_avg_before": load_before, "load_avg_after": load_after,
           "cpu_count": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__,
           "setup_s": setup_s, "agreement_tol": AGREE_TOL,
           "info_after": after.info, "info_before": before.info, "times": med, "ratios": ratios}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    for k in names:
        r = ratios[k]
        extra = (f"; numpy/after {r['numpy_over_after_wall']:.2f}x wall, "
                 f"{r['numpy_over_after_cpu']:.2f}x cpu") if "numpy_over_after_wall" in r else ""
        print(f"{k:18s} before {med['before'][k]['wall_ms']:8.1f} ms  after "
              f"{med['after'][k]['wall_ms']:8.1f} ms  = {r['before_over_after_wall']:.2f}x wall, "
              f"{r['before_over_after_cpu']:.2f}x cpu{extra}", flush=True)
    print(f"load average before/after the timed loop: {load_before} / {load_after}")


if __name__ == "__main__":
    main()
