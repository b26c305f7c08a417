"""jaxmed benchmarks: one entry point, JSON results under ``benchmarks/results/``.

    PYTHONPATH=. python3 benchmarks/run.py [--quick] [--only NAME ...] [--out FILE]

Benchmarks (``--only`` names): ``peak`` (float64 matmul FLOP/s of this CPU), ``mediation``
(per-replication wall time of the full default mediation pipeline: every estimator, four
effects + ATE, cluster SEs, no bootstrap; compile separate from run; recompilation check;
XLA cost/memory analysis), ``stages`` (mediation pipeline split into its stages), ``basis``
(scaling with the state-basis size), ``precision`` (float32 vs float64 on CPU, time and
accuracy), ``study`` (replications per second through ``jaxmed.study.run``), ``longterm``
(``jaxmed.longterm.longterm_effect`` timings), and the execution benchmarks of
``execution_bench.py``: ``base`` (per replication vs main at fdedcfc and numpy), ``widths``
(study throughput by vmap width), ``commands`` (cold/warm quickstart and ``jaxmed estimate``),
``ngrid`` (the paper's N-grid as a whole). Run times are medians over repeats of calls
that block until the result is ready; compile times are measured on the first call
(``lower().compile()``).
"""

from __future__ import annotations

import os

# The numpy comparator runs with single-threaded OpenBLAS unless the caller sets it: on this
# shared 2-core machine OpenBLAS's spinning worker threads were measured to make a tall-skinny
# Gram product 6x slower than one thread (and they compete with XLA's threads in the process).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import datetime
import json
import platform
import subprocess
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
AGREE_TOL = 1e-8  # |jaxmed - numpy| <= AGREE_TOL * (1 + |numpy|), elementwise


def _block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


_LAST_CPU = []


def _median_time(fn, repeats):
    """Median wall time of ``repeats`` calls; the process CPU times of the calls go to ``_LAST_CPU``
    (less sensitive than wall time to other load on a shared machine)."""
    ts, cs = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        _block(fn())
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    _LAST_CPU[:] = cs
    return float(np.median(ts)), [float(t) for t in ts]


def _cost(compiled):
    try:
        ca = compiled.cost_analysis()
        if isinstance(ca, (list, tuple)):
            ca = ca[0]
        return {"flops": float(ca.get("flops", np.nan)), "bytes_accessed": float(ca.get("bytes accessed", np.nan)),
                "transcendentals": float(ca.get("transcendentals", np.nan))}
    except Exception as e:  # cost analysis is backend dependent
        return {"error": repr(e)}


def _memory(compiled):
    try:
        m = compiled.memory_analysis()
        return {"temp_bytes": int(m.temp_size_in_bytes), "argument_bytes": int(m.argument_size_in_bytes),
                "output_bytes": int(m.output_size_in_bytes),
                "generated_code_bytes": int(m.generated_code_size_in_bytes)}
    except Exception as e:
        return {"error": repr(e)}


def environment():
    import jaxlib
    return {
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(), "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "numpy": np.__version__,
        "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
        "gpu": "none lent to this project: GPU timings and the float32-vs-float64 GPU comparison were not measured",
        "x64": bool(jax.config.jax_enable_x64),
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "scipy": __import__("scipy").__version__,
    }


# ---------------------------------------------------------------------------------------------
def bench_peak(quick):
    """Large float64 matmul: a rough attainable FLOP/s of this CPU (all cores XLA uses)."""
    n = 1024 if quick else 2048
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float64)
    f = jax.jit(lambda x: x @ x)
    _block(f(a))
    med, ts = _median_time(lambda: f(a), 5)
    c = jax.jit(lambda x: x + 1.0).lower(a).compile()
    big = jax.random.normal(jax.random.key(1), (4096, 4096), jnp.float64)  # 128 MiB stream
    g = jax.jit(lambda x: x * 2.0 + 1.0)
    _block(g(big))
    med_b, _ = _median_time(lambda: g(big), 5)
    del c
    return {"matmul_n": n, "matmul_seconds": med, "matmul_gflops": 2 * n ** 3 / med / 1e9,
            "stream_bytes": 2 * big.nbytes, "stream_seconds": med_b,
            "stream_gbytes_per_s": 2 * big.nbytes / med_b / 1e9}


