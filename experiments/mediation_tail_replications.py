"""How often does one replication go far off, and does a knot count or a ridge stop it? (issue 13)

On the replications of a study cell (the keys of ``jaxmed study DESIGN --seed SEED``: cell 0,
replication r uses ``fold_in(fold_in(key(SEED), 0), r)`` split into data and estimation keys),
the point estimates of MR and DM (the design's default configuration, naive SE) under several
variants on the same data (``screen_common.VARIANT_HELP``: e.g. ``kK`` = K interior state knots,
fixed, ``rX`` = ``q_ridge=X``). Per variant: MSE ± its Monte Carlo SE against the committed
truth, the largest |error| of MR over IDE, IME, DDE, DME and the number of replications where
it exceeds 1;
for the first two variants the replications where MR moves most between them.

Per variant also the MR and DM bias ± Monte Carlo SE, and for every variant after the first
the paired differences from the first (same data and key). ``--keys coverage`` takes the
replications of ``mediation_ij_coverage.py`` instead (same seed, other keys).

Usage:
  PYTHONPATH=. python3 experiments/mediation_tail_replications.py semi-synthetic 200 25 1000 \\
      k5,k4 --seed 13 --out experiments/results/mediation_tail_replications_n200_s13.json
  PYTHONPATH=. python3 experiments/mediation_tail_replications.py semi-synthetic 200 25 1000 \\
      base,nb0 --seed 13 --out experiments/results/mediation_boundary_knots_n200_s13.json
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
from jaxmed._src.study.runner import replication_key  # noqa: E402

from experiments.screen_common import screen_parser, variant_config  # noqa: E402

EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")


def main():
    ap = screen_parser(__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--keys", choices=("study", "coverage"), default="study",
                    help="study: the keys of `jaxmed study` (default); coverage: those of "
                         "mediation_ij_coverage.py (replication r: fold_in(key(SEED), r), split "
                         "into data and estimation keys)")
    args = ap.parse_args()
    design = study.get_design(args.design)
    tr = truth(args.design).effects
    true = np.array([tr[k] for k in EFFECTS])
    base = config_for_design(design)
    variants = args.variants.split(",")
    fns = {v: jax.jit(lambda key, d, c=variant_config(base, v): mediation_core(
        key, d, design.target_policy, 0, c).estimate[:2]) for v in variants}
    sim = jax.jit(lambda k: design.simulate(k, args.n, args.horizon))
    study_key = jax.random.key(args.seed)
    est = {v: [] for v in variants}
    t0 = time.time()
    for r in range(args.reps):
        rkey = (replication_key(study_key, 0, r) if args.keys == "study"
                else jax.random.fold_in(study_key, r))
        ks, ke = jax.random.split(rkey)
        data = sim(ks)
        for v in variants:
            est[v].append(np.asarray(fns[v](ke, data)))
    out = {"args": vars(args), "truth": dict(zip(EFFECTS, true.tolist())),
           "wall_s": time.time() - t0, "variants": {}}
    for v in variants:
        err = np.array(est[v]) - true  # (reps, 2, 5): MR, DM
        sq = err ** 2
        worst = np.abs(err[:, 0, :4]).max(axis=1)
        rec = {"mse_mr": sq[:, 0].mean(0).tolist(),
               "mse_mr_se": (sq[:, 0].std(0, ddof=1) / np.sqrt(args.reps)).tolist(),
               "mse_dm": sq[:, 1].mean(0).tolist(),
               "mse_dm_se": (sq[:, 1].std(0, ddof=1) / np.sqrt(args.reps)).tolist(),
               "bias_mr": err[:, 0].mean(0).tolist(), "bias_dm": err[:, 1].mean(0).tolist(),
               "bias_mr_se": (err[:, 0].std(0, ddof=1) / np.sqrt(args.reps)).tolist(),
               "bias_dm_se": (err[:, 1].std(0, ddof=1) / np.sqrt(args.reps)).tolist(),
               "max_abs_error_mr": float(worst.max()),
               "worst_replication": int(worst.argmax()),
               "n_abs_error_above_1": int((worst > 1).sum())}
        out["variants"][v] = rec
        print(f"{v}: MR MSE {np.round(rec['mse_mr'], 4)} ± {np.round(rec['mse_mr_se'], 4)}; "
              f"max |error| {rec['max_abs_error_mr']:.3f} (replication "
              f"{rec['worst_replication']}); |error| > 1 in {rec['n_abs_error_above_1']}")
        for name in ("mr", "dm"):
            print(f"   {name.upper()} bias " + " ".join(
                f"{b:+.4f}±{s:.4f}" for b, s in zip(rec[f"bias_{name}"], rec[f"bias_{name}_se"])))
        if v != variants[0]:  # paired with the first variant (same data and key)
            d = np.array(est[v]) - np.array(est[variants[0]])
            rec["paired_minus_first"] = {
                name: {"mean": d[:, i].mean(0).tolist(),
                       "se": (d[:, i].std(0, ddof=1) / np.sqrt(args.reps)).tolist()}
                for i, name in enumerate(("mr", "dm"))}
            for name in ("mr", "dm"):
                pm = rec["paired_minus_first"][name]
                print(f"   paired {v} − {variants[0]} {name.upper()} " + " ".join(
                    f"{m:+.4f}±{s:.4f}" for m, s in zip(pm["mean"], pm["se"])))
    if len(variants) > 1:
        a, b = (np.array(est[v])[:, 0, :4] for v in variants[:2])
        moved = np.abs(a - b).max(axis=1)
        order = np.argsort(moved)[::-1][:5]
        out["largest_moves"] = [[int(i), float(moved[i])] for i in order]
        out["move_quantiles_50_90_99"] = np.percentile(moved, [50, 90, 99]).tolist()
        print("largest |MR change| between the first two variants:", out["largest_moves"])
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
