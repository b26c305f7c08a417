"""Semi-synthetic T-grid (spec mediation.md §7.1, §9, §10.2): N = 50, T = 100, 200, ..., 1500.

Paper size: 100 replications per T. Every estimator of the default mediation spec; the
baselines are reported separately by ``mediation_baselines.py`` from the same run directory.

Usage:
  PYTHONPATH=. python3 experiments/mediation_t_grid.py --reduced      # CPU smoke, < 2 min
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_t_grid.py    # paper size (runs/mediation_t_grid)
  # a subset of horizons in its own store, merged with the complete cells of another store:
  PYTHONPATH=. python3 experiments/mediation_t_grid.py --t 1000 1500 \
      --out runs/mediation_t_grid_1000_1500 --merge runs/mediation_t_grid

Writes experiments/results/mediation_t_grid.{csv,json,png} and mediation_t_grid_vs_original.csv.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_t_grid"
DESIGN = "semi-synthetic"
POINTS = [(50, 100), (50, 500), (50, 1000), (50, 1500)]  # the rows of spec §10.2


def main(argv=None):
    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--t", type=int, nargs="+", default=None, help="horizons (default the grid)")
    args = ap.parse_args(argv)
    from jaxmed import study

    if args.reduced:
        grid, reps = study.make_grid(50, args.t or [100, 200]), args.reps or 8
    else:
        grid, reps = study.make_grid(50, args.t or list(range(100, 1501, 100))), args.reps or 100
    out = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    res, summary = mc.run_design(DESIGN, grid, reps, args.seed, out, args)
    summary, loaded = mc.merge_stores(summary, args.merge, DESIGN)
    rdir = mc.results_dir(args, out)
    original = mc.load_original(args.original)
    comparison = None
    if original is not None:
        orig = mc.original_cells(original, ["Semi_Synthetic_T_grid_N50"])
        # every horizon the original reports (all 15); the printed table: the rows of §10.2
        comparison = mc.compare_with_original(summary, orig, mc.MAIN_ESTIMATORS + ("Baseline_DM",))
        shown = comparison["estimator"].isin(["MR", "DM"]) & comparison["horizon"].isin(
            [t for _, t in POINTS])
        print(mc.markdown_table(comparison[shown]))
    meta = mc.metadata([res] + loaded, args, NAME, dict(
        original_truth="repository T=6400 truth 2.679841 / 3.653535 / 1.243782 / 0.689031 "
                       "(spec §8.2)"))
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison)
    paths.append(mc.plot(summary, os.path.join(rdir, NAME + ".png"), mc.MAIN_ESTIMATORS,
                         title=f"semi-synthetic, N = 50, {reps} reps"))
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
