"""The ``jaxmed`` command line: ``jaxmed study``, ``jaxmed estimate``, ``jaxmed designs``.

    jaxmed study semi --n 100,500,1500 --horizon 25 --reps 100 --seed 0 --out runs/semi
    jaxmed estimate data.csv --state s --mediator m1,m2 --action a --reward r --id id --time t \
        --target-policy logistic:0.7
    jaxmed designs

Every command computes in float64 unless ``--float32`` is given. Bad options print one line
on stderr and exit with status 2. See ``docs/study.md``.
"""

from __future__ import annotations

import argparse
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


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def parse_policy(text: str, state_dim: int):
    """A policy from its command-line form.

    * ``constant:p``: A = 1 with probability p whatever the state;
    * ``logistic:w`` or ``logistic:w1,...,wd`` or ``logistic:w1,...,wd@b``:
      P(A = 1 | s) = expit(b + Σ_j w_j s_j); a single weight is used for every state
      coordinate; the intercept b defaults to 0.

    >>> parse_policy("logistic:0.7", 1)
    LogisticPolicy(weights=array([0.7]), intercept=0.0)
    """
    from jaxmed._src import policies

    kind, _, params = text.partition(":")
    try:
        if kind == "constant" and params:
            return policies.bernoulli_policy(float(params))
        if kind == "logistic" and params:
            w_text, _, b_text = params.partition("@")
            weights = [float(v) for v in w_text.split(",")]
            if len(weights) == 1:
                weights = weights * state_dim
            if len(weights) != state_dim:
                raise ValueError(f"policy: {text!r} has {len(weights)} weights for {state_dim} "
                                 f"state columns")
            return policies.LogisticPolicy(np.asarray(weights), float(b_text) if b_text else 0.0)
    except ValueError as e:
        if str(e).startswith(("policy:", "p:")):
            raise
        raise ValueError(f"policy: cannot read {text!r} (expected constant:p or "
                         f"logistic:w[,w2,...][@b])") from None
    raise ValueError(f"policy: cannot read {text!r} (expected constant:p or logistic:w[,w2,...][@b])")


def read_table(path: str, fmt: str | None = None):
    """Reads a CSV or parquet file into a pandas DataFrame (format from the extension by default)."""
    import pandas as pd

    if fmt is None:
        ext = os.path.splitext(path)[1].lower()
        fmt = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(ext)
        if fmt is None:
            raise ValueError(f"FILE: cannot tell the format of {path!r} from its extension; pass "
                             f"--format csv or --format parquet")
    if not os.path.exists(path):
        raise ValueError(f"FILE: {path!r} does not exist")
    return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)


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
    p.add_argument("--estimators", type=_names, default=None,
                   help="comma-separated estimator names to keep, e.g. MR,DM (default: all)")
    p.add_argument("--log-mse", choices=("log_mse", "paper"), default="log_mse",
                   help="figure's second row: log(MSE) (default) or the paper's mean log(err^2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")

    e = sub.add_parser("estimate", help="estimate dynamic mediation effects on a CSV/parquet file",
                       description="Reads a long-format file (one row per id and time) and prints "
                                   "the effect table with standard errors and 95%% CIs.")
    e.add_argument("file", metavar="FILE", help="CSV or parquet file")
    e.add_argument("--state", type=_names, required=True, help="state column(s), comma-separated")
    e.add_argument("--mediator", type=_names, required=True,
                   help="mediator column(s), comma-separated")
    e.add_argument("--action", default="action", help="binary action column (action)")
    e.add_argument("--reward", default="reward", help="reward column (reward)")
    e.add_argument("--id", default="id", help="trajectory id column (id)")
    e.add_argument("--time", default="time", help="time column (time)")
    e.add_argument("--next-state", type=_names, default=None,
                   help="next-state column(s); default: the same id's next row")
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
    e.add_argument("--float32", action="store_true", help="compute in float32 (default float64)")
    e.add_argument("--time-effects", choices=("none", "spline"), default="none",
                   help="calendar-time terms for a drifting environment, calendar time from the "
                        "--time column (integers): 'none' (default) or 'spline' "
                        "(docs/nonstationary_mediation.md)")

    sub.add_parser("designs", help="list the registered designs",
                   description="List the registered simulation designs.")
    return parser


