"""Do the small-sample defaults of session 21 move the calendar-time pipeline? (issues 13, 15)

Runs ``time_effects_estimator_spec`` (the stationary and the calendar-time pipelines on the
same data and key, rows MR, DM, ..., MR-time, DM-time, ...) on ``semi-synthetic-drift`` with
strength STRENGTH, twice: with the defaults before session 21 (``rho_trunc = 500``, the
nuisance splines' boundary knots at the range) and with the current ones (``rho_trunc = 50``,
``nuisance_boundary_quantile = 0.0025``); same seed, so the same data and keys. Reports per
row of MR, MR-time and DM-time the MSE, largest |error| and bias ± MC SE against the cached
drift truth, and the paired difference (current − old) ± its MC SE.

Usage:
  PYTHONPATH=. python3 experiments/mediation_time_defaults_screen.py 1.0 300 25 200 \\
      --out experiments/results/mediation_time_defaults_k1_n300_t25.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxmed._src import policies as P  # noqa: E402
from jaxmed._src.mediation.config import MediationConfig  # noqa: E402
from jaxmed._src.mediation.time_effects import time_effects_estimator_spec  # noqa: E402
from jaxmed._src.sim import drift as D  # noqa: E402
from jaxmed._src.study.runner import run  # noqa: E402

from experiments.mediation_drift import SEED, CellDesign  # noqa: E402

EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")
VARIANTS = {"old (rho 500, range knots)": MediationConfig(rho_trunc=500.0,
                                                          nuisance_boundary_quantile=0.0),
            "current defaults": MediationConfig()}
ROWS = ("MR", "DM", "MR-time", "DM-time")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("strength", type=float)
    ap.add_argument("n", type=int)
    ap.add_argument("horizon", type=int)
    ap.add_argument("reps", type=int)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    truth = D.cached_drift_truth(args.strength, args.horizon)
    tv = np.array([truth.effects[e] for e in EFFECTS])
    est, names, walls = {}, None, {}
    for label, cfg in VARIANTS.items():
        spec = time_effects_estimator_spec(P.semi_synthetic_target_policy(), config=cfg)
        t0 = time.time()
        res = run(CellDesign(args.strength), spec, [(args.n, args.horizon)], args.reps, SEED,
                  progress=False, batch_size=1)
        walls[label] = time.time() - t0
        if not (np.asarray(res.status[0]) == 0).all():
            raise SystemExit(f"{label}: {(np.asarray(res.status[0]) != 0).sum()} failed replications")
        est[label], names = np.asarray(res.estimate[0]), list(res.estimators)
    old, new = VARIANTS
    out = dict(args=vars(args), truth=dict(zip(EFFECTS, tv.tolist())), wall_s=walls, rows={})
    for row in ROWS:
        i = names.index(row)
        rec = {}
        for label in VARIANTS:
            err = est[label][:, i, :] - tv
            rec[label] = dict(mse=np.mean(err ** 2, 0).tolist(), bias=err.mean(0).tolist(),
                              bias_se=(err.std(0, ddof=1) / np.sqrt(len(err))).tolist(),
                              max_abs_error=float(np.abs(err[:, :4]).max()))
            print(f"{row:8s} {label:28s} MSE " + " / ".join(f"{v:.4f}" for v in rec[label]["mse"][:4])
                  + f"; max {rec[label]['max_abs_error']:.2f}; bias " + " ".join(
                      f"{b:+.4f}±{s:.4f}" for b, s in zip(rec[label]["bias"][:4], rec[label]["bias_se"][:4])))
        d = est[new][:, i, :] - est[old][:, i, :]
        rec["paired"] = dict(mean=d.mean(0).tolist(),
                             se=(d.std(0, ddof=1) / np.sqrt(len(d))).tolist())
        print(f"{row:8s} paired current − old " + " ".join(
            f"{b:+.4f}±{s:.4f}" for b, s in zip(rec["paired"]["mean"], rec["paired"]["se"])))
        out["rows"][row] = rec
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
