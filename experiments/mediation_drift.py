"""Issue 15: the stationary pipeline vs the calendar-time pipeline under exogenous drift.

Usage:
  PYTHONPATH=. python3 experiments/mediation_drift.py run STRENGTH N T REPS   # one cell
  PYTHONPATH=. python3 experiments/mediation_drift.py run STRENGTH N T REPS --se=ij  # IJ SEs
  PYTHONPATH=. python3 experiments/mediation_drift.py summary                 # results

``run`` simulates ``semi-synthetic-drift`` with strength STRENGTH (``none``/``small``/``large``
or a number) and estimates with ``time_effects_estimator_spec`` (both pipelines on the same
data and key: rows MR, DM, MIS1, MIS2 and the same with ``-time``), storing chunks of 10
replications under runs/drift/<strength>_<N>_<T> (``jaxmed.study.run`` resumes a store).
``summary`` reads every store, compares with the cached truth of (strength, T)
(``jaxmed/_src/sim/drift_truths.json``) and writes experiments/results/mediation_drift.csv,
.json and .png: bias, its Monte Carlo SE, SD, RMSE, MSE and 95% coverage (Wald intervals
with the cluster SEs; DM has no SE without a bootstrap) per estimator × effect × cell,
with the number of replications that ran.

``--se=ij`` runs the same cell (same data and key, so the same estimates) with the
infinitesimal-jackknife sandwich SE of both pipelines (``MediationConfig(se_method="ij")``),
rows MR and MR-time only (their reverse passes only), into runs/drift/<cell>_ij; ``summary``
reports those stores' coverage and mean SE / SD separately (``ij_records`` in the json).
"""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import numpy as np

from jaxmed._src import policies as P
from jaxmed._src.mediation.time_effects import TIME_RATIO_FEATURES, time_effects_estimator_spec
from jaxmed._src.sim import drift as D

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "runs", "drift")
RESULTS = os.path.join(ROOT, "experiments", "results")
SEED = 15
EFFECTS = ("IDE", "IME", "DDE", "DME", "ATE")
# version of the "-time" rows: "default" = mediation_effects_time's defaults (mediator model
# with calendar time), "mediator without τ" = mediator_time=False (stores with suffix _mtoff).
# Cells whose stores are gone keep their stored records in the summary (session 4: default).
DEFAULT, MTOFF = "default", "mediator without τ"
IJ_ROWS = ("MR", "MR-time")
# the calendar-time pipeline's ratio features before session 11 (stored records without the field)
OLD_RATIO_FEATURES = 15


class CellDesign:
    """The drift design for one strength, without a truth (the runner would compute it)."""

    def __init__(self, strength: float):
        self.strength = float(strength)
        self.name = f"semi-synthetic-drift-{self.strength:g}"

    def simulate(self, key, n, horizon):
        return D.simulate_semi_synthetic_drift(key, n, horizon, strength=self.strength)


def _strength(s: str) -> float:
    return D.DRIFT_STRENGTHS[s] if s in D.DRIFT_STRENGTHS else float(s)


def store_path(strength: float, n: int, horizon: int, mediator_time: bool = True,
               se: str = "cluster") -> str:
    return os.path.join(RUNS, f"{strength:g}_{n}_{horizon}" + ("" if mediator_time else "_mtoff")
                        + ("_ij" if se == "ij" else ""))


def run_cell(strength: float, n: int, horizon: int, reps: int, mediator_time: bool = True,
             se: str = "cluster") -> None:
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.study.catalog import select_estimators
    from jaxmed._src.study.runner import run

    spec = time_effects_estimator_spec(P.semi_synthetic_target_policy(),
                                       config=MediationConfig(se_method=se),
                                       mediator_time=mediator_time)
    if se == "ij":
        spec = select_estimators(spec, IJ_ROWS)
    t0 = time.time()
    done = []
    run(CellDesign(strength), spec, [(n, horizon)], reps, SEED,
        out=store_path(strength, n, horizon, mediator_time, se),
        chunk_size=10, batch_size=1, progress=lambda c, r: done.append(len(r)) or print(
            f"{strength:g} N={n} T={horizon}: {sum(done)} new reps, {time.time() - t0:.0f} s",
            flush=True))


