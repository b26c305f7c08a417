"""The ``jaxmed`` command line: ``jaxmed study``, ``jaxmed merge``, ``jaxmed estimate``, ``jaxmed designs``.

    jaxmed study semi-synthetic --n 100,500,1500 --horizon 25 --reps 100 --seed 0 --out runs/semi
    jaxmed estimate data.csv --state s --mediator m1,m2 --action a --reward r --id id --time t \
        --target-policy logistic:0.7 --out effects.json
    jaxmed designs
    jaxmed study toy1 --n 50 --reps 100 --share 2/4 --out runs/toy1-2   # one job of an array
    jaxmed merge runs/toy1 runs/toy1-1 runs/toy1-2 runs/toy1-3 runs/toy1-4
    jaxmed study toy1 --n 50 --reps 100 --local-workers 2 --out runs/toy1   # Dask workers

Every command computes in float64 unless ``--float32`` is given. Bad options, unreadable
files and unwritable outputs print one line on stderr and exit with status 2. See
``docs/study.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Sequence

import numpy as np

__all__ = ["main", "parse_policy", "read_table"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: error: {message}")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _share(text: str) -> tuple[int, int]:
    """``I/K`` (1-based) as the runner's ``process=(I - 1, K)``."""
    i, _, k = text.partition("/")
    try:
        i, k = int(i), int(k)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/K with integers 1 <= I <= K, got {text!r}") from None
    if not 1 <= i <= k:
        raise argparse.ArgumentTypeError(f"expected I/K with integers 1 <= I <= K, got {text!r}")
    return i - 1, k


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def parse_policy(text: str, state_dim: int):
    """A policy from its command-line form (``jaxmed.policies.parse_policy``).

    * ``constant:p``: A = 1 with probability p whatever the state;
    * ``logistic:w`` or ``logistic:w1,...,wd`` or ``logistic:w1,...,wd@b``:
      P(A = 1 | s) = expit(b + Σ_j w_j s_j); a single weight is used for every state
      coordinate; the intercept b defaults to 0.

    >>> parse_policy("logistic:0.7", 1)
    LogisticPolicy(weights=array([0.7]), intercept=0.0)
    """
    from jaxmed._src.policies import parse_policy as parse

    return parse(text, state_dim)


