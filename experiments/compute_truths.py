"""Computes the cached truths of the continuous mediation designs -> jaxmed/_src/sim/truths.json.

Usage:  PYTHONPATH=. python3 experiments/compute_truths.py [design ...]

For each design: long-run simulation of the π_e, G and π_0 state chains (common random
numbers, burn-in discarded) with noise-free inner expectations over a and m
(``jaxmed._src.sim.truth.simulated_truth``), settings and seed from the design's
``truth_settings``. Also computes the multidim bug-B6 variant (chains rolled out under
expit(0.7 Σ s), weights under expit(0.7 mean s)) under the key ``multidim-b6``.
Records settings, seed, jax version and wall time with every entry.
"""

from __future__ import annotations

import json
import platform
import sys
import time

import jax

from jaxmed._src import policies as P
from jaxmed._src.sim.designs import TRUTHS_PATH, get_design, truth

CONTINUOUS = ["semi-synthetic", "variance-1", "variance-2", "variance-3", "multidim",
              "multidim-b6"]


def entry(name: str) -> dict:
    t0 = time.time()
    if name == "multidim-b6":
        out = truth("multidim", recompute=True,
                    rollout_policy=P.multidim_truth_target_policy())
        out.settings["rollout_policy"] = "expit(0.7 * sum(s)) (bug B6); weights expit(0.7 * mean(s))"
    else:
        out = truth(name, recompute=True)
    wall = time.time() - t0
    settings = dict(out.settings)
    settings.update(key="jax.random.key(seed); chain c uses fold_in(key, c)",
                    jax_version=jax.__version__, wall_seconds=round(wall, 1),
                    machine=platform.machine())
    return dict(eta=out.eta.tolist(), eta_se=out.eta_se.tolist(), effects=out.effects,
                se=out.se, method=out.method, settings=settings)


def main(argv):
    names = argv or CONTINUOUS
    try:
        with open(TRUTHS_PATH) as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {}
    for name in names:
        if name != "multidim-b6":
            get_design(name)
        data[name] = entry(name)
        e = data[name]
        print(f"{name}: " + ", ".join(f"{k} {v:.6f} ± {e['se'][k]:.6f}"
                                      for k, v in e["effects"].items())
              + f"  ({e['settings']['wall_seconds']} s)", flush=True)
        with open(TRUTHS_PATH, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
