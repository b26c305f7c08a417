"""Usage: pool_draws.py STORE [STORE ...].  Coverage of MR on multidim N = 1500, T = 100,
pooled over the given study stores (the ratio_draws = 4 stores of seeds 13, 14 and 15,
120, 120 and 160 replications, ``<stores>/multidim_N1500_T100_MR_M4``)."""
import sys

import numpy as np, jax
jax.config.update("jax_enable_x64", True)
from jaxmed._src.study.runner import load
from jaxmed._src.sim.designs import get_design
tr = get_design("multidim").truth().effects
xs, ses = [], []
for p in sys.argv[1:]:
    r = load(p); ok = np.asarray(r.status[0]) == 0
    xs.append(np.asarray(r.estimate[0, ok, 0])); ses.append(np.asarray(r.se[0, ok, 0]))
x, se = np.concatenate(xs), np.concatenate(ses)
print("reps", x.shape[0])
for j, e in enumerate(("IDE", "IME", "DDE", "DME", "ATE")):
    t = tr[e]; c = np.mean(np.abs(x[:, j] - t) <= 1.96 * se[:, j]); n = x.shape[0]
    print(f"{e}: bias {x[:, j].mean()-t:+.4f} ± {x[:, j].std(ddof=1)/np.sqrt(n):.4f} sd {x[:, j].std(ddof=1):.4f} meanSE {se[:, j].mean():.4f} SE/SD {se[:, j].mean()/x[:, j].std(ddof=1):.2f} cover {c:.3f} ± {np.sqrt(c*(1-c)/n):.3f}")
