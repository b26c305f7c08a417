import os, sys, time, jax, numpy as np
os.makedirs("experiments/drift_gap_diagnosis/out", exist_ok=True)
jax.config.update("jax_enable_x64", True)
from jaxmed._src import policies as P
from jaxmed._src.sim import drift as D
from jaxmed._src.mediation.effects import mediation_effects
from jaxmed._src.mediation.time_effects import mediation_effects_time
from jaxmed._src.mediation.estimators import ESTIMATORS
n, T, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kappa = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
pol = P.semi_synthetic_target_policy()
out = {k: [] for k in ("stat", "spline", "additive")}
etas = {k: [] for k in out}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T, strength=kappa)
    t0 = time.time()
    res = {"stat": mediation_effects(d, pol, key=k2),
           "spline": mediation_effects_time(d, pol, key=k2),
           "additive": mediation_effects_time(d, pol, key=k2, time_effects="additive")}
    for k, v in res.items():
        out[k].append(np.asarray(v.estimate)); etas[k].append(np.asarray(v.eta))
    print(r, f"{time.time()-t0:.1f}s", flush=True)
np.savez(f"experiments/drift_gap_diagnosis/out/diag_{n}_{T}_{kappa:g}.npz", **{k: np.array(v) for k, v in out.items()},
         **{"eta_" + k: np.array(v) for k, v in etas.items()})
tr = D.cached_drift_truth(kappa, T).effects
truth = np.array([tr[e] for e in ("IDE", "IME", "DDE", "DME", "ATE")])
print("truth", truth.round(3))
for k in ("spline", "additive"):
    diff = np.array(out[k]) - np.array(out["stat"])
    print(f"== {k} - stat (mean ± se over {reps})")
    for i, e in enumerate(ESTIMATORS):
        m, s = np.nanmean(diff[:, i], 0), np.nanstd(diff[:, i], 0, ddof=1) / np.sqrt(reps)
        print(f"{e:14s}", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(m, s)))
    de = np.array(etas[k]) - np.array(etas["stat"])
    print("eta diff", de.mean(0).round(4), (de.std(0, ddof=1)/np.sqrt(reps)).round(4))
for k in out:
    err = np.array(out[k])[:, 0] - truth
    print(k, "MR bias", err.mean(0).round(4), (err.std(0, ddof=1)/np.sqrt(reps)).round(4))
