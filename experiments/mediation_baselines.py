"""The baselines (spec mediation.md §6.5b, §9, §10.1): Baseline_DM, Baseline_IPW, Baseline_MR
(which ignore the state dynamics) with MR for reference, from the run directories of the other
experiments (they are rows of the default mediation estimator spec, so nothing is recomputed).

Reads the complete cells of whichever of runs/mediation_n_grid, runs/mediation_t_grid (and
runs/mediation_t_grid_{600_900,1000_1500,1100_1400}), runs/mediation_variance/sigma{1,2,3} and runs/mediation_multidim exist (the ``_reduced`` ones with --reduced); run those scripts
first.

Usage:
  PYTHONPATH=. python3 experiments/mediation_baselines.py [--reduced] [--runs-root runs]

Writes experiments/results/mediation_baselines.{csv,json}, mediation_baselines_n_grid.png,
mediation_baselines_t_grid.png and mediation_baselines_vs_original.csv.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pandas as pd  # noqa: E402

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_baselines"
ESTIMATORS = mc.BASELINES + ("MR",)
EFFECTS = ("IDE", "IME")
SEMI_BASELINE_TRUTH = dict(IDE=2.677701, IME=3.650198)  # T = 1600 row, bug B8 (spec §8.2)
# (experiment label, run sub-directory, original block, original truth, figure slice)
SOURCES = (
    ("semi N-grid", "mediation_n_grid", "Semi_Synthetic_baselines_N_grid_T25", SEMI_BASELINE_TRUTH),
    ("semi T-grid", ("mediation_t_grid", "mediation_t_grid_600_900", "mediation_t_grid_1000_1500",
                     "mediation_t_grid_1100_1400"),
     "Semi_Synthetic_baselines_T_grid_N50", SEMI_BASELINE_TRUTH),
    ("variance σ=1", ("mediation_variance/sigma1", "mediation_variance_mid/sigma1"), "Variance_Impact_std1_baselines",
     dict(IDE=2.874272, IME=3.951914)),
    ("variance σ=2", ("mediation_variance/sigma2", "mediation_variance_mid/sigma2"), "Variance_Impact_std2_baselines",
     dict(IDE=2.679841, IME=3.653535)),
    ("variance σ=3", ("mediation_variance/sigma3", "mediation_variance_mid/sigma3"), "Variance_Impact_std3_baselines",
     dict(IDE=2.567007, IME=3.415303)),
    ("multidim", "mediation_multidim", ("Multidim_baselines_N_grid", "Multidim_baselines_T_grid"),
     dict(IDE=2.880559, IME=3.955929)),
)


def main(argv=None):
    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--runs-root", default="runs")
    args = ap.parse_args(argv)
    from jaxmed import study

    suffix = "_reduced" if args.reduced else ""
    rdir = mc.results_dir(args, os.path.join(args.runs_root, NAME + suffix))
    original = mc.load_original(args.original)
    results, summaries, comparisons = [], [], []
    for label, subs, blocks, orig_truth in SOURCES:
        parts = []
        for sub in ([subs] if isinstance(subs, str) else subs):
            top, _, rest = sub.partition("/")
            path = os.path.join(args.runs_root, top + suffix, rest)
            if not os.path.exists(os.path.join(path, "manifest.json")):
                print(f"{label}: no run directory {path}: skipped", flush=True)
                continue
            res = study.load(path)
            s = mc.complete_cells(mc.stored_summary(res), res.reps)  # finished cells only
            s = s[s["estimator"].isin(ESTIMATORS) & s["effect"].isin(EFFECTS)].copy()
            s.insert(0, "experiment", label)
            s.insert(1, "design", res.design)
            results.append(res)
            parts.append(s)
        if not parts or not sum(len(p) for p in parts):
            continue
        s = pd.concat(parts, ignore_index=True)
        summaries.append(s)
        if original is not None:
            orig = mc.original_cells(original, [blocks] if isinstance(blocks, str) else blocks)
            grid = sorted(set(zip(s["n"], s["horizon"])))
            points = {grid[0], grid[-1]}
            if label == "multidim":
                points = {(n, h) for n, h in grid if (n, h) in
                          {(300, 100), (1500, 100), (100, 300), (100, 1500)}} or points
            c = mc.compare_with_original(s, orig, mc.BASELINES, EFFECTS, points=points,
                                         original_truth=orig_truth)
            c.insert(0, "experiment", label)
            comparisons.append(c)
    if not summaries:
        raise SystemExit("no run directories found: run the other mediation experiments first")
    summary = pd.concat(summaries, ignore_index=True)
    comparison = pd.concat(comparisons, ignore_index=True) if comparisons else None
    for label, x, fixed in (("semi N-grid", "n", None), ("semi T-grid", "horizon", None)):
        df = summary[summary["experiment"] == label]
        if len(df):
            tag = "n_grid" if x == "n" else "t_grid"
            mc.plot(df, os.path.join(rdir, f"{NAME}_{tag}.png"), ESTIMATORS, EFFECTS,
                    title=f"baselines, {label}, {results[0].reps} reps")
    if comparison is not None:
        print(mc.markdown_table(comparison, EFFECTS))
    meta = mc.metadata(results, args, NAME, dict(
        original_truth={lab: t for lab, _, _, t in SOURCES},
        note="semi baselines: the original used the T=1600 truth (B8); variance and multidim "
             "baselines: assumed the same truth as the original's main files"))
    meta.pop("batch_size", None)
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison,
                             columns=("experiment",) + mc.CSV_COLUMNS, effects=EFFECTS)
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
