"""Usage: ij_boot_keys.py SEEDS B.  variance-1, N = 1500, T = 50, rows MR: on fixed datasets
(keys 1000 + s), the IJ SE against the library's weighted bootstrap (B resamples, key held), and
(first three datasets) the SD of the estimates over 8 estimation keys (the ratio features' draw).
Prints one JSON line per dataset and writes them to ij_boot_keys.json (session 17)."""
import sys, time, json, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import jaxmed
from jaxmed._src.sim.designs import get_design
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed.mediation import mediation_core
d=get_design("variance-1")
cfg=config_for_design(d).replace(se_method="ij", n_boot=int(sys.argv[2]), ij_estimators=("MR",))
N,T=1500,50
f=jax.jit(lambda k,data: mediation_core(k,data,d.target_policy,0,cfg))
out=[]
for s in range(int(sys.argv[1])):
    data=d.simulate(jax.random.key(1000+s), N, T)
    r=f(jax.random.key(7), data)
    # key variation (RFF draw)
    ests=[np.asarray(f(jax.random.key(100+j), data).estimate[0]) for j in range(8)] if s<3 else []
    row=dict(seed=s, est=np.asarray(r.estimate[0]).tolist(), ij=np.asarray(r.se[0]).tolist(), boot=np.asarray(r.boot_se[0]).tolist(),
             keysd=(np.std(ests,axis=0,ddof=1).tolist() if ests else None))
    out.append(row); print(json.dumps({k:(np.round(v,4).tolist() if isinstance(v,list) else v) for k,v in row.items()}), flush=True)
json.dump(out, open('ij_boot_keys.json', 'w'))
