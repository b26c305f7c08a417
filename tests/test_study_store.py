"""The study store: fingerprints, corrupt chunks, the lock, temporaries, the umask, merging shares,
chunk-size invariance in every field, and the documented replication keys.

Every result is compared with a reference run of the same study (all replications in memory)
or with a replication recomputed by hand from the documented keys.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.effect_table import EffectTable, EstimatorSpec
from jaxmed._src.study.chunk_store import ChunkStore, study_fingerprint

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign, assert_identical  # noqa: E402

KEY = 5


def _run(out=None, key=KEY, **kw):
    kw.setdefault("batch_size", 1)
    return study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, key, out=out, progress=False, **kw)


@pytest.fixture(scope="module")
def reference():
    return _run(chunk_size=REPS)


def test_a_chunk_of_another_study_is_refused_with_its_name(tmp_path, reference):
    a, b = tmp_path / "seed5", tmp_path / "seed6"
    _run(a, chunk_size=3)
    _run(b, key=KEY + 1, chunk_size=3)
    victim = sorted(os.listdir(a / "chunks"))[1]
    shutil.copy(b / "chunks" / victim, a / "chunks" / victim)  # same name, other study
    with pytest.raises(ValueError, match=f"chunk file .*{victim} belongs to another study"):
        _run(a, chunk_size=3)
    with pytest.raises(ValueError, match=f"{victim} belongs to another study"):
        study.load(a)
    # the untouched store of seed 6 still loads and equals a fresh seed-6 run
    assert_identical(study.load(b), _run(key=KEY + 1, chunk_size=REPS))


def test_a_truncated_chunk_is_named_moved_aside_and_recomputed(tmp_path, reference):
    out = tmp_path / "s"
    _run(out, chunk_size=3)
    victim = sorted(os.listdir(out / "chunks"))[2]
    path = out / "chunks" / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=f"chunk file .*{victim} is unreadable"):
        study.load(out)
    with pytest.warns(RuntimeWarning, match=f"{victim} is unreadable; moved to"):
        res = _run(out, chunk_size=3)
    assert res.n_computed == int(victim.split("_n")[1].split(".")[0])
    assert (out / "chunks" / "corrupt" / victim).exists()
    assert (out / "chunks" / victim).exists()  # recomputed
    assert_identical(res, reference)
    assert_identical(study.load(out), reference)


def test_part_temporaries_of_a_killed_run_are_removed(tmp_path, reference):
    out = tmp_path / "s"
    _run(out, chunk_size=3)
    # what a run killed while writing leaves: temporaries of its share (and of another share,
    # which may still be running and must not be touched)
    mine = out / "chunks" / ".tmp-1of1-k1ll3d.part"
    other = out / "chunks" / ".tmp-2of2-running.part"
    mine.write_bytes(b"PK\x03\x04 half a zip")
    other.write_bytes(b"PK\x03\x04 in flight")
    res = _run(out, chunk_size=3)
    assert res.n_computed == 0
    assert not mine.exists() and other.exists()
    assert_identical(res, reference)


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        out = tmp_path / "s"
        _run(out, chunk_size=REPS)
    finally:
        os.umask(old)
    modes = {p: os.stat(p).st_mode & 0o777
             for p in [out / "manifest.json", *(out / "chunks").glob("*.npz")]}
    assert len(modes) == 1 + len(GRID)
    assert set(modes.values()) == {0o664}, modes


def test_a_second_concurrent_run_fails_clearly(tmp_path, reference):
    """Two real processes: the first holds the lock while it computes (slowed by its progress
    callback); the second run into the same directory fails at once; once the first is done
    a rerun succeeds and computes nothing."""
    out = tmp_path / "s"
    started = tmp_path / "started"
    script = textwrap.dedent(f"""
        import os, sys, time, jax
        jax.config.update("jax_enable_x64", True)
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from jaxmed import study
        from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign
        def slow(cell, reps):
            open({str(started)!r}, "w").write(str(os.getpid()))
            time.sleep(1.0)
        study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, {KEY}, out={str(out)!r}, batch_size=1,
                  chunk_size=1, progress=slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.time()
        while not started.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() - t0 < 300, "the first run never started"
            time.sleep(0.2)
        with pytest.raises(study.StoreLockedError,
                           match=rf"in use: another run of share 1/1 .*lock-1of1 \(pid {proc.pid}\)"):
            _run(out, chunk_size=1)
        assert proc.wait(timeout=300) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    res = _run(out, chunk_size=1)
    assert res.n_computed == 0
    assert_identical(res, reference)


