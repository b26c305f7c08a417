"""N buckets (issue 12, "compile once"): padding with absent trajectories changes no result.

* the bucket rule against hand-computed groups (the paper's N-grid: 7 programs, not 15);
* the statistics that count trajectories (cluster SE, IJ SE, bootstrap) against numpy
  references over the real trajectories only;
* ``mediation_core`` on padded data equals the unpadded run in every field to 1e-12, on the
  semi-synthetic design and on toy1 (binary configuration), bootstrap included;
* the study runner on an N-grid compiles one estimation program per bucket (counted from
  JAX's compile log; truth: the number of buckets) and gives the unpadded results.
"""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.mediation.design_config import config_for_design
from jaxmed._src.mediation.effects import _control_action, mediation_core
from jaxmed._src.mediation.influence import influence_se
from jaxmed._src.mediation.padding import pad_trajectories, real_trajectories
from jaxmed._src.mediation.uncertainty import bootstrap_counts, cluster_influence, cluster_se
from jaxmed._src.sim.designs import get_design
from jaxmed._src.study import chunk_compute
from jaxmed._src.study.catalog import default_estimator
from jaxmed._src.study.n_buckets import bucket_of, padded_sizes

PAPER_GRID = [(n, 25) for n in range(100, 1501, 100)]


def test_bucket_rule_groups_the_paper_grid_into_seven_programs():
    assert [bucket_of(n) for n in (1, 2, 3, 4, 5, 7, 96, 97, 128, 129, 1024, 1025, 1536, 1537)] == \
        [1, 2, 3, 4, 6, 8, 96, 128, 128, 192, 1024, 1536, 1536, 2048]
    sizes = padded_sizes(PAPER_GRID)
    assert sizes == [100, 200, 300, 500, 500, 700, 700, 1000, 1000, 1000] + [1500] * 5
    assert len(set(sizes)) == 7 and sum(sizes) / sum(n for n, _ in PAPER_GRID) == 1.125
    # one N per bucket and horizon: nothing padded; other horizons are separate groups
    assert padded_sizes([(100, 25)]) == [100]
    assert padded_sizes([(400, 25), (500, 100), (450, 25)]) == [450, 500, 450]
    assert padded_sizes(PAPER_GRID, None) == [n for n, _ in PAPER_GRID]
    assert padded_sizes([(100, 25), (129, 25)], [128, 256]) == [128, 256]
    for bad, word in (("pow2", "n_buckets"), ([64], "n_buckets"), ([0, 256], "n_buckets")):
        with pytest.raises(ValueError, match=word):
            padded_sizes([(100, 25)], bad)


def test_small_groups_join_the_next_bucket_when_padding_costs_less_than_a_program():
    from jaxmed._src.study.n_buckets import MERGE_STEPS
    from jaxmed._src.study.runner import _padded_n

    # the paper's grid with 100 replications: {100} -> {200} adds 100 * 25 * 100 = 250,000
    # trajectory-steps (<= MERGE_STEPS), {100, 200} -> {300} would add 500,000: 6 programs
    assert MERGE_STEPS == 300_000
    sizes = padded_sizes(PAPER_GRID, reps=100)
    assert sizes == [200, 200, 300, 500, 500, 700, 700, 1000, 1000, 1000] + [1500] * 5
    # a merged group merges on while it stays cheap: 8 replications give 2 programs, and every
    # padded size is still an N of the grid
    sizes = padded_sizes(PAPER_GRID, reps=8)
    assert sizes == [700] * 7 + [1500] * 8 and set(sizes) <= {n for n, _ in PAPER_GRID}
    # at the bound exactly and one step above it
    assert padded_sizes([(100, 30), (200, 30)], reps=100) == [200, 200]  # 300,000: merged
    assert padded_sizes([(100, 31), (200, 31)], reps=100) == [100, 200]  # 310,000: not
    # horizons and pad groups stay apart; without reps (or with a list) nothing is merged
    assert padded_sizes([(100, 25), (200, 50)], reps=1) == [100, 200]
    assert padded_sizes([(100, 25), (200, 25)], group=lambda n, h: n > 150, reps=1) == [100, 200]
    assert padded_sizes([(100, 25), (200, 25)]) == [100, 200]
    assert padded_sizes([(100, 25), (200, 25)], [128, 256], reps=1) == [128, 256]
    # the study runner passes its replications: the semi-synthetic estimator's knot groups
    # keep N = 100 (4 knots at T = 25) apart from N = 200 (5 knots), which joins N = 300
    spec = default_estimator(get_design("semi-synthetic"))
    assert _padded_n(PAPER_GRID, spec, "auto", 100)[:3] == (None, 300, 300)
    assert _padded_n([(100, 25), (200, 25)], spec, "auto", 8) is None
    assert _padded_n(PAPER_GRID, spec, "auto", 8) == (None,) + (700,) * 6 + (1500,) * 8


