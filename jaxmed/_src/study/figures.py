"""Figures of a study like the papers': bias and log-MSE against N or T.

One column of panels per effect, two rows (bias; log-MSE), one line per estimator, error
bars ±1.96 Monte Carlo SE (``bias_se``; ``log_mse_se`` or ``mean_log_sq_err_se``). The
x-axis is N if N varies over the grid, else T; with both varying, one figure per fixed
value of the other is not drawn here: pass ``fixed={"horizon": 25}`` to select a slice.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["plot_study"]

_LOG_METRICS = {
    "log_mse": ("log_mse", "log_mse_se", "log(MSE)"),
    "paper": ("mean_log_sq_err", "mean_log_sq_err_se", "mean log(err²) (paper's 'logMSE')"),
}


def plot_study(summary, path, *, x: str | None = None, log_mse: str = "log_mse",
               fixed: Mapping[str, int] | None = None, title: str | None = None) -> dict:
    """Draws bias and log-MSE against N (or T) and saves a PNG.

    Args:
      summary: the DataFrame of ``summarize``.
      path: output PNG path.
      x: ``"n"`` or ``"horizon"``; default the one that varies (``"n"`` if both or neither).
      log_mse: ``"log_mse"`` (log of the MSE, default) or ``"paper"`` (mean of log squared
        errors, what the original plots called logMSE; spec mediation.md B9).
      fixed: optional ``{"n": value}`` or ``{"horizon": value}`` selecting a slice of the grid.
      title: optional figure title.

    Returns:
      The plotted data: ``{(metric, effect, estimator): {"x", "y", "yerr"}}`` with metric
      ``"bias"`` or the log-MSE column name, arrays sorted by x; ``yerr`` is 1.96 × MC SE.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if log_mse not in _LOG_METRICS:
        raise ValueError(f"log_mse: expected 'log_mse' or 'paper', got {log_mse!r}")
    df = summary
    for col, value in (fixed or {}).items():
        if col not in ("n", "horizon"):
            raise ValueError(f"fixed: keys must be 'n' or 'horizon', got {col!r}")
        df = df[df[col] == value]
    if not len(df):
        raise ValueError("summary: no rows to plot")
    if x is None:
        x = "horizon" if df["n"].nunique() == 1 and df["horizon"].nunique() > 1 else "n"
    if x not in ("n", "horizon"):
        raise ValueError(f"x: expected 'n' or 'horizon', got {x!r}")
    other = "horizon" if x == "n" else "n"
    if df[other].nunique() > 1:
        raise ValueError(f"summary: {other} varies too ({sorted(df[other].unique())}); pass "
                         f"fixed={{{other!r}: value}} to plot one slice")
    metric, metric_se, label = _LOG_METRICS[log_mse]
    effects = list(dict.fromkeys(df["effect"]))
    estimators = list(dict.fromkeys(df["estimator"]))
    fig = Figure(figsize=(3.6 * len(effects), 6.4))  # Agg canvas: no pyplot, no global backend
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(effects), squeeze=False)
    data = {}
    for j, eff in enumerate(effects):
        for i, (col, col_se, ylabel) in enumerate((("bias", "bias_se", "bias"),
                                                   (metric, metric_se, label))):
            ax = axes[i, j]
            for est in estimators:
                sub = df[(df["effect"] == eff) & (df["estimator"] == est)].sort_values(x)
                if not len(sub) or sub[col].isna().all():
                    continue
                xs = sub[x].to_numpy(np.float64)
                ys = sub[col].to_numpy(np.float64)
                yerr = 1.96 * sub[col_se].to_numpy(np.float64)
                data[(col, eff, est)] = dict(x=xs, y=ys, yerr=yerr)
                ax.errorbar(xs, ys, yerr=np.where(np.isfinite(yerr), yerr, 0.0), marker="o",
                            ms=3, capsize=2, label=est)
            if col == "bias":
                ax.axhline(0.0, color="grey", lw=0.8)
                ax.set_title(eff)
            ax.set_xlabel("N" if x == "n" else "T")
            if j == 0:
                ax.set_ylabel(ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 8),
                   bbox_to_anchor=(0.5, 0.95))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93 if handles else 0.96))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return data