def cell_summary(strength: float, n: int, horizon: int, mediator_time: bool = True,
                 se: str = "cluster") -> list[dict]:
    from jaxmed._src.study.runner import load

    res = load(store_path(strength, n, horizon, mediator_time, se))
    se_method = se  # (``se`` is reused below for the SEs of one cell)
    truth = D.cached_drift_truth(strength, horizon)
    ok = np.asarray(res.status[0]) == 0
    recs = []
    for i, est in enumerate(res.estimators):
        for j, eff in enumerate(EFFECTS):
            x = np.asarray(res.estimate[0, ok, i, j])
            if x.size == 0 or np.isnan(x).all():
                continue
            t = truth.effects[eff]
            err = x - t
            se = np.asarray(res.se[0, ok, i, j])
            lo, hi = np.asarray(res.ci_low[0, ok, i, j]), np.asarray(res.ci_high[0, ok, i, j])
            cover = float(np.mean((lo <= t) & (t <= hi))) if np.isfinite(se).all() else float("nan")
            recs.append(dict(
                strength=strength, n=n, horizon=horizon, estimator=est, effect=eff,
                reps=int(x.size), failed=int((~ok & (np.asarray(res.status[0]) != -1)).sum()),
                truth=t, truth_se=truth.se[eff], mean=float(x.mean()), bias=float(err.mean()),
                bias_mcse=float(x.std(ddof=1) / np.sqrt(x.size)), sd=float(x.std(ddof=1)),
                rmse=float(np.sqrt(np.mean(err ** 2))), mse=float(np.mean(err ** 2)),
                mean_se=float(np.mean(se)) if np.isfinite(se).all() else float("nan"),
                coverage=cover, version=DEFAULT if mediator_time else MTOFF, se_method=se_method,
                time_ratio_features=TIME_RATIO_FEATURES))
    return recs


def _against_cached_truth(r: dict) -> dict:
    """A stored record (its store gone) with bias, MSE and RMSE against the current cached
    truth (recomputed from its mean and SD); its coverage stays against the truth it was
    computed with (``coverage_truth``)."""
    t = D.cached_drift_truth(r["strength"], r["horizon"])
    new_t = t.effects[r["effect"]]
    if r["truth"] == new_t:
        return r
    bias = r["mean"] - new_t
    mse = r["sd"] ** 2 * (r["reps"] - 1) / r["reps"] + bias ** 2
    return dict(r, truth=new_t, truth_se=t.se[r["effect"]], bias=bias, mse=mse,
                rmse=float(np.sqrt(mse)), coverage_truth=r.get("coverage_truth", r["truth"]))


def paired_differences(strength: float, n: int, horizon: int, mediator_time: bool = True,
                       a: str = "MR-time", b: str = "MR") -> dict:
    """Mean ± SE over replications of (a − b) per effect on the same data (a paired
    comparison: far smaller Monte Carlo error than either bias)."""
    from jaxmed._src.study.runner import load

    res = load(store_path(strength, n, horizon, mediator_time))
    ok = np.asarray(res.status[0]) == 0
    ia, ib = res.estimators.index(a), res.estimators.index(b)
    d = np.asarray(res.estimate[0, ok, ia, :]) - np.asarray(res.estimate[0, ok, ib, :])
    out = dict(strength=strength, n=n, horizon=horizon, a=a, b=b, reps=int(ok.sum()),
               version=DEFAULT if mediator_time else MTOFF)
    for j, eff in enumerate(EFFECTS):
        out[eff] = float(d[:, j].mean())
        out[eff + "_se"] = float(d[:, j].std(ddof=1) / np.sqrt(d.shape[0]))
    return out