def _padded_values(rng, n, t, extra, d):
    x = rng.normal(size=(n, t, d)) + rng.normal(size=(n, 1, d))
    mask = np.ones((n, t))
    mask[: n // 3, t - 2:] = 0  # ragged real trajectories
    xp = np.concatenate([x, np.repeat(x[:1], extra, 0)])
    mp = np.concatenate([mask, np.zeros((extra, t))])
    return x, mask, xp, mp


def test_cluster_se_counts_only_real_trajectories():
    rng = np.random.default_rng(3)
    n, t, extra, d = 25, 6, 7, 2
    x, mask, xp, mp = _padded_values(rng, n, t, extra, d)
    # numpy reference over the real trajectories: delta-method influence, ddof 1
    obs = mask.reshape(-1) > 0
    est = x.reshape(-1, d)[obs].mean(0)
    ni = mask.sum(1)
    mi = np.stack([x[i][mask[i] > 0].mean(0) for i in range(n)])
    infl = ni[:, None] * (mi - est) / ni.mean()
    ref = np.sqrt((infl ** 2).sum(0) / (n * (n - 1)))
    se_pad = cluster_se(jnp.asarray(xp.reshape(-1, d)), jnp.asarray(mp))
    np.testing.assert_allclose(se_pad, ref, rtol=1e-12)
    est_p, infl_p = cluster_influence(jnp.asarray(xp.reshape(-1, d)), jnp.asarray(mp))
    np.testing.assert_allclose(est_p, est, rtol=1e-12)
    np.testing.assert_allclose(infl_p[:n], infl, rtol=1e-10, atol=1e-12)
    assert np.all(np.asarray(infl_p[n:]) == 0.0)
    # absent trajectories in the middle count as nothing either
    perm = np.r_[0:10, n:n + extra, 10:n]
    se_mid = cluster_se(jnp.asarray(xp[perm].reshape(-1, d)), jnp.asarray(mp[perm]))
    np.testing.assert_allclose(se_mid, ref, rtol=1e-12)


def test_influence_se_over_real_trajectories():
    rng = np.random.default_rng(4)
    infl = rng.normal(size=(30, 3)) + 2.0
    ref = infl.std(0, ddof=1) / np.sqrt(30)
    padded = np.concatenate([infl, np.zeros((9, 3))])
    real = np.r_[np.ones(30), np.zeros(9)]
    np.testing.assert_allclose(influence_se(jnp.asarray(infl)), ref, rtol=1e-12)
    np.testing.assert_allclose(influence_se(jnp.asarray(padded), jnp.asarray(real)), ref, rtol=1e-12)


def test_bootstrap_counts_resample_real_trajectories_only():
    keys = jax.random.split(jax.random.key(0), 3000)
    n, extra = 12, 5
    real_end = jnp.asarray(np.r_[np.ones(n), np.zeros(extra)])
    plain = np.asarray(jax.vmap(lambda k: bootstrap_counts(k, n))(keys))
    padded = np.asarray(jax.vmap(lambda k: bootstrap_counts(k, n + extra, real=real_end))(keys))
    # padding at the end: the same draws, followed by zeros
    assert np.array_equal(padded[:, :n], plain) and np.all(padded[:, n:] == 0)
    # absent trajectories in the middle: never drawn; the real ones ~ Multinomial(n; 1/n)
    real_mid = np.r_[np.ones(4), np.zeros(extra), np.ones(n - 4)]
    mid = np.asarray(jax.vmap(lambda k: bootstrap_counts(k, n + extra, real=jnp.asarray(real_mid)))(keys))
    assert np.all(mid[:, real_mid == 0] == 0) and np.all(mid.sum(1) == n)
    c = mid[:, real_mid == 1]  # each count ~ Binomial(12, 1/12): mean 1, variance 11/12
    assert abs(c.mean() - 1.0) < 5 * np.sqrt(11 / 12 / c.size)
    assert abs(c[:, 0].var() - 11 / 12) < 0.15
    assert abs(c[:, -1].var() - 11 / 12) < 0.15


def test_pad_trajectories_appends_absent_trajectories():
    data = get_design("toy1").simulate(jax.random.key(0), 11, 4)
    padded = pad_trajectories(data, 16)
    for a, b in zip(data, padded):
        assert np.array_equal(np.asarray(b)[:11], np.asarray(a)) and np.shape(b)[0] == 16
    assert np.array_equal(np.asarray(real_trajectories(padded.mask)), np.r_[np.ones(11), np.zeros(5)])
    with pytest.raises(ValueError, match="^n:"):
        pad_trajectories(data, 10)


# The estimates, η and the cluster SE to 1e-12; the other fields to 1e-11: the SEs and intervals
# (DM's come from the bootstrap), the bootstrap replicates (each refits every system with
# multinomial weights) and the per-trajectory influence values are sums of larger terms, whose
# rounding the fitted systems' conditioning amplifies. Measured on the semi-synthetic case
# (N = 40, T = 10, LSTD condition number 1.3e6): estimate 1.6e-13, η 7.2e-14, cluster SE
# 5.5e-14; influence 3.9e-12, bootstrap replicates 2.8e-12, intervals 1.9e-12.
_TIGHT = ("estimate", "eta", "cluster_se")


def _assert_fields_equal(r1, r2, n):
    for name, a, b in zip(r1._fields, r1, r2):
        tol = 1e-12 if name in _TIGHT or name == "diagnostics" else 1e-11
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            x, y = np.asarray(x), np.asarray(y)
            if name == "influence":
                assert np.all(np.nan_to_num(y[n:]) == 0.0)
                y = y[:n]
            assert x.shape == y.shape, name
            np.testing.assert_allclose(y, x, rtol=tol, atol=tol, err_msg=name)


@pytest.mark.parametrize("name,n,t,n_pad", [
    pytest.param("semi-synthetic", 40, 10, 64, marks=pytest.mark.slow),  # 85 s of compilation
    ("toy1", 24, 8, 32)])
def test_mediation_core_on_padded_data_equals_unpadded_in_every_field(name, n, t, n_pad):
    # Sizes where the fits are well conditioned: rounding differences of the longer sums are
    # ~1e-16 and stay within the tolerances of ``_assert_fields_equal`` (at N = 30, T = 8 the
    # semi-synthetic LSTD/bootstrap systems amplified them to 7e-12 in the estimate and 2e-9
    # in a bootstrap replicate).
    design = get_design(name)
    config = dataclasses.replace(config_for_design(design), n_boot=3)
    data = jax.jit(design.simulate, static_argnums=(1, 2))(jax.random.key(5), n, t)
    core = jax.jit(mediation_core, static_argnames=("a0",))
    a0 = _control_action(design.control_policy)
    key = jax.random.key(9)
    r1 = core(key, data, design.target_policy, a0, config)
    r2 = core(key, pad_trajectories(data, n_pad), design.target_policy, a0, config)
    assert int(r1.diagnostics.status) == int(r2.diagnostics.status)
    boot = np.asarray(r1.boot_estimates)
    assert boot.shape[0] == 3 and np.isfinite(boot[:, 0, :2]).any()  # the bootstrap ran
    _assert_fields_equal(r1, r2, n)


class _ProgramLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        # one message per XLA compilation (a program is lowered twice when it is also
        # exported to the disk cache, program_cache.py, but compiled once)
        msg = record.getMessage()
        if msg.startswith("Finished XLA compilation of "):
            self.names.append(msg.split(" ")[4])


@pytest.mark.slow  # CI time: 90-155 s (simulation and estimation programs of three N); padded = unpadded stays in CI (toy1)
def test_study_on_an_n_grid_compiles_one_estimation_program_per_bucket():
    design = get_design("toy1")
    spec = default_estimator(design)
    grid = study.make_grid([20, 22, 24], 7)  # one bucket: (16, 24]
    assert padded_sizes(grid) == [24, 24, 24]
    log = _ProgramLog()
    logger = logging.getLogger("jax")
    logger.addHandler(log)
    results, programs = {}, {}
    # the global flag, not the ``jax.log_compiles`` context: that one is thread-local, and the
    # study compiles its programs in a background pool (``per_device.deferred_compilation``)
    log_compiles = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    try:
        for n_buckets in ("auto", None):
            chunk_compute._COMPILED.clear()  # count this run's programs, not earlier tests'
            log.names.clear()
            results[n_buckets] = study.run(design, spec, grid, reps=2, key=3, batch_size=2,
                                           progress=False, n_buckets=n_buckets)
            programs[n_buckets] = list(log.names)
    finally:
        jax.config.update("jax_log_compiles", log_compiles)
        logger.removeHandler(log)
    estimation = {k: sum(p in ("jit(estimate_chunk)", "jit(local)") for p in v)
                  for k, v in programs.items()}
    assert estimation == {"auto": 1, None: 3}, programs
    assert programs["auto"].count("jit(simulate_chunk)") == 3  # data simulated at each real N
    a, b = results["auto"], results[None]
    assert np.array_equal(a.status, b.status) and np.all(a.status == 0)
    for f in ("estimate", "se", "ci_low", "ci_high"):
        x, y = getattr(a, f), getattr(b, f)
        assert np.array_equal(np.isnan(x), np.isnan(y)) and np.isfinite(x[:, :, 0]).all()
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=f)


def test_mediation_cells_share_a_program_only_with_the_same_knots():
    """The knot rule reads the padded N·T (knot_rule.py): N = 100 (K = 4 at T = 25) is not
    padded to 120 (K = 5), whose bucket it shares; N = 130 and 140 (both K = 5) are."""
    from jaxmed._src.mediation.knot_rule import rate_knots

    spec = default_estimator(get_design("semi-synthetic"))
    assert spec.pad_group(100, 25) == rate_knots(2500, 5) == 4
    assert spec.pad_group(120, 25) == rate_knots(3000, 5) == 4
    assert spec.pad_group(130, 25) == 5
    grid = [(100, 25), (125, 25), (130, 25), (140, 25)]
    assert padded_sizes(grid, "auto", spec.pad_group) == [100, 125, 140, 140]
    assert padded_sizes(grid, [128, 256], spec.pad_group) == [100, 128, 256, 256]
