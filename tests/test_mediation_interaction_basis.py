"""The state-interaction terms of the Q basis (issue 13, multidim) against plain numpy."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.mediation.basis import (fit_standardizer, fit_state_basis, monomial_exponents,
                                         pairwise_interactions, state_basis)
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed._src.mediation.q_function import QBasis, q_features
from jaxmed._src.sim.designs import get_design


def _numpy_pairs(h, n_coords, k):
    b = h.shape[1] // n_coords
    cols = [h[:, i * b + a] * h[:, j * b + c]
            for i, j in itertools.combinations(range(n_coords), 2)
            for a in range(min(k, b)) for c in range(min(k, b))]
    return np.stack(cols, axis=1) if cols else np.zeros((h.shape[0], 0))


def test_pairwise_interactions_match_numpy():
    rng = np.random.default_rng(0)
    for n_coords, b, k in [(2, 9, 9), (2, 9, 3), (3, 4, 2), (3, 4, 7), (1, 9, 9), (2, 9, 0)]:
        h = rng.normal(size=(23, n_coords * b))
        got = np.asarray(pairwise_interactions(jnp.asarray(h), n_coords, k))
        np.testing.assert_array_equal(got, _numpy_pairs(h, n_coords, k))


def _basis(state, mediator):
    w = jnp.ones(state.shape[0])
    return QBasis(fit_state_basis(state, w, 5), fit_standardizer(mediator, w))


def test_q_features_with_interactions_equal_numpy_and_leave_1d_unchanged():
    rng = np.random.default_rng(1)
    s2, m = jnp.asarray(rng.normal(size=(50, 2))), jnp.asarray(rng.normal(size=(50, 2)))
    basis = _basis(s2, m)
    cfg = MediationConfig(q_state_interactions=4)
    h = np.asarray(state_basis(basis.state, s2))
    g = np.asarray(q_features(basis, s2, m, MediationConfig()))[:, h.shape[1]:]  # mediator part
    want = np.concatenate([h, _numpy_pairs(h, 2, 4), g], axis=1)
    np.testing.assert_allclose(np.asarray(q_features(basis, s2, m, cfg)), want, rtol=0, atol=0)
    assert want.shape[1] == 18 + 16 + len(monomial_exponents(2, 3))
    # one state coordinate: no pair, the features are the additive ones bit for bit
    s1 = s2[:, :1]
    b1 = _basis(s1, m)
    np.testing.assert_array_equal(np.asarray(q_features(b1, s1, m, cfg)),
                                  np.asarray(q_features(b1, s1, m, MediationConfig())))


def test_design_lookup_adds_interactions_only_for_multidimensional_states():
    assert config_for_design(get_design("semi-synthetic")) == MediationConfig()
    assert config_for_design(get_design("toy1")) == MediationConfig.binary()
    md = config_for_design(get_design("multidim"))
    assert md == MediationConfig(q_state_interactions=md.q_state_interactions,
                                 ratio_draws=md.ratio_draws)
    assert md.q_state_interactions > 0 and md.ratio_draws == 4
