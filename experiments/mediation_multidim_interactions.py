"""Multidim with the state-interaction Q basis (issue 13, deliverable 4): N = 900, 1500, T = 100.

The design lookup (``design_config.config_for_design``) gives the multidim design
``q_state_interactions = 1`` (products z_i·z_j of the standardised state coordinates in the Q
basis). This runs the default estimator spec (MR, DM, MIS1, MIS2, baselines; MR with the
trajectory-cluster SE) at N = 900 and 1500, T = 100, seed 2026, and writes bias, MC SE, MSE
and 95 % CI coverage. The chunk store keeps every finished chunk (chunk = batch = 2
replications), so an interrupted run is resumed by the same command, and ``--summarize-partial``
summarises the replications finished so far (each cell with its own count).

Usage:
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_multidim_interactions.py --reps 200
  PYTHONPATH=. python3 experiments/mediation_multidim_interactions.py --summarize-partial
  # what ran: 24 reps at seed 2026, 48 at 2027 and 32 at 2028 in their own stores, pooled:
  PYTHONPATH=. nice -n 5 python3 experiments/mediation_multidim_interactions.py --reps 24
  PYTHONPATH=. nice -n 5 python3 experiments/mediation_multidim_interactions.py --reps 48 \
      --seed 2027 --out runs/mediation_multidim_interactions_s2027 --results /tmp/md2027
  PYTHONPATH=. nice -n 5 python3 experiments/mediation_multidim_interactions.py --reps 32 \
      --seed 2028 --out runs/mediation_multidim_interactions_s2028 --results /tmp/md2028
  PYTHONPATH=. python3 experiments/mediation_multidim_interactions.py --summarize-partial \
      --pool runs/mediation_multidim_interactions_s2027 runs/mediation_multidim_interactions_s2028

Writes experiments/results/mediation_multidim_interactions.{csv,json}.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_multidim_interactions"
DESIGN = "multidim"
GRID = [(900, 100), (1500, 100)]


def partial_summary(out: str):
    """``study.load(out)`` and its summary: replications not in the store (status -1) are left
    out, so each cell is summarised over its finished replications (``n_reps``)."""
    from jaxmed import study

    res = study.load(out)
    summary = mc.stored_summary(res)
    summary.insert(0, "design", DESIGN)
    return res, summary


def pooled(results):
    """One ``StudyResult`` holding the replications of several stores of the same grid (e.g.
    two seeds: independent samples), concatenated along the replication axis."""
    import dataclasses

    import numpy as np

    first = results[0]
    for r in results[1:]:
        if [tuple(g) for g in r.grid] != [tuple(g) for g in first.grid]:
            raise ValueError(f"pool: grids differ: {first.grid} vs {r.grid}")
    cat = {f: np.concatenate([np.asarray(getattr(r, f)) for r in results], axis=1)
           for f in ("estimate", "se", "ci_low", "ci_high", "status")}
    return dataclasses.replace(first, reps=int(cat["status"].shape[1]), **cat)


def main(argv=None):
    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--summarize-partial", action="store_true",
                    help="only summarise the finished replications of the store")
    ap.add_argument("--pool", nargs="*", default=[],
                    help="other finished stores of the same grid (other seeds) pooled into the "
                         "summary")
    ap.set_defaults(batch_size=2, chunk_size=2)
    args = ap.parse_args(argv)
    grid = [(300, 50)] if args.reduced else GRID
    reps = args.reps or (4 if args.reduced else 200)
    out = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    if args.summarize_partial:
        res, summary = partial_summary(out)
    else:
        res, summary = mc.run_design(DESIGN, grid, reps, args.seed, out, args)
    stores = [res]
    if args.pool:
        from jaxmed import study

        stores += [study.load(d) for d in args.pool]
        res = pooled(stores)
        summary = mc.stored_summary(res)
        summary.insert(0, "design", DESIGN)
    rdir = mc.results_dir(args, out)
    meta = mc.metadata(stores, args, NAME, dict(
        config="config_for_design(multidim) = MediationConfig(q_state_interactions=1)",
        reps_pooled=int(res.reps), key_data=[[int(x) for x in r.key_data] for r in stores]))
    paths = mc.write_outputs(summary, meta, rdir, NAME)
    mr = summary[(summary["estimator"] == "MR")]
    print(mr[["n", "horizon", "effect", "n_reps", "n_used", "bias", "bias_se", "mse", "coverage"]]
          .to_string(index=False))
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
