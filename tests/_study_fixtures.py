"""A small, real design and estimator for the study-engine tests (not collected by pytest).

Design: the semi-synthetic simulator (spec mediation.md §7.1) with sigma = 1.
Estimator ("noise"): two effects with known truths,
  * ``s0_mean``  = mean of the initial states S_0 ~ N(0, 1): truth 0, SE = sd(S_0)/sqrt(N);
  * ``m1_noise_var`` = mean over trajectories of the per-trajectory mean of
    ((M1 − sqrt|S| − (A − 0.5)) / sigma)²: truth 1, cluster SE = sd(per-trajectory means)/sqrt(N);
for two rows: ``all`` trajectories and the first ``half``. Status 1 when the first
trajectory's S_0 > 1.5 (about 6.7% of replications), to exercise failure counting.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic

SIGMA = 1.0


@dataclasses.dataclass(frozen=True)
class ToyDesign:
    name: str = "toy-semi"
    kind: str = "mediation"
    default_horizon: int = 3
    description: str = "semi-synthetic, sigma = 1 (tests)"
    sigma: float = SIGMA

    def simulate(self, key, n, horizon):
        return simulate_semi_synthetic(key, n, horizon, sigma=self.sigma)

    def truth(self):
        return {"s0_mean": 0.0, "m1_noise_var": 1.0}


def _mean_and_se(x):
    n = x.shape[0]
    return jnp.mean(x), jnp.std(x, ddof=1) / jnp.sqrt(n)


def noise_effects(key, data):
    del key
    s = data.state[..., 0]
    eps = (data.mediator[..., 0] - jnp.sqrt(jnp.abs(s)) - (data.action - 0.5)) / SIGMA
    per_traj = jnp.mean(eps ** 2, axis=1)
    s0 = s[:, 0]
    half = s0.shape[0] // 2
    rows = []
    for sl in (slice(None), slice(0, half)):
        rows.append([_mean_and_se(s0[sl]), _mean_and_se(per_traj[sl])])
    est = jnp.asarray([[m for m, _ in r] for r in rows])
    se = jnp.asarray([[v for _, v in r] for r in rows])
    status = (s0[0] > 1.5).astype(jnp.int32)
    return EffectTable(est, se, est - 1.959963984540054 * se, est + 1.959963984540054 * se, status)


NOISE_SPEC = EstimatorSpec("noise", ("all", "half"), ("s0_mean", "m1_noise_var"), noise_effects)
GRID = [(8, 3), (12, 4)]
REPS = 7


FIELDS = ("estimate", "se", "ci_low", "ci_high", "status")


def assert_identical(a, b):
    """Every result field of two studies equal bit for bit (NaN where NaN)."""
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.shape == y.shape, f
        assert np.array_equal(x, y, equal_nan=True), f"{f} differs: max {np.nanmax(np.abs(x - y))}"
