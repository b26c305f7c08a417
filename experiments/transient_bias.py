"""Transient bias of the original's finite-T truths: mean of the first 50 steps from S_0 ~ N(0, I) minus
the stationary η, times 50/6400 (the repository averaged T = 6400 steps from S_0, transient included).

Usage:  PYTHONPATH=. python3 experiments/transient_bias.py   (about 2 CPU-minutes)
"""
import json

import jax
import numpy as np

from jaxmed._src import policies as P
from jaxmed.sim import truth
for name, rp in [("variance-1", None), ("multidim", P.multidim_truth_target_policy()), ("semi-synthetic", None)]:
    t = truth(name, recompute=True, key=jax.random.key(7), n_chains=20000, n_steps=50, burn_in=0, batch_size=2000, rollout_policy=rp)
    ref_eta = np.array(json.load(open('jaxmed/_src/sim/truths.json'))[name if rp is None else 'multidim-b6']['eta'])
    bias = 50 * (t.eta - ref_eta) / 6400
    print(name, 'first-50-step mean - stationary:', np.round(t.eta - ref_eta, 4), 'se', np.round(t.eta_se, 4), '-> T=6400 transient bias', np.round(bias, 5))
