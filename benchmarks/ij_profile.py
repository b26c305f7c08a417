"""Where the cost of the infinitesimal-jackknife SE goes (issue 13): compile and run time of

* ``point``: the point estimate with the naive cluster SE (``mediation_core``, se_method="cluster");
* ``ij``: the full IJ (``mediation_core``, se_method="ij"; one forward pass + C VJPs);
* ``grad1``: one reverse pass (one cotangent, the MR IDE cell): the fixed cost of the backward;
* ``ij_fixed_nuis``: the IJ with the nuisance predictions injected (held fixed): the backward
  through the Q-fits, ratios and estimators only.

    PYTHONPATH=. python3 benchmarks/ij_profile.py --n 200 --horizon 25 [--rounds 3] [--only a,b]

Run times are medians over ``rounds`` alternated calls; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--horizon", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="point,ij,grad1,ij_fixed_nuis")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    import jaxmed
    from jaxmed._src.mediation.nuisance import default_nuisance_models, fit_nuisances
    from jaxmed._src.mediation.knot_rule import resolve_state_knots
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    from jaxmed.mediation import MediationConfig, estimate_pipeline, mediation_core

    data = simulate_semi_synthetic(jax.random.key(0), args.n, args.horizon)
    pol = jaxmed.policies.semi_synthetic_target_policy()
    key = jax.random.key(1)
    cl, ij = MediationConfig(se_method="cluster"), MediationConfig(se_method="ij")
    k_fit = jax.random.split(key)[0]

    def grad1(k, d):
        n = d.action.shape[-2]
        f = lambda v: estimate_pipeline(k_fit, d, v, pol, 0, cl).estimate[0, 0]
        return jax.grad(f)(jnp.ones(n, d.reward.dtype))

    def ij_fixed(k, d):
        cfg = resolve_state_knots(cl, d.mask.size)
        rows = d.flat()
        preds, _ = fit_nuisances(jax.random.split(k_fit)[0], rows, d.mask.reshape(-1),
                                 default_nuisance_models(cfg))
        return mediation_core(k, d, pol, 0, ij, preds)

    all_fns = dict(point=lambda k, d: mediation_core(k, d, pol, 0, cl),
                   ij=lambda k, d: mediation_core(k, d, pol, 0, ij),
                   grad1=grad1, ij_fixed_nuis=ij_fixed)
    fns = {m: jax.jit(all_fns[m]) for m in args.only.split(",")}
    compile_s = {}
    for m, f in fns.items():
        t0 = time.perf_counter()
        jax.block_until_ready(f(key, data))
        compile_s[m] = time.perf_counter() - t0
    wall = {m: [] for m in fns}
    for _ in range(args.rounds):
        for m, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(key, data))
            wall[m].append(time.perf_counter() - t0)
    med = {m: float(np.median(v)) for m, v in wall.items()}
    out = dict(n=args.n, horizon=args.horizon, rounds=args.rounds, device=str(jax.devices()[0]),
               jax=jax.__version__, python=platform.python_version(),
               load_average=list(os.getloadavg()), compile_first_call_s=compile_s, wall_s=wall,
               median_wall_s=med)
    if "point" in med:
        out["ratio_to_point"] = {m: med[m] / med["point"] for m in med}
    print(json.dumps(out))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
