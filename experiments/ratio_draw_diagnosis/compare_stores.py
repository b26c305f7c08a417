"""Usage: compare_stores.py STORES [SUFFIX].  Paired comparison of the multidim N = 1500, T = 100
MR coverage store with D = 15 features (``multidim_N1500_T100_MR-DM``) and another one on the
same data and keys (default suffix ``_MR_D60``; ``_MR_M4`` for four draws) under STORES."""
import sys
import numpy as np, jax
jax.config.update("jax_enable_x64", True)
from jaxmed._src.study.runner import load
from jaxmed._src.sim.designs import get_design
stores = sys.argv[1]
suffix = sys.argv[2] if len(sys.argv) > 2 else "_MR_D60"
a = load(f"{stores}/multidim_N1500_T100_MR-DM"); b = load(f"{stores}/multidim_N1500_T100{suffix}")
tr = get_design("multidim").truth().effects
sb = np.asarray(b.status[0]); done = np.where(sb == 0)[0]
print(suffix, "reps done:", done.size)
ia, ib = a.estimators.index("MR"), b.estimators.index("MR")
for j, e in enumerate(("IDE", "IME", "DDE", "DME", "ATE")):
    t = tr[e]
    for name, r, i in (("D15", a, ia), (suffix, b, ib)):
        x = np.asarray(r.estimate[0, done, i, j]); se = np.asarray(r.se[0, done, i, j])
        cov = np.mean(np.abs(x - t) <= 1.96 * se)
        print(f"{e} {name}: bias {x.mean()-t:+.4f} ± {x.std(ddof=1)/np.sqrt(x.size):.4f} sd {x.std(ddof=1):.4f} meanSE {se.mean():.4f} SE/SD {se.mean()/x.std(ddof=1):.2f} cover {cov:.3f} ± {np.sqrt(cov*(1-cov)/x.size):.3f}")
    xa = np.asarray(a.estimate[0, done, ia, j]); xb = np.asarray(b.estimate[0, done, ib, j])
    print(f"   paired other-D15 {np.mean(xb-xa):+.4f} ± {np.std(xb-xa, ddof=1)/np.sqrt(done.size):.4f}")
