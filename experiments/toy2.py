"""Toy II: the need to model state transitions (spec §7.5, §10.6).

Designs ``toy2-iid`` (S' ~ Bern(0.2) independently of the past; DDE = DME = 0) and
``toy2-state`` (Toy I's DGP: the state depends on the past action and mediator); T = 50,
N ∈ {30, 60, …, 300}, 200 replications; every estimator of ``mediation_effects``: MR, DM,
MIS1, MIS2, Baseline_DM, Baseline_IPW, Baseline_MR.

Nuisances are learned with ``MediationConfig.binary()``: saturated (tabular) models — the
weighted cell frequencies of A given s, of M given (s, a) and of R given (s, a, m) — with a
Bernoulli mediator law and exact sums over m; the saturated Q basis (7 cell indicators of
(s, a, m) reparametrised, plus η) and ψ(s) = [1, s] ratio features with ridge 1e-9, ρ and ω
truncated at 500 (the original's Toy II settings, §7.5). The original fits CART trees with a
5-fold CV-chosen depth (1..19); with binary (s, a, m) a tree of full depth is exactly the
saturated model, so the tabular fit is the exact equivalent of the original's trees whenever
CV picks a full-depth tree (a shallower CV choice would pool cells). Q ridge: jaxmed's
default 1e-4 on the non-η coordinates (the original: none). The original's bug B4 (π_e
evaluated at S instead of S' in the Q-learner) is not reproduced.

``--default-models`` also runs jaxmed's default configuration (logistic π̂_b, Gaussian p̂_m,
polynomial r̂, spline Q basis, random Fourier ratio features) at N = 300 to document that it
is misspecified on binary data.

Usage:
  PYTHONPATH=. nice -n 10 python3 experiments/toy2.py                    # paper size
  PYTHONPATH=. nice -n 10 python3 experiments/toy2.py --reduced          # smoke run (< 2 min)
  PYTHONPATH=. nice -n 10 python3 experiments/toy2.py --default-models   # + default-config check
"""

from __future__ import annotations

import argparse

import numpy as np

from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import mediation_estimator_spec
from jaxmed._src.precision import precision
from jaxmed.sim import get_design, truth

try:  # run as a script or imported as experiments.toy2
    from experiments import toy_common as common
except ImportError:  # pragma: no cover
    import toy_common as common

__all__ = ["DESIGNS", "toy2_config", "comparison_rows"]

# design name -> (output name, original keys: main, FULL (DDE/DME), baselines)
DESIGNS = {
    "toy2-iid": ("toy2_iid", "Toy_2_iid_errors", None, "Toy_2_iid_baselines_errors"),
    "toy2-state": ("toy2_state", "Toy_2_w_state_errors", "Toy_2_w_state_FULL_errors",
                   "Toy_2_w_state_baselines_errors"),
}


def toy2_config() -> MediationConfig:
    """The configuration of the Toy II study (saturated models; module docstring)."""
    return MediationConfig.binary()


def comparison_rows(summary, original, keys, n: int) -> list[dict]:
    """Our bias / MSE next to the original's at one N, for every (estimator, effect) we have."""
    main_key, full_key, base_key = keys
    orig = {}
    for key in (main_key, full_key, base_key):
        if key is None:
            continue
        for k, v in common.original_table(original, key, n).items():
            orig.setdefault(k, v)  # main file first (IDE/IME), FULL adds DDE/DME
    out = []
    for _, row in summary[summary["n"] == n].iterrows():
        o = orig.get((row["estimator"], row["effect"]), {})
        out.append(dict(n=int(n), estimator=row["estimator"], effect=row["effect"],
                        bias=row["bias"], bias_se=row["bias_se"], mse=row["mse"], sd=row["sd"],
                        coverage=row["coverage"], original_bias=o.get("bias"),
                        original_mse=o.get("mse")))
    return out


def _print(rows, estimators=None):
    for c in rows:
        if c["effect"] == "ATE" or (estimators and c["estimator"] not in estimators):
            continue
        ob = "" if c["original_bias"] is None else (f"  original bias {c['original_bias']:+.4f} "
                                                    f"mse {c['original_mse']:.4f}")
        print(f"  N={c['n']} {c['estimator']:12s} {c['effect']}: bias {c['bias']:+.4f} "
              f"(se {c['bias_se']:.4f}) mse {c['mse']:.4f} cover {c['coverage']:.2f}{ob}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reduced", action="store_true", help="smoke run: N = 30, 90; 10 reps")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20231)
    ap.add_argument("--designs", default="toy2-iid,toy2-state")
    ap.add_argument("--default-models", action="store_true",
                    help="also run the default (Gaussian/polynomial) configuration at N = 300")
    ap.add_argument("--default-reps", type=int, default=50)
    args = ap.parse_args(argv)
    n_values = common.REDUCED_N if args.reduced else common.PAPER_N
    reps = args.reps or (10 if args.reduced else 200)
    original = common.load_original()
    config = toy2_config()
    for name in args.designs.split(","):
        out_name, *keys = DESIGNS[name]
        if args.reduced:
            out_name += "_reduced"
        design = get_design(name)
        spec = mediation_estimator_spec(design.target_policy, design.control_policy, config)
        with precision(np.float64):
            res, summary, wall = common.run_grid(design, spec, n_values, reps, args.seed)
        rows = comparison_rows(summary, original, keys, max(n_values))
        meta = dict(experiment="Toy II (spec §7.5, §10.6)", design=name, n=list(n_values),
                    horizon=common.HORIZON, reps=reps, seed=args.seed, wall_s=wall,
                    compile_s=res.compile_s, batch_size=res.batch_size, config=repr(config),
                    truth=truth(name).effects, comparison_at_max_n=rows)
        if args.default_models:
            default = MediationConfig()
            dspec = mediation_estimator_spec(design.target_policy, design.control_policy, default)
            with precision(np.float64):
                dres, dsum, dwall = common.run_grid(design, dspec, (300,), args.default_reps,
                                                    args.seed)
            drows = comparison_rows(dsum, original, keys, 300)
            meta["default_models_check"] = dict(config=repr(default), reps=args.default_reps,
                                                wall_s=dwall, rows=drows)
            common.write_outputs(out_name + "_default_models", dsum,
                                 dict(experiment="Toy II with jaxmed's default (misspecified) "
                                                 "models", design=name, reps=args.default_reps,
                                      seed=args.seed, wall_s=dwall, config=repr(default)),
                                 title=f"{name}: default Gaussian/polynomial models (N = 300)",
                                 plot=False)
        paths = common.write_outputs(out_name, summary, meta,
                                     title=f"{name}: saturated models (T = 50, {reps} reps)")
        print(f"{name}: wall {wall:.1f} s (compile {res.compile_s:.1f} s); wrote {paths}")
        _print(rows)
        if args.default_models:
            print(f"{name}: default models at N = 300 ({args.default_reps} reps, {dwall:.1f} s)")
            _print(meta["default_models_check"]["rows"], ("MR", "DM", "MIS1", "Baseline_DM"))


if __name__ == "__main__":
    main()
