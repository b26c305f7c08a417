"""Shared helper of the continuous mediation experiments (spec mediation.md §9, §10).

Every experiment script (``mediation_n_grid.py``, ``mediation_t_grid.py``,
``mediation_variance.py``, ``mediation_multidim.py``, ``mediation_baselines.py``) runs the study
engine (``jaxmed.study.run``: resumable chunk store under ``runs/``) on a registered design with
the default mediation estimator spec (MR, DM, MIS1, MIS2, Baseline_DM/IPW/MR × IDE, IME, DDE,
DME, ATE; default ``MediationConfig``), then writes small results into ``experiments/results/``:

* ``<name>.csv``: the summary, one row per (design, N, T, estimator, effect) with bias, its
  Monte Carlo SE, SD, MSE, coverage, ... against jaxmed's truth (``jaxmed.sim.truth``);
* ``<name>.png`` (or one PNG per slice): bias and log(MSE) against N or T, one panel per effect,
  one line per estimator;
* ``<name>_vs_original.csv``: our bias / MSE next to the original repository's at the same
  (N, T), from spec ``mediation_repo_results_summary.json`` (see ``compare_with_original``);
* ``<name>.json``: the command, wall time, compile time, device, jax version, batch size,
  replications, seed and the truths used.

The pure functions here (``original_cells``, ``compare_with_original``, ``markdown_table``) are
tested in ``tests/test_experiments_mediation_common.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ORIGINAL_JSON = "/work/shared/spec/mediation_repo_results_summary.json"
MAIN_ESTIMATORS = ("MR", "DM", "MIS1", "MIS2")
BASELINES = ("Baseline_DM", "Baseline_IPW", "Baseline_MR")
EFFECTS4 = ("IDE", "IME", "DDE", "DME")
CSV_COLUMNS = ("design", "n", "horizon", "estimator", "effect", "truth", "n_used", "n_failed",
               "bias", "bias_se", "sd", "mse", "mse_se", "log_mse", "mean_log_sq_err",
               "coverage", "mean_se")


def cell_key(n: int, horizon: int) -> str:
    """The original summary's cell label, e.g. ``cell_key(100, 25) == "N=100,T=25"``."""
    return f"N={int(n)},T={int(horizon)}"


def original_cells(original: Mapping, blocks: Sequence[str]) -> pd.DataFrame:
    """Flattens blocks of the original's results summary into a long DataFrame.

    Args:
      original: the parsed ``mediation_repo_results_summary.json`` (block -> "N=..,T=.." ->
        estimator -> effect -> {"bias", "mse", "sd", "n", ...}).
      blocks: block names to read, in priority order: where two blocks hold the same
        (N, T, estimator, effect), the first one wins (e.g. the main file's Baseline_DM before
        the baselines file's).

    Returns:
      Columns n, horizon, estimator, effect, orig_bias, orig_mse, orig_sd, orig_reps, orig_block.
    """
    rows, seen = [], set()
    for block in blocks:
        for cell, ests in original[block].items():
            parts = dict(p.split("=") for p in cell.split(","))
            n, h = int(parts["N"]), int(parts["T"])
            for est, effs in ests.items():
                for eff, s in effs.items():
                    k = (n, h, est, eff)
                    if k in seen:
                        continue
                    seen.add(k)
                    rows.append(dict(n=n, horizon=h, estimator=est, effect=eff,
                                     orig_bias=float(s["bias"]), orig_mse=float(s["mse"]),
                                     orig_sd=float(s["sd"]), orig_reps=int(s["n"]),
                                     orig_block=block))
    return pd.DataFrame(rows, columns=["n", "horizon", "estimator", "effect", "orig_bias",
                                       "orig_mse", "orig_sd", "orig_reps", "orig_block"])


