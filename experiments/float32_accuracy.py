"""float32 against float64 on the same data: the estimators' float32 error in float64 SE units.

For each of R replications of a registered design (simulated in float64), every estimator of the
design's default study spec is run twice on the same data: in float64, and on the data cast to
float32 under ``jaxmed.precision(float32)``. Reported per estimator: the largest and the 95th
percentile of |est32 − est64| / se64 over replications and effects (cells with a finite float64
estimate and SE > 0), and the share of replications whose status differs.

    PYTHONPATH=$PWD python3 experiments/float32_accuracy.py --reps 50 \
        --out experiments/results/float32_accuracy.json

Writes one JSON (sizes, versions, per design and estimator the numbers above).
"""

import argparse
import json
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

import jaxmed  # noqa: E402
from jaxmed import study  # noqa: E402

SIZES = {"semi-synthetic": (100, 10), "longterm-s1": (200, 10)}


def run(design_name: str, reps: int, n: int, horizon: int) -> dict:
    design = study.get_design(design_name)
    spec = study.default_estimator(design)
    keys = jax.random.split(jax.random.key(2026), reps)
    with jaxmed.precision(np.float64):
        sim = jax.jit(jax.vmap(lambda k: design.simulate(jax.random.split(k)[0], n, horizon)))
        data = sim(keys)
        est_keys = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
        t64 = jax.jit(jax.vmap(spec.fn))(est_keys, data)
        t64 = jax.tree.map(np.asarray, t64)
    data32 = jax.tree.map(lambda a: a.astype(np.float32) if a.dtype == np.float64 else a, data)
    with jaxmed.precision(np.float32):
        t32 = jax.jit(jax.vmap(spec.fn))(est_keys, data32)
        t32 = jax.tree.map(np.asarray, t32)
    out = {}
    for i, name in enumerate(spec.estimators):
        e64, s64 = t64.estimate[:, i, :], t64.se[:, i, :]
        e32 = t32.estimate[:, i, :].astype(np.float64)
        ok = np.isfinite(e64) & np.isfinite(s64) & (s64 > 0)
        z = np.abs(e32 - e64)[ok] / s64[ok]
        rel = (np.abs(e32 - e64) / np.maximum(np.abs(e64), 1e-12))[np.isfinite(e64)]
        out[name] = dict(cells=int(ok.sum()), max_se_units=float(z.max()) if z.size else None,
                         q95_se_units=float(np.quantile(z, 0.95)) if z.size else None,
                         median_se_units=float(np.median(z)) if z.size else None,
                         max_rel=float(np.nanmax(rel)) if rel.size else None,
                         nonfinite32=int((~np.isfinite(e32) & np.isfinite(e64)).sum()))
    status_diff = float(np.mean(np.asarray(t64.status) != np.asarray(t32.status)))
    return dict(n=n, horizon=horizon, reps=reps, estimators=out, status_differs=status_diff,
                dtype32=str(t32.estimate.dtype))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--designs", default="semi-synthetic,longterm-s1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    doc = dict(jax=jax.__version__, platform=platform.platform(), device=str(jax.devices()[0]),
               designs={})
    for name in args.designs.split(","):
        t0 = time.perf_counter()
        doc["designs"][name] = run(name, args.reps, *SIZES[name])
        doc["designs"][name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, json.dumps(doc["designs"][name], indent=1), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