def summary() -> list[dict]:
    import pandas as pd

    with open(D.DRIFT_TRUTHS_PATH) as f:
        cached = json.load(f)
    recs, paired, ij_recs = [], [], []
    for entry in sorted(os.listdir(RUNS)) if os.path.isdir(RUNS) else []:
        strength, n, horizon, *rest = entry.split("_")
        if D.drift_truth_name(float(strength), int(horizon)) not in cached:
            print(f"{entry}: no cached truth, skipped (run experiments/drift_truths.py)")
            continue
        if rest and rest[-1] == "ij":
            ij_recs += cell_summary(float(strength), int(n), int(horizon), rest != ["mtoff", "ij"],
                                    "ij")
            continue
        mt = rest != ["mtoff"]
        cell = cell_summary(float(strength), int(n), int(horizon), mt)
        # the stationary rows of an _mtoff store repeat the default store's (same data, key)
        have_default = os.path.isdir(store_path(float(strength), int(n), int(horizon)))
        recs += [r for r in cell if mt or r["estimator"].endswith("-time") or not have_default]
        paired.append(paired_differences(float(strength), int(n), int(horizon), mt))
    # keep the stored records that no store here replaces (older runs: session 4, default)
    key = lambda r: (r["strength"], r["n"], r["horizon"], r["estimator"], r["effect"],  # noqa: E731
                     r.get("version", DEFAULT))
    have = {key(r) for r in recs}
    old_path = os.path.join(RESULTS, "mediation_drift.json")
    if os.path.exists(old_path):
        with open(old_path) as f:
            old = json.load(f)
        # records from before session 11 ran the calendar-time pipeline with 15 ratio features
        recs += [_against_cached_truth(dict(r, version=r.get("version", DEFAULT),
                                            time_ratio_features=r.get("time_ratio_features",
                                                                      OLD_RATIO_FEATURES)))
                 for r in old["records"] if key(r) not in have]
        have_p = {(p["strength"], p["n"], p["horizon"], p["version"]) for p in paired}
        paired += [p for p in old.get("paired_differences_mr_time_minus_mr", [])
                   if (p["strength"], p["n"], p["horizon"], p["version"]) not in have_p]
        have_ij = {key(r) for r in ij_recs}
        ij_recs += [dict(r, time_ratio_features=r.get("time_ratio_features", OLD_RATIO_FEATURES))
                    for r in old.get("ij_records", []) if key(r) not in have_ij]
    ij_recs.sort(key=lambda r: (r["strength"], r["n"], r["horizon"], r["version"] != DEFAULT))
    # stationary rows do not depend on the option: keep an _mtoff store's only without a default
    base = {key(r)[:5] for r in recs if r["version"] == DEFAULT}
    recs = [r for r in recs if r["version"] == DEFAULT or r["estimator"].endswith("-time")
            or key(r)[:5] not in base]
    recs.sort(key=lambda r: (r["strength"], r["n"], r["horizon"], r["version"] != DEFAULT))
    df = pd.DataFrame.from_records(recs)
    os.makedirs(RESULTS, exist_ok=True)
    df.to_csv(os.path.join(RESULTS, "mediation_drift.csv"), index=False, float_format="%.5g")
    with open(os.path.join(RESULTS, "mediation_drift.json"), "w") as f:
        json.dump(dict(seed=SEED, jax_version=jax.__version__,
                       estimand="window average at the periodic steady state "
                                "(docs/nonstationary_mediation.md)",
                       records=recs, paired_differences_mr_time_minus_mr=paired,
                       ij_records=ij_recs), f, indent=1)
    for p in paired:
        print(f"MR-time − MR, κ={p['strength']:g} N={p['n']} T={p['horizon']} ({p['version']}, "
              f"{p['reps']} reps): "
              + ", ".join(f"{e} {p[e]:+.4f} ± {p[e + '_se']:.4f}" for e in EFFECTS))
    plot(df)
    if ij_recs:
        print(ij_markdown(ij_recs))
    return recs


