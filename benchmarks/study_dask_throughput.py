"""Study throughput: K single-threaded Dask worker processes against one in-process run.

    PYTHONPATH=. python3 benchmarks/study_dask_throughput.py [--n 500] [--horizon 25]
        [--reps 16] [--batch-size 4] [--workers 2] [--rounds 2]

Both sides run ``study.run`` on the same design, grid cell, replications and batch size, each
into its own store: in-process (this process, XLA's own threads on all cores) and
``client=`` a ``distributed.LocalCluster`` of ``--workers`` processes with one thread each.
The persistent compilation cache is off (``JAXMED_NO_CACHE=1``, also in the workers), so the
first (cold) round of each side pays its own compilation: throughput *including* compile is
replications / wall seconds of that round. The following ``--rounds`` warm rounds (new keys,
same programs: compiled once per process / worker) alternate the order of the two sides;
throughput *excluding* compile is the median over them. The load average is recorded
around every measurement (the machine may be shared). Writes
``results/study-dask-throughput-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default="semi-synthetic")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--horizon", type=int, default=25)
    ap.add_argument("--reps", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    os.environ["JAXMED_NO_CACHE"] = "1"  # read by study.run here and in the spawned workers
    from jaxmed._src import execution

    execution.configure_host_threads()
    import distributed
    import jax
    import numpy as np

    import jaxmed
    from jaxmed import study

    design = study.get_design(args.design)
    spec = study.default_estimator(design)
    grid = [(args.n, args.horizon)]
    tmp = tempfile.mkdtemp(prefix="jaxmed-dask-bench-")
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    rows = []

    def measure(side, round_):
        load0 = os.getloadavg()[0]
        out = os.path.join(tmp, f"{side}-{round_}")
        res = study.run(design, spec, grid, args.reps, 1000 + round_, out=out,
                        batch_size=args.batch_size, progress=False,
                        client=client if side == "dask" else None)
        row = dict(side=side, round=round_, wall_s=res.wall_s, compile_s=res.compile_s,
                   n_computed=res.n_computed, reps_per_s=res.n_computed / res.wall_s,
                   device=res.device, load_before=load0, load_after=os.getloadavg()[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
        return res

    try:
        cold = {side: measure(side, 0) for side in ("in-process", "dask")}
        ident = all(bool(np.array_equal(getattr(cold["dask"], f), getattr(cold["in-process"], f),
                                        equal_nan=True))
                    for f in ("estimate", "se", "ci_low", "ci_high", "status"))
        for r in range(1, args.rounds + 1):
            order = ("in-process", "dask") if r % 2 else ("dask", "in-process")
            for side in order:
                measure(side, r)
    finally:
        client.close()
        cluster.close()

    def warm(side):
        return statistics.median(x["reps_per_s"] for x in rows if x["side"] == side and x["round"] > 0)

    def cold_rate(side):
        return next(x["reps_per_s"] for x in rows if x["side"] == side and x["round"] == 0)

    summary = dict(
        reps_per_s_excluding_compile={s: warm(s) for s in ("in-process", "dask")},
        reps_per_s_including_compile={s: cold_rate(s) for s in ("in-process", "dask")},
        ratio_dask_over_in_process_excluding_compile=warm("dask") / warm("in-process"),
        ratio_dask_over_in_process_including_compile=cold_rate("dask") / cold_rate("in-process"),
        cold_round_bit_identical=ident,
        load_average_range=[min(x["load_before"] for x in rows), max(x["load_after"] for x in rows)])
    doc = dict(benchmark="study-dask-throughput", args=vars(args), summary=summary, rows=rows,
               cpu_count=os.cpu_count(), platform=platform.platform(), jax=jax.__version__,
               jaxmed=getattr(jaxmed, "__version__", None), distributed=distributed.__version__,
               persistent_compilation_cache="off (JAXMED_NO_CACHE=1)",
               when=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    print(json.dumps(summary, indent=2))
    path = args.out or os.path.join(
        HERE, "results", f"study-dask-throughput-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
