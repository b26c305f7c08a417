"""The study runner: keys, chunk-size and device-count invariance, chunk store, resume."""

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.study.chunk_store import STATUS_MISSING, ChunkStore

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign, assert_identical  # noqa: E402

KEY = 11


@pytest.fixture(scope="module")
def reference():
    """All replications in one chunk, batch_size 1, in memory."""
    return study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, chunk_size=REPS, batch_size=1,
                     progress=False)


def test_replications_use_the_documented_keys_and_estimator(reference):
    design = ToyDesign()
    key = jax.random.key(KEY)
    for c, (n, h) in enumerate(GRID):
        sim_keys = jax.vmap(lambda r: jax.random.split(study.replication_key(key, c, r))[0])(
            np.array([0, REPS - 1]))
        datas = jax.jit(jax.vmap(lambda k: design.simulate(k, n, h)))(sim_keys)
        for i, r in enumerate((0, REPS - 1)):
            data = jax.tree.map(lambda a: a[i], datas)
            # independent float64 numpy reference of the estimator on these data
            s = np.asarray(data.state[..., 0])
            eps = np.asarray(data.mediator[..., 0]) - np.sqrt(np.abs(s)) - (np.asarray(data.action) - 0.5)
            per_traj = (eps ** 2).mean(axis=1)
            half = n // 2
            expected = np.array([[s[:, 0].mean(), per_traj.mean()],
                                 [s[:half, 0].mean(), per_traj[:half].mean()]])
            se = np.array([[s[:, 0].std(ddof=1) / np.sqrt(n), per_traj.std(ddof=1) / np.sqrt(n)],
                           [s[:half, 0].std(ddof=1) / np.sqrt(half),
                            per_traj[:half].std(ddof=1) / np.sqrt(half)]])
            np.testing.assert_allclose(reference.estimate[c, r], expected, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(reference.se[c, r], se, rtol=1e-12)
            np.testing.assert_allclose(reference.ci_high[c, r] - reference.ci_low[c, r],
                                       2 * 1.959963984540054 * se, rtol=1e-12)
            assert reference.status[c, r] == int(s[0, 0] > 1.5)
    # replications differ from each other and across cells (keys are not reused)
    assert len(np.unique(reference.estimate[:, :, 0, 0])) == len(GRID) * REPS


@pytest.mark.parametrize("chunk_size", [1, 3])
def test_chunk_size_does_not_change_results(reference, chunk_size):
    res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, chunk_size=chunk_size, batch_size=1,
                    progress=False)
    assert res.chunk_size == chunk_size
    assert_identical(res, reference)


@pytest.mark.slow  # CI time: 74 s; 2 devices bit-identical is also checked by test_cli_options.py (shares on two devices)
def test_device_count_does_not_change_results(tmp_path):
    """1 device (this process) against 4 forced host devices (a subprocess)."""
    one = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, batch_size=2, chunk_size=2,
                    progress=False)
    assert one.devices == 1
    out = tmp_path / "four"
    script = textwrap.dedent(f"""
        import sys, jax
        jax.config.update("jax_enable_x64", True)
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign
        from jaxmed import study
        assert len(jax.devices()) == 4, jax.devices()
        res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, {KEY}, batch_size=2, chunk_size=8,
                        out={str(out)!r}, progress=False)
        print("DEVICES", res.devices, res.chunk_size)
    """)
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip(),
               JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEVICES 4 8" in proc.stdout
    four = study.load(out)
    assert_identical(four, one)
    # the 4-device chunks were written as files of 8 replications (the last one 7 - 0 padded)
    sizes = sorted(int(np.load(p)["rep"].size) for _, p in ChunkStore(out).chunk_files())
    assert sizes == [7, 7]


class _Killed(Exception):
    pass


