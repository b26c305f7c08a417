"""Coverage of the infinitesimal-jackknife SE on the other mediation designs (issue 13,
deliverable 2): Toy I / Toy II at N = 300, T = 50; variance-1..3 at N = 1500, T = 50;
multidim at N = 1500, T = 100.

Each cell is a resumable study (``study.run`` with ``default_estimator(design,
se_method="ij")``, the same as ``jaxmed study DESIGN --n N --horizon T --reps R --se ij``)
whose chunk store lives under ``--stores``: an interrupted run continues where it stopped,
and the table can be rebuilt from the stores alone (``--summarise-only``). Per cell,
estimator and effect: bias and its Monte Carlo SE, SD of the estimates, mean IJ SE, SE/SD and
95% coverage with its binomial SE, against the design's truth (exact for the binary designs,
the committed long-run simulation for the others). ``bias_over_mcse`` flags estimators that
are inconsistent on a design (no coverage claim is made for them).

``--estimators MR,DM`` keeps those rows only (``study.select_estimators``; the IJ SE then makes
the reverse passes of those rows only: 8 of 20 for MR and DM); such a cell's store is
``DESIGN_N..._T..._MR-DM``. A cell written ``DESIGN:N:T@MR,DM`` sets its own rows.

Usage:
  PYTHONPATH=. python3 experiments/mediation_ij_coverage_designs.py --cells toy1:300:50 \\
      --reps 400 --stores /tmp/ij_stores
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import numpy as np
import pandas as pd

from jaxmed import study

DEFAULT_CELLS = ("toy1:300:50", "toy2-iid:300:50", "toy2-state:300:50", "variance-1:1500:50",
                 "variance-2:1500:50", "variance-3:1500:50", "multidim:1500:100")


def parse_cell(text: str, estimators=None):
    """``DESIGN:N:T`` or ``DESIGN:N:T@EST,EST`` -> (design, N, T, rows or ``estimators``)."""
    text, _, rows = text.partition("@")
    design, n, horizon = text.split(":")
    return design, int(n), int(horizon), rows.split(",") if rows else estimators


def run_cell(design_name: str, n: int, horizon: int, reps: int, seed: int, stores: str,
             compute: bool, estimators=None, ratio_features: int | None = None,
             ratio_draws: int = 1, reward_degree: int | None = None):
    design = study.get_design(design_name)
    out = os.path.join(stores, f"{design_name}_N{n}_T{horizon}"
                       + ("_" + "-".join(estimators) if estimators else "")
                       + (f"_D{ratio_features}" if ratio_features else "")
                       + (f"_M{ratio_draws}" if ratio_draws is not None else "")
                       + (f"_RD{reward_degree}" if reward_degree else ""))
    if compute:
        if ratio_features or ratio_draws is not None or reward_degree:  # the design's
            # configuration with D random Fourier ratio features, M draws of them, and reward
            # monomials of degree K
            from jaxmed._src.mediation.design_config import config_for_design
            from jaxmed._src.mediation.effects import mediation_estimator_spec

            config = config_for_design(design).replace(se_method="ij")
            if ratio_draws is not None:
                config = config.replace(ratio_draws=ratio_draws)
            if ratio_features:
                config = config.replace(ratio_features=ratio_features)
            if reward_degree:
                config = config.replace(reward_degree=reward_degree)
            full = mediation_estimator_spec(design.target_policy, design.control_policy, config)
        else:
            full = study.default_estimator(design, se_method="ij")
        spec = study.select_estimators(full, estimators)
        return study.run(design, spec, [(n, horizon)], reps, seed, out=out, progress=False)
    return study.load(out, truth=study.truth_values(design))


def summarise(res) -> pd.DataFrame:
    table = study.summarize(res)
    table = table.assign(se_over_sd=table["se_sd_ratio"],
                         se_over_sd_se=table["se_sd_ratio_se"],
                         rms_se_over_sd=table["rms_se_sd_ratio"],
                         rms_se_over_sd_se=table["rms_se_sd_ratio_se"],
                         bias_over_mcse=table["bias"].abs() / table["bias_se"],
                         design=res.design, reps_done=int(np.sum(res.status[0] >= 0)))
    cols = ["design", "n", "horizon", "estimator", "effect", "truth", "n_used", "n_failed",
            "bias", "bias_se", "bias_over_mcse", "sd", "mean_se", "se_over_sd", "se_over_sd_se",
            "rms_se_over_sd", "rms_se_over_sd_se", "coverage", "coverage_se", "reps_done"]
    return table[[c for c in cols if c in table.columns]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", nargs="+", default=list(DEFAULT_CELLS),
                    help="DESIGN:N:T cells (default: every cell of the issue)")
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--stores", default="ij_coverage_stores",
                    help="directory of the cells' chunk stores (resumable)")
    ap.add_argument("--estimators", default=None,
                    help="comma-separated rows to keep, e.g. MR,DM (default: all)")
    ap.add_argument("--ratio-features", type=int, default=None,
                    help="D random Fourier features of the state ratios (default: the config's "
                         "15); stores get the suffix _D<D>")
    ap.add_argument("--ratio-draws", type=int, default=None,
                    help="M draws of the ratio features, ratios averaged (MediationConfig."
                         "ratio_draws; default: the design's, 4 on multidim since session 10, "
                         "else 1); stores get the suffix _M<M>")
    ap.add_argument("--reward-degree", type=int, default=None,
                    help="total degree K of the reward model's mediator monomials "
                         "(MediationConfig.reward_degree; default: the config's 3); stores get "
                         "the suffix _RD<K>")
    ap.add_argument("--summarise-only", action="store_true",
                    help="build the table from the stores without computing")
    ap.add_argument("--out", default="experiments/results/mediation_ij_coverage_designs")
    args = ap.parse_args()
    estimators = args.estimators.split(",") if args.estimators else None
    frames, info = [], {}
    for text in args.cells:
        design, n, horizon, rows = parse_cell(text, estimators)
        res = run_cell(design, n, horizon, args.reps, args.seed, args.stores,
                       not args.summarise_only, rows, args.ratio_features, args.ratio_draws,
                       args.reward_degree)
        frames.append(summarise(res))
        info[text] = dict(wall_s=res.wall_s, compile_s=res.compile_s, n_computed=res.n_computed,
                          estimator=res.estimator, reps=res.reps,
                          status_nonzero=int(np.count_nonzero(res.status[0] > 0)))
        print(f"{text}: {info[text]}", flush=True)
    table = pd.concat(frames, ignore_index=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    table.to_csv(args.out + ".csv", index=False, float_format="%.6g")
    with open(args.out + ".json", "w") as f:
        json.dump(dict(args=vars(args), cells=info, jax=jax.__version__,
                       device=str(jax.devices()[0]), python=platform.python_version(),
                       rows=table.to_dict(orient="records")), f, indent=1, default=float)
    show = ["design", "estimator", "effect", "bias", "bias_se", "sd", "se_over_sd",
            "se_over_sd_se", "rms_se_over_sd", "coverage", "coverage_se"]
    print(table[show].round(4).to_string(index=False))


if __name__ == "__main__":
    main()
