import sys, time, jax, numpy as np
jax.config.update("jax_enable_x64", True)
from jaxmed._src import policies as P
from jaxmed._src.sim import drift as D
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.time_effects import mediation_effects_time
n, T, reps, kappa = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
pol = P.semi_synthetic_target_policy()
old, new = [], []
for r in range(reps):
    k1, k2 = jax.random.split(jax.random.key(2000 + r))
    d = D.simulate_semi_synthetic_drift(k1, n, T, strength=kappa)
    old.append(np.asarray(mediation_effects_time(d, pol, key=k2).estimate[:2]))
    new.append(np.asarray(mediation_effects_time(d, pol, key=k2, config=MediationConfig(mediator_time=False)).estimate[:2]))
    print(r, flush=True)
tr = D.cached_drift_truth(kappa, T).effects
truth = np.array([tr[e] for e in ("IDE", "IME", "DDE", "DME", "ATE")])
old, new = np.array(old), np.array(new)
for name, x in (("old", old), ("new", new), ("new-old", new - old)):
    for i, e in enumerate(("MR", "DM")):
        y = x[:, i] - (0 if name == "new-old" else truth)
        print(name, e, " ".join(f"{a:+.4f}±{b:.4f}" for a, b in zip(y.mean(0), y.std(0, ddof=1) / np.sqrt(reps))))
