"""Multidim (spec mediation.md §7.3, §9, §10.4): d_S = d_M = 2, σ = 1; N = 300, 600, ..., 1500
with T = 100, and N = 100 with T = 300, 600, ..., 1500.

Paper size: 25 replications per cell, both grids in one study (run directory). Bias is
against jaxmed's truth of the estimand (``truth("multidim")``: π_e = expit(0.7 · mean s) in
the rollouts and the weights); the original's truth (bug B6: rollouts under
expit(0.7 · Σ s)) is reproduced by ``truth("multidim-b6")``, and the comparison CSV carries
the original's bias re-expressed against our truth.

Default batch_size = chunk_size = 2: with batch_size 4 and chunk_size 20 the multidim chunk
function hung on this machine (0 % CPU, waiting in XLA's CPU runtime; not investigated).

Usage:
  PYTHONPATH=. python3 experiments/mediation_multidim.py --reduced      # CPU smoke, < 2 min
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_multidim.py    # paper size (runs/multidim)

Writes experiments/results/mediation_multidim.{csv,json}, mediation_multidim_n_grid.png,
mediation_multidim_t_grid.png and mediation_multidim_vs_original.csv.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_multidim"
DESIGN = "multidim"
# the original's truth (spec §8.2, T = 6400 row; computed under bug B6)
ORIGINAL_TRUTH = dict(IDE=2.880559, IME=3.955929, DDE=1.602488, DME=1.329421)


def main(argv=None):
    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--n-grid", type=int, nargs="+", default=None,
                    help="N values of the T = 100 grid (default 300..1500 step 300)")
    ap.add_argument("--t-grid", type=int, nargs="+", default=None,
                    help="T values of the N = 100 grid (default 300..1500 step 300)")
    ap.set_defaults(batch_size=2, chunk_size=2)
    args = ap.parse_args(argv)
    from jaxmed import sim, study

    if args.reduced:
        n_grid, t_grid, reps = study.make_grid([100], 50), study.make_grid(50, [100]), args.reps or 4
    else:
        n_grid = study.make_grid(args.n_grid or list(range(300, 1501, 300)), 100)
        t_grid = study.make_grid(100, args.t_grid or list(range(300, 1501, 300)))
        reps = args.reps or 25
    out = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    res, summary = mc.run_design(DESIGN, n_grid + t_grid, reps, args.seed, out, args)
    b6 = sim.load_cached_truths()["multidim-b6"]["effects"]
    # bias against the original's (B6) truth as an extra column: bias_b6 = bias + truth - truth_b6
    summary["bias_vs_b6_truth"] = (summary["bias"] + summary["truth"]
                                   - summary["effect"].map(b6).astype("float64"))
    rdir = mc.results_dir(args, out)
    original = mc.load_original(args.original)
    comparison = None
    if original is not None:
        orig = mc.original_cells(original, ["Multidim_N_grid_T100", "Multidim_T_grid_N100"])
        points = [n_grid[0], n_grid[-1], t_grid[0], t_grid[-1]]
        comparison = mc.compare_with_original(summary, orig, mc.MAIN_ESTIMATORS + ("Baseline_DM",),
                                              points=points, original_truth=ORIGINAL_TRUTH)
        print(mc.markdown_table(comparison[comparison["estimator"].isin(["MR", "DM"])]))
    meta = mc.metadata([res], args, NAME, dict(
        original_truth=ORIGINAL_TRUTH, multidim_b6_truth=b6,
        note="bias_vs_b6_truth = bias against jaxmed's multidim-b6 truth (the original's policy)"))
    summary_cols = list(mc.CSV_COLUMNS) + ["bias_vs_b6_truth"]
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison, columns=summary_cols)
    h = n_grid[0][1]
    paths.append(mc.plot(summary, os.path.join(rdir, NAME + "_n_grid.png"), mc.MAIN_ESTIMATORS,
                         title=f"multidim, T = {h}, {reps} reps", fixed={"horizon": h}))
    n = t_grid[0][0]
    paths.append(mc.plot(summary, os.path.join(rdir, NAME + "_t_grid.png"), mc.MAIN_ESTIMATORS,
                         title=f"multidim, N = {n}, {reps} reps", fixed={"n": n}))
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