def plot(df) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mr = df[df.estimator.isin(["MR", "MR-time"]) & (df.version == DEFAULT)]  # default estimator
    cells = mr[["n", "horizon"]].drop_duplicates().sort_values(["n", "horizon"]).values.tolist()
    fig, axes = plt.subplots(2, len(EFFECTS), figsize=(3.2 * len(EFFECTS), 6.4), squeeze=False)
    for j, eff in enumerate(EFFECTS):
        for (n, h), marker in zip(cells, "osD^v"):
            for est, color in (("MR", "tab:red"), ("MR-time", "tab:blue")):
                d = mr[(mr.effect == eff) & (mr.estimator == est) & (mr.n == n) & (mr.horizon == h)]
                d = d.sort_values("strength")
                if d.empty:
                    continue
                label = f"{est} N={n} T={h}"
                axes[0, j].errorbar(d.strength, d.bias, yerr=2 * d.bias_mcse, color=color,
                                    marker=marker, capsize=2, label=label)
                axes[1, j].plot(d.strength, d.coverage, color=color, marker=marker, label=label)
        axes[0, j].axhline(0, color="k", lw=0.5)
        axes[1, j].axhline(0.95, color="k", lw=0.5)
        axes[0, j].set_title(eff)
        axes[1, j].set_xlabel("drift strength κ")
        axes[1, j].set_ylim(0, 1)
    axes[0, 0].set_ylabel("bias (± 2 MC SE)")
    axes[1, 0].set_ylabel("95% coverage")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle("semi-synthetic-drift: stationary MR (red) vs calendar-time MR (blue)")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "mediation_drift.png"), dpi=110)


def markdown(recs, estimators=("MR", "MR-time")) -> str:
    """Table rows: cell, estimator, then bias ± MC SE (coverage) per effect."""
    lines = ["| κ | N | T | reps | estimator | " + " | ".join(EFFECTS) + " |",
             "|---|---|---|---|---|" + "---|" * len(EFFECTS)]
    cells = sorted({(r["strength"], r["n"], r["horizon"]) for r in recs})
    for cell in cells:
        for est, version in ((e, v) for e in estimators for v in (DEFAULT, MTOFF)):
            rs = {r["effect"]: r for r in recs if (r["strength"], r["n"], r["horizon"]) == cell
                  and r["estimator"] == est and r.get("version", DEFAULT) == version}
            if not rs:
                continue
            reps = next(iter(rs.values()))["reps"]
            vals = [f"{rs[k]['bias']:+.3f} ± {rs[k]['bias_mcse']:.3f} ({rs[k]['coverage']:.2f})"
                    for k in EFFECTS]
            label = f"{est} ({version})" if version != DEFAULT else est
            if est.endswith("-time") and next(iter(rs.values())).get(
                    "time_ratio_features", OLD_RATIO_FEATURES) != TIME_RATIO_FEATURES:
                label += " [15 ratio features, before session 11]"
            lines.append(f"| {cell[0]:g} | {cell[1]} | {cell[2]} | {reps} | {label} | "
                         + " | ".join(vals) + " |")
    return "\n".join(lines)


def ij_markdown(recs) -> str:
    """Table rows of the IJ-SE stores: cell, estimator, then coverage (mean SE / SD) per effect."""
    lines = ["| κ | N | T | reps | estimator | " + " | ".join(EFFECTS) + " |",
             "|---|---|---|---|---|" + "---|" * len(EFFECTS)]
    cells = sorted({(r["strength"], r["n"], r["horizon"]) for r in recs})
    for cell in cells:
        for est in IJ_ROWS:
            rs = {r["effect"]: r for r in recs if (r["strength"], r["n"], r["horizon"]) == cell
                  and r["estimator"] == est and r["version"] == DEFAULT}
            if not rs:
                continue
            reps = next(iter(rs.values()))["reps"]
            vals = [f"{rs[k]['coverage']:.3f} ({rs[k]['mean_se'] / rs[k]['sd']:.2f})" for k in EFFECTS]
            label = est
            if est.endswith("-time") and next(iter(rs.values())).get(
                    "time_ratio_features", OLD_RATIO_FEATURES) != TIME_RATIO_FEATURES:
                label += " [15 ratio features, before session 11]"
            lines.append(f"| {cell[0]:g} | {cell[1]} | {cell[2]} | {reps} | {label} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    if sys.argv[1] == "run":
        run_cell(_strength(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                 mediator_time="--mediator-time=off" not in sys.argv[6:],
                 se="ij" if "--se=ij" in sys.argv[6:] else "cluster")
    else:
        print(markdown(summary()))