def test_kill_and_resume_recomputes_nothing_and_gives_identical_results(tmp_path, reference):
    out = tmp_path / "study"
    seen = []

    def die_after_three(cell, reps):
        seen.append((cell, reps.tolist()))
        if len(seen) == 3:
            raise _Killed

    with pytest.raises(_Killed):
        study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, chunk_size=2, batch_size=1,
                  progress=die_after_three)
    store = ChunkStore(out)
    files = {p: os.stat(p).st_mtime_ns for _, p in store.chunk_files()}
    assert len(files) == 3  # every chunk that finished is on disk, nothing else
    assert not [f for f in os.listdir(store.chunk_dir) if not f.endswith(".npz")]
    partial = study.load(out)
    done = partial.status != STATUS_MISSING
    assert done.sum() == 6 and done[0, :6].all()

    computed = []
    res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, chunk_size=3,
                    progress=lambda c, r: computed.append((c, r.tolist())))
    assert res.batch_size == 1  # the stored batch size is kept on resume
    redone = {(c, r) for c, reps in computed for r in reps}
    assert redone == {(0, 6)} | {(1, r) for r in range(REPS)}
    assert res.n_computed == len(redone)
    for p, mtime in files.items():  # finished chunks were neither rewritten nor recomputed
        assert os.stat(p).st_mtime_ns == mtime
    assert_identical(res, reference)
    assert_identical(study.load(out), reference)
    assert study.load(out).jax_version == jax.__version__  # read back from the manifest

    # a third call computes nothing
    again = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, progress=False)
    assert again.n_computed == 0 and again.compile_s == 0.0
    assert_identical(again, reference)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reps"] == REPS and manifest["grid"] == [list(g) for g in GRID]
    assert manifest["seed"] == KEY and manifest["versions"]["jax"] == jax.__version__
    assert manifest["versions"]["jaxlib"] == importlib.metadata.version("jaxlib")
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["estimators"] == ["all", "half"]


def test_resume_with_different_arguments_is_refused(tmp_path):
    out = tmp_path / "study"
    study.run(ToyDesign(), NOISE_SPEC, GRID[:1], 2, KEY, out=out, batch_size=1, progress=False)
    with pytest.raises(ValueError, match=r"^out: .*reps: stored 2, requested 3"):
        study.run(ToyDesign(), NOISE_SPEC, GRID[:1], 3, KEY, out=out, batch_size=1, progress=False)
    with pytest.raises(ValueError, match=r"^out: .*seed"):
        study.run(ToyDesign(), NOISE_SPEC, GRID[:1], 2, KEY + 1, out=out, progress=False)
    with pytest.raises(ValueError, match=r"^out: .*batch_size: stored 1, requested 2"):
        study.run(ToyDesign(), NOISE_SPEC, GRID[:1], 2, KEY, out=out, batch_size=2, progress=False)


def test_multi_process_shares_merge_to_the_full_result(tmp_path, reference):
    """Two 'processes' compute disjoint blocks into their own directories; merged = full."""
    dirs = [tmp_path / "p0", tmp_path / "p1"]
    for i, d in enumerate(dirs):
        part = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=d, batch_size=1,
                         chunk_size=REPS, process=(i, 2), progress=False)
        assert part.n_computed == len(GRID) * len(range(i, REPS, 2))
        assert (part.status[:, i::2] != STATUS_MISSING).all()
        assert (part.status[:, 1 - i::2] == STATUS_MISSING).all()
    for _, p in ChunkStore(dirs[1]).chunk_files():
        os.replace(p, os.path.join(ChunkStore(dirs[0]).chunk_dir, os.path.basename(p)))
    assert_identical(study.load(dirs[0]), reference)


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="^grid: cell 1"):
        study.run(ToyDesign(), NOISE_SPEC, [(8, 3), (0, 3)], 2, KEY, progress=False)
    with pytest.raises(ValueError, match="^reps:"):
        study.run(ToyDesign(), NOISE_SPEC, GRID, 0, KEY, progress=False)
    with pytest.raises(ValueError, match="^estimator:"):
        study.run(ToyDesign(), NOISE_SPEC.fn, GRID, 2, KEY, progress=False)
    from jaxmed._src.effect_table import EstimatorSpec

    wrong = EstimatorSpec("wrong", ("all",), NOISE_SPEC.effects, NOISE_SPEC.fn)  # fn gives 2 rows
    with pytest.raises(ValueError, match=r"^estimator: 'wrong' returned estimate of shape \(2, 2\)"):
        study.run(ToyDesign(), wrong, [(8, 3)], 1, KEY, batch_size=1, progress=False)
    assert study.make_grid([8, 12], [3, 4]) == [(8, 3), (8, 4), (12, 3), (12, 4)]


