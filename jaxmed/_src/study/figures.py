"""Figures of a study like the papers': bias, log-MSE and CI coverage against N or T.

One column of panels per effect; rows: bias, log-MSE and (when the summary has CIs)
coverage of the nominal 95% CIs; one line per estimator, each with its own marker and
line style, points dodged slightly along x so that estimators with equal values (e.g.
Baseline_DM and Baseline_MR) stay visible. Error bars are ±1.96 Monte Carlo SE
(``bias_se``; ``log_mse_se`` or ``mean_log_sq_err_se``; ``coverage_se``). The x-axis is N if
N varies over the grid, else T; the other one is fixed and shown in the title. With both
varying, pass ``fixed={"horizon": 25}`` to select a slice. A caption under the panels says
what the error bars are.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["plot_study"]

_LOG_METRICS = {
    "log_mse": ("log_mse", "log_mse_se", "log(MSE)"),
    "paper": ("mean_log_sq_err", "mean_log_sq_err_se", "mean log(err²) (paper's 'logMSE')"),
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
_LINESTYLES = ("-", "--", "-.", ":")


def plot_study(summary, path, *, x: str | None = None, log_mse: str = "log_mse",
               fixed: Mapping[str, int] | None = None, title: str | None = None) -> dict:
    """Draws bias, log-MSE and coverage against N (or T) and saves a PNG.

    Args:
      summary: the DataFrame of ``summarize``.
      path: output PNG path.
      x: ``"n"`` or ``"horizon"``; default the one that varies (``"n"`` if both or neither).
      log_mse: ``"log_mse"`` (log of the MSE, default) or ``"paper"`` (mean of log squared
        errors, what the original plots called logMSE; spec mediation.md B9).
      fixed: optional ``{"n": value}`` or ``{"horizon": value}`` selecting a slice of the grid.
      title: optional figure title; the fixed T (or N) and the number of replications are
        appended.

    Returns:
      The plotted data: ``{(metric, effect, estimator): {"x", "y", "yerr", "x_drawn",
      "marker"}}`` with metric ``"bias"``, the log-MSE column name or ``"coverage"``, arrays
      sorted by x (``x`` the true values, ``x_drawn`` after the visual dodge); ``yerr`` is
      1.96 × MC SE. The PNG's text chunks hold the title and the caption.
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
    rows = [("bias", "bias_se", "bias"), (metric, metric_se, label)]
    if "coverage" in df and df["coverage"].notna().any():
        rows.append(("coverage", "coverage_se", "coverage of 95% CI"))
    effects = list(dict.fromkeys(df["effect"]))
    estimators = list(dict.fromkeys(df["estimator"]))
    xs_all = np.sort(df[x].unique().astype(np.float64))
    log_x = len(xs_all) > 1 and xs_all[0] > 0 and xs_all[-1] / xs_all[0] >= 4
    # dodge: estimator k is drawn at x * exp(offset_k) (log axis) or x + offset_k (linear axis)
    span = (np.log(xs_all[-1] / xs_all[0]) if log_x else xs_all[-1] - xs_all[0]) if len(xs_all) > 1 else 1.0
    width = 0.04 * span if len(xs_all) > 1 else 0.04 * max(abs(xs_all[0]), 1.0)
    offsets = (np.arange(len(estimators)) - (len(estimators) - 1) / 2) * width / max(len(estimators) - 1, 1)
    fig = Figure(figsize=(3.6 * len(effects), 2.9 * len(rows) + 0.9))  # Agg canvas, no pyplot
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(effects), squeeze=False)
    data = {}
    for j, eff in enumerate(effects):
        for i, (col, col_se, ylabel) in enumerate(rows):
            ax = axes[i, j]
            for k, est in enumerate(estimators):
                sub = df[(df["effect"] == eff) & (df["estimator"] == est)].sort_values(x)
                if not len(sub) or sub[col].isna().all():
                    continue
                xs = sub[x].to_numpy(np.float64)
                ys = sub[col].to_numpy(np.float64)
                yerr = 1.96 * sub[col_se].to_numpy(np.float64)
                shown = xs * np.exp(offsets[k]) if log_x else xs + offsets[k]
                data[(col, eff, est)] = dict(x=xs, y=ys, yerr=yerr, x_drawn=shown,
                                             marker=_MARKERS[k % len(_MARKERS)])
                ax.errorbar(shown, ys, yerr=np.where(np.isfinite(yerr), yerr, 0.0),
                            marker=_MARKERS[k % len(_MARKERS)], ms=5,
                            mfc="none" if k % 2 else None,
                            ls=_LINESTYLES[(k // len(_MARKERS) + k) % len(_LINESTYLES)],
                            lw=1.2, capsize=2, label=est, color=f"C{k % 10}")
            if col == "bias":
                ax.axhline(0.0, color="grey", lw=0.8)
                ax.set_title(eff)
            if col == "coverage":
                ax.axhline(0.95, color="grey", lw=0.8, ls="--")
                ax.set_ylim(-0.05, 1.05)
            if log_x:  # every panel spans the same x range, dodge included
                ax.set_xlim(xs_all[0] * np.exp(-width), xs_all[-1] * np.exp(width))
            else:
                ax.set_xlim(xs_all[0] - width, xs_all[-1] + width)
            if log_x:
                ax.set_xscale("log")
                want = np.geomspace(xs_all[0], xs_all[-1], min(len(xs_all), 4))
                ticks = xs_all[np.unique([np.argmin(np.abs(np.log(xs_all / w))) for w in want])]
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
                ax.minorticks_off()
            elif len(xs_all) <= 8:
                ax.set_xticks(xs_all, [f"{v:g}" for v in xs_all])
            ax.set_xlabel("N (trajectories)" if x == "n" else "T (steps per trajectory)")
            if j == 0:
                ax.set_ylabel(ylabel)
    handles, labels = [], []
    for ax in axes.ravel():  # every estimator that is drawn somewhere
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 7),
                   bbox_to_anchor=(0.5, 0.965), frameon=False)
    fixed_value = df[other].iloc[0]
    reps = int(df["n_reps"].max()) if "n_reps" in df else None
    head = f"{'T' if other == 'horizon' else 'N'} = {fixed_value}"
    if reps is not None:
        head += f", {reps} replications per point"
    suptitle = f"{title}; {head}" if title else head
    fig.suptitle(suptitle, y=0.995)
    caption = ("Error bars: ±1.96 Monte Carlo SE over the replications (a 95% interval for the "
               "plotted mean). Points of different estimators are shifted slightly along x so "
               "that equal values stay visible.")
    if rows[-1][0] == "coverage":
        caption += " Coverage: share of the nominal 95% CIs containing the truth (dashed: 0.95)."
    fig.text(0.5, 0.005, caption, ha="center", va="bottom", fontsize=8, wrap=True)
    # a fixed layout in inches (tick labels, axis labels, title, legend and caption have
    # known sizes here): ``tight_layout`` and ``bbox_inches="tight"`` measured every text of
    # the 15 panels twice, about a third of a warm quickstart's wall time
    w_in, h_in = fig.get_size_inches()
    legend_rows = -(-len(labels) // 7) if handles else 0  # ``ncol`` is at most 7 above
    left, right, bottom, top = 0.8, 0.15, 0.95, 0.55 + 0.4 * legend_rows  # inches
    gap_w, gap_h = 0.75, 0.75  # between panels: tick labels, axis labels (inches)
    ncol, nrow = len(effects), len(rows)
    ax_w = (w_in - left - right - (ncol - 1) * gap_w) / ncol
    ax_h = (h_in - bottom - top - (nrow - 1) * gap_h) / nrow
    fig.subplots_adjust(left=left / w_in, right=1 - right / w_in, bottom=bottom / h_in,
                        top=1 - top / h_in, wspace=gap_w / ax_w, hspace=gap_h / ax_h)
    # the PNG also carries its title and caption as text chunks (readable without OCR)
    fig.savefig(path, dpi=110, metadata={"Title": suptitle, "Description": caption},
                pil_kwargs={"compress_level": 3})
    return data
