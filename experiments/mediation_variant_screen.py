"""Paired screen of pipeline variants on one design: MR bias, SE/SD and coverage (issue 13).

Replication r: ``fold_in(key(777), r)`` split into data and estimation keys; every variant
runs on the same data and key with the design's configuration, the IJ SE of the MR row
(``ij_estimators=("MR",)``) and M draws of the ratio features (``ratio_draws``). Variants
(``screen_common.VARIANT_HELP``): ``base``; ``kK`` = K interior state knots (fixed rule);
``DD`` = D random Fourier ratio features; ``rX`` / ``rrX`` = Q / ratio ridge X. Prints and
writes (``--out``) MR's bias ± MC SE, SE/SD and coverage per variant and the paired
differences of each variant from the first.

Usage:
  PYTHONPATH=. python3 experiments/mediation_variant_screen.py variance-1 1500 50 100 \\
      base,D40 --draws 4 --out experiments/results/variant_screen_variance1_D40.json
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed import study  # noqa: E402
from jaxmed._src.mediation.design_config import config_for_design  # noqa: E402
from jaxmed._src.mediation.effects import mediation_core  # noqa: E402
from jaxmed._src.sim.designs import truth  # noqa: E402

from experiments.screen_common import paired_runs, screen_parser, variant_config  # noqa: E402

EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")


def main():
    ap = screen_parser(__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1, help="ratio_draws M")
    args = ap.parse_args()
    design = study.get_design(args.design)
    tr = truth(args.design).effects
    true = np.array([tr[k] for k in EFFECTS])
    base = config_for_design(design).replace(se_method="ij", ij_estimators=("MR",),
                                             ratio_draws=args.draws)
    variants = args.variants.split(",")
    fns = {v: jax.jit(lambda key, d, c=variant_config(base, v): mediation_core(
        key, d, design.target_policy, 0, c)) for v in variants}
    t0 = time.time()
    outs = paired_runs(design, args.n, args.horizon, args.reps, fns)
    est = {v: [np.asarray(o.estimate)[0] for o in outs[v]] for v in variants}
    se = {v: [np.asarray(o.se)[0] for o in outs[v]] for v in variants}
    out = {"args": vars(args), "wall_s": time.time() - t0, "variants": {}, "paired": {}}
    for v in variants:
        e, s = np.array(est[v]), np.array(se[v])
        err = e - true
        sd = e.std(0, ddof=1)
        rec = {"bias": err.mean(0).tolist(), "bias_se": (err.std(0, ddof=1)
                                                         / np.sqrt(args.reps)).tolist(),
               "sd": sd.tolist(), "se_over_sd": (s.mean(0) / sd).tolist(),
               "coverage": np.mean(np.abs(err) <= 1.96 * s, axis=0).tolist()}
        out["variants"][v] = rec
        print(v, "bias", np.round(rec["bias"], 4), "±", np.round(rec["bias_se"], 4),
              "SE/SD", np.round(rec["se_over_sd"], 3), "coverage", np.round(rec["coverage"], 3))
    for v in variants[1:]:
        diff = np.array(est[v]) - np.array(est[variants[0]])
        out["paired"][v] = {"mean": diff.mean(0).tolist(),
                            "se": (diff.std(0, ddof=1) / np.sqrt(args.reps)).tolist()}
        print(f"paired {v} - {variants[0]}", np.round(diff.mean(0), 4), "±",
              np.round(diff.std(0, ddof=1) / np.sqrt(args.reps), 4))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