def test_memory_based_batch_size_and_byte_estimate():
    design = ToyDesign()

    def one(key):
        return NOISE_SPEC.fn(key, design.simulate(key, 50, 10))

    from jaxmed._src.study.runner import replication_bytes

    nbytes = replication_bytes(one, jax.random.key(0))
    data_bytes = 50 * 10 * (1 + 1 + 2 + 1 + 1 + 1) * 8  # the Trajectories alone
    assert data_bytes <= nbytes < 200 * data_bytes
    res = study.run(design, NOISE_SPEC, [(8, 3)], 3, KEY, progress=False)
    assert res.batch_size == 8  # plenty of memory: the cap
    assert res.chunk_size == 8


@pytest.mark.slow  # CI time: 22 s; float32 studies also run in CI in test_cli_options.py
def test_float32_runs_in_float32_and_agrees_with_float64(reference):
    res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, chunk_size=REPS, batch_size=1,
                    progress=False, dtype=np.float32)
    assert res.dtype == "float32"
    # the stored values are float32 numbers (exactly representable), not float64 ones
    assert np.array_equal(res.estimate.astype(np.float32).astype(np.float64), res.estimate,
                          equal_nan=True)
    # float32 random draws are not rounded float64 draws: compare with the same replication
    # computed unbatched in float32 from the documented key
    design = ToyDesign()
    with jax.enable_x64(False):
        sim_key, est_key = jax.random.split(study.replication_key(jax.random.key(KEY), 1, 4))
        data = jax.jit(lambda k: design.simulate(k, *GRID[1]))(sim_key)
        assert data.reward.dtype == np.float32
        table = jax.jit(NOISE_SPEC.fn)(est_key, data)
    np.testing.assert_allclose(res.estimate[1, 4], np.asarray(table.estimate, np.float64),
                               rtol=1e-5, atol=1e-6)


def test_batch_size_above_the_limit_is_refused():
    """Any vmap width runs on CPU (no LAPACK custom call in the estimators); absurd widths are
    refused with a clear error before anything is traced."""
    with pytest.raises(ValueError, match="batch_size: expected at most 1024"):
        study.run(ToyDesign(), NOISE_SPEC, [(8, 3)], 3, KEY, batch_size=1025, progress=False)


def test_a_cell_is_traced_once_and_its_program_is_unchanged():
    # the default batch size comes from the replication's jaxpr; the cell's program is then
    # built from that same trace: the estimator's Python runs once per cell, not twice
    import dataclasses

    from jaxmed._src.study import chunk_compute

    calls = []

    def counted(key, data):
        calls.append(data.state.shape)
        return NOISE_SPEC.fn(key, data)

    spec = dataclasses.replace(NOISE_SPEC, fn=counted)
    chunk_compute._TRACED.clear()
    chunk_compute._COMPILED.clear()
    res = study.run(ToyDesign(), spec, [(8, 3), (12, 4)], 5, KEY, progress=False)
    assert res.batch_size == 8 and len(calls) == 2  # one trace per cell
    # a given batch size (no memory estimate): one trace per cell too, the same numbers
    calls.clear()
    chunk_compute._TRACED.clear()
    chunk_compute._COMPILED.clear()
    again = study.run(ToyDesign(), spec, [(8, 3), (12, 4)], 5, KEY, batch_size=8, chunk_size=5,
                      progress=False)
    assert len(calls) == 2
    assert_identical(res, again)
