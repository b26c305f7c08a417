"""Small samples on the semi-synthetic design (issue 13, deliverable 3): the state-knot rule.

The default ``MediationConfig`` (``state_knots_rule="rate"``: min(5, ⌊(N·T)^{1/5}⌋) interior
knots, ``jaxmed._src.mediation.knot_rule``) against the fixed 5 knots of the rule-less
pipeline, at N = 100, 200, 300, 1500 and T = 25 (200 replications per cell, seed 2026: cell
N = 100 holds the same replications as the first cell of ``mediation_n_grid.py``). From
N·T ≥ 3,125 the two configurations are the same program, so only the cells below are run
with ``"fixed"`` too.

Usage:
  PYTHONPATH=. python3 experiments/mediation_small_sample.py --reduced   # CPU smoke
  PYTHONPATH=. nice -n 10 python3 experiments/mediation_small_sample.py

Writes experiments/results/mediation_small_sample.{csv,json} and
mediation_small_sample_vs_original.csv (rows ``config`` = rate / fixed).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import mediation_common as mc  # noqa: E402

NAME = "mediation_small_sample"
DESIGN = "semi-synthetic"
GRID = [(100, 25), (200, 25), (300, 25), (1500, 25)]


def main(argv=None):
    import pandas as pd

    ap = mc.parser(__doc__.splitlines()[0])
    ap.add_argument("--grid", default=None, help="cells N:T,N:T,... (default the four cells)")
    args = ap.parse_args(argv)
    from jaxmed import study
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.effects import mediation_estimator_spec
    from jaxmed._src.mediation.knot_rule import rate_knots

    if args.grid:
        grid = [tuple(int(x) for x in c.split(":")) for c in args.grid.split(",")]
    else:
        grid = [(100, 25), (200, 25)] if args.reduced else GRID
    reps = args.reps or (8 if args.reduced else 200)
    out = args.out or os.path.join("runs", NAME + ("_reduced" if args.reduced else ""))
    design = study.get_design(DESIGN)
    results, summaries = [], []
    for rule in ("rate", "fixed"):
        cells = grid if rule == "rate" else [(n, t) for n, t in grid if rate_knots(n * t, 5) < 5]
        if not cells:
            continue
        spec = mediation_estimator_spec(design.target_policy, design.control_policy,
                                        MediationConfig(state_knots_rule=rule))
        res, summary = mc.run_design(DESIGN, cells, reps, args.seed,
                                     os.path.join(out, rule), args, spec=spec)
        summary.insert(1, "config", rule)
        results.append(res)
        summaries.append(summary)
    summary = pd.concat(summaries, ignore_index=True)
    rdir = mc.results_dir(args, out)
    original = mc.load_original(args.original)
    comparison = None
    if original is not None:
        orig = mc.original_cells(original, ["Semi_Synthetic_N_grid_T25"])
        parts = []
        for rule, s in summary.groupby("config", sort=False):
            c = mc.compare_with_original(s.drop(columns="config"), orig, ("MR", "DM"))
            c.insert(1, "config", rule)
            parts.append(c)
        comparison = pd.concat(parts, ignore_index=True)
        print(mc.markdown_table(comparison[comparison["config"] == "rate"]))
    meta = mc.metadata(results, args, NAME, dict(
        configs={"rate": "MediationConfig() (state_knots_rule='rate')",
                 "fixed": "MediationConfig(state_knots_rule='fixed')"}))
    cols = ("design", "config") + mc.CSV_COLUMNS[1:]
    paths = mc.write_outputs(summary, meta, rdir, NAME, comparison, columns=cols)
    print("wrote", *paths, sep="\n  ")


if __name__ == "__main__":
    main()
