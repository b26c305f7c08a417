"""The small-sample defaults (session 21: ``rho_trunc = 50``, ``nuisance_boundary_quantile =
0.0025``) against the truth on the two replications that show each failure kind, with the old
defaults (ρ̃ ≤ 500, range knots) and each change alone for comparison
(``experiments/README.md``, "Small-sample defaults")."""

import jax
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.mediation.config import MediationConfig
from jaxmed._src.mediation.effects import mediation_core
from jaxmed._src.sim.designs import truth
from jaxmed._src.study.runner import replication_key

OLD = dict(rho_trunc=500.0, nuisance_boundary_quantile=0.0)


@pytest.fixture(scope="module")
def semi():
    design = study.get_design("semi-synthetic")
    tr = truth("semi-synthetic").effects
    return design, np.array([tr[k] for k in ("IDE", "IME", "DDE", "DME")])


def _errors(design, true, keys, n, config):
    ks, ke = keys
    data = design.simulate(ks, n, 25)
    res = mediation_core(ke, data, design.target_policy, 0, config)
    assert int(res.diagnostics.status) == 0  # the old defaults say nothing is wrong
    return np.asarray(res.estimate[0, :4]) - true, float(res.diagnostics.rho_clipped)


def test_boundary_knots_fix_the_far_off_replication_at_n100(semi):
    """Replication 515 of ``jaxmed study semi-synthetic --n 100 --seed 17``: with the old
    defaults MR is 36 / 33 / 19 off on IDE / IME / DDE with status 0; the quantile boundary
    knots (alone or with ρ̃ ≤ 50) put every effect within 0.3 of the truth; ρ̃ ≤ 50 alone does
    nothing here."""
    design, true = semi
    keys = jax.random.split(replication_key(jax.random.key(17), 0, 515))
    old, _ = _errors(design, true, keys, 100, MediationConfig(**OLD))
    assert np.abs(old[:3]).min() > 10.0, old
    rho_only, _ = _errors(design, true, keys, 100, MediationConfig(nuisance_boundary_quantile=0.0))
    np.testing.assert_allclose(rho_only, old, atol=1e-9)
    new, _ = _errors(design, true, keys, 100, MediationConfig())
    assert np.abs(new).max() < 0.3, new


def test_rho_truncation_fixes_the_density_ratio_replication_at_n200(semi):
    """Replication 24 of seed 2026's coverage keys (``fold_in(key(2026), 24)``), N = 200: a
    few rows with a mediator density ratio above 50 put MR's IDE and IME off in opposite
    directions, 1.77 / −1.64 with the boundary knots alone (0.66 / −0.63 with the old
    defaults); with ρ̃ ≤ 50 (one row clipped) the new defaults are within 0.2."""
    design, true = semi
    keys = jax.random.split(jax.random.fold_in(jax.random.key(2026), 24))
    old, _ = _errors(design, true, keys, 200, MediationConfig(**OLD))
    knots_only, clipped = _errors(design, true, keys, 200, MediationConfig(rho_trunc=500.0))
    assert clipped == 0.0
    assert knots_only[0] > 1.5 and knots_only[1] < -1.5, knots_only
    assert abs(old[0]) > 0.5, old
    new, clipped = _errors(design, true, keys, 200, MediationConfig())
    assert clipped >= 1.0
    assert np.abs(new).max() < 0.25, new
