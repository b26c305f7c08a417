"""jaxmed benchmarks: one entry point, JSON results under ``benchmarks/results/``.

    PYTHONPATH=. python3 benchmarks/run.py [--quick] [--only NAME ...] [--out FILE]

Benchmarks (``--only`` names): ``peak`` (float64 matmul FLOP/s of this CPU), ``mediation``
(per-replication wall time of the full default mediation pipeline: every estimator, four
effects + ATE, cluster SEs, no bootstrap; compile separate from run; recompilation check;
XLA cost/memory analysis), ``stages`` (mediation pipeline split into its stages), ``basis``
(scaling with the state-basis size), ``precision`` (float32 vs float64 on CPU, time and
accuracy), ``study`` (replications per second through ``jaxmed.study.run``), ``longterm``
(``jaxmed.longterm.longterm_effect`` timings). Run times are medians over repeats of calls
that block until the result is ready; compile times are measured on the first call
(``lower().compile()``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def _median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fn())
        ts.append(time.perf_counter() - t0)
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
        "gpu": "none lent to this task: GPU timings and the float32-vs-float64 GPU comparison were not measured",
        "x64": bool(jax.config.jax_enable_x64),
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


def _mediation_fn(pol, config):
    from jaxmed.mediation import mediation_core
    return jax.jit(lambda k, d: mediation_core(k, d, pol, 0, config))


def bench_mediation(quick):
    from jaxmed.mediation import MediationConfig
    cfg = MediationConfig()
    sizes = [(n, t) for t in (25, 100) for n in (100, 500, 1500)]
    out = []
    for n, t in sizes:
        data, pol = _mediation_setup(n, t)
        f = _mediation_fn(pol, cfg)
        key = jax.random.key(1)
        t0 = time.perf_counter()
        _block(f(key, data))  # first call: trace + compile + run
        t_first = time.perf_counter() - t0
        reps = 3 if quick else (10 if n * t <= 50_000 else 5)
        med, ts = _median_time(lambda: f(key, data), reps)
        t_lower = float("nan")
        t_compile = t_first - med  # compile time = first call minus a steady-state call
        compiled = f.lower(key, data).compile() if (n, t) == (500, 25) else None
        # new data, new key: must not recompile
        data2, _ = _mediation_setup(n, t, seed=5)
        _block(f(jax.random.key(9), data2))
        cache = f._cache_size()
        cost = _cost(compiled) if compiled is not None else {}
        row = {"n": n, "T": t, "rows": n * t, "lower_s": t_lower, "compile_s": t_compile,
               "first_call_s": t_first, "run_s": med, "run_all_s": ts, "cache_size_after_new_data": cache,
               "recompiled": cache != 1, "cost": cost,
               "memory": _memory(compiled) if compiled is not None else {}}
        if "flops" in cost:
            row["achieved_gflops"] = cost["flops"] / med / 1e9
            row["achieved_gbytes_per_s"] = cost["bytes_accessed"] / med / 1e9
        out.append(row)
        print(f"  mediation N={n} T={t}: compile {t_compile:.2f}s run {med * 1e3:.1f} ms", flush=True)
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

        reps = 3 if quick else 7
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
            med, _ = _median_time(lambda: f(key, data), 3 if quick else 7)
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
                                  3 if quick else 7)
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
    """Replications per second of a whole study (simulate + all estimators) via jaxmed.study.run."""
    import jaxmed
    from jaxmed.study import run as study_run
    from jaxmed._src.study.catalog import get_design
    from jaxmed.mediation import mediation_estimator_spec
    design = get_design("semi-synthetic")
    spec = mediation_estimator_spec(jaxmed.policies.semi_synthetic_target_policy())
    out = []
    cells = [(100, 25, 10), (100, 25, 100), (100, 25, 1000)]
    if not quick:
        cells += [(500, 25, 100)]
    for n, t, reps in cells:
        timings = []
        for attempt in range(2):  # first includes compilation
            t0 = time.perf_counter()
            res = study_run(design, spec, [(n, t)], reps, 0, progress=False)
            timings.append(time.perf_counter() - t0)
        st = np.asarray(res.status) if hasattr(res, "status") else None
        out.append({"n": n, "T": t, "reps": reps, "first_s": timings[0], "second_s": timings[1],
                    "reps_per_s": reps / timings[1], "per_rep_s": timings[1] / reps,
                    "n_status_nonzero": int((st != 0).sum()) if st is not None else None})
        print(f"  study N={n} T={t} reps={reps}: {reps / timings[1]:.1f} reps/s (first {timings[0]:.1f}s)",
              flush=True)
    return out


def bench_longterm(quick):
    from jaxmed.longterm import longterm_effect
    from jaxmed._src.longterm.simulate import simulate_longterm
    out = []
    for n, t in ((1000, 20), (10000, 20), (10000, 60)):
        panel = simulate_longterm(jax.random.key(0), n, t, design="s2")
        for method in ("nonstationary", "stationary"):
            for n_boot in (0, 200):
                kw = dict(reward=0, method=method, n_boot=n_boot, key=jax.random.key(1))
                t0 = time.perf_counter()
                longterm_effect(panel, **kw)
                first = time.perf_counter() - t0
                med, _ = _median_time(lambda: longterm_effect(panel, **kw), 3 if quick else 7)
                out.append({"n": n, "T": t, "method": method, "n_boot": n_boot, "first_s": first, "run_s": med})
                print(f"  longterm N={n} T={t} {method} boot={n_boot}: {med * 1e3:.1f} ms (first {first:.2f}s)",
                      flush=True)
    return out


BENCHES = {"peak": bench_peak, "mediation": bench_mediation, "stages": bench_stages, "basis": bench_basis,
           "precision": bench_precision, "study": bench_study, "longterm": bench_longterm}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and cells")
    p.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these benchmarks")
    p.add_argument("--out", help="output JSON (default results/<quick|full>-<timestamp>.json)")
    a = p.parse_args(argv)
    names = a.only or list(BENCHES)
    rec = {"environment": environment(), "quick": a.quick, "benchmarks": names,
           "loadavg_start": list(os.getloadavg()), "results": {}, "wall_s": {}}
    t_all = time.perf_counter()
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
    rec["loadavg_end"] = list(os.getloadavg())
    rec["total_wall_s"] = time.perf_counter() - t_all
    rec["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    os.makedirs(RESULTS, exist_ok=True)
    out = a.out or os.path.join(RESULTS, f"{'quick' if a.quick else 'full'}-"
                                f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.json")
    with open(out, "w") as fh:
        json.dump(rec, fh, indent=1)
    print(f"wrote {out} ({rec['total_wall_s']:.0f} s)")
    return out


if __name__ == "__main__":
    main()
