"""Simulators reproduce their stated transition laws (spec mediation.md §7)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src import policies as P
from jaxmed._src.sim import multidim as md
from jaxmed._src.sim import semi_synthetic as ss
from jaxmed._src.sim import toy
from jaxmed._src.trajectories import validate_trajectories
from jaxmed.sim import get_design


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def ols(y, x):
    """OLS of y on [1, x]: coefficients and their classical SEs."""
    X = np.column_stack([np.ones(len(y)), x])
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    s2 = resid @ resid / (len(y) - X.shape[1])
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    return beta, se, resid


def check_sd(resid, sigma):
    """Sample sd vs sigma within 4 SE (SE of the sd of normals ≈ sigma / sqrt(2n))."""
    sd = resid.std(ddof=1)
    assert abs(sd - sigma) < 4 * sigma / np.sqrt(2 * len(resid)), (sd, sigma)


def flat(d):
    return {k: np.asarray(v) for k, v in d.flat().items()}


@pytest.fixture(scope="module", params=[1.0, 2.0, 3.0])
def semi(request):
    sigma = request.param
    d = ss.simulate_semi_synthetic(jax.random.key(11), 400, 50, sigma=sigma)
    return sigma, d


def test_semi_synthetic_laws(semi):
    sigma, d = semi
    validate_trajectories(d)
    f = flat(d)
    s, a, m, r, s1 = f["state"][:, 0], f["action"], f["mediator"], f["reward"], f["next_state"][:, 0]
    n = len(a)
    root = np.sqrt(np.abs(s))
    # behaviour policy Bernoulli(0.5)
    assert abs(a.mean() - 0.5) < 4 * np.sqrt(0.25 / n)
    # M1 − sqrt|S| = (A − .5) + σ ε1
    beta, se, resid = ols(m[:, 0] - root, a - 0.5)
    assert abs(beta[1] - 1.0) < 3 * se[1] and abs(beta[0]) < 3 * se[0]
    check_sd(resid, sigma)
    # M2 + 0.5 S = 0.5 (A − .5) sqrt|S| + σ ε2
    beta, se, resid = ols(m[:, 1] + 0.5 * s, (a - 0.5) * root)
    assert abs(beta[1] - 0.5) < 3 * se[1] and abs(beta[0]) < 3 * se[0]
    check_sd(resid, sigma)
    # reward: regress R on the reward mean's pieces, coefficients 1.5 * (0.5, 0.5, 1, 1, 0.5, 0.5)
    x = np.column_stack([s * 0.5, 0.5 * root, m[:, 0], m[:, 1],
                         0.5 * np.sqrt(np.abs(m[:, 0]) + np.abs(m[:, 1])) * (a - 0.5), 0.5 * (a - 0.5)])
    beta, se, resid = ols(r, x)
    assert np.all(np.abs(beta[1:] - 1.5) < 3.5 * se[1:]), (beta, se)
    check_sd(resid, sigma)
    # S' = R exactly, and the next state is the following state
    np.testing.assert_array_equal(s1, r)
    np.testing.assert_array_equal(np.asarray(d.next_state[:, :-1]), np.asarray(d.state[:, 1:]))


def test_semi_synthetic_nuisance_functions_match_plain_numpy():
    rng = np.random.default_rng(0)
    s, a, m = rng.normal(size=20) * 3, rng.integers(0, 2, 20).astype(float), rng.normal(size=(20, 2))
    mm = jax.vmap(ss.semi_synthetic_mediator_mean)(jnp.asarray(s)[:, None], jnp.asarray(a))
    root = np.sqrt(np.abs(s))
    np.testing.assert_allclose(mm, np.column_stack([root + a - 0.5, -0.5 * s + 0.5 * (a - 0.5) * root]),
                               rtol=1e-14)
    rm = jax.vmap(ss.semi_synthetic_reward_mean)(jnp.asarray(s)[:, None], jnp.asarray(a), jnp.asarray(m))
    ref = 1.5 * (0.5 * s + 0.5 * root + m[:, 0] + m[:, 1]
                 + 0.5 * np.sqrt(np.abs(m[:, 0]) + np.abs(m[:, 1])) * (a - 0.5) + 0.5 * (a - 0.5))
    np.testing.assert_allclose(rm, ref, rtol=1e-13)


def test_semi_synthetic_mixed_policy_rollout():
    """G: direct action always 0, mediator from an independent π_e draw (spec §1.2)."""
    pe = P.semi_synthetic_target_policy()
    d = ss.simulate_semi_synthetic(jax.random.key(3), 400, 50, policy=P.always_control(),
                                   mediator_policy=pe)
    f = flat(d)
    s, a, m, r = f["state"][:, 0], f["action"], f["mediator"], f["reward"]
    assert np.all(a == 0.0)
    # E[M1 − sqrt|S| | S] = p_e(S) − 0.5
    e = m[:, 0] - np.sqrt(np.abs(s)) - (expit(0.7 * s) - 0.5)
    assert abs(e.mean()) < 4 * e.std() / np.sqrt(len(e))
    # reward uses the direct action 0
    resid = r - np.asarray(jax.vmap(ss.semi_synthetic_reward_mean)(
        jnp.asarray(s)[:, None], jnp.zeros_like(jnp.asarray(s)), jnp.asarray(m)))
    assert abs(resid.mean()) < 4 * 2.0 / np.sqrt(len(resid))
    check_sd(resid, 2.0)


def test_target_policy_rollout_actions():
    d = ss.simulate_semi_synthetic(jax.random.key(4), 200, 50, policy=P.semi_synthetic_target_policy())
    f = flat(d)
    e = f["action"] - expit(0.7 * f["state"][:, 0])
    assert abs(e.mean()) < 4 * e.std() / np.sqrt(len(e))


def test_multidim_laws():
    sigma = 1.0
    d = md.simulate_multidim(jax.random.key(5), 400, 50)
    validate_trajectories(d)
    f = flat(d)
    s, a, m, r, s1 = f["state"], f["action"], f["mediator"], f["reward"], f["next_state"]
    sbar, q = s.mean(1), np.sqrt(np.abs(s)).mean(1)
    beta, se, resid = ols(m[:, 0] - q, a - 0.5)
    assert abs(beta[1] - 1.0) < 3 * se[1] and abs(beta[0]) < 3 * se[0]
    check_sd(resid, sigma)
    beta, se, resid = ols(m[:, 1] + 0.5 * sbar, (a - 0.5) * q)
    assert abs(beta[1] - 0.5) < 3 * se[1]
    check_sd(resid, sigma)
    root = np.sqrt(np.abs(m[:, 0]) + np.abs(m[:, 1]))
    r_mean = 0.75 * (sbar + q + (1 + root) * (a - 0.5)) + 1.5 * (m[:, 0] + m[:, 1])
    e = r - r_mean
    assert abs(e.mean()) < 4 * sigma / np.sqrt(len(e))
    check_sd(e, sigma)
    for j in range(2):
        mean_j = 0.75 * (s[:, j] + np.sqrt(np.abs(s[:, j])) + (1 + root) * (a - 0.5)) + 1.5 * (m[:, 0] + m[:, 1])
        e = s1[:, j] - mean_j
        assert abs(e.mean()) < 4 * sigma / np.sqrt(len(e))
        check_sd(e, sigma)
    # noises of the two next-state coordinates and of the reward are independent
    e0 = s1[:, 0] - (0.75 * (s[:, 0] + np.sqrt(np.abs(s[:, 0])) + (1 + root) * (a - 0.5)) + 1.5 * (m[:, 0] + m[:, 1]))
    assert abs(np.corrcoef(e0, r - r_mean)[0, 1]) < 4 / np.sqrt(len(e0))


@pytest.mark.parametrize("iid", [False, True])
def test_toy_laws(iid):
    d = toy.simulate_toy(jax.random.key(6), 500, 60, iid=iid)
    validate_trajectories(d)
    f = flat(d)
    s, a, m, r, s1 = f["state"][:, 0], f["action"], f["mediator"][:, 0], f["reward"], f["next_state"][:, 0]
    assert set(np.unique(r)) <= {0.0, 10.0} and set(np.unique(s)) <= {0.0, 1.0}

    def check_freq(event, cond, p):
        k = cond.sum()
        assert k > 50
        assert abs(event[cond].mean() - p) < 4 * np.sqrt(p * (1 - p) / k), (event[cond].mean(), p, k)

    for sv in (0, 1):
        check_freq(a, s == sv, expit(1 - 2 * sv))
        for av in (0, 1):
            check_freq(m, (s == sv) & (a == av), expit(1 - 1.5 * sv + 2.5 * av))
            for mv in (0, 1):
                cell = (s == sv) & (a == av) & (m == mv)
                if cell.sum() > 50:
                    check_freq(r == 10, cell, expit(1 + 2 * sv - av - 2.5 * mv))
                    p_next = 0.2 if iid else expit(0.5 + 3 * sv - 2.5 * av - 0.5 * mv)
                    check_freq(s1, cell, p_next)


def test_toy_nuisances_match_plain_numpy():
    for sv in (0.0, 1.0):
        for av in (0.0, 1.0):
            st = jnp.asarray([sv])
            assert abs(float(toy.toy_mediator_prob(st, av)) - expit(1 - 1.5 * sv + 2.5 * av)) < 1e-15
            p = expit(1 - 1.5 * sv + 2.5 * av)
            for a_r in (0.0, 1.0):
                ref = p * 10 * expit(1 + 2 * sv - a_r - 2.5) + (1 - p) * 10 * expit(1 + 2 * sv - a_r)
                assert abs(float(toy.toy_expected_reward(st, av, a_r)) - ref) < 1e-13


@pytest.mark.parametrize("name,n,horizon", [  # two designs slow: 2 x 21 s of compilation
    pytest.param("semi-synthetic", 400, 50, marks=pytest.mark.slow),
    pytest.param("multidim", 400, 50, marks=pytest.mark.slow), ("toy1", 500, 60)])
def test_jit_and_vmap_match_unbatched(name, n, horizon):
    # sizes as in the law tests above, so the unbatched calls reuse their compilation
    design = get_design(name)
    sim = lambda k: design.simulate(k, n, horizon)  # noqa: E731
    keys = jax.random.split(jax.random.key(8), 3)
    plain = [sim(k) for k in keys]
    jitted = jax.jit(sim)(keys[0])
    batched = jax.vmap(sim)(keys)
    for field in range(6):
        np.testing.assert_array_equal(np.asarray(jitted[field]), np.asarray(plain[0][field]))
        for i in range(3):
            np.testing.assert_array_equal(np.asarray(batched[field][i]), np.asarray(plain[i][field]))


def test_registry():
    from jaxmed.sim import Design, list_designs, register_design
    assert list_designs(kind="mediation") == ["semi-synthetic", "variance-1", "variance-2",
                                              "variance-3", "multidim", "semi-synthetic-drift",
                                              "toy1", "toy2-iid", "toy2-state"]
    assert list_designs() == list_designs(kind="mediation") + ["longterm-s1", "longterm-s2"]
    d = get_design("variance-3")
    assert d.nuisances["mediator_sd"] == 3.0 and d.state_dim == 1 and d.mediator_dim == 2
    with pytest.raises(ValueError, match="name: unknown design"):
        get_design("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_design(get_design("toy1"))
    assert isinstance(d, Design)
