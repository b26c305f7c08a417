"""An independent, larger simulation of a continuous design's truth, pooled with the cached one.

The cached truths (``jaxmed/_src/sim/truths.json``) have Monte Carlo SEs of 2e-4..1e-3 per
effect. Where a study's bias is itself below 1e-3 (multidim, issue 13 deliverable 4), that SE
is as large as the study's own Monte Carlo SE, so "bias within 2 SE" depends on which is
counted. This script reruns the design's long-run simulation (``truth(..., recompute=True)``,
the design's steps and burn-in) with another seed and ``--chains`` chains, checks that it agrees
with the cached estimate (difference over its combined SE), and pools the two (weights by chain
count: both are means over iid chains of the same length).

    PYTHONPATH=. python3 experiments/truth_precision.py multidim --seed 7 --chains 7200 \
        --out experiments/results/defaults_s23/multidim_truth_pooled.json

The library's cached truth is not changed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import numpy as np

from jaxmed._src.sim.designs import get_design, load_cached_truths, truth
from jaxmed._src.sim.truth import EFFECT_NAMES as EFFECTS  # the truths' effect keys


def pool(a: dict, b: dict, na: int, nb: int) -> dict:
    """Chain-count weighted mean of two truth estimates and its SE (independent chains)."""
    fa, fb = na / (na + nb), nb / (na + nb)
    eff = {k: fa * a["effects"][k] + fb * b["effects"][k] for k in EFFECTS}
    se = {k: float(np.hypot(fa * a["se"][k], fb * b["se"][k])) for k in EFFECTS}
    return dict(effects=eff, se=se, n_chains=na + nb)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--chains", type=int, default=7200)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    design = get_design(args.design)
    cached = load_cached_truths()[design.name]
    if args.seed == int(cached["settings"]["seed"]):
        raise SystemExit("--seed: choose a seed other than the cached truth's "
                         f"({cached['settings']['seed']}), so that the chains are independent")
    t0 = time.time()
    new = truth(design, recompute=True, key=jax.random.key(args.seed), n_chains=args.chains)
    wall = time.time() - t0
    new_d = dict(effects={k: float(new.effects[k]) for k in EFFECTS},
                 se={k: float(new.se[k]) for k in EFFECTS})
    n_cached = int(cached["settings"]["n_chains"])
    agreement = {k: (new_d["effects"][k] - cached["effects"][k])
                 / float(np.hypot(new_d["se"][k], cached["se"][k])) for k in EFFECTS}
    out = dict(design=design.name, seed=args.seed, n_chains=args.chains,
               settings=dict(new.settings), wall_s=round(wall, 1),
               cached=dict(effects=cached["effects"], se=cached["se"], n_chains=n_cached,
                           seed=cached["settings"]["seed"]),
               independent=new_d, difference_over_combined_se=agreement,
               pooled=pool(cached, new_d, n_cached, args.chains),
               jax=jax.__version__, machine=platform.machine())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(json.dumps({k: out[k] for k in ("difference_over_combined_se", "pooled", "wall_s")},
                     indent=1))


if __name__ == "__main__":
    main()
