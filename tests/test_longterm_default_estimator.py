"""The study engine's default long-term estimator (``longterm.design_estimators``).

Checked against the public ``longterm_estimator_spec`` it is built from: the same numbers as
an unchunked bootstrap, with the bootstrap run in blocks so that one replication's memory
(the study's per-replication byte estimate, which sets its default batch width) stays below
the unchunked one's; designs without a reward or discount are refused.
"""

import jax
import numpy as np
import pytest

from jaxmed._src.longterm.api import longterm_estimator_spec
from jaxmed._src.longterm.design_estimators import N_BOOT, default_longterm_estimator
from jaxmed._src.study.catalog import get_design
from jaxmed._src.study.memory import replication_bytes


def test_default_longterm_estimator_chunks_its_bootstrap_with_the_same_numbers():
    design = get_design("longterm-s1")
    spec = default_longterm_estimator(design)
    assert spec.name == "longterm-s1-default"
    whole = longterm_estimator_spec(design.reward, design.gamma, n_boot=N_BOOT)
    assert spec.estimators == whole.estimators and spec.effects == whole.effects
    data = design.simulate(jax.random.key(3), 60, 6)
    key = jax.random.key(4)
    a, b = jax.jit(spec.fn)(key, data), jax.jit(whole.fn)(key, data)
    for name in ("estimate", "se", "ci_low", "ci_high"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert np.isfinite(x).any(), name
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name)
    # an N_BOOT-draw bootstrap SE (not the naive one): finite SEs on the long-term rows
    assert np.isfinite(np.asarray(a.se)).sum() >= 3
    # the bootstrap in blocks (20 draws) instead of one block of min(N_BOOT, 64) draws
    small, large = replication_bytes(spec.fn, key, data), replication_bytes(whole.fn, key, data)
    assert small < 0.7 * large, (small, large)


def test_default_longterm_estimator_refuses_a_design_without_reward():
    with pytest.raises(ValueError, match=r"has no \['reward', 'gamma'\]"):
        default_longterm_estimator(get_design("semi-synthetic"))