def test_shares_run_apart_and_merge_to_the_full_study(tmp_path, reference):
    parts = []
    for i in range(3):
        d = tmp_path / f"share{i}"
        r = _run(d, chunk_size=1, process=(i, 3))
        assert (r.status >= 0).sum() < len(GRID) * REPS  # each share computes a part only
        parts.append(d)
    out = tmp_path / "merged"
    info = study.merge(out, parts)
    assert info["done"] == info["total"] == len(GRID) * REPS
    assert_identical(study.load(out), reference)
    # merging again (and merging the merged store into itself) changes nothing
    info = study.merge(out, parts + [out])
    assert info["copied"] == 0 and info["done"] == len(GRID) * REPS
    other = tmp_path / "other"
    _run(other, key=KEY + 1, chunk_size=1, process=(0, 3))
    with pytest.raises(ValueError, match=r"sources: .*other holds a different study .*seed"):
        study.merge(tmp_path / "m2", parts + [other])
    with pytest.raises(ValueError, match="sources: .*nothing.* holds no study"):
        study.merge(tmp_path / "m3", [tmp_path / "nothing"])


def keyed_effects(key, data):
    """An estimator that uses its key: a N(0, 1) draw from the estimation key plus mean S_0."""
    s0 = data.state[:, 0, 0]
    e = jnp.reshape(jax.random.normal(key, dtype=s0.dtype) + jnp.mean(s0), (1, 1))
    se = jnp.ones((1, 1), e.dtype)
    return EffectTable(e, se, e - se, e + se, jnp.int32(0))


@pytest.mark.slow  # CI time: 34 s loaded; test_study_runner.py checks the documented keys in CI
def test_replications_use_the_documented_simulation_and_estimation_keys():
    spec = EstimatorSpec("keyed", ("draw",), ("z",), keyed_effects)
    grid = [(6, 2), (9, 3)]
    res = study.run(ToyDesign(), spec, grid, 4, 21, batch_size=2, chunk_size=4, progress=False)
    key = jax.random.key(21)
    for c, (n, h) in enumerate(grid):
        for r in range(4):
            sim_key, est_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, c), r))
            data = ToyDesign().simulate(sim_key, n, h)
            expected = (float(jax.random.normal(est_key, dtype=jnp.float64))
                        + float(np.mean(np.asarray(data.state)[:, 0, 0])))
            assert abs(res.estimate[c, r, 0, 0] - expected) < 1e-12, (c, r)


@pytest.fixture(scope="module")
def longterm_runs(tmp_path_factory):
    """The real long-term design (registry), nonstationary estimator with a 3-draw bootstrap,
    stored with chunk sizes 1 and 3: the estimates, SEs and CIs all come from XLA code whose
    fusion changed with the chunk size before the fix."""
    from jaxmed._src.longterm.api import longterm_estimator_spec

    design = study.get_design("longterm-s1")
    spec = longterm_estimator_spec(design.reward, design.gamma, estimators=("nonstationary",),
                                   n_boot=3, name="ns-boot3")
    base = tmp_path_factory.mktemp("lt")
    runs = {cs: study.run(design, spec, [(20, 4)], 3, 0, chunk_size=cs, batch_size=1,
                          out=base / f"cs{cs}", progress=False) for cs in (1, 3)}
    return base, runs


def test_results_do_not_depend_on_the_chunk_size_in_any_field(longterm_runs):
    _, runs = longterm_runs
    assert np.isfinite(runs[1].ci_low).all() and (runs[1].status == 0).all()
    assert_identical(runs[1], runs[3])


def test_stores_of_different_chunk_sizes_merge(longterm_runs, tmp_path):
    base, runs = longterm_runs
    info = study.merge(tmp_path / "m", [base / "cs1", base / "cs3"])
    assert info["done"] == info["total"] == 3
    assert_identical(study.load(tmp_path / "m"), runs[1])


def test_store_directory_layout(tmp_path):
    out = tmp_path / "s"
    _run(out, chunk_size=REPS)
    store = ChunkStore(out)
    m = store.read_manifest()
    assert m["format"] == "jaxmed-study-v2" and len(m["fingerprint"]) == 64
    with np.load(store.chunk_files()[0][1]) as z:
        assert str(z["fingerprint"]) == m["fingerprint"]


def test_settings_the_name_does_not_say_are_part_of_the_study(tmp_path, reference):
    # two estimators with one name but other settings (e.g. MediationConfig(ratio_draws=4)):
    # a resume with the other settings is refused, not mixed into the store
    import dataclasses

    out = tmp_path / "s"
    a = dataclasses.replace(NOISE_SPEC, settings=(("ratio_draws", 4),))
    b = dataclasses.replace(NOISE_SPEC, settings=(("ratio_draws", 2),))
    run_a = study.run(ToyDesign(), a, GRID, REPS, KEY, out=out, progress=False, batch_size=1)
    assert_identical(run_a, reference)  # the settings label the numbers, they do not change them
    m = ChunkStore(out).read_manifest()
    assert m["settings"] == [["ratio_draws", 4]]
    with pytest.raises(ValueError, match=r"holds a different study \(settings: stored "
                                         r"\[\['ratio_draws', 4\]\], requested \[\['ratio_draws', 2\]\]"):
        study.run(ToyDesign(), b, GRID, REPS, KEY, out=out, progress=False, batch_size=1)
    with pytest.raises(ValueError, match=r"settings: stored .*requested None"):
        _run(out)
    # the same settings resume and compute nothing
    assert study.run(ToyDesign(), a, GRID, REPS, KEY, out=out, progress=False,
                     batch_size=1).n_computed == 0
    # a spec without settings keeps the fingerprint stores had before settings existed
    plain = {k: v for k, v in m.items() if k not in ("settings", "fingerprint")}
    assert study_fingerprint(plain) == study_fingerprint({**plain, "settings": None})
    assert study_fingerprint(plain) != m["fingerprint"]


