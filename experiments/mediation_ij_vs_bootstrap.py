"""The IJ SE against the trajectory bootstrap, replication by replication (issue 13).

For R replications of a design (replication r: ``fold_in(key(777), r)`` split into data and
estimation keys, as ``mediation_variant_screen.py``), one call of ``mediation_core`` with the
design's configuration, the IJ SE of the MR row (``ij_estimators=("MR",)``), M ratio draws and
``n_boot = B``: the bootstrap refits the whole pipeline on multinomial trajectory weights,
the weighted-quantile knots included (the IJ SE holds them fixed), with the ratio features'
draws held (the IJ SE adds their variance, s²/M, when M > 1). Prints both SEs per replication
and their mean ratio; writes them with the estimates to ``--out``.

Usage:
  PYTHONPATH=. python3 experiments/mediation_ij_vs_bootstrap.py variance-1 1500 50 12 100 \\
      --draws 4 --out experiments/results/defaults_s22/ij_vs_bootstrap_variance1.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jaxmed import study  # noqa: E402
from jaxmed._src.mediation.design_config import config_for_design  # noqa: E402
from jaxmed._src.mediation.effects import mediation_core  # noqa: E402
from jaxmed._src.mediation.estimators import EFFECTS  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("design")
    ap.add_argument("n", type=int)
    ap.add_argument("horizon", type=int)
    ap.add_argument("reps", type=int, help="replications R")
    ap.add_argument("boot", type=int, help="bootstrap resamples B per replication")
    ap.add_argument("--draws", type=int, default=1, help="ratio_draws M")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    design = study.get_design(args.design)
    config = config_for_design(design).replace(se_method="ij", ij_estimators=("MR",),
                                               ratio_draws=args.draws, n_boot=args.boot)
    fit = jax.jit(lambda key, d: mediation_core(key, d, design.target_policy, 0, config))
    sim = jax.jit(lambda k: design.simulate(k, args.n, args.horizon))
    rows, t0 = [], time.time()
    for r in range(args.reps):
        kd, ke = jax.random.split(jax.random.fold_in(jax.random.key(777), r))
        o = fit(ke, sim(kd))
        rows.append(dict(estimate=np.asarray(o.estimate)[0].tolist(),
                         ij_se=np.asarray(o.se)[0].tolist(),
                         boot_se=np.asarray(o.boot_se)[0].tolist(),
                         cluster_se=np.asarray(o.cluster_se)[0].tolist(),
                         status=int(o.diagnostics.status)))
        print(r, f"{time.time() - t0:.0f}s", "IJ", np.round(rows[-1]["ij_se"], 4),
              "boot", np.round(rows[-1]["boot_se"], 4), flush=True)
    ij = np.array([x["ij_se"] for x in rows])
    boot = np.array([x["boot_se"] for x in rows])
    ratio = boot / ij
    summary = {e: dict(mean_ij_se=float(ij[:, k].mean()), mean_boot_se=float(boot[:, k].mean()),
                       mean_ratio=float(ratio[:, k].mean()),
                       ratio_mc_se=float(ratio[:, k].std(ddof=1) / np.sqrt(len(rows))))
               for k, e in enumerate(EFFECTS)}
    for e, v in summary.items():
        print(e, {k: round(x, 4) for k, x in v.items()})
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(dict(args=vars(args), wall_s=time.time() - t0, effects=EFFECTS,
                           summary=summary, replications=rows), fh, indent=1)


if __name__ == "__main__":
    main()
