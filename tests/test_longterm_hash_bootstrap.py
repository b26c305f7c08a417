"""Hash-keyed Poisson(1) bootstrap weights: partition invariance, distribution, and (slow) SE validity."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.longterm.api import effects_from_stats
from jaxmed._src.longterm.hash_bootstrap import POISSON1_CDF, hash_poisson_weights
from jaxmed._src.longterm.reward import LinearReward
from jaxmed._src.longterm.simulate import design_params, simulate_longterm
from jaxmed._src.longterm.stats import panel_stats


def test_weights_depend_only_on_key_replicate_and_id():
    key = jax.random.key(3)
    ids = np.arange(1000, 1100)
    w = hash_poisson_weights(key, ids, 8)
    perm = np.random.default_rng(0).permutation(100)[:37]            # another partition, other order
    np.testing.assert_array_equal(hash_poisson_weights(key, ids[perm], 8), w[:, perm])
    names = np.array([f"user-{i}" for i in range(50)], dtype=object)
    ws = hash_poisson_weights(key, names, 4)
    np.testing.assert_array_equal(hash_poisson_weights(key, names[::-1].copy(), 4), ws[:, ::-1])
    assert not np.array_equal(hash_poisson_weights(jax.random.key(4), ids, 8), w)   # the key matters
    assert not np.array_equal(w[0], w[1])                                          # replicates differ


def test_weights_are_poisson1_and_uncorrelated():
    """200,000 draws: chi-square goodness of fit to Poisson(1) (cells 0..4, ≥ 5; df = 5, critical
    value 25.7 at level 1e-4); mean and variance within 4 SE of 1; correlations between replicates
    and between neighbouring ids within 4/sqrt(n)."""
    n = 100_000
    w = hash_poisson_weights(jax.random.key(0), np.arange(n), 2)
    x = w.reshape(-1).astype(int)
    pmf = np.array([math.exp(-1.0) / math.factorial(k) for k in range(5)])
    expected = x.size * np.concatenate([pmf, [1.0 - pmf.sum()]])
    observed = np.array([(x == k).sum() for k in range(5)] + [(x >= 5).sum()])
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 25.7, chi2
    assert abs(x.mean() - 1.0) < 4 * math.sqrt(1.0 / x.size)
    assert abs(x.var() - 1.0) < 4 * math.sqrt(3.0 / x.size)          # Var of (X−1)² is 3 for Poisson(1)
    assert abs(np.corrcoef(w[0], w[1])[0, 1]) < 4 / math.sqrt(n)
    assert abs(np.corrcoef(w[0, :-1], w[0, 1:])[0, 1]) < 4 / math.sqrt(n)
    assert POISSON1_CDF[-1] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.slow
def test_hash_bootstrap_se_matches_monte_carlo_sd():
    """S2, n = 1000, T = 14, R = 100 replications with B = 60 hash-Poisson replicates each: the
    mean bootstrap SE of ρ_1 − ρ_0 (Alg. N) is within 25% of the Monte Carlo SD (the SD's own
    relative SE is 1/sqrt(2(R−1)) ≈ 0.071; 25% ≈ 3.5 of those)."""
    prm = design_params("s2")
    rw = LinearReward(prm.theta, prm.c)
    n, B, R = 1000, 60, 100

    @jax.jit
    def one(key, w):
        panel = simulate_longterm(key, n, 14, design="s2")
        est = effects_from_stats(panel_stats(panel), rw, 0.99)[0][2]
        reps = jax.lax.map(lambda wb: effects_from_stats(panel_stats(panel, wb), rw, 0.99)[0][2], w,
                           batch_size=20)
        return est, jnp.std(reps, ddof=1)

    ests, ses = [], []
    for r in range(R):
        w = jnp.asarray(hash_poisson_weights(jax.random.key(1000 + r), np.arange(n), B))
        e, s = one(jax.random.key(r), w)
        ests.append(float(e))
        ses.append(float(s))
    sd = np.std(ests, ddof=1)
    assert abs(np.mean(ses) / sd - 1.0) < 0.25, (np.mean(ses), sd)