def compare_with_original(summary: pd.DataFrame, original: pd.DataFrame,
                          estimators: Sequence[str] | None = None,
                          effects: Sequence[str] = EFFECTS4,
                          points: Iterable[tuple[int, int]] | None = None,
                          original_truth: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Our bias / MSE next to the original's at matching (N, T, estimator, effect).

    The original's bias and MSE are against the original's truth t_o. With ``original_truth``
    ({effect: t_o}) they are also re-expressed against our truth t (column ``truth``): with
    err_o = est − t_o and d = t_o − t, est − t = err_o + d, so

    * ``orig_bias_our_truth`` = orig_bias + d,
    * ``orig_mse_our_truth`` = orig_mse + 2 d · orig_bias + d².

    Args:
      summary: our summary (columns n, horizon, estimator, effect, bias, bias_se, mse, truth;
        ``design`` optional).
      original: the output of ``original_cells``.
      estimators, effects: rows to keep (default: every estimator of ``summary``; IDE..DME).
      points: (N, T) pairs to keep (default: all).
      original_truth: the truth the original's numbers were computed against ({effect: value}).

    Returns:
      One row per match (inner join) with columns n, horizon, estimator, effect, truth, bias,
      bias_se, mse, orig_bias, orig_mse, d_bias = bias − orig_bias,
      mse_ratio = mse / orig_mse, and ``design`` / ``orig_block`` when present.
    """
    ours = summary[summary["effect"].isin(list(effects))]
    if estimators is not None:
        ours = ours[ours["estimator"].isin(list(estimators))]
    if points is not None:
        pts = {(int(n), int(h)) for n, h in points}
        ours = ours[[(int(n), int(h)) in pts for n, h in zip(ours["n"], ours["horizon"])]]
    keep = [c for c in ("design", "n", "horizon", "estimator", "effect", "truth", "bias",
                        "bias_se", "mse") if c in ours.columns]
    out = ours[keep].merge(original, on=["n", "horizon", "estimator", "effect"], how="inner")
    out["d_bias"] = out["bias"] - out["orig_bias"]
    out["mse_ratio"] = out["mse"] / out["orig_mse"]
    if original_truth is not None:
        out["orig_truth"] = out["effect"].map(
            {k: float(v) for k, v in original_truth.items()}).astype(np.float64)
        d = out["orig_truth"] - out["truth"]
        out["orig_bias_our_truth"] = out["orig_bias"] + d
        out["orig_mse_our_truth"] = out["orig_mse"] + 2.0 * d * out["orig_bias"] + d ** 2
    order = {e: i for i, e in enumerate(effects)}
    out["_e"] = out["effect"].map(order)
    est_order = list(dict.fromkeys(summary["estimator"]))
    out["_s"] = out["estimator"].map({e: i for i, e in enumerate(est_order)})
    by = (["design"] if "design" in out.columns else []) + ["n", "horizon", "_s", "_e"]
    out = out.sort_values(by, kind="stable").drop(columns=["_e", "_s"])
    return out.reset_index(drop=True)


def markdown_table(comparison: pd.DataFrame, effects: Sequence[str] = EFFECTS4) -> str:
    """A compact markdown table: one row per (N, T, estimator), one column per effect holding
    ``ours bias / MSE (orig bias / MSE)``; bias with sign and 3 decimals, MSE with 4. A leading
    design column is added when ``comparison`` holds several designs.

    >>> df = pd.DataFrame(dict(n=[100], horizon=[25], estimator=["MR"], effect=["IDE"],
    ...                        bias=[0.01234], mse=[0.00456], orig_bias=[0.752], orig_mse=[0.632]))
    >>> print(markdown_table(df, effects=["IDE"]))
    | N | T | estimator | IDE |
    |---|---|---|---|
    | 100 | 25 | MR | +0.012 / 0.0046 (+0.752 / 0.6320) |
    """
    with_design = "design" in comparison.columns and comparison["design"].nunique() > 1
    keys = (["design"] if with_design else []) + ["n", "horizon", "estimator"]
    head = ("| design " if with_design else "") + "| N | T | estimator | " + " | ".join(effects) + " |"
    lines = [head, "|" + "---|" * (len(keys) + len(effects))]
    for key, g in comparison.groupby(keys, sort=False):
        cells = []
        for eff in effects:
            r = g[g["effect"] == eff]
            if not len(r):
                cells.append("–")
                continue
            r = r.iloc[0]
            cells.append(f"{r['bias']:+.3f} / {r['mse']:.4f} "
                         f"({r['orig_bias']:+.3f} / {r['orig_mse']:.4f})")
        lines.append("| " + " | ".join(str(k) for k in key) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Running (needs jax)


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--reduced", action="store_true",
                    help="CPU smoke size (a few cells and replications; results under --out)")
    ap.add_argument("--reps", type=int, default=None, help="override the replications per cell")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=None, help="run directory (chunk store); default runs/<name>")
    ap.add_argument("--results", default=None,
                    help="where the CSV/PNG/JSON go; default experiments/results (paper size) "
                         "or the run directory (--reduced)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--chunk-size", type=int, default=20)
    ap.add_argument("--float32", action="store_true")
    ap.add_argument("--merge", nargs="*", default=[],
                    help="other study stores of the same design whose complete cells are added "
                         "to the report (e.g. an interrupted run of the full grid)")
    ap.add_argument("--original", default=ORIGINAL_JSON,
                    help="the original's results summary (spec); skipped when missing")
    return ap


def run_design(design_name: str, grid, reps: int, seed: int, out: str, args, spec=None):
    """Runs (or resumes) one study and returns (StudyResult, summary DataFrame); ``spec``: the
    ``EstimatorSpec`` (default: the design's default estimator)."""
    import jax
    from jaxmed import study

    design = study.get_design(design_name)
    spec = study.default_estimator(design) if spec is None else spec
    t0 = time.time()
    res = study.run(design, spec, grid, reps, jax.random.key(seed), out=out,
                    batch_size=args.batch_size, chunk_size=args.chunk_size,
                    dtype=np.float32 if args.float32 else np.float64, progress=False)
    summary = res.summary()
    summary.insert(0, "design", design_name)
    print(f"{design_name}: {len(grid)} cells x {reps} reps, computed {res.n_computed} "
          f"in {time.time() - t0:.1f}s (compile {res.compile_s:.1f}s)", flush=True)
    return res, summary


def complete_cells(summary: pd.DataFrame, reps: int) -> pd.DataFrame:
    """The rows of cells whose every replication is in the store (``n_reps == reps``). Used to
    merge the finished cells of an interrupted study store into a report."""
    return summary[summary["n_reps"] == reps]


def stored_summary(result) -> pd.DataFrame:
    """``result.summary()`` of a loaded store (``study.load`` does not know the truth): against
    the registered design's truth (``jaxmed.sim.truth``)."""
    from jaxmed import study

    return result.summary(truth=study.truth_values(study.get_design(result.design)))


def merge_stores(summary: pd.DataFrame, dirs: Sequence[str], design: str):
    """Adds the complete cells of other study stores (``study.load``) to ``summary`` (cells
    already in ``summary`` win). Returns (merged summary sorted by n, horizon; loaded results)."""
    from jaxmed import study

    parts, loaded = [summary], []
    have = set(zip(summary["n"], summary["horizon"]))
    for d in dirs:
        r = study.load(d)
        s = complete_cells(stored_summary(r), r.reps)
        s = s[[(n, h) not in have for n, h in zip(s["n"], s["horizon"])]].copy()
        s.insert(0, "design", design)
        have |= set(zip(s["n"], s["horizon"]))
        print(f"merged {d}: complete cells {sorted(set(zip(s['n'], s['horizon'])))}", flush=True)
        parts.append(s)
        loaded.append(r)
    merged = pd.concat(parts, ignore_index=True)
    est = {e: i for i, e in enumerate(dict.fromkeys(summary["estimator"]))}
    eff = {e: i for i, e in enumerate(dict.fromkeys(summary["effect"]))}
    merged = merged.assign(_s=merged["estimator"].map(est), _e=merged["effect"].map(eff))
    merged = merged.sort_values(["n", "horizon", "_s", "_e"], kind="stable")
    return merged.drop(columns=["_s", "_e"]).reset_index(drop=True), loaded


def _finite(x) -> float | None:
    """Rounded seconds, or None (JSON null) where not measured (a loaded store)."""
    return round(float(x), 2) if x is not None and np.isfinite(x) else None


def metadata(results, args, name: str, extra: Mapping | None = None) -> dict:
    """The provenance record of an experiment (several StudyResults: one per design)."""
    import jax
    from jaxmed import study

    meta = dict(
        experiment=name,
        command="PYTHONPATH=. python3 " + " ".join(shlex.quote(a) for a in sys.argv),
        reduced=bool(args.reduced), seed=args.seed, batch_size=args.batch_size,
        dtype="float32" if args.float32 else "float64",
        jax_version=jax.__version__, device=str(jax.devices()[0]),
        machine=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        studies=[dict(design=r.design, grid=[list(c) for c in r.grid], reps=r.reps,
                      wall_s=_finite(r.wall_s), compile_s=_finite(r.compile_s),
                      n_computed=int(r.n_computed), batch_size=r.batch_size,
                      truth=study.truth_values(study.get_design(r.design)))
                 for r in results],
        truth_source="jaxmed.sim.truth(design) (long-run simulation, docs/truths.md)",
    )
    meta.update(extra or {})
    return meta


def results_dir(args, out: str) -> str:
    d = args.results or (out if args.reduced else RESULTS)
    os.makedirs(d, exist_ok=True)
    return d


def write_outputs(summary: pd.DataFrame, meta: dict, results_dir_: str, name: str,
                  comparison: pd.DataFrame | None = None,
                  columns: Sequence[str] = CSV_COLUMNS,
                  effects: Sequence[str] = EFFECTS4) -> list[str]:
    """Writes ``<name>.csv``, ``<name>.json`` and (if given) ``<name>_vs_original.csv``."""
    paths = []
    csv = os.path.join(results_dir_, f"{name}.csv")
    cols = [c for c in columns if c in summary.columns]
    summary[cols].to_csv(csv, index=False, float_format="%.6g")
    paths.append(csv)
    if comparison is not None and len(comparison):
        p = os.path.join(results_dir_, f"{name}_vs_original.csv")
        comparison.to_csv(p, index=False, float_format="%.6g")
        paths.append(p)
        meta = dict(meta, comparison_markdown=markdown_table(comparison, effects))
    p = os.path.join(results_dir_, f"{name}.json")
    with open(p, "w") as f:
        json.dump(meta, f, indent=1, default=float)
    paths.append(p)
    return paths


def plot(summary: pd.DataFrame, path: str, estimators: Sequence[str],
         effects: Sequence[str] = EFFECTS4, title: str | None = None, fixed=None) -> str:
    from jaxmed import study

    df = summary[summary["estimator"].isin(list(estimators))
                 & summary["effect"].isin(list(effects))]
    study.plot_study(df, path, title=title, fixed=fixed)
    return path


def load_original(path: str) -> dict | None:
    if path and os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    print(f"original results summary {path!r} not found: no comparison written", flush=True)
    return None
