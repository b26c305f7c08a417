"""Usage: key_spread.py K SEEDS DESIGN N T [D [M]].  Spread of the MR estimates over the estimation key (random Fourier
feature draws of the state ratios) on fixed datasets."""
import sys, json
import numpy as np, jax
jax.config.update("jax_enable_x64", True)
from jaxmed._src.sim.designs import get_design
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed._src.mediation.effects import mediation_core
from jaxmed._src.mediation.estimators import ESTIMATORS
K = int(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]; name = sys.argv[3]
N, T = int(sys.argv[4]), int(sys.argv[5])
feats = int(sys.argv[6]) if len(sys.argv) > 6 else 15
draws = int(sys.argv[7]) if len(sys.argv) > 7 else 1
d = get_design(name)
cfg = config_for_design(d).replace(ratio_features=feats, ratio_draws=draws)
point = jax.jit(lambda k, data: mediation_core(k, data, d.target_policy, 0, cfg).estimate)
mr = ESTIMATORS.index("MR")
for s in seeds:
    data = d.simulate(jax.random.key(s), N, T)
    ests = np.array([np.asarray(point(jax.random.key(1000 + j), data)[mr]) for j in range(K)])
    print(json.dumps(dict(design=name, seed=s, features=feats, draws=draws, K=K, sd_over_keys=ests.std(axis=0, ddof=1).tolist(),
                          mean=ests.mean(axis=0).tolist())), flush=True)