def test_mediation_specs_carry_the_settings_their_names_do_not_say():
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.design_config import config_for_design
    from jaxmed._src.mediation.effects import mediation_estimator_spec
    from jaxmed._src.mediation.time_effects import time_effects_estimator_spec
    from jaxmed._src.sim.designs import get_design

    def settings(config):
        return mediation_estimator_spec("logistic:0.7", "constant:0", config).settings

    # the presets behind the names with the defaults before session 21 (ρ̃ ≤ 500, range
    # knots): no settings (their stores keep their fingerprints); the current defaults say
    # what changed, so an old store refuses to resume rather than mix numbers
    old = dict(rho_trunc=500.0, nuisance_boundary_quantile=0.0)
    for config in (MediationConfig(**old), MediationConfig(se_method="ij", **old),
                   MediationConfig.binary(**old),
                   MediationConfig(natural_decomposition=True, **old),
                   MediationConfig(se_method="ij", ij_estimators=("MR",), **old)):
        assert settings(config) is None, config
    new = (("nuisance_boundary_quantile", 0.0025), ("rho_trunc", 50.0))
    for config in (MediationConfig(), MediationConfig(se_method="ij"), MediationConfig.binary(),
                   MediationConfig(natural_decomposition=True)):
        assert settings(config) == new, config
    assert settings(MediationConfig(ratio_draws=4, se_method="ij")) == (
        new[0], ("ratio_draws", 4), new[1])
    assert settings(MediationConfig.binary(q_ridge=1e-3, **old)) == (("q_ridge", 1e-3),)
    multidim = config_for_design(get_design("multidim"))
    assert settings(multidim) == (new[0], ("q_state_interactions", 1), ("ratio_draws", 4), new[1])
    # restricting the IJ rows keeps the settings (same study, fewer rows)
    spec = mediation_estimator_spec("logistic:0.7", "constant:0",
                                    multidim.replace(se_method="ij", ratio_draws=3))
    assert spec.restrict(("MR",)).settings == spec.settings == (
        new[0], ("q_state_interactions", 1), ("ratio_draws", 3), new[1])
    # the calendar-time comparison: the default time terms say only that the time pipeline
    # has its own ratio-feature count (40, not the stationary 15 of stores made before it);
    # other time terms say what they change
    assert time_effects_estimator_spec("logistic:0.7", "constant:0").settings == new + (
        ("time_ratio_features", 40),)
    assert time_effects_estimator_spec("logistic:0.7", "constant:0",
                                       mediator_time=False).settings == new + (
        ("time", [["mediator_time", False]]), ("time_ratio_features", 40))
    assert time_effects_estimator_spec("logistic:0.7", "constant:0", MediationConfig(ratio_draws=2),
                                       time_effects="additive").settings == (
        new[0], ("ratio_draws", 2), new[1], ("time", [["q_time_interactions", "none"]]),
        ("time_ratio_features", 40))
    # a user's own ratio-feature count is the time pipeline's too, and the name says it all
    assert time_effects_estimator_spec("logistic:0.7", "constant:0",
                                       MediationConfig(ratio_features=20, **old)).settings == (
        ("ratio_features", 20),)
    # 15 set by hand is the user's own count too (the default is None, not 15)
    assert time_effects_estimator_spec("logistic:0.7", "constant:0",
                                       MediationConfig(ratio_features=15, **old)).settings == (
        ("ratio_features", 15),)


def test_a_store_made_with_the_defaults_before_session_21_refuses_to_resume_with_the_new(tmp_path):
    # ρ̃ ≤ 50 and quantile boundary knots changed the default numbers; a store made before
    # (settings None) must not take chunks computed with the new defaults
    from jaxmed._src.mediation.config import MediationConfig
    from jaxmed._src.mediation.effects import mediation_estimator_spec
    from jaxmed._src.sim.designs import get_design
    from jaxmed._src.study.runner import _manifest

    design = get_design("semi-synthetic")

    def manifest(config):
        spec = mediation_estimator_spec(design.target_policy, "constant:0", config)
        return _manifest(design, spec, [(100, 25)], 4, 0, [0, 0], 1, np.float64)

    before = MediationConfig(rho_trunc=500.0, nuisance_boundary_quantile=0.0)
    ChunkStore(str(tmp_path)).open(manifest(before))
    with pytest.raises(ValueError, match="settings: stored None, requested"):
        ChunkStore(str(tmp_path)).open(manifest(MediationConfig()))
    ChunkStore(str(tmp_path)).open(manifest(before))  # the old settings still resume
    assert study_fingerprint(manifest(before)) != study_fingerprint(manifest(MediationConfig()))