def _mediation_setup(n, t, seed=0):
    import jaxmed
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    data = simulate_semi_synthetic(jax.random.key(seed), n, t)
    return data, jaxmed.policies.semi_synthetic_target_policy()


def _mediation_fn(pol, config, a0=0):
    from jaxmed.mediation import mediation_core
    return jax.jit(lambda k, d: mediation_core(k, d, pol, a0, config))


def _numpy_mediation_call(data, pol, key, a0=0):
    """A closure running the numpy comparator on ``data`` with jaxmed's RFF draws for ``key``."""
    import numpy_mediation as nm
    from jaxmed._src.mediation.config import RATIO_FEATURES
    arrays = [np.asarray(x, np.float64) for x in data]
    w, b = nm.jaxmed_rff(key, arrays[0].shape[-1], RATIO_FEATURES)
    beta, c = np.asarray(pol.weights, np.float64), float(pol.intercept)
    return lambda: nm.mediation_numpy(*arrays, beta, c, w, b, a0=a0)


def _diff(a, b):
    """Max abs and max rel difference over entries finite on both sides; NaN patterns must match."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    ok = np.isfinite(a) & np.isfinite(b)
    d = np.abs(a - b)[ok]
    rel = d / np.maximum(np.abs(b[ok]), 1e-300)
    passed = same_nan and bool(np.all(d <= AGREE_TOL * (1 + np.abs(b[ok]))))
    return {"max_abs": float(d.max(initial=0.0)), "max_rel": float(rel.max(initial=0.0)),
            "nan_pattern_equal": same_nan, "n_compared": int(ok.sum()), "passed": passed}


def _mediation_agreement(res, out):
    diffs = {"estimate": _diff(res.estimate, out["estimate"]), "cluster_se": _diff(res.cluster_se, out["se"]),
             "eta": _diff(res.eta, out["eta"])}
    return {"diffs": diffs, "passed": all(d["passed"] for d in diffs.values()),
            "max_abs": max(d["max_abs"] for d in diffs.values()),
            "max_rel": max(d["max_rel"] for d in diffs.values())}


def bench_agreement(quick):
    """jaxmed vs the numpy comparators (``numpy_mediation.py``, ``numpy_longterm.py``) on small
    designs; every run starts with it and timings are skipped when it fails."""
    import numpy_longterm as nl
    from jaxmed.longterm import longterm_effect
    from jaxmed.mediation import MediationConfig
    from jaxmed._src.longterm.simulate import simulate_longterm
    cases = []
    for n, t, a0, masked in ((40, 10, 0, False), (60, 8, 1, True), (200, 25, 0, False)):
        data, pol = _mediation_setup(n, t, seed=n)
        if masked:
            rng = np.random.default_rng(n)
            lengths = rng.integers(3, t + 1, size=n)
            data = data._replace(mask=jnp.asarray((np.arange(t)[None] < lengths[:, None]).astype(np.float64)))
        key = jax.random.key(7)
        res = _mediation_fn(pol, MediationConfig(), a0)(key, data)
        out = _numpy_mediation_call(data, pol, key, a0)()
        cases.append({"what": "mediation", "n": n, "T": t, "a0": a0, "attrition": masked,
                      **_mediation_agreement(res, out)})
    for n, t, method in ((400, 10, "nonstationary"), (400, 10, "stationary"), (2000, 20, "nonstationary")):
        panel = simulate_longterm(jax.random.key(n), n, t, design="s2")
        key = jax.random.key(3)
        n_boot = 50
        res = longterm_effect(panel, reward=0, method=method, n_boot=n_boot, key=key)
        d = panel.obs.shape[-1]
        out = nl.longterm_numpy(panel.obs, panel.bucket, panel.mask, np.eye(d)[0], 0.0, 0.99, method,
                                boot_weights=nl.jaxmed_boot_weights(key, panel.bucket, n_boot))
        diffs = {"estimate": _diff(res.estimate, out["estimate"]), "boot_se": _diff(res.se, out["se"]),
                 "ci_normal": _diff(res.ci_normal, out["ci_normal"]),
                 "ci_percentile": _diff(res.ci_percentile, out["ci_percentile"])}
        cases.append({"what": "longterm", "n": n, "T": t, "method": method, "n_boot": n_boot, "diffs": diffs,
                      "passed": all(v["passed"] for v in diffs.values()),
                      "max_abs": max(v["max_abs"] for v in diffs.values()),
                      "max_rel": max(v["max_rel"] for v in diffs.values())})
    for c in cases:
        print(f"  agreement {c['what']} N={c['n']} T={c['T']}: max abs {c['max_abs']:.2e} rel {c['max_rel']:.2e} "
              f"{'ok' if c['passed'] else 'FAILED'}", flush=True)
    return {"tolerance": f"|jaxmed - numpy| <= {AGREE_TOL:g} * (1 + |numpy|) elementwise, NaN patterns equal",
            "cases": cases, "passed": all(c["passed"] for c in cases),
            "max_abs": max(c["max_abs"] for c in cases), "max_rel": max(c["max_rel"] for c in cases)}


MEDIATION_SIZES = [(n, t) for t in (25, 100) for n in (100, 500, 1500)]
LONGTERM_SIZES = [(1000, 20), (10000, 20), (10000, 60)]
STUDY_CELLS = [(500, 25, 10), (500, 25, 100), (500, 25, 1000)]
MEMORY_JAXMED_SIZES = [(100, 25), (500, 100), (1500, 100)]


def bench_mediation(quick):
    """jaxmed (jit, one replication) vs the numpy comparator on the same data, same process."""
    from jaxmed.mediation import MediationConfig
    cfg = MediationConfig()
    out = []
    for n, t in MEDIATION_SIZES:
        data, pol = _mediation_setup(n, t)
        f = _mediation_fn(pol, cfg)
        key = jax.random.key(1)
        t0 = time.perf_counter()
        res = _block(f(key, data))  # first call: trace + compile + run
        t_first = time.perf_counter() - t0
        reps = 3 if quick else (7 if n * t <= 50_000 else 3)
        med, ts = _median_time(lambda: f(key, data), reps)
        cpu = float(np.median(_LAST_CPU))
        t_compile = t_first - med  # compile time = first call minus a steady-state call
        compiled = f.lower(key, data).compile()  # served from the jit cache (no second compile)
        # new data, new key: must not recompile
        data2, _ = _mediation_setup(n, t, seed=5)
        _block(f(jax.random.key(9), data2))
        cache = f._cache_size()
        cost = _cost(compiled)
        # the numpy comparator on the same data: agreement first, then its timing
        np_call = _numpy_mediation_call(data, pol, key)
        t0 = time.perf_counter()
        np_out = np_call()
        np_first = time.perf_counter() - t0
        agree = _mediation_agreement(res, np_out)
        if not agree["passed"]:
            raise RuntimeError(f"numpy comparator disagrees with jaxmed at N={n}, T={t}: {agree}")
        np_reps = 1 if quick else (5 if n * t <= 12_500 else (3 if n * t <= 50_000 else 2))
        np_med, np_ts = _median_time(np_call, np_reps)
        np_cpu = float(np.median(_LAST_CPU))
        np_ts = [np_first] + np_ts
        np_med = float(np.median(np_ts))
        row = {"n": n, "T": t, "rows": n * t, "compile_s": t_compile,
               "first_call_s": t_first, "run_s": med, "run_all_s": ts, "cache_size_after_new_data": cache,
               "recompiled": cache != 1, "cost": cost, "memory": _memory(compiled),
               "numpy_run_s": np_med, "numpy_run_all_s": np_ts, "numpy_repeats": len(np_ts),
               "numpy_over_jaxmed": np_med / med, "cpu_s": cpu, "numpy_cpu_s": np_cpu,
               "numpy_over_jaxmed_cpu": np_cpu / cpu, "agreement": agree}
        if "flops" in cost:
            row["achieved_gflops"] = cost["flops"] / med / 1e9
            row["achieved_gbytes_per_s"] = cost["bytes_accessed"] / med / 1e9
        out.append(row)
        print(f"  mediation N={n} T={t}: compile {t_compile:.2f}s run {med * 1e3:.1f} ms; numpy "
              f"{np_med * 1e3:.1f} ms ({len(np_ts)} reps) = {np_med / med:.2f}x; agreement max abs "
              f"{agree['max_abs']:.1e}", flush=True)
    return out


def _proc_status(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":")) / 1024


def _child_memory(which, n, t):
    """Runs one replication (jaxmed: compile + run; numpy: run) in this fresh process and prints
    the max RSS before and after, as JSON (``--child-memory``)."""
    from jaxmed.mediation import MediationConfig
    data, pol = _mediation_setup(n, t)
    key = jax.random.key(1)
    if which == "numpy":
        call = _numpy_mediation_call(data, pol, key)
    else:
        f = _mediation_fn(pol, MediationConfig())
        call = lambda: f(key, data)  # noqa: E731
    # /proc/self/status: VmRSS now, VmHWM = peak resident set of this process image (ru_maxrss is
    # not usable in a child: Linux carries the parent's max RSS over fork into it)
    before, current = _proc_status("VmHWM"), _proc_status("VmRSS")
    t0 = time.perf_counter()
    _block(call())
    first = time.perf_counter() - t0
    after = _proc_status("VmHWM")
    print(json.dumps({"which": which, "n": n, "T": t, "max_rss_before_mb": before, "rss_before_mb": current,
                      "max_rss_after_mb": after,
                      "first_call_s": first}))


def bench_memory(quick):
    """Peak memory per size: max RSS of a fresh subprocess running one replication (jaxmed incl.
    compilation, and the numpy comparator), minus its max RSS just before the call."""
    out = []
    sizes = MEDIATION_SIZES if not quick else [(100, 25), (1500, 100)]
    for n, t in sizes:
        # a jaxmed child compiles the pipeline (tens of seconds on a loaded machine): three sizes
        for which in (("jaxmed", "numpy") if (n, t) in MEMORY_JAXMED_SIZES else ("numpy",)):
            cmd = [sys.executable, os.path.abspath(__file__), "--child-memory", which, str(n), str(t)]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200,
                                  env=dict(os.environ, PYTHONPATH=os.path.join(HERE, "..")))
            try:
                rec = json.loads(proc.stdout.strip().splitlines()[-1])
            except Exception:  # noqa: BLE001
                rec = {"which": which, "n": n, "T": t, "error": (proc.stderr or proc.stdout)[-2000:]}
            if "max_rss_after_mb" in rec:
                rec["peak_increment_mb"] = rec["max_rss_after_mb"] - rec["rss_before_mb"]
                print(f"  memory {which} N={n} T={t}: max RSS {rec['max_rss_after_mb']:.0f} MB "
                      f"(+{rec['peak_increment_mb']:.0f} MB during the call)", flush=True)
            out.append(rec)
    return out


def bench_stages(quick):
    """Times the stages of ``estimate_pipeline`` separately (each jitted on its own)."""
    from jaxmed.mediation import MediationConfig
    from jaxmed._src.mediation.estimators import estimator_rows, row_importance_weights
    from jaxmed._src.mediation.nuisance import default_nuisance_models, fit_nuisances
    from jaxmed._src.mediation.pipeline import policy_probs
    from jaxmed._src.mediation.q_function import fit_q_basis, fit_q_functions, q_feature_rows
    from jaxmed._src.mediation.state_ratio import fit_ratio_features, fit_state_ratio, ratio_features
    from jaxmed._src.mediation.weighted_stats import row_weights
    from jaxmed._src.mediation.uncertainty import cluster_se
    cfg = MediationConfig()
    res = []
    for n, t in ((500, 25), (1500, 100)):
        data, pol = _mediation_setup(n, t)
        ones = jnp.ones(n)

        @jax.jit
        def prep(d):
            rows = d.flat()
            w = row_weights(d.mask, ones)
            return rows, w

        rows, w = prep(data)
        key = jax.random.key(3)
        nuis = jax.jit(lambda k, r, w: fit_nuisances(k, r, w, default_nuisance_models(cfg))[0])
        preds = nuis(key, rows, w)

        @jax.jit
        def iwf(r, p):
            pe_s, pe_next = policy_probs(pol, r["state"]), policy_probs(pol, r["next_state"])
            return pe_s, pe_next, row_importance_weights(r, p, pe_s, 0, cfg.rho_trunc,
                                                         clip_densities=cfg.clip_densities, natural=False)

        pe_s, pe_next, iw = iwf(rows, preds)

        @jax.jit
        def qf(r, w, p, pe_s, pe_next):
            basis = fit_q_basis(r, w, cfg)
            feats = q_feature_rows(basis, r, p, cfg)
            return fit_q_functions(r, w, p, feats, pe_s, pe_next, 0, cfg.q_ridge, cfg)

        q = qf(rows, w, preds, pe_s, pe_next)

        @jax.jit
        def rf(k, r, w, iw):
            par = fit_ratio_features(k, r["state"], w, cfg)
            psi, psi_next = ratio_features(par, r["state"]), ratio_features(par, r["next_state"])
            fits = [fit_state_ratio(psi, psi_next, c, w, cfg.ratio_ridge, cfg.ratio_trunc, cfg.ratio_normalize)
                    for c in (iw.kappa_e, iw.kappa_0 * iw.rho, iw.kappa_0)]
            return jnp.stack([f.values for f in fits], axis=1)

        ratios = rf(key, rows, w, iw)

        @jax.jit
        def ef(r, p, pe_s, iw, ratios, eta, delta, mask):
            vals = estimator_rows(r, p, pe_s, 0, iw, ratios, eta, delta, natural=False)
            return cluster_se(vals, mask)

        reps = 3 if quick else 5
        stages = {
            "nuisances": lambda: nuis(key, rows, w),
            "policy_probs_and_importance_weights": lambda: iwf(rows, preds),
            "q_functions": lambda: qf(rows, w, preds, pe_s, pe_next),
            "state_ratios": lambda: rf(key, rows, w, iw),
            "estimator_rows_and_cluster_se": lambda: ef(rows, preds, pe_s, iw, ratios, q.eta, q.delta, data.mask),
        }
        out = {}
        for name, fn in stages.items():
            _block(fn())
            out[name] = _median_time(fn, reps)[0]
        total = sum(out.values())
        res.append({"n": n, "T": t, "stage_s": out, "share": {k: v / total for k, v in out.items()}})
        print(f"  stages N={n} T={t}: " + ", ".join(f"{k} {v * 1e3:.1f}ms" for k, v in out.items()), flush=True)
    return res


def bench_basis(quick):
    from jaxmed.mediation import MediationConfig
    n, t = 500, 25
    data, pol = _mediation_setup(n, t)
    out = []
    for knots in (5, 10, 20):
        for feats in ((15,) if knots != 10 else (15, 50)):
            cfg = MediationConfig(state_knots=knots, ratio_features=feats)
            f = _mediation_fn(pol, cfg)
            key = jax.random.key(1)
            t0 = time.perf_counter()
            compiled = f.lower(key, data).compile()
            tc = time.perf_counter() - t0
            _block(f(key, data))
            med, _ = _median_time(lambda: f(key, data), 3 if quick else 5)
            out.append({"n": n, "T": t, "state_knots": knots, "ratio_features": feats, "compile_s": tc,
                        "run_s": med, "memory": _memory(compiled), "cost": _cost(compiled)})
            print(f"  basis knots={knots} D={feats}: run {med * 1e3:.1f} ms", flush=True)
    return out


def bench_precision(quick):
    """float32 vs float64 on CPU through the public call (host conversion included)."""
    import jaxmed
    from jaxmed.mediation import mediation_effects
    out = []
    for n, t in ((500, 25), (1500, 100)):
        data, pol = _mediation_setup(n, t)
        key = jax.random.key(1)
        res = {}
        for dt in (np.float64, np.float32):
            t0 = time.perf_counter()
            r = mediation_effects(data, pol, key=key, dtype=dt, check=False)
            first = time.perf_counter() - t0
            med, _ = _median_time(lambda: mediation_effects(data, pol, key=key, dtype=dt, check=False),
                                  3 if quick else 5)
            res[np.dtype(dt).name] = (first, med, np.asarray(r.estimate, np.float64), np.asarray(r.se, np.float64))
        e64, e32 = res["float64"][2], res["float32"][2]
        s64 = res["float64"][3]
        ok = np.isfinite(e64) & np.isfinite(e32)
        dif = np.abs(e64 - e32)[ok]
        rel_se = (np.abs(e64 - e32) / s64)[ok & np.isfinite(s64) & (s64 > 0)]
        out.append({"n": n, "T": t,
                    "float64_first_s": res["float64"][0], "float64_run_s": res["float64"][1],
                    "float32_first_s": res["float32"][0], "float32_run_s": res["float32"][1],
                    "speedup_f32": res["float64"][1] / res["float32"][1],
                    "max_abs_diff": float(dif.max()), "max_diff_over_se": float(rel_se.max()),
                    "mr_max_abs_diff": float(np.nanmax(np.abs(e64[0] - e32[0])))})
        print(f"  precision N={n} T={t}: f64 {res['float64'][1] * 1e3:.1f} ms, f32 "
              f"{res['float32'][1] * 1e3:.1f} ms, max |diff|/se {out[-1]['max_diff_over_se']:.2g}", flush=True)
    return out


def bench_study(quick):
    """Replications per second of whole studies (simulate + all estimators) via jaxmed.study.run.

    The design and the estimator objects are reused, so the compiled chunk function is reused
    across calls (``compile_s`` = 0 after the first call of a cell); reps/s excludes compilation.
    """
    import jaxmed
    from jaxmed.study import run as study_run
    from jaxmed._src.study.catalog import get_design
    from jaxmed.mediation import mediation_estimator_spec
    design = get_design("semi-synthetic")
    spec = mediation_estimator_spec(jaxmed.policies.semi_synthetic_target_policy())
    out = []
    cells = STUDY_CELLS[:2] if quick else STUDY_CELLS
    for n, t, reps in cells:
        t0 = time.perf_counter()
        res = study_run(design, spec, [(n, t)], reps, 0, progress=False,
                        xla_opt_level=None)  # throughput at XLA's default level
        wall = time.perf_counter() - t0
        st = np.asarray(res.status)
        run_s = wall - res.compile_s
        out.append({"n": n, "T": t, "reps": reps, "wall_s": wall, "compile_s": res.compile_s, "run_s": run_s,
                    "reps_per_s": reps / run_s, "per_rep_s": run_s / reps, "batch_size": res.batch_size,
                    "chunk_size": res.chunk_size, "device": res.device,
                    "n_status_nonzero": int((st != 0).sum()), "extrapolated": False})
        print(f"  study N={n} T={t} reps={reps}: {reps / run_s:.2f} reps/s (compile {res.compile_s:.1f}s, "
              f"wall {wall:.1f}s)", flush=True)
    base = out[-1]
    out.append({"n": base["n"], "T": base["T"], "reps": 10_000, "extrapolated": True,
                "from_reps": base["reps"], "reps_per_s": base["reps_per_s"],
                "run_s": 10_000 * base["per_rep_s"], "per_rep_s": base["per_rep_s"],
                "note": f"EXTRAPOLATED from the {base['reps']}-replication run (not measured)"})
    return out


def bench_longterm(quick):
    """``jaxmed.longterm.longterm_effect`` vs the numpy comparator (point estimate; 200-replicate
    bootstrap on the same bootstrap weights), same process."""
    import numpy_longterm as nl
    from jaxmed.longterm import longterm_effect
    from jaxmed._src.longterm.simulate import simulate_longterm
    out = []
    for n, t in LONGTERM_SIZES:
        panel = simulate_longterm(jax.random.key(0), n, t, design="s2")
        d = panel.obs.shape[-1]
        obs, bucket, mask = (np.asarray(x) for x in (panel.obs, panel.bucket, panel.mask))
        for method in ("nonstationary", "stationary"):
            for n_boot in (0, 200):
                key = jax.random.key(1)
                kw = dict(reward=0, method=method, n_boot=n_boot, key=key)
                t0 = time.perf_counter()
                res = longterm_effect(panel, **kw)
                first = time.perf_counter() - t0
                med, _ = _median_time(lambda: longterm_effect(panel, **kw), 3 if quick else 5)
                bw = nl.jaxmed_boot_weights(key, panel.bucket, n_boot) if n_boot else None
                t0 = time.perf_counter()
                np_out = nl.longterm_numpy(obs, bucket, mask, np.eye(d)[0], 0.0, 0.99, method, boot_weights=bw)
                np_s = time.perf_counter() - t0
                agree = _diff(res.estimate, np_out["estimate"])
                if n_boot:
                    agree_se = _diff(res.se, np_out["se"])
                    agree = {k: max(agree[k], agree_se[k]) if k.startswith("max") else agree[k] and agree_se[k]
                             for k in agree}
                if not agree["passed"]:
                    raise RuntimeError(f"numpy long-term comparator disagrees: {agree}")
                out.append({"n": n, "T": t, "method": method, "n_boot": n_boot, "first_s": first, "run_s": med,
                            "numpy_run_s": np_s, "numpy_repeats": 1, "numpy_over_jaxmed": np_s / med,
                            "agreement_max_abs": agree["max_abs"], "agreement_max_rel": agree["max_rel"]})
                print(f"  longterm N={n} T={t} {method} boot={n_boot}: {med * 1e3:.1f} ms (first {first:.2f}s); "
                      f"numpy {np_s * 1e3:.1f} ms = {np_s / med:.1f}x", flush=True)
    return out


def _numpy_call_for(n, t):
    data, pol = _mediation_setup(n, t)
    return _numpy_mediation_call(data, pol, jax.random.key(1))


def _issue12(name):
    import execution_bench as eb
    if name == "base":
        return lambda quick: eb.bench_base(quick, _numpy_call_for)
    return getattr(eb, f"bench_{name}")


BENCHES = {"peak": bench_peak, "mediation": bench_mediation, "study": bench_study, "stages": bench_stages,
           "memory": bench_memory, "longterm": bench_longterm, "basis": bench_basis, "precision": bench_precision,
           **{name: _issue12(name) for name in ("base", "widths", "commands", "ngrid")}}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-memory":
        _child_memory(argv[1], int(argv[2]), int(argv[3]))
        return None
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and cells")
    p.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these benchmarks")
    p.add_argument("--out", help="output JSON (default results/<quick|full>-<timestamp>.json)")
    a = p.parse_args(argv)
    names = a.only or list(BENCHES)
    rec = {"environment": environment(), "quick": a.quick, "benchmarks": ["agreement"] + names,
           "loadavg_start": list(os.getloadavg()), "results": {}, "wall_s": {}, "loadavg": {}}
    t_all = time.perf_counter()
    out = a.out or os.path.join(RESULTS, f"{'quick' if a.quick else 'full'}-"
                                f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)

    def save(final=False):
        rec["loadavg_end"] = list(os.getloadavg())
        rec["total_wall_s"] = time.perf_counter() - t_all
        rec["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rec["complete"] = final
        with open(out, "w") as fh:
            json.dump(rec, fh, indent=1)

    print("[agreement]", flush=True)
    t0 = time.perf_counter()
    try:
        agreement = bench_agreement(a.quick)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        agreement = {"passed": False, "error": f"{type(e).__name__}: {str(e)[:2000]}"}
    rec["results"]["agreement"] = agreement
    rec["wall_s"]["agreement"] = time.perf_counter() - t0
    if not agreement.get("passed"):
        print("numpy comparators disagree with jaxmed: timings aborted", flush=True)
        names = []
        rec["aborted"] = "agreement check failed: no timing was run"
    for name in names:
        print(f"[{name}]", flush=True)
        t0 = time.perf_counter()
        try:
            rec["results"][name] = BENCHES[name](a.quick)
        except Exception as e:  # record the failure, go on with the other benchmarks
            import traceback
            traceback.print_exc()
            rec["results"][name] = {"error": f"{type(e).__name__}: {str(e)[:2000]}"}
        rec["wall_s"][name] = time.perf_counter() - t0
        rec["loadavg"][name] = list(os.getloadavg())
        save()  # partial results survive an interrupted run
    save(final=True)
    print(f"wrote {out} ({rec['total_wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
