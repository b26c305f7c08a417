"""Helpers of experiments/toy1.py and toy2.py against hand-computed numbers and exact truths."""

import itertools

import jax
import numpy as np
import pandas as pd
import pytest

from experiments import toy1, toy2
from jaxmed.sim import get_design, truth

expit = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731


@pytest.fixture(scope="module")
def tables():
    return toy1.toy_tables("toy1")


def test_stationary_probability_of_a_two_state_chain():
    # P = [[0.8, 0.2], [0.4, 0.6]]: π1 = 0.2 / (0.2 + 0.4)
    assert toy1.stationary_p1([0.2, 0.6]) == pytest.approx(1 / 3, rel=1e-15)


def test_tables_equal_the_toy1_formulas_and_behaviour_stationary_law(tables):
    np.testing.assert_allclose(tables.pe, expit(1.5 + np.arange(2)), rtol=1e-14)
    np.testing.assert_allclose(tables.pb, expit(1 - 2 * np.arange(2)), rtol=1e-14)
    for s, a, m in itertools.product((0, 1), repeat=3):
        assert tables.pm[s, a] == pytest.approx(expit(1 - 1.5 * s + 2.5 * a), rel=1e-14)
        assert tables.r[s, a, m] == pytest.approx(10 * expit(1 + 2 * s - a - 2.5 * m), rel=1e-14)
        assert tables.p_next[s, a, m] == pytest.approx(expit(0.5 + 3 * s - 2.5 * a - 0.5 * m),
                                                       rel=1e-14)
    # behaviour chain written out by hand: P(S'=1|s) = Σ_a π_b(a|s) Σ_m p(m|s,a) P(S'=1|s,a,m)
    p1 = []
    for s in (0, 1):
        tot = 0.0
        for a, m in itertools.product((0, 1), repeat=2):
            pa = expit(1 - 2 * s) if a else 1 - expit(1 - 2 * s)
            pm = expit(1 - 1.5 * s + 2.5 * a)
            tot += pa * (pm if m else 1 - pm) * expit(0.5 + 3 * s - 2.5 * a - 0.5 * m)
        p1.append(tot)
    pi_b = p1[0] / (p1[0] + 1 - p1[1])
    assert tables.stationary[3] == pytest.approx(pi_b, rel=1e-13)
    exact = truth("toy1").settings["stationary_p1"]
    np.testing.assert_allclose(tables.stationary[:3], [exact["pie"], exact["G"], exact["pi0"]],
                               rtol=1e-12)
    np.testing.assert_allclose(tables.ratio[:, 1],
                               np.asarray(tables.stationary[:3]) / pi_b, rtol=1e-13)


@pytest.mark.parametrize("name", ["toy1", "toy2-iid"])
def test_exact_q_eta_equal_the_stationary_truth(name):
    t = toy1.toy_tables(name)
    np.testing.assert_allclose(t.eta, truth(name).eta, rtol=1e-10)


def test_exact_q_solves_the_bellman_equation_and_maps_to_the_basis(tables):
    w = toy1.policy_cell_weights("G", tables.pe, tables.pm)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), [1.0, 1.0], rtol=1e-14)
    assert np.all(w[:, 1, :] == 0.0)  # G plays a0 = 0 on the direct path
    y = tables.r
    q, eta = toy1.exact_q_table(y, toy1.policy_cell_weights("pe", tables.pe, tables.pm),
                                tables.p_next)
    wpe = toy1.policy_cell_weights("pe", tables.pe, tables.pm)
    v = np.array([np.sum(wpe[s2] * q[s2]) for s2 in (0, 1)])
    for c in itertools.product((0, 1), repeat=3):
        p = tables.p_next[c]
        assert q[c] + eta - (p * v[1] + (1 - p) * v[0]) == pytest.approx(y[c], abs=1e-12)
    assert q[0, 0, 0] == 0.0 and eta == pytest.approx(tables.eta[0], rel=1e-12)
    beta = toy1.q_table_to_beta(q)
    for s, a, m in itertools.product((0, 1), repeat=3):
        u = np.array([(1 - a) * s, (1 - a) * m, (1 - a) * s * m, a * s, a * m, a * s * m, a])
        assert u @ beta == pytest.approx(q[s, a, m], abs=1e-12)


def test_perturbations_follow_the_spec(tables):
    bad = toy1.perturbed_tables(jax.random.key(4), tables)
    q = np.asarray(bad.q)
    assert np.all(q[:, 0, 0, 0] == 0.0)  # reference cell untouched
    shift = (q - tables.q).reshape(5, 8)[:, 1:]
    # one z shared by the five Q's: the shifts differ by the means μ_k exactly
    np.testing.assert_allclose(shift - shift[0], np.subtract.outer(toy1.Q_SHIFT_MEANS,
                                                                   toy1.Q_SHIFT_MEANS[0])
                               [:, None] * np.ones(7), atol=1e-12)
    ratio_u = np.asarray(bad.pm) / tables.pm  # one U for every cell unless clipped
    unclipped = (np.asarray(bad.pm) > 0.01) & (np.asarray(bad.pm) < 0.99)
    assert np.ptp(ratio_u[unclipped]) < 1e-12 and 0.1 <= ratio_u[unclipped][0] <= 3.0
    np.testing.assert_allclose(np.asarray(bad.ratio) - tables.ratio,
                               [[-0.25, 0.25], [0.3, -0.3], [0.3, -0.3]], atol=1e-14)


def test_toy1_mr_all_correct_within_4_se_and_misspecification_is_key_dependent(tables):
    d = get_design("toy1")
    data = d.simulate(jax.random.key(21), 1000, 50)
    tr = truth("toy1").effect_array()
    fn = jax.jit(lambda k, dat: [toy1.toy1_mr(k, dat, tables, toy1.WRONG[c])
                                 for c in ("All_correct", "All_incorrect")])
    (est, se), (bad, _) = fn(jax.random.key(1), data)
    (est2, _), (bad2, _) = fn(jax.random.key(2), data)
    z = (np.asarray(est)[:4] - tr[:4]) / np.asarray(se)[:4]
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(est, est2, rtol=1e-14)  # oracle models do not use the key
    assert np.max(np.abs(np.asarray(bad) - np.asarray(bad2))) > 1e-3


def test_toy2_comparison_rows_join_the_original_by_estimator_and_effect():
    summary = pd.DataFrame(dict(n=[300, 300, 30], estimator=["MR", "MR", "MR"],
                                effect=["IDE", "DDE", "IDE"], bias=[0.1, 0.2, 0.3],
                                bias_se=[0.01] * 3, mse=[0.5, 0.6, 0.7], sd=[1.0] * 3,
                                coverage=[0.95] * 3))
    original = {"main": {"N=300,T=50": {"MR": {"IDE": dict(bias=-1.0, mse=2.0, sd=3.0)}}},
                "full": {"N=300,T=50": {"MR": {"IDE": dict(bias=9.0, mse=9.0, sd=9.0),
                                               "DDE": dict(bias=-4.0, mse=5.0, sd=6.0)}}}}
    rows = toy2.comparison_rows(summary, original, ("main", "full", None), 300)
    assert [(r["effect"], r["bias"], r["original_bias"], r["original_mse"]) for r in rows] == [
        ("IDE", 0.1, -1.0, 2.0), ("DDE", 0.2, -4.0, 5.0)]
