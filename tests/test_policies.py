"""Policies: probabilities vs plain numpy; gradients vs finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src import policies as P


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


STATES = np.random.default_rng(0).normal(size=(50, 2)) * 3


def test_logistic_probabilities_match_numpy():
    w, b = np.array([0.4, -1.3]), 0.25
    pol = P.LogisticPolicy(jnp.asarray(w), b)
    p1 = np.asarray(jax.vmap(pol.prob_one)(jnp.asarray(STATES)))
    np.testing.assert_allclose(p1, expit(b + STATES @ w), rtol=1e-14)
    acts = np.random.default_rng(1).integers(0, 2, 50).astype(float)
    pa = np.asarray(jax.vmap(pol.prob)(jnp.asarray(acts), jnp.asarray(STATES)))
    ref = np.where(acts == 1, expit(b + STATES @ w), 1 - expit(b + STATES @ w))
    np.testing.assert_allclose(pa, ref, rtol=1e-13)


def test_named_policies():
    s1 = np.array([1.7])
    assert abs(float(P.semi_synthetic_target_policy().prob_one(s1)) - expit(0.7 * 1.7)) < 1e-15
    assert abs(float(P.toy_target_policy().prob_one(np.array([1.0]))) - expit(2.5)) < 1e-15
    s2 = np.array([1.0, 3.0])
    assert abs(float(P.multidim_target_policy().prob_one(s2)) - expit(0.7 * 2.0)) < 1e-15
    assert abs(float(P.multidim_truth_target_policy().prob_one(s2)) - expit(0.7 * 4.0)) < 1e-15
    assert float(P.always_control().prob(0, s1)) == 1.0 and float(P.always_control().prob(1, s1)) == 0.0
    assert float(P.always_treat().prob(1, s1)) == 1.0
    assert float(P.behaviour_policy_semi_synthetic().prob(1, s1)) == 0.5
    assert abs(float(P.bernoulli_policy(0.3).prob(0, s1)) - 0.7) < 1e-15
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], got 1.5"):
        P.bernoulli_policy(1.5)


def test_callable_policy():
    pol = P.CallablePolicy(lambda s: jax.nn.sigmoid(s[0] - s[1]))
    p = np.asarray(jax.jit(jax.vmap(pol.prob_one))(jnp.asarray(STATES)))
    np.testing.assert_allclose(p, expit(STATES[:, 0] - STATES[:, 1]), rtol=1e-13)


def test_grad_of_prob_matches_finite_differences():
    s = jnp.asarray(STATES[:10])
    a = jnp.asarray([0.0, 1.0] * 5)

    def loss(w, b):
        pol = P.LogisticPolicy(w, b)
        return jnp.sum(jnp.log(jax.vmap(pol.prob)(a, s)))

    w0, b0 = jnp.asarray([0.3, -0.2]), 0.1
    gw, gb = jax.grad(loss, argnums=(0, 1))(w0, b0)
    h = 1e-6
    for j in range(2):
        e = jnp.zeros(2).at[j].set(h)
        fd = (loss(w0 + e, b0) - loss(w0 - e, b0)) / (2 * h)
        assert abs(float(gw[j]) - float(fd)) < 1e-5 * max(1.0, abs(float(fd)))
    fd = (loss(w0, b0 + h) - loss(w0, b0 - h)) / (2 * h)
    assert abs(float(gb) - float(fd)) < 1e-5 * max(1.0, abs(float(fd)))


def test_policy_pytree_vmap_over_parameters():
    ws = jnp.asarray([[0.1, 0.2], [1.0, -1.0], [0.0, 0.0]])
    s = jnp.asarray(STATES[0])
    p = jax.vmap(lambda w: P.LogisticPolicy(w, 0.0).prob_one(s))(ws)
    np.testing.assert_allclose(np.asarray(p), expit(np.asarray(ws) @ STATES[0]), rtol=1e-14)


def test_policies_is_an_importable_module_and_reads_the_cli_spelling():
    import importlib

    mod = importlib.import_module("jaxmed.policies")
    from jaxmed.policies import LogisticPolicy, parse_policy  # noqa: F401  (the documented import)

    assert mod.LogisticPolicy is P.LogisticPolicy
    s = np.array([0.3, -1.2])
    pol = parse_policy("logistic:0.5,-2@0.25", 2)
    assert isinstance(pol, LogisticPolicy)
    assert float(pol.prob_one(s)) == pytest.approx(expit(0.25 + 0.5 * 0.3 + 2.0 * 1.2), rel=1e-14)
    assert float(parse_policy("logistic:0.7", 2).prob_one(s)) == pytest.approx(
        expit(0.7 * (0.3 - 1.2)), rel=1e-14)
    assert float(mod.as_policy("constant:0.25", 2).prob_one(s)) == 0.25
    same = P.LogisticPolicy(jnp.asarray([1.0]), 0.0)
    assert mod.as_policy(same, 1) is same
    with pytest.raises(ValueError, match="^policy: cannot read 'gauss:1'"):
        parse_policy("gauss:1", 1)
    with pytest.raises(ValueError, match="^p: expected a probability"):
        parse_policy("constant:1.5", 1)
