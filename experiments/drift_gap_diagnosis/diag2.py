import ast, sys, time, jax, numpy as np
jax.config.update("jax_enable_x64", True)
from jaxmed._src import policies as P
from jaxmed._src.sim import drift as D
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.time_effects import mediation_effects_time
n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
variants = {v.split("=")[0] + v.split("=")[1]: {v.split("=")[0]: ast.literal_eval(v.split("=")[1])} for v in sys.argv[5:]}
base = np.load(f"experiments/drift_gap_diagnosis/out/diag_{n}_{T}_{kappa:g}.npz")
pol = P.semi_synthetic_target_policy()
out = {k: [] for k in variants}
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(1000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T, strength=kappa)
    t0 = time.time()
    for k, kw in variants.items():
        out[k].append(np.asarray(mediation_effects_time(d, pol, key=k2, config=MediationConfig(**kw)).estimate))
    print(r, f"{time.time()-t0:.1f}s", flush=True)
for k in out:
    diff = np.array(out[k])[:, :2] - base["stat"][:reps, :2]
    m, s = diff.mean(0), diff.std(0, ddof=1) / np.sqrt(reps)
    print(k, "MR-stat", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(m[0], s[0])))
    print(k, "DM-stat", " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(m[1], s[1])))
