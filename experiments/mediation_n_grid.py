"""Semi-synthetic N-grid (spec mediation.md §7.1, §9, §10.1): N = 100, 200, ..., 1500, T = 25.

Paper size: 100 replications per N (the original's 100 seeds). Every estimator of the default
mediation spec (MR, DM, MIS1, MIS2, Baseline_DM/IPW/MR) on every replication; the baselines
are reported separately by ``mediation_baselines.py`` from the same run directory.

Usage:
  PYTHONPATH=. python3 experiments/mediation_n_grid.py --reduced      # CPU smoke, < 2 min
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_n_grid.py    # paper size (runs/n_grid)

Writes experiments/results/mediation_n_grid.{csv,json,png} and mediation_n_grid_vs_original.csv.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_n_grid"
DESIGN = "semi-synthetic"
POINTS = [(100, 25), (500, 25), (1000, 25), (1500, 25)]  # the rows of spec §10.1


def main(argv=None):
    args = mc.parser(__doc__.splitlines()[0]).parse_args(argv)
    from jaxmed import study

    if args.reduced:
        grid, reps = study.make_grid([100, 200], 25), args.reps or 8
    else:
        grid, reps = study.make_grid(list(range(100, 1501, 100)), 25), args.reps or 100
    out = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    res, summary = mc.run_design(DESIGN, grid, reps, args.seed, out, args)
    rdir = mc.results_dir(args, out)
    original = mc.load_original(args.original)
    comparison = None
    if original is not None:
        orig = mc.original_cells(original, ["Semi_Synthetic_N_grid_T25"])
        comparison = mc.compare_with_original(summary, orig, mc.MAIN_ESTIMATORS + ("Baseline_DM",),
                                              points=POINTS)
        print(mc.markdown_table(comparison[comparison["estimator"].isin(["MR", "DM"])]))
    meta = mc.metadata([res], args, NAME, dict(
        original_truth="repository T=6400 truth 2.679841 / 3.653535 / 1.243782 / 0.689031 "
                       "(spec §8.2)"))
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison)
    paths.append(mc.plot(summary, os.path.join(rdir, NAME + ".png"), mc.MAIN_ESTIMATORS,
                         title=f"semi-synthetic, T = 25, {reps} reps"))
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
