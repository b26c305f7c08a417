"""study.run reuses its compiled chunk function across calls, also for unhashable designs.

The registered designs are frozen dataclasses holding jax arrays (policies), hence
unhashable; before the fix every ``run`` call recompiled (tens of seconds per call for the
mediation estimator). The cache is keyed by identity then, with the objects kept alive.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed.study import run


@dataclasses.dataclass(frozen=True)
class ShiftedNormal:
    shift: jax.Array  # a jax array field makes the dataclass unhashable
    name: str = "shifted-normal"

    def simulate(self, key, n, horizon):
        return jax.random.normal(key, (n, horizon)) + self.shift


def _mean(key, x):
    m = x.mean()
    se = x.mean(axis=1).std(ddof=1) / jnp.sqrt(x.shape[0])
    e, s = jnp.reshape(m, (1, 1)), jnp.reshape(se, (1, 1))
    return EffectTable(e, s, e - 1.96 * s, e + 1.96 * s, jnp.int32(0))


SPEC = EstimatorSpec("mean", ("sample",), ("mean",), _mean)


def test_unhashable_design_compiles_once():
    design = ShiftedNormal(jnp.asarray(2.0))
    try:
        hash(design)
        raise AssertionError("the test design must be unhashable")
    except TypeError:
        pass
    first = run(design, SPEC, [(7, 3)], reps=4, key=0, progress=False)
    second = run(design, SPEC, [(7, 3)], reps=4, key=0, progress=False)
    assert first.compile_s > 0.0
    assert second.compile_s == 0.0
    np.testing.assert_array_equal(first.estimate, second.estimate)
    # the estimate is the sample mean of the simulated data: plain numpy recomputation
    key = jax.random.key(0)
    cell = jax.random.fold_in(key, 0)
    want = [np.asarray(design.simulate(jax.random.split(jax.random.fold_in(cell, r))[0], 7, 3)).mean()
            for r in range(4)]
    np.testing.assert_allclose(second.estimate[0, :, 0, 0], want, rtol=1e-12)
    # an equal-valued but distinct design object is a different cache entry (identity key)
    other = run(ShiftedNormal(jnp.asarray(2.0)), SPEC, [(7, 3)], reps=4, key=0, progress=False)
    assert other.compile_s > 0.0
    np.testing.assert_array_equal(other.estimate, first.estimate)
