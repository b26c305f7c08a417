"""Variance_Impact (spec mediation.md §7.2, §9, §10.3): σ_M = σ_S ∈ {1, 2, 3}, N = 300, 600,
..., 1500, T = 50.

Paper size: 50 replications per cell, designs ``variance-1``, ``variance-2`` (= the
semi-synthetic DGP) and ``variance-3``, one study (run directory) per σ.

--merge DIR... adds the complete cells of DIR/sigma{1,2,3} (other stores of this script).

Usage:
  PYTHONPATH=. python3 experiments/mediation_variance.py --reduced      # CPU smoke, < 2 min
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_variance.py    # paper size (runs/variance)

Writes experiments/results/mediation_variance.{csv,json}, mediation_variance_sigma{1,2,3}.png
and mediation_variance_vs_original.csv.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pandas as pd  # noqa: E402

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_variance"
SIGMAS = (1, 2, 3)
# the truths the original used (spec §8.2; σ = 2 is the semi-synthetic T = 6400 truth)
ORIGINAL_TRUTH = {
    1: dict(IDE=2.874272, IME=3.951914, DDE=1.678317, DME=1.344787),
    2: dict(IDE=2.679841, IME=3.653535, DDE=1.243782, DME=0.689031),
    3: dict(IDE=2.567007, IME=3.415303, DDE=0.820371, DME=0.463159),
}


def main(argv=None):
    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=None, help="sample sizes (default the grid)")
    args = ap.parse_args(argv)
    from jaxmed import study

    if args.reduced:
        grid, reps = study.make_grid(args.n or [100], 25), args.reps or 4
    else:
        grid, reps = study.make_grid(args.n or list(range(300, 1501, 300)), 50), args.reps or 50
    base = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    rdir = mc.results_dir(args, base)
    original = mc.load_original(args.original)
    results, summaries, comparisons = [], [], []
    for sigma in SIGMAS:
        design = f"variance-{sigma}"
        res, summary = mc.run_design(design, grid, reps, args.seed,
                                     os.path.join(base, f"sigma{sigma}"), args)
        summary, loaded = mc.merge_stores(
            summary, [os.path.join(d, f"sigma{sigma}") for d in args.merge], design)
        results += loaded
        results.append(res)
        summaries.append(summary)
        if original is not None:
            orig = mc.original_cells(original, [f"Variance_Impact_std{sigma}_N_grid_T50"])
            cells = sorted(set(zip(summary["n"], summary["horizon"])))
            comparisons.append(mc.compare_with_original(
                summary, orig, mc.MAIN_ESTIMATORS + ("Baseline_DM",),
                points=[cells[0], cells[-1]], original_truth=ORIGINAL_TRUTH[sigma]))
        mc.plot(summary, os.path.join(rdir, f"{NAME}_sigma{sigma}.png"), mc.MAIN_ESTIMATORS,
                title=f"Variance_Impact σ = {sigma}, T = {grid[0][1]}, {reps} reps")
    summary = pd.concat(summaries, ignore_index=True)
    comparison = pd.concat(comparisons, ignore_index=True) if comparisons else None
    if comparison is not None:
        print(mc.markdown_table(comparison[comparison["estimator"].isin(["MR"])]))
    meta = mc.metadata(results, args, NAME, dict(
        original_truth={f"variance-{s}": t for s, t in ORIGINAL_TRUTH.items()}))
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison)
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
