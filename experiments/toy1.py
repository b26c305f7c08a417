"""Toy I: robustness of the MR estimator to misspecified nuisance models (spec §7.4, §10.5).

Design ``toy1`` (binary S, A, M; R ∈ {0, 10}), T = 50, N ∈ {30, 60, …, 300}, 200
replications. As in the original, the nuisances are not fitted: each is either the exact
truth or a deliberately corrupted ("false") version, drawn afresh per replication from the
replication's estimation key (the same draws for all five combinations of a replication):

* Q_k (k = 1..5): the exact solution of the average-reward Bellman equation on the 8 cells
  (s, a, m), normalised to Q(0, 0, 0) = 0; false: Q_k + δ_k on the 7 other cells,
  δ_k = μ_k + z, z ~ N(0, I_7), μ = (1, 0.5, 2, 1.5, 1.5);
* η: the exact η1..η5; false: η + N(1.5, 1) per coordinate;
* p_m: P(M = 1 | s, a); false: P(M = 1 | s, a) × U, U ~ U(0.1, 3), clipped to [0.01, 0.99];
* r: r(s, a, m); false: r + c·[1, a, s, m, as, am, sm, asm] with c ~ N(−1, 1)^8;
* π_b: P(A = 1 | s); false: P(A = 1 | s) × V, V ~ U(0.6, 1.1), clipped to [0.01, 0.99];
* ω^ν = d^ν / d^b from the exact stationary laws; false: ω^{π_e} ± 0.25 (+ at s = 1),
  ω^{π_0} and ω^{G} ∓ 0.3 (− at s = 1). Not renormalised.

The original re-seeds its generator with the replication seed at every call of a false
model (spec §7.4), so one draw is shared by every call of a replication: we draw one z for
all five Q's, one U for every (s, a) cell and one V for both states. (Independent draws per
cell were tried first: the M1 DDE/DME errors then have very heavy tails — a cell with
P̂(M = 1) clipped at 0.99 makes ρ ≈ 100 on its M = 0 rows — unlike the original's.)

Combinations (which models are wrong): All correct; M1: Q, η, p_m (ratio, reward, π_b
correct); M2: Q, η, r (ratio, p_m, π_b correct); M3: ratio, π_b (Q, η, p_m, r correct);
All incorrect. Each gives the MR estimate of IDE, IME, DDE, DME (and ATE) through the library's
injected-nuisance building blocks: ``nuisance_predictions_from_functions``-style Bernoulli
``NuisancePredictions``, ``q_feature_rows`` + ``q_temporal_differences`` for the Δ's of the
injected Q's, ``row_importance_weights`` (ρ unclipped) and ``estimator_rows``; trajectory-
cluster SEs. Differences from the original: exact stationary ratios (the original used Monte
Carlo stationary probabilities, B11), the observed S' in the temporal differences.

Usage:
  PYTHONPATH=. nice -n 10 python3 experiments/toy1.py            # paper size
  PYTHONPATH=. nice -n 10 python3 experiments/toy1.py --reduced  # smoke run (< 2 min)
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.estimators import EFFECTS, estimator_rows, row_importance_weights
from jaxmed._src.mediation.nuisance import NuisancePredictions
from jaxmed._src.mediation.q_function import QBasis, q_feature_rows, q_temporal_differences
from jaxmed._src.mediation.uncertainty import cluster_se
from jaxmed._src.precision import precision
from jaxmed.sim import get_design

try:  # run as a script or imported as experiments.toy1
    from experiments import toy_common as common
except ImportError:  # pragma: no cover
    import toy_common as common

__all__ = ["COMBOS", "WRONG", "Q_SHIFT_MEANS", "ToyTables", "toy_tables", "stationary_p1",
           "exact_q_table", "q_table_to_beta", "policy_cell_weights", "perturbed_tables",
           "toy1_mr", "toy1_estimator_spec"]

COMBOS = ("All_correct", "M1", "M2", "M3", "All_incorrect")
ORIGINAL_LABELS = dict(All_correct="All_correct", M1="M1_ratio_reward_pa_correct",
                       M2="M2_ratio_pm_pa_correct", M3="M3_Q_eta_pm_reward_correct",
                       All_incorrect="All_incorrect")
_ALL = frozenset({"q", "eta", "pm", "r", "ratio", "pb"})
WRONG = {"All_correct": frozenset(), "M1": frozenset({"q", "eta", "pm"}),
         "M2": frozenset({"q", "eta", "r"}), "M3": frozenset({"ratio", "pb"}),
         "All_incorrect": _ALL}
Q_SHIFT_MEANS = (1.0, 0.5, 2.0, 1.5, 1.5)
CELLS = list(itertools.product((0, 1), repeat=3))  # (s, a, m); CELLS[0] = (0, 0, 0) reference


class ToyTables(NamedTuple):
    """Exact nuisances of a binary toy design as tables (float64 numpy or jax arrays).

    Attributes:
      pe, pb: ``(2,)`` P(A = 1 | s) of π_e and π_b.
      pm: ``(2, 2)`` P(M = 1 | s, a).
      r: ``(2, 2, 2)`` r(s, a, m) = E[R | s, a, m].
      p_next: ``(2, 2, 2)`` P(S' = 1 | s, a, m).
      q: ``(5, 2, 2, 2)`` Q_1..Q_5(s, a, m) with Q(0, 0, 0) = 0.
      eta: ``(5,)`` η1..η5.
      ratio: ``(3, 2)`` ω(s) = d^ν(s) / d^b(s) for ν = π_e, G, π_0.
      stationary: ``(4,)`` P(S = 1) under π_e, G, π_0, π_b.
    """

    pe: object
    pb: object
    pm: object
    r: object
    p_next: object
    q: object
    eta: object
    ratio: object
    stationary: object


def stationary_p1(p1_given_s) -> float:
    """P(S = 1) of the 2-state chain with P(S' = 1 | s) = ``p1_given_s[s]``.

    >>> round(stationary_p1([0.2, 0.6]), 12)
    0.333333333333
    """
    p01, p11 = float(p1_given_s[0]), float(p1_given_s[1])
    return p01 / (p01 + 1.0 - p11)


def policy_cell_weights(policy: str, pe, pm, a0: int = 0) -> np.ndarray:
    """W[s', a', m'] = P(A' = a', M' = m' | S' = s') under ``policy`` ∈ {"pe", "G", "p0"}.

    π_e: π_e(a'|s') p_m(m'|s', a'); π_0: 1{a' = a0} p_m(m'|s', a0);
    G: 1{a' = a0} Σ_{a*} π_e(a*|s') p_m(m'|s', a*) (spec §1.2).
    """
    pe, pm = np.asarray(pe, np.float64), np.asarray(pm, np.float64)
    bern = lambda p, x: p if x == 1 else 1.0 - p  # noqa: E731
    w = np.zeros((2, 2, 2))
    for s, a, m in CELLS:
        if policy == "pe":
            w[s, a, m] = bern(pe[s], a) * bern(pm[s, a], m)
        elif policy == "p0":
            w[s, a, m] = float(a == a0) * bern(pm[s, a0], m)
        elif policy == "G":
            w[s, a, m] = float(a == a0) * sum(bern(pe[s], b) * bern(pm[s, b], m) for b in (0, 1))
        else:
            raise ValueError(f"policy: expected 'pe', 'G' or 'p0', got {policy!r}")
    return w


def exact_q_table(y, weights, p_next):
    """Exact average-reward Bellman solution on the 8 cells, normalised to Q(0, 0, 0) = 0.

    Solves Q(c) + η − Σ_{s'} P(s'|c) Σ_{a', m'} W[s', a', m'] Q(s', a', m') = y(c) for every cell
    c = (s, a, m), together with Q(0, 0, 0) = 0.

    Args:
      y: ``(2, 2, 2)`` target y(s, a, m).
      weights: ``(2, 2, 2)`` W of ``policy_cell_weights``.
      p_next: ``(2, 2, 2)`` P(S' = 1 | s, a, m).

    Returns:
      ``(Q (2, 2, 2), η)``.
    """
    y, weights, p_next = (np.asarray(x, np.float64) for x in (y, weights, p_next))
    idx = {c: i for i, c in enumerate(CELLS)}
    lhs = np.zeros((9, 9))
    rhs = np.zeros(9)
    for c in CELLS:
        i = idx[c]
        lhs[i, i] += 1.0
        lhs[i, 8] = 1.0
        for s_next in (0, 1):
            p = p_next[c] if s_next == 1 else 1.0 - p_next[c]
            for a2, m2 in itertools.product((0, 1), repeat=2):
                lhs[i, idx[(s_next, a2, m2)]] -= p * weights[s_next, a2, m2]
        rhs[i] = y[c]
    lhs[8, 0] = 1.0  # Q(0, 0, 0) = 0
    sol = np.linalg.solve(lhs, rhs)
    q = np.zeros((2, 2, 2))
    for c in CELLS:
        q[c] = sol[idx[c]]
    return q, float(sol[8])


def q_table_to_beta(q) -> np.ndarray:
    """Coefficients β ``(7,)`` of the library's binary Q basis for a table with Q(0, 0, 0) = 0.

    The basis (``MediationConfig(q_basis="binary")``, d_S = d_M = 1) is
    u(s, m, a) = [(1−a)s, (1−a)m, (1−a)sm, a s, a m, a sm, a].
    """
    q = np.asarray(q, np.float64)
    u = np.array([[(1 - a) * s, (1 - a) * m, (1 - a) * s * m, a * s, a * m, a * s * m, a]
                  for s, a, m in CELLS], dtype=np.float64)
    beta, *_ = np.linalg.lstsq(u, np.array([q[c] for c in CELLS]), rcond=None)
    return beta


def toy_tables(design_name: str = "toy1", a0: int = 0) -> ToyTables:
    """Exact tables of a binary toy design (``toy1``, ``toy2-state``, ``toy2-iid``)."""
    design = get_design(design_name)
    nu = design.nuisances
    with precision(np.float64):
        f = lambda fn, *args: float(fn(*(jnp.asarray(x, jnp.float64) for x in args)))  # noqa: E731
        pe = np.array([f(design.target_policy.prob_one, [s]) for s in (0, 1)])
        pb = np.array([f(design.behaviour_policy.prob_one, [s]) for s in (0, 1)])
        pm = np.array([[f(nu["mediator_prob"], [s], a) for a in (0, 1)] for s in (0, 1)])
        r = np.zeros((2, 2, 2))
        p_next = np.zeros((2, 2, 2))
        for s, a, m in CELLS:
            r[s, a, m] = f(nu["reward_mean"], [s], a, [m])
            p_next[s, a, m] = f(nu["next_state_prob"], [s], a, [m])
    w = {k: policy_cell_weights(k, pe, pm, a0) for k in ("pe", "G", "p0")}
    y_r = r
    y_a0m = np.broadcast_to(r[:, a0:a0 + 1, :], (2, 2, 2))
    y_3 = np.broadcast_to((pm[:, a0] * r[:, a0, 1] + (1 - pm[:, a0]) * r[:, a0, 0])[:, None, None],
                          (2, 2, 2))
    fits = [(y_r, "pe"), (y_a0m, "pe"), (y_3, "pe"), (y_3, "G"), (y_r, "p0")]
    qs, etas = zip(*(exact_q_table(y, w[k], p_next) for y, k in fits))

    def chain_p1(weights):
        return [float(np.sum(weights[s] * p_next[s])) for s in (0, 1)]

    bw = policy_cell_weights("pe", pb, pm, a0)  # behaviour chain: π_b in place of π_e
    stat = np.array([stationary_p1(chain_p1(w[k])) for k in ("pe", "G", "p0")]
                    + [stationary_p1(chain_p1(bw))])
    d = lambda p: np.array([1.0 - p, p])  # noqa: E731
    ratio = np.stack([d(stat[j]) / d(stat[3]) for j in range(3)])
    return ToyTables(pe, pb, pm, r, p_next, np.stack(qs), np.array(etas), ratio, stat)


def perturbed_tables(key, t: ToyTables, dtype=jnp.float64) -> ToyTables:
    """The false models of the original's Toy I (module docstring), as jax arrays."""
    k_q, k_eta, k_pm, k_r, k_pb = jax.random.split(key, 5)
    q = jnp.asarray(t.q, dtype)
    z = jax.random.normal(k_q, (7,), dtype)  # one draw, re-used by every Q_k (re-seeded calls)
    delta = jnp.asarray(Q_SHIFT_MEANS, dtype)[:, None] + z[None, :]  # 7 non-reference cells
    flat = q.reshape(5, 8).at[:, 1:].add(delta)  # CELLS order: index 0 is (0, 0, 0)
    eta = jnp.asarray(t.eta, dtype) + 1.5 + jax.random.normal(k_eta, (5,), dtype)
    pm = jnp.clip(jnp.asarray(t.pm, dtype) * jax.random.uniform(k_pm, (), dtype, 0.1, 3.0),
                  0.01, 0.99)
    c = -1.0 + jax.random.normal(k_r, (8,), dtype)
    s, a, m = (jnp.asarray(np.array(CELLS)[:, j], dtype) for j in range(3))
    x = jnp.stack([jnp.ones_like(s), a, s, m, a * s, a * m, s * m, a * s * m], axis=1)
    r = jnp.asarray(t.r, dtype) + (x @ c).reshape(2, 2, 2)
    pb = jnp.clip(jnp.asarray(t.pb, dtype) * jax.random.uniform(k_pb, (), dtype, 0.6, 1.1),
                  0.01, 0.99)
    shift = jnp.asarray([[-0.25, 0.25], [0.3, -0.3], [0.3, -0.3]], dtype)  # rows π_e, G, π_0
    ratio = jnp.asarray(t.ratio, dtype) + shift
    return ToyTables(jnp.asarray(t.pe, dtype), pb, pm, r, jnp.asarray(t.p_next, dtype),
                     flat.reshape(5, 2, 2, 2), eta, ratio, jnp.asarray(t.stationary, dtype))


_BINARY = MediationConfig.binary()


def _predictions(rows, pb, pm, r):
    """Bernoulli ``NuisancePredictions`` of the flat rows from tables."""
    s = rows["state"][:, 0].astype(jnp.int32)
    s_next = rows["next_state"][:, 0].astype(jnp.int32)
    a = rows["action"]
    mi = rows["mediator"][:, 0].astype(jnp.int32)
    p1 = pb[s]
    mean = pm[s][:, :, None]  # (n, 2, 1)
    mean_next = pm[s_next][:, :, None]
    r_m = r[s, :, mi]  # (n, 2): r(S, a, M)
    # E_{m ~ p(·|S, a_m)} r(S, a_r, m) -> [k, a_r, a_m]
    pmm = pm[s]  # (n, 2) over a_m
    rs = r[s]  # (n, a_r, m)
    r_e = (pmm[:, None, :] * rs[:, :, 1:2] + (1 - pmm[:, None, :]) * rs[:, :, 0:1])
    sd = jnp.sqrt(mean * (1 - mean))
    sd_next = jnp.sqrt(mean_next * (1 - mean_next))
    return NuisancePredictions(a * p1 + (1 - a) * (1 - p1), mean, sd, mean_next, sd_next, r_m, r_e)


def toy1_mr(key, data, tables: ToyTables, wrong, a0: int = 0):
    """MR estimate and cluster SE ``((5,), (5,))`` (IDE, IME, DDE, DME, ATE) of one combination.

    Args:
      key: key of the false-model draws (shared by every combination of a replication).
      data: ``Trajectories`` of a binary toy design.
      tables: exact ``ToyTables``.
      wrong: set of the wrong models, subset of {"q", "eta", "pm", "r", "ratio", "pb"}.
      a0: control action.
    """
    dtype = data.reward.dtype
    bad = perturbed_tables(key, tables, dtype)
    pick = lambda name, field: (getattr(bad, field) if name in wrong  # noqa: E731
                                else jnp.asarray(getattr(tables, field), dtype))
    pb, pm, r = pick("pb", "pb"), pick("pm", "pm"), pick("r", "r")
    q, eta, ratio = pick("q", "q"), pick("eta", "eta"), pick("ratio", "ratio")
    rows = data.flat()
    preds = _predictions(rows, pb, pm, r)
    pe = jnp.asarray(tables.pe, dtype)
    s = rows["state"][:, 0].astype(jnp.int32)
    pe_s, pe_next = pe[s], pe[rows["next_state"][:, 0].astype(jnp.int32)]
    beta_tab = jnp.asarray(np.stack([q_table_to_beta(np.eye(8)[i].reshape(2, 2, 2))
                                     for i in range(8)]), dtype)  # (8 cells, 7): linear map
    beta = jnp.concatenate([q.reshape(5, 8) @ beta_tab, eta[:, None]], axis=1)  # (5, 8)
    feats = q_feature_rows(QBasis(None, None), rows, preds, _BINARY)
    delta = q_temporal_differences(rows["action"], feats, beta, pe_s, pe_next, a0)
    iw = row_importance_weights(rows, preds, pe_s, a0, jnp.inf, mediator_law="bernoulli")
    ratios = ratio[:, s].T  # (n, 3): π_e, G, π_0
    values = estimator_rows(rows, preds, pe_s, a0, iw, ratios, eta, delta)[:, 0, :]  # MR
    est = jnp.mean(values, axis=0)
    return est, cluster_se(values, data.mask)


def toy1_estimator_spec(tables: ToyTables, combos=COMBOS) -> EstimatorSpec:
    """``EstimatorSpec``: rows = model combinations, columns IDE, IME, DDE, DME, ATE (MR)."""

    def fn(key, data):
        out = [toy1_mr(key, data, tables, WRONG[c]) for c in combos]
        est = jnp.stack([o[0] for o in out])
        se = jnp.stack([o[1] for o in out])
        status = jnp.where(jnp.all(jnp.isfinite(est)), 0, 1).astype(jnp.int32)
        return EffectTable(est, se, est - 1.959963984540054 * se, est + 1.959963984540054 * se,
                           status)

    return EstimatorSpec("toy1-mr-oracle", tuple(combos), EFFECTS, fn)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reduced", action="store_true", help="smoke run: N = 30, 90; 10 reps")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20230)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    n_values = common.REDUCED_N if args.reduced else common.PAPER_N
    reps = args.reps or (10 if args.reduced else 200)
    name = "toy1_reduced" if args.reduced else "toy1"
    design = get_design("toy1")
    with precision(np.float64):
        tables = toy_tables("toy1")
        spec = toy1_estimator_spec(tables)
        res, summary, wall = common.run_grid(design, spec, n_values, reps, args.seed,
                                             batch_size=args.batch_size)
    original = common.load_original()
    n_last = max(n_values)
    ours = summary[summary["n"] == n_last]
    comparison = []
    orig = common.original_table(original, "Toy_1_robustness_errors", n_last)
    for _, row in ours.iterrows():
        o = orig.get((ORIGINAL_LABELS[row["estimator"]], row["effect"]), {})
        comparison.append(dict(n=int(n_last), combo=row["estimator"], effect=row["effect"],
                               bias=row["bias"], bias_se=row["bias_se"], mse=row["mse"],
                               coverage=row["coverage"], original_bias=o.get("bias"),
                               original_mse=o.get("mse")))
    meta = dict(experiment="Toy I (spec §7.4, §10.5)", design="toy1", n=list(n_values),
                horizon=common.HORIZON, reps=reps, seed=args.seed, wall_s=wall,
                compile_s=res.compile_s, batch_size=args.batch_size,
                truth=tables.eta.tolist(), stationary_p1=tables.stationary.tolist(),
                combos={c: sorted(WRONG[c]) for c in COMBOS}, comparison_at_max_n=comparison)
    paths = common.write_outputs(name, summary, meta,
                                 title=f"Toy I: MR under misspecification (T = 50, {reps} reps)")
    print(f"wall {wall:.1f} s (compile {res.compile_s:.1f} s); wrote {paths}")
    for c in comparison:
        if c["effect"] == "ATE":
            continue
        ob = "" if c["original_bias"] is None else (f"  original bias {c['original_bias']:+.4f} "
                                                    f"mse {c['original_mse']:.4f}")
        print(f"N={c['n']} {c['combo']:14s} {c['effect']}: bias {c['bias']:+.4f} "
              f"(se {c['bias_se']:.4f}) mse {c['mse']:.4f} cover {c['coverage']:.2f}{ob}")


if __name__ == "__main__":
    main()
