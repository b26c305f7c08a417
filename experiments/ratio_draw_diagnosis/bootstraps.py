"""Usage: bootstraps.py B SEEDS N T.  Multidim: IJ SE vs the weighted bootstrap (multinomial trajectory weights, key held) vs a resampling bootstrap
(resampled trajectories, everything refit, key held) on fixed datasets. Diagnostic for the IJ under-coverage of MR DDE/DME."""
import sys, time, json
import numpy as np, jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from jaxmed._src.sim.designs import get_design
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed._src.mediation.effects import mediation_core
from jaxmed._src.mediation.estimators import ESTIMATORS

B = int(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]
N, T = int(sys.argv[3]), int(sys.argv[4])
d = get_design("multidim")
cfg = config_for_design(d).replace(se_method="ij", ij_estimators=("MR",))
core = jax.jit(mediation_core, static_argnames=("a0", "config"))
cfg0 = cfg.replace(se_method="cluster")
point = jax.jit(lambda k, data: mediation_core(k, data, d.target_policy, 0, cfg0).estimate)
mr = ESTIMATORS.index("MR")
out = []
for s in seeds:
    data = d.simulate(jax.random.key(s), N, T)
    key = jax.random.key(100 + s)
    t0 = time.time()
    r = core(key, data, d.target_policy, 0, cfg)
    ij = np.asarray(r.se[mr]); est = np.asarray(r.estimate[mr])
    t1 = time.time()
    # weighted bootstrap (multinomial counts, knots fixed): the library's
    rb = core(key, data, d.target_policy, 0, cfg.replace(se_method="cluster", n_boot=B, boot_batch_size=4))
    wb = np.asarray(rb.boot_se[mr])
    t2 = time.time()
    # resampling bootstrap: new datasets of resampled trajectories (everything refit, knots too)
    ests = []
    for b in range(B):
        idx = jax.random.randint(jax.random.key(10_000 * s + b), (N,), 0, N)
        db = jax.tree.map(lambda x: x[idx] if (hasattr(x, "shape") and x.ndim >= 1 and x.shape[0] == N) else x, data)
        ests.append(np.asarray(point(key, db)[mr]))
    rs = np.std(np.array(ests), axis=0, ddof=1)
    t3 = time.time()
    rec = dict(seed=s, est=est.tolist(), ij=ij.tolist(), weighted_boot=wb.tolist(), resample_boot=rs.tolist(),
               secs=[t1 - t0, t2 - t1, t3 - t2])
    out.append(rec)
    print(json.dumps(rec), flush=True)
    print("ratio ij/resample:", np.round(ij / rs, 3), " weighted/resample:", np.round(wb / rs, 3), flush=True)