def read_table(path: str, fmt: str | None = None):
    """Reads a CSV or parquet file into a pandas DataFrame (format from the extension by default).

    Raises:
      ValueError: starting with ``FILE:``, when the format cannot be told, the path does not
        exist or is a directory, or the file cannot be read.
    """
    import pandas as pd

    if fmt is None:
        ext = os.path.splitext(path)[1].lower()
        fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(ext)
        if fmt is None:
            raise ValueError(f"FILE: cannot tell the format of {path!r} from its extension; pass "
                             f"--format csv or --format parquet")
    if not os.path.exists(path):
        raise ValueError(f"FILE: {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"FILE: {path!r} is a directory, not a {fmt} file")
    try:
        return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as e:
        raise ValueError(f"FILE: cannot read {path!r} as {fmt}: {e}") from None


def _check_out_dir(out: str) -> None:
    """Creates the study's output directory or raises a one-line ``--out:`` error."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out!r} exists and is not a directory")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out: cannot create the directory {out!r}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out: the directory {out!r} is not writable")


_OUT_FORMATS = {".json": "json", ".csv": "csv"}


def _check_out_file(path: str) -> str:
    """The format of ``estimate --out`` (from the extension), after checking it can be written."""
    fmt = _OUT_FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        raise ValueError(f"--out: expected a path ending in .json or .csv, got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"--out: {path!r} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ValueError(f"--out: cannot write {path!r}: the directory {parent!r} does not exist "
                         f"(or is not a directory)")
    probe = path + ".part"
    try:  # a real write, before the computation (permission bits do not bind root)
        with open(probe, "w", encoding="utf-8"):
            pass
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"--out: cannot write {path!r}: {e.strerror or e}") from None
    return fmt


SE_CHOICES = ("cluster", "ij")
SE_HELP = ("standard errors: 'cluster' (default; the naive trajectory-cluster SE, fitted "
           "nuisances, Q-functions and ratios treated as known; DM has none) or 'ij' (the infinitesimal-"
           "jackknife sandwich through the whole pipeline, every estimator, DM included; about "
           "4.6-5x the point estimate's run time at N = 1500, T = 25; a study with --estimators "
           "MR: 2.6-2.9x)")


def _add_no_cache(p) -> None:
    p.add_argument("--no-cache", action="store_true",
                   help="no persistent compilation cache (also: JAXMED_NO_CACHE=1; the cache is in "
                        "$JAXMED_CACHE_DIR or ~/.cache/jaxmed/xla)")


def _build_parser() -> _Parser:
    parser = _Parser(prog="jaxmed", description="Causal effects in sequential decision problems.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("study", help="run a Monte Carlo study of a registered design",
                       description="Simulate and estimate REPS replications per (N, T) cell; write "
                                   "the chunk store, summary.json/csv and figure.png to --out.")
    p.add_argument("design", metavar="DESIGN", help="a registered design (see `jaxmed designs`)")
    p.add_argument("--n", type=_int_list, required=True, help="comma-separated sample sizes N")
    p.add_argument("--horizon", type=_int_list, default=None,
                   help="comma-separated horizons T (default: the design's default)")
    p.add_argument("--reps", type=_positive_int, default=100, help="replications per cell (100)")
    p.add_argument("--seed", type=int, default=0, help="integer seed of the study key (0)")
    p.add_argument("--out", default=None, help="output directory (default: jaxmed-study-DESIGN)")
    p.add_argument("--chunk-size", type=_positive_int, default=None,
                   help="replications per device call and chunk file (default: from memory)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="replications vmapped together per device (default: from memory, <= 8)")
    p.add_argument("--devices", type=_positive_int, default=None,
                   help="number of local devices to use (default: all)")
    p.add_argument("--xla-opt-level", choices=("auto", "default", "0", "1", "2", "3"),
                   default="auto",
                   help="XLA's backend optimisation level: auto (0 for a small study on CPU, at "
                        "most 100,000 trajectory-steps in all: compiles about 2x faster, runs "
                        "about 3x slower; XLA's default otherwise), default, or 0..3")
    p.add_argument("--estimators", type=_names, default=None,
                   help="comma-separated estimator names to keep, e.g. MR,DM (default: all)")
    p.add_argument("--log-mse", choices=("log_mse", "paper"), default="log_mse",
                   help="figure's second row: log(MSE) (default) or the paper's mean log(err^2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    p.add_argument("--se", choices=SE_CHOICES, default=None, help=SE_HELP + " (mediation designs)")
    p.add_argument("--share", type=_share, default=None, metavar="I/K",
                   help="compute only share I of K (1 <= I <= K; job arrays): writes its chunks to "
                        "--out, combine the shares with `jaxmed merge`")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", default=None, metavar="ADDRESS",
                         help="run the chunks as tasks on a running Dask scheduler (e.g. "
                              "tcp://host:8786, a dask-jobqueue SLURMCluster); --out must be "
                              "a directory every worker reaches under the same path")
    cluster.add_argument("--local-workers", type=_positive_int, default=None, metavar="K",
                         help="run the chunks on a local Dask cluster of K single-threaded worker "
                              "processes (with a client, --devices counts devices per worker)")
    _add_no_cache(p)

    m = sub.add_parser("merge", help="combine the stores of the shares of one study",
                       description="Copy the chunk files of study directories (e.g. the --out of "
                                   "each `jaxmed study --share I/K` job) into OUT, checking that "
                                   "they hold the same study; when OUT is complete, write its "
                                   "summary.json/csv.")
    m.add_argument("out", metavar="OUT", help="merged study directory (created if missing)")
    m.add_argument("sources", metavar="DIR", nargs="+", help="study directories to combine")

    e = sub.add_parser(
        "estimate", help="estimate dynamic mediation effects on a CSV/parquet file",
        description="Reads a long-format file (one row per id and time) and prints the effect "
                    "table (IDE, IME, DDE, DME, ATE: long-run average rewards per step) with "
                    "standard errors and 95% CIs. Without --next-state, the next state of a row "
                    "is the state of the same id's next row, so each id's last row gives only "
                    "that final state: an id with k rows gives k - 1 steps (20 rows: T = 19).")
    e.add_argument("file", metavar="FILE", help="CSV or parquet file")
    e.add_argument("--state", type=_names, required=True, help="state column(s), comma-separated")
    e.add_argument("--mediator", type=_names, required=True,
                   help="mediator column(s), comma-separated")
    e.add_argument("--action", default="action", help="binary action column (action)")
    e.add_argument("--reward", default="reward", help="reward column (reward)")
    e.add_argument("--id", default="id", help="trajectory id column (id)")
    e.add_argument("--time", default="time",
                   help="time column (time): numbers, datetimes, or text such as t0,t1,...,t10 "
                        "(ordered by the integer, not alphabetically)")
    e.add_argument("--next-state", type=_names, default=None,
                   help="next-state column(s); default: the same id's next row (each id's "
                        "last row then gives only the final state)")
    e.add_argument("--gaps", choices=("raise", "ignore"), default="raise",
                   help="a jump in an id's time column larger than the data's time step: "
                        "'raise' (default) stops with the id; 'ignore' takes consecutive rows as "
                        "consecutive steps")
    e.add_argument("--target-policy", default="logistic:0.7",
                   help="target policy: constant:p or logistic:w[,w2,...][@b] (logistic:0.7)")
    e.add_argument("--control-policy", default="constant:0",
                   help="control policy, same syntax (constant:0, always a = 0)")
    e.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="file format (default: from the extension)")
    e.add_argument("--seed", type=int, default=0, help="seed for the estimator's key (0)")
    e.add_argument("--out", default=None, metavar="FILE.json|FILE.csv",
                   help="also write the table, the status (code and words) and the settings to "
                        "a .json or .csv file")
    e.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    e.add_argument("--se", choices=SE_CHOICES, default="cluster", help=SE_HELP)
    _add_no_cache(e)
    e.add_argument("--time-effects", choices=("none", "spline", "additive"), default="none",
                   help="calendar-time terms for a drifting environment, calendar time from the "
                        "--time column (integers): 'none' (default), 'spline' (calendar-time "
                        "splines and their interactions with state and mediator in Q) or "
                        "'additive' (no interactions) (docs/nonstationary_mediation.md)")

    sub.add_parser("designs", help="list the registered designs",
                   description="List the registered simulation designs.")
    return parser


def _cmd_designs(args) -> int:
    from jaxmed._src.study import catalog

    designs = [catalog.get_design(item) if isinstance(item, str) else item
               for item in catalog.list_designs()]
    width = max(len(d.name) for d in designs)
    for d in designs:
        print(f"{d.name:<{width}} {getattr(d, 'kind', ''):<10} T={getattr(d, 'default_horizon', '')!s:<4} "
              f"{getattr(d, 'description', '')}")
    return 0


def _get_design(name: str):
    from jaxmed._src.study import catalog

    try:
        return catalog.get_design(name)
    except (KeyError, ValueError) as e:  # the registry raises ValueError("name: unknown ...")
        message = str(e.args[0]) if e.args else repr(name)
        if message.startswith("name: "):
            message = message[len("name: "):]
        raise ValueError(f"DESIGN: {message} (see `jaxmed designs`)") from None


def _opt_level(text: str):
    """``--xla-opt-level`` as ``run``'s ``xla_opt_level``."""
    if text in ("auto", "default"):
        return "auto" if text == "auto" else None
    return int(text)


def _cmd_study(args) -> int:
    from jaxmed._src.study import catalog, chunk_store, figures, runner, summaries

    design = _get_design(args.design)
    horizons = args.horizon or [int(design.default_horizon)]
    if args.se is not None and getattr(design, "kind", None) != "mediation":
        raise ValueError(f"--se: applies to the mediation designs; {design.name!r} is a "
                         f"{design.kind} design")
    spec = catalog.select_estimators(catalog.default_estimator(design, se_method=args.se),
                                     args.estimators)
    out = args.out or f"jaxmed-study-{design.name}"
    _check_out_dir(out)
    grid = runner.make_grid(args.n, horizons)
    with contextlib.ExitStack() as stack:
        client = None
        if args.scheduler is not None or args.local_workers is not None:
            from jaxmed._src.study.dask_executor import dask_client

            client = stack.enter_context(dask_client(args.scheduler, args.local_workers))
        result = runner.run(design, spec, grid, args.reps, args.seed, out=out,
                            chunk_size=args.chunk_size, batch_size=args.batch_size,
                            devices=args.devices, progress=not args.no_progress,
                            dtype=np.float32 if args.float32 else np.float64,
                            process=args.share or (0, 1), client=client,
                            xla_opt_level=_opt_level(args.xla_opt_level))
    if args.share is not None and args.share[1] > 1:
        print(f"{result.design} / {result.estimator}: share {args.share[0] + 1}/{args.share[1]}, "
              f"{result.n_computed} replications computed now, stored in {out}; combine the "
              f"shares with `jaxmed merge OUT DIR...`")
        return 0
    summary = summaries.summarize(result)
    paths = summaries.write_summary(result, summary, out)
    figs = []
    if len(summary) and summary["bias"].notna().any():
        slices = ([None] if len(args.n) == 1 or len(horizons) == 1
                  else [{"horizon": h} for h in horizons])
        for fixed in slices:
            name = "figure.png" if fixed is None else f"figure_T{fixed['horizon']}.png"
            figures.plot_study(summary, os.path.join(out, name), fixed=fixed, log_mse=args.log_mse,
                               title=f"{result.design} ({result.estimator})")
            figs.append(os.path.join(out, name))
    level = (chunk_store.ChunkStore(out).read_manifest() or {}).get("xla_opt_level")
    print(f"{result.design} / {result.estimator}: {result.reps} replications per cell, "
          f"{result.n_computed} computed now; compile {result.compile_s:.1f} s, "
          f"total {result.wall_s:.1f} s on {result.device} ({result.dtype})"
          + ("" if level is None else
             f"; compiled at XLA optimisation level {level}"
             + (" (a small study; --xla-opt-level default for XLA's default)"
                if args.xla_opt_level == "auto" else "")))
    print(summaries.format_table(summary))
    print(f"wrote {paths['json']}, {paths['csv']}" + "".join(f", {f}" for f in figs))
    return 0


def _cmd_merge(args) -> int:
    from jaxmed._src.study import catalog, chunk_store, runner, summaries

    info = chunk_store.merge_stores(args.out, args.sources)
    print(f"merged {len(args.sources)} directories into {args.out}: {info['copied']} chunk files "
          f"copied, {info['skipped']} already there; {info['done']}/{info['total']} replications")
    if info["done"] < info["total"]:
        return 0
    manifest = chunk_store.ChunkStore(args.out).read_manifest()
    try:
        truth = catalog.truth_values(catalog.get_design(manifest["design"]))
    except ValueError:  # not a registered design: summaries without truth
        truth = {}
    result = runner.load(args.out, truth=truth)
    summary = summaries.summarize(result)
    paths = summaries.write_summary(result, summary, args.out)
    print(summaries.format_table(summary))
    print(f"wrote {paths['json']}, {paths['csv']}")
    return 0


def _cli_message(message: str, args) -> str:
    """A data error of ``trajectories_from_dataframe`` in the command line's words."""
    if message.startswith("df: "):
        message = f"FILE: {args.file!r}: " + message[len("df: "):]
    return (message.replace("gaps='ignore'", "--gaps ignore")
            .replace("next_state columns", "--next-state columns")
            .replace("the DataFrame", "the file"))


def _load_trajectories(args):
    """The ``Trajectories`` described by the ``estimate`` options."""
    from jaxmed._src.trajectories import trajectories_from_dataframe

    df = read_table(args.file, args.format)
    try:
        return trajectories_from_dataframe(
            df, state=args.state, mediator=args.mediator, action=args.action, reward=args.reward,
            id=args.id, time=args.time, next_state=args.next_state, gaps=args.gaps,
            dtype=np.float32 if args.float32 else np.float64)
    except ValueError as e:
        raise ValueError(_cli_message(str(e), args)) from None


def _steps_text(data, args) -> str:
    steps = int(np.asarray(data.mask).sum())
    if args.next_state is not None:
        return f"T = {data.horizon} steps ({steps} observed; every row is a step, --next-state given)"
    return (f"T = {data.horizon} steps ({steps} observed; each id's last row gives only the final "
            f"next state, so k rows give k - 1 steps; --next-state uses every row)")


def _write_estimate(path: str, fmt: str, frame, meta: dict) -> None:
    """Writes the effect table and its settings to ``path`` (JSON or CSV), atomically."""
    import json

    tmp = path + ".part"
    try:
        if fmt == "json":
            doc = dict(meta, effects=[{k: (None if isinstance(v, float) and not np.isfinite(v)
                                           else v) for k, v in rec.items()}
                                      for rec in frame.to_dict(orient="records")])
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(doc, indent=2, allow_nan=False))
        else:
            frame.assign(status=meta["status"], status_text=meta["status_text"]).to_csv(
                tmp, index=False)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ValueError(f"--out: cannot write {path!r}: {e.strerror or e}") from None


