"""Summaries of a study: bias, SD, MSE, coverage... per cell × estimator × effect.

For one cell, estimator and effect, with truth θ and the replications i = 1..m that are
*usable* (status 0 and a finite estimate; the others are counted, not used), err_i =
θ̂_i − θ:

* ``bias`` = mean(err); ``bias_se`` = SD / sqrt(m) (its Monte Carlo SE);
* ``sd`` = standard deviation of θ̂ (ddof = 1);
* ``mse`` = mean(err²); ``mse_se`` = sd(err², ddof = 1) / sqrt(m); ``rmse`` = sqrt(mse);
* ``log_mse`` = log(mse), ``log_mse_se`` = mse_se / mse (delta method);
* ``mean_log_sq_err`` = mean(log err²), ``mean_log_sq_err_se`` = its SD / sqrt(m). This is
  what the original paper's plots call "logMSE" (spec mediation.md §9, bug B9); it is **not**
  log(MSE) (by Jensen it is smaller);
* ``log_abs_bias`` = log |bias| (the paper's "logbias");
* ``coverage`` = fraction of usable replications whose [ci_low, ci_high] contains θ (those
  with a finite CI), ``coverage_se`` = sqrt(p (1 − p) / m_ci) (binomial);
* ``mean_se`` = mean of the reported SEs, ``se_sd_ratio`` = mean_se / sd (≈ 1 when the SEs
  are honest); ``se_sd_ratio_se`` its Monte Carlo SE; ``rms_se_sd_ratio`` = sqrt(mean SE²) /
  sd, the same comparison on the variance scale (E SE² against Var θ̂: with SEs that vary from
  replication to replication, mean_se is below sqrt(mean SE²) by Jensen's inequality), and
  ``rms_se_sd_ratio_se``. Both SEs by the delta method over the replications with a finite
  estimate and SE: for r = g(mean a, sd) with a = SE or SE², se(log r) = sd(IF) / sqrt(m)
  with IF_i = c (a_i − ā) / ā − ((θ̂_i − mean θ̂)² − sd²) / (2 sd²), c = 1 or 1/2. An
  SE/SD of 0.88 ± 0.04 is thus not distinguishable from 0.9. Checked against the spread of
  the ratios over simulated studies (within 1 % for normal and t₁₀ errors); with tails as
  heavy as t₆ it is about 6 % low;
* ``n_reps`` (in the store), ``n_failed`` (status ≠ 0), ``n_nonfinite`` (status 0 but a
  non-finite estimate), ``n_used`` = m.

Estimator × effect pairs that are undefined (NaN estimate in every replication of every
cell, e.g. MIS2's delayed effects) are left out. Effects without a truth get NaN error
metrics (sd, mean_se, counts are still given).
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping

import numpy as np

__all__ = ["summarize", "write_summary", "format_table", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = (
    "n", "horizon", "estimator", "effect", "truth", "n_reps", "n_failed", "n_nonfinite", "n_used",
    "bias", "bias_se", "sd", "mse", "mse_se", "rmse", "log_mse", "log_mse_se", "mean_log_sq_err",
    "mean_log_sq_err_se", "log_abs_bias", "coverage", "coverage_se", "mean_se", "se_sd_ratio",
    "se_sd_ratio_se", "rms_se_sd_ratio", "rms_se_sd_ratio_se",
)


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    if x.size == 0:
        return math.nan, math.nan
    m = float(np.mean(x))
    se = float(np.std(x, ddof=1) / np.sqrt(x.size)) if x.size > 1 else math.nan
    return m, se


def summarize_cell(estimate, se, ci_low, ci_high, status, truth: float) -> dict:
    """Summary metrics of one estimator × effect in one cell (1-D arrays over replications).

    >>> import numpy as np
    >>> row = summarize_cell(np.array([0.9, 1.1, 1.3]), np.full(3, 0.2), np.array([0.5, 0.7, 0.9]),
    ...                      np.array([1.3, 1.5, 1.7]), np.array([0, 0, 1]), truth=1.0)
    >>> row["n_used"], row["n_failed"], round(row["bias"], 12), round(row["mse"], 12), row["coverage"]
    (2, 1, 0.0, 0.01, 1.0)
    """
    estimate, se = np.asarray(estimate, np.float64), np.asarray(se, np.float64)
    ci_low, ci_high = np.asarray(ci_low, np.float64), np.asarray(ci_high, np.float64)
    status = np.asarray(status)
    present = status >= 0  # status -1: not in the store
    ok = present & (status == 0)
    finite = ok & np.isfinite(estimate)
    est = estimate[finite]
    m = int(est.size)
    row = dict(n_reps=int(present.sum()), n_failed=int((present & (status != 0)).sum()),
               n_nonfinite=int((ok & ~np.isfinite(estimate)).sum()), n_used=m,
               truth=float(truth))
    row["sd"] = float(np.std(est, ddof=1)) if m > 1 else math.nan
    err = est - truth
    row["bias"], _ = _mean_se(err)
    row["bias_se"] = row["sd"] / math.sqrt(m) if m > 1 else math.nan
    row["mse"], row["mse_se"] = _mean_se(err ** 2)
    row["rmse"] = math.sqrt(row["mse"]) if m else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        row["log_mse"] = math.log(row["mse"]) if m and row["mse"] > 0 else math.nan
        row["log_mse_se"] = row["mse_se"] / row["mse"] if m and row["mse"] > 0 else math.nan
        row["mean_log_sq_err"], row["mean_log_sq_err_se"] = _mean_se(np.log(err ** 2))
        row["log_abs_bias"] = math.log(abs(row["bias"])) if m and row["bias"] != 0 else math.nan
    ci_ok = np.isfinite(ci_low[finite]) & np.isfinite(ci_high[finite])
    m_ci = int(ci_ok.sum())
    if m_ci and math.isfinite(truth):
        covered = (ci_low[finite][ci_ok] <= truth) & (truth <= ci_high[finite][ci_ok])
        p = float(covered.mean())
        row["coverage"], row["coverage_se"] = p, math.sqrt(p * (1.0 - p) / m_ci)
    else:
        row["coverage"] = row["coverage_se"] = math.nan
    se_f = se[finite][np.isfinite(se[finite])]
    row["mean_se"] = float(se_f.mean()) if se_f.size else math.nan
    row["se_sd_ratio"] = row["mean_se"] / row["sd"] if m > 1 and row["sd"] > 0 else math.nan
    pair = np.isfinite(se[finite])
    row["se_sd_ratio_se"], row["rms_se_sd_ratio"], row["rms_se_sd_ratio_se"] = \
        se_sd_ratio_errors(est[pair], se[finite][pair])
    return row


def se_sd_ratio_errors(estimate, se) -> tuple[float, float, float]:
    """(Monte Carlo SE of mean(se) / sd(estimate), sqrt(mean se²) / sd(estimate), its Monte
    Carlo SE), by the delta method (module docstring) over paired 1-D replications; NaN with
    fewer than 3 replications or a zero SD (SEs all zero: RMS ratio 0, the SEs NaN).

    With a constant SE and normal estimates the error is that of the SD alone, about
    1 / sqrt(2 m) = 0.035 at m = 400:

    >>> import numpy as np
    >>> est = np.random.default_rng(0).normal(size=400)
    >>> [round(x, 2) for x in se_sd_ratio_errors(est, np.ones(400))]
    [0.04, 1.0, 0.04]
    """
    estimate, se = np.asarray(estimate, np.float64), np.asarray(se, np.float64)
    m = estimate.size
    if m < 3:
        return math.nan, math.nan, math.nan
    dev2 = (estimate - estimate.mean()) ** 2
    var = float(dev2.sum() / (m - 1))
    if not var > 0:
        return math.nan, math.nan, math.nan
    sd_part = (dev2 - var) / (2.0 * var)
    mean_se, mean_sq = float(se.mean()), float((se ** 2).mean())
    if not mean_sq > 0:  # every SE zero: the ratios are 0, their delta-method SE undefined
        return math.nan, 0.0, math.nan
    ratio, rms = mean_se / math.sqrt(var), math.sqrt(mean_sq / var)
    infl = (se - mean_se) / mean_se - sd_part
    infl_rms = 0.5 * (se ** 2 - mean_sq) / mean_sq - sd_part
    scale = 1.0 / math.sqrt(m)
    return (ratio * float(np.std(infl, ddof=1)) * scale, rms,
            rms * float(np.std(infl_rms, ddof=1)) * scale)


def summarize(result, truth: Mapping[str, float] | None = None):
    """Summary table of a ``StudyResult``: one row per cell × estimator × effect.

    Args:
      result: a ``StudyResult``.
      truth: ``{effect: true value}``; default ``result.truth``. Effects without a truth
        get NaN error metrics.

    Returns:
      A pandas DataFrame with the columns ``SUMMARY_COLUMNS`` (see the module docstring
      for the definitions).
    """
    import pandas as pd

    truth = dict(result.truth if truth is None else truth)
    rows = []
    defined = ~np.all(np.isnan(result.estimate), axis=(0, 1))  # (E, K)
    for c, (n, h) in enumerate(result.grid):
        for e, est_name in enumerate(result.estimators):
            for k, eff in enumerate(result.effects):
                if not defined[e, k]:
                    continue
                row = summarize_cell(result.estimate[c, :, e, k], result.se[c, :, e, k],
                                     result.ci_low[c, :, e, k], result.ci_high[c, :, e, k],
                                     result.status[c], truth.get(eff, math.nan))
                rows.append(dict(n=int(n), horizon=int(h), estimator=est_name, effect=eff, **row))
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (np.floating,)):
        return _clean(float(x))
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def write_summary(result, summary, out_dir) -> dict[str, str]:
    """Writes ``summary.json`` and ``summary.csv`` into ``out_dir``.

    ``summary.json`` schema (non-finite numbers are ``null``)::

        {"design", "estimator", "n": [grid n values], "horizon": [grid horizon values],
         "grid": [[n, horizon], ...], "reps", "seed", "key_data", "device", "devices",
         "dtype", "jax_version", "wall_s", "compile_s", "n_computed", "batch_size",
         "chunk_size", "truth": {effect: value},
         "cells": [{"n", "horizon", "estimator", "effect", "bias", "sd", "mse", "coverage",
                    ... every column of SUMMARY_COLUMNS}]}

    Returns:
      ``{"json": path, "csv": path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    doc = result.metadata()
    truth = sorted(set(summary["effect"])) if len(summary) else []
    doc["truth"] = {eff: float(summary.loc[summary["effect"] == eff, "truth"].iloc[0])
                    for eff in truth}
    doc["cells"] = summary.to_dict(orient="records")
    paths = {"json": os.path.join(out_dir, "summary.json"),
             "csv": os.path.join(out_dir, "summary.csv")}
    text = json.dumps(_clean(doc), indent=2, allow_nan=False)
    tmp = paths["json"] + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, paths["json"])
    summary.to_csv(paths["csv"] + ".part", index=False)
    os.replace(paths["csv"] + ".part", paths["csv"])
    return paths


def format_table(summary, columns=("bias", "sd", "rmse", "coverage")) -> str:
    """A plain-text table: one row per cell × estimator × effect with the given metrics.

    Below the table, a line names the estimators whose coverage is NaN and why (they report
    no confidence interval, e.g. DM has no analytic standard error).
    """
    if not len(summary):
        return "(no estimates)"
    cols = ["n", "horizon", "estimator", "effect", *columns, "n_used", "n_failed"]
    text = summary[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="NaN")
    if "coverage" in columns and "coverage" in summary:
        no_ci = summary.groupby("estimator", sort=False)["coverage"].apply(lambda c: c.isna().all())
        names = [str(e) for e, flag in no_ci.items() if flag]
        if names:
            text += (f"\ncoverage NaN for {', '.join(names)}: no confidence intervals reported "
                     f"(no standard error; DM's needs the bootstrap, MediationConfig(n_boot=B))")
    return text