def _cmd_designs(args) -> int:
    from jaxmed._src.study import catalog

    for d in catalog.list_designs():
        print(f"{d.name:<24} {getattr(d, 'kind', ''):<10} T={getattr(d, 'default_horizon', '')!s:<6} "
              f"{getattr(d, 'description', '')}")
    return 0


def _cmd_study(args) -> int:
    from jaxmed._src.study import catalog, figures, runner, summaries

    try:
        design = catalog.get_design(args.design)
    except KeyError as e:
        raise ValueError(f"DESIGN: {e.args[0] if e.args else args.design}") from None
    horizons = args.horizon or [int(design.default_horizon)]
    spec = catalog.select_estimators(catalog.default_estimator(design), args.estimators)
    out = args.out or f"jaxmed-study-{design.name}"
    grid = runner.make_grid(args.n, horizons)
    result = runner.run(design, spec, grid, args.reps, args.seed, out=out,
                        chunk_size=args.chunk_size, batch_size=args.batch_size,
                        devices=args.devices, progress=not args.no_progress,
                        dtype=np.float32 if args.float32 else np.float64)
    summary = summaries.summarize(result)
    paths = summaries.write_summary(result, summary, out)
    figs = []
    if len(summary) and summary["bias"].notna().any():
        slices = ([None] if len(args.n) == 1 or len(horizons) == 1
                  else [{"horizon": h} for h in horizons])
        for fixed in slices:
            name = "figure.png" if fixed is None else f"figure_T{fixed['horizon']}.png"
            figures.plot_study(summary, os.path.join(out, name), fixed=fixed, log_mse=args.log_mse,
                               title=f"{result.design}: {result.reps} replications")
            figs.append(os.path.join(out, name))
    print(f"{result.design} / {result.estimator}: {result.reps} replications per cell, "
          f"{result.n_computed} computed now; compile {result.compile_s:.1f} s, "
          f"total {result.wall_s:.1f} s on {result.device} ({result.dtype})")
    print(summaries.format_table(summary))
    print(f"wrote {paths['json']}, {paths['csv']}" + "".join(f", {f}" for f in figs))
    return 0


def _load_trajectories(args):
    """The ``Trajectories`` described by the ``estimate`` options."""
    from jaxmed._src.trajectories import trajectories_from_dataframe

    df = read_table(args.file, args.format)
    return trajectories_from_dataframe(df, state=args.state, mediator=args.mediator,
                                       action=args.action, reward=args.reward, id=args.id,
                                       time=args.time, next_state=args.next_state,
                                       gaps=args.gaps, dtype=np.float32 if args.float32 else np.float64)


def _cmd_estimate(args) -> int:
    import jax
    import pandas as pd

    from jaxmed._src.mediation.effects import mediation_effects

    data = _load_trajectories(args)
    target = parse_policy(args.target_policy, data.state_dim)
    control = parse_policy(args.control_policy, data.state_dim)
    if args.time_effects != "none":
        from jaxmed._src.mediation import time_effects as te

        calendar = te.calendar_time_from_dataframe(read_table(args.file, args.format), data,
                                                   id=args.id, time=args.time, next_state=args.next_state)
        result = te.mediation_effects_time(data, target, control, key=jax.random.key(args.seed),
                                           calendar_time=calendar, time_effects=args.time_effects,
                                           dtype=np.float32 if args.float32 else np.float64)
    else:
        result = mediation_effects(data, target, control, key=jax.random.key(args.seed),
                                   dtype=np.float32 if args.float32 else np.float64)
    frame = result.to_frame()
    frame = frame[np.isfinite(frame["estimate"].to_numpy(dtype=float))]
    status = int(np.asarray(result.diagnostics.status))
    print(f"{data.n_trajectories} trajectories, T = {data.horizon}; target {args.target_policy}, "
          f"control {args.control_policy}; status {status}")
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jaxmed`` console script; returns the exit status."""
    from jaxmed._src.precision import precision

    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        dtype = np.float32 if getattr(args, "float32", False) else np.float64
        with precision(dtype):
            return {"study": _cmd_study, "estimate": _cmd_estimate,
                    "designs": _cmd_designs}[args.command](args)
    except _UsageError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        message = " ".join(str(e).split())
        print(f"jaxmed: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxmed: interrupted (finished chunks are kept; rerun to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