def _cmd_estimate(args) -> int:
    import jax

    from jaxmed._src.effect_report import (EFFECTS_MEANING, SE_MEANING, mediation_report,
                                           undefined_cells)
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.effects import mediation_effects

    out_fmt = _check_out_file(args.out) if args.out else None
    data = _load_trajectories(args)
    target = parse_policy(args.target_policy, data.state_dim)
    control = parse_policy(args.control_policy, data.state_dim)
    config = MediationConfig(se_method=args.se)
    if args.time_effects != "none":
        from jaxmed._src.mediation import time_effects as te

        calendar = te.calendar_time_from_dataframe(read_table(args.file, args.format), data,
                                                   id=args.id, time=args.time, next_state=args.next_state)
        result = te.mediation_effects_time(data, target, control, key=jax.random.key(args.seed),
                                           calendar_time=calendar, time_effects=args.time_effects,
                                           config=config,
                                           dtype=np.float32 if args.float32 else np.float64)
    else:
        result = mediation_effects(data, target, control, key=jax.random.key(args.seed),
                                   config=config, dtype=np.float32 if args.float32 else np.float64)
    frame, status, status_text = mediation_report(result, se_method=args.se)
    undefined = undefined_cells(result)
    print(f"{data.n_trajectories} trajectories, {_steps_text(data, args)}")
    print(f"target {args.target_policy}, control {args.control_policy}; "
          f"status {status}: {status_text}")
    print(EFFECTS_MEANING)
    print(SE_MEANING[args.se])
    notes = list(dict.fromkeys(n for n in frame["note"] if n))
    shown = frame.assign(note=[f"({chr(97 + notes.index(n))})" if n else "" for n in frame["note"]])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="NaN"))
    for i, note in enumerate(notes):
        print(f"({chr(97 + i)}) {note}")
    if undefined:
        print("not defined, left out: " + "; ".join(f"{k} {'/'.join(v)}"
                                                   for k, v in undefined.items()))
    if out_fmt is not None:
        meta = dict(file=args.file, n_trajectories=int(data.n_trajectories),
                    horizon=int(data.horizon), observed_steps=int(np.asarray(data.mask).sum()),
                    target_policy=args.target_policy, control_policy=args.control_policy,
                    seed=args.seed, dtype="float32" if args.float32 else "float64",
                    time_effects=args.time_effects, se=args.se, se_meaning=SE_MEANING[args.se],
                    status=status, status_text=status_text, effects_meaning=EFFECTS_MEANING,
                    undefined=undefined)
        _write_estimate(args.out, out_fmt, frame, meta)
        print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxmed`` console script; returns the exit status."""
    from jaxmed._src import execution

    execution.configure_host_threads()  # before LAPACK/OpenBLAS is first loaded
    from jaxmed._src.precision import precision

    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        saved = os.environ.get("JAXMED_NO_CACHE")
        if getattr(args, "no_cache", False):
            os.environ["JAXMED_NO_CACHE"] = "1"  # also seen by study.run; restored below
        try:
            execution.enable_compilation_cache()
            dtype = np.float32 if getattr(args, "float32", False) else np.float64
            with precision(dtype):
                return {"study": _cmd_study, "estimate": _cmd_estimate,
                        "designs": _cmd_designs, "merge": _cmd_merge}[args.command](args)
        finally:
            if saved is None:
                os.environ.pop("JAXMED_NO_CACHE", None)
            else:
                os.environ["JAXMED_NO_CACHE"] = saved
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        message = " ".join(str(e).split())
        print(f"jaxmed: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or directory the command could not read or write
        where = f"{e.filename!r}: " if e.filename else ""
        print(f"jaxmed: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxmed: interrupted (finished chunks are kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
