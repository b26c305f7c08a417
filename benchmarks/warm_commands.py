"""Cold and warm wall time of short ``jaxmed study`` commands, this tree against an older commit
(the programs kept on disk, ``program_cache.py``: what a warm run still spends building them).

    PYTHONPATH=. python3 benchmarks/warm_commands.py [--base 1931c63] [--rounds 5]

Commands: the README quickstart (``--n 100,200 --horizon 25 --reps 8``: two unpadded cells),
a padded grid (``--n 200,300,500 --horizon 25 --reps 8``: N = 200 simulated at 200 and
estimated at 300, so simulation and estimation programs) and ``jaxmed estimate`` on
``run.py``'s 6,000-row CSV (its ``--out`` JSON compared). Each side has its own cache
directory. Per command: one cold run per side (empty cache; base first, then this tree),
then ``rounds`` warm rounds, the sides alternated within each round (which side goes first
alternates between rounds). Every run is a fresh ``python -m jaxmed study`` process writing a
fresh store; its summary CSV is compared with the other side's (the numbers must be
identical). Writes ``results/warm-commands-<timestamp>.json``.
"""

from __future__ import annotations

import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

from bench_worktree import ROOT, main_against_base, write_result

COMMANDS = {
    "quickstart": ["--n", "100,200", "--horizon", "25", "--reps", "8"],
    "padded_grid": ["--n", "200,300,500", "--horizon", "25", "--reps", "8"],
    # ``jaxmed estimate`` on run.py's 6,000-row CSV (written into the work directory)
    "estimate": ["estimate", "{csv}", "--state", "s0", "--mediator", "m0,m1", "--action", "action",
                 "--reward", "reward", "--id", "id", "--time", "time", "--target-policy",
                 "logistic:0.7", "--seed", "0"],
}


def one_run(tree, cache, out, args_list, csv=None):
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=tree, JAXMED_CACHE_DIR=cache)
    env.pop("JAXMED_NO_CACHE", None)
    if args_list[0] == "estimate":
        os.makedirs(out)
        cmd = [sys.executable, "-m", "jaxmed", *(a.format(csv=csv) for a in args_list),
               "--out", os.path.join(out, "summary.json")]
    else:
        cmd = [sys.executable, "-m", "jaxmed", "study", "semi-synthetic", *args_list, "--seed",
               "0", "--no-progress", "--out", out]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=tree, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def _summary(out):
    path = os.path.join(out, "summary.csv")
    return path if os.path.exists(path) else os.path.join(out, "summary.json")


def main(argv=None):
    main_against_base(argv, __doc__, "1931c63", "jaxmed-warm-commands-", {"rounds": 5}, _compare)


def _compare(args, work, base):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from execution_bench import _estimate_csv

    csv = os.path.join(work, "data.csv")
    _estimate_csv(csv, 6000)
    sides = {"base": base, "new": ROOT}
    results = {}
    for name, cmd_args in COMMANDS.items():
        caches = {s: os.path.join(work, f"cache-{name}-{s}") for s in sides}
        outs = {s: os.path.join(work, f"out-{name}-{s}") for s in sides}
        cold = {s: one_run(sides[s], caches[s], outs[s], cmd_args, csv) for s in sides}
        same = filecmp.cmp(_summary(outs["base"]), _summary(outs["new"]), shallow=False)
        warm = {s: [] for s in sides}
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for s in order:
                warm[s].append(one_run(sides[s], caches[s], outs[s], cmd_args, csv))
            same = same and filecmp.cmp(_summary(outs["base"]), _summary(outs["new"]),
                                        shallow=False)
            print(f"{name} round {r}: " + ", ".join(f"{s} {warm[s][-1]:.2f} s" for s in order),
                  flush=True)
        med = {s: statistics.median(v) for s, v in warm.items()}
        results[name] = dict(
            args=cmd_args, cold_s=cold, warm_s=warm, warm_median_s=med,
            warm_ratio_base_over_new=statistics.median(
                b / n for b, n in zip(warm["base"], warm["new"])),
            cold_ratio_base_over_new=cold["base"] / cold["new"],
            summaries_identical=same)
        print(f"{name}: cold base {cold['base']:.1f} s new {cold['new']:.1f} s; warm median "
              f"base {med['base']:.2f} s new {med['new']:.2f} s; identical numbers: {same}",
              flush=True)
    import jax

    out = dict(benchmark="warm_commands", base_commit=args.base, rounds=args.rounds,
               python=platform.python_version(), jax=jax.__version__,
               kernel=platform.release(), cpu_count=os.cpu_count(),
               load_average_end=list(os.getloadavg()), commands=results)
    write_result(out, "warm-commands", args.out)


if __name__ == "__main__":
    main()
