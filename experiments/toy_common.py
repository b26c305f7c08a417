"""Shared helpers of the Toy I / Toy II experiments (``toy1.py``, ``toy2.py``).

Running a grid with the study engine, writing the small CSV / PNG / JSON outputs, and
reading the original's per-N numbers (``/work/shared/spec/mediation_repo_results_summary.json``,
spec mediation.md §10.5–§10.6) for the comparison table.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time

import jax
import numpy as np

from jaxmed import study

__all__ = ["PAPER_N", "REDUCED_N", "HORIZON", "SUMMARY_CSV_COLUMNS", "run_grid", "write_outputs",
           "load_original", "original_table"]

PAPER_N = tuple(range(30, 301, 30))
REDUCED_N = (30, 90)
HORIZON = 50
RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
ORIGINAL_JSON = "/work/shared/spec/mediation_repo_results_summary.json"
SUMMARY_CSV_COLUMNS = ["n", "horizon", "estimator", "effect", "truth", "n_used", "n_failed",
                       "bias", "bias_se", "sd", "mse", "mse_se", "log_mse", "mean_log_sq_err",
                       "coverage", "mean_se"]


def run_grid(design, spec, n_values, reps: int, seed: int, horizon: int = HORIZON,
             batch_size: int | None = None):
    """Runs the study (in memory) and returns ``(StudyResult, summary DataFrame, wall seconds)``."""
    grid = study.make_grid(list(n_values), horizon)
    t0 = time.time()
    res = study.run(design, spec, grid, reps, jax.random.key(seed), batch_size=batch_size,
                    progress=False)
    wall = time.time() - t0
    return res, study.summarize(res), wall


def write_outputs(name: str, summary, meta: dict, *, title: str, results_dir: str = RESULTS_DIR,
                  plot: bool = True):
    """Writes ``{name}.csv`` (the summary columns), ``{name}.png`` (if ``plot``) and ``{name}.json``."""
    os.makedirs(results_dir, exist_ok=True)
    df = summary[[c for c in SUMMARY_CSV_COLUMNS if c in summary.columns]]
    csv = os.path.join(results_dir, f"{name}.csv")
    df.to_csv(csv, index=False, float_format="%.6g")
    png = os.path.join(results_dir, f"{name}.png") if plot else None
    if plot:
        study.plot_study(summary[summary["effect"] != "ATE"], png, log_mse="paper", title=title)
    meta = dict(meta)
    meta.update(jax_version=jax.__version__, jaxlib_version=importlib.metadata.version("jaxlib"),
                device=str(jax.devices()[0]), platform=jax.devices()[0].platform,
                machine=platform.machine(), python=platform.python_version())
    js = os.path.join(results_dir, f"{name}.json")
    with open(js, "w") as f:
        json.dump(meta, f, indent=1, default=float)
    return dict(csv=csv, png=png, json=js)


def load_original(path: str = ORIGINAL_JSON) -> dict | None:
    """The original's per-N summaries (None when the file is not available)."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def original_table(original: dict | None, key: str, n: int, horizon: int = HORIZON) -> dict:
    """``{(estimator, effect): {"bias", "mse", "sd"}}`` of the original at one N (empty if absent)."""
    if original is None or key not in original:
        return {}
    cell = original[key].get(f"N={n},T={horizon}", {})
    return {(est, eff): dict(bias=v["bias"], mse=v["mse"], sd=v["sd"])
            for est, effs in cell.items() for eff, v in effs.items()}
