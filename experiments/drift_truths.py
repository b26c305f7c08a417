"""Truths of the ``semi-synthetic-drift`` design -> jaxmed/_src/sim/drift_truths.json.

Usage:  PYTHONPATH=. python3 experiments/drift_truths.py [n_chains] [--redo STRENGTH:T ...]

``--redo 1:100`` recomputes that entry (with ``n_chains`` chains; chain c is always
``fold_in(key, c)``, so more chains extend the committed ones) instead of keeping it.

For each drift strength (small, large) and window length T in {25, 100}: the window
average at the periodic steady state (``jaxmed._src.sim.drift.drift_truth``: three CRN
chains π_e, G, π_0 on (S, τ), 4 burn-in periods, whole periods averaged). Strength 0 is the
stationary estimand for every T: its entries copy the cached ``semi-synthetic`` truth
(``truths.json``; 2400 chains × 2000 steps), marked as such. Records settings and wall time.

Sizes of the committed entries (in each entry's settings): since session 11 every κ > 0
entry has 4000 chains × 1000 steps (``python3 experiments/drift_truths.py 4000 --redo 0.3:25
0.3:100 1:25 1:100``: 63–114 s each on a quiet 2-core machine; chains 0..999 are the earlier
entries' chains), SEs at most 0.0031 (ATE) and 0.0011 for the four effects; before, 1000
chains (κ = 1, T = 25: 600 chains × 500 steps) with SEs up to 0.01.
"""

from __future__ import annotations

import json
import sys
import time

import jax

from jaxmed._src.sim import drift as D
from jaxmed._src.sim.designs import truth

STEPS = 1000  # averaged steps per chain: 40 periods of 25 or 10 of 100


def main(n_chains: int = 1000, redo=()) -> None:
    try:
        with open(D.DRIFT_TRUTHS_PATH) as f:
            out = json.load(f)
    except FileNotFoundError:
        out = {}
    base = truth("semi-synthetic")
    for horizon in (25, 100):
        name = D.drift_truth_name(0.0, horizon)
        out[name] = dict(eta=base.eta.tolist(), eta_se=base.eta_se.tolist(), effects=base.effects,
                         se=base.se, method=base.method,
                         settings=dict(base.settings, strength=0.0, horizon=horizon,
                                       source="truths.json entry 'semi-synthetic' (same estimand)"))
    for strength in (D.DRIFT_STRENGTHS["small"], D.DRIFT_STRENGTHS["large"]):
        for horizon in (25, 100):
            name = D.drift_truth_name(strength, horizon)
            if name in out and name not in redo:
                continue
            t0 = time.time()
            res = D.drift_truth(strength, horizon, n_chains=n_chains, n_periods=STEPS // horizon,
                                burn_in_periods=4)
            settings = dict(res.settings, seed=20231, jax_version=jax.__version__,
                            wall_seconds=round(time.time() - t0, 1))
            out[name] = dict(eta=res.eta.tolist(), eta_se=res.eta_se.tolist(), effects=res.effects,
                             se=res.se, method=res.method, settings=settings)
            print(name, {k: round(v, 4) for k, v in res.effects.items()},
                  {k: round(v, 4) for k, v in res.se.items()}, settings["wall_seconds"], flush=True)
            with open(D.DRIFT_TRUTHS_PATH, "w") as f:
                json.dump(out, f, indent=1, sort_keys=True)
    with open(D.DRIFT_TRUTHS_PATH, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    args = sys.argv[1:]
    redo = [D.drift_truth_name(*(float(x) for x in a.split(":")))
            for a in args[args.index("--redo") + 1:]] if "--redo" in args else []
    rest = args[:args.index("--redo")] if "--redo" in args else args
    main(int(rest[0]) if rest else 1000, redo)
