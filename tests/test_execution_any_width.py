"""Any vmap width runs on CPU: the documented study command that used to hang, width 32, and
the long-term study at widths 8 and 32.

jaxlib 0.10.2's batched LAPACK kernels deadlocked at vmap width 8 of the mediation pipeline
on 2 cores (``jaxmed study semi-synthetic ... --estimators MR`` hung forever). The pipeline's
small solves are now LAPACK-free (``jaxmed._src.small_linalg``). Both runs happen in
subprocesses under a timeout, so a regression fails instead of hanging the test session.
The truth compared against: the width-32 vmap reproduces, replication by replication, the
MR estimates the width-8 study stored (same keys ``fold_in(fold_in(key, cell), rep)``).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

N, T, REPS = 30, 5, 12

_WIDTH32 = textwrap.dedent(f"""
    import json
    import jax, jax.numpy as jnp, numpy as np
    from jaxmed._src.precision import precision
    from jaxmed._src.study import catalog
    design = catalog.get_design("semi-synthetic")
    spec = catalog.default_estimator(design)
    def one(rep_key):
        sim_key, est_key = jax.random.split(rep_key)
        return spec.fn(est_key, design.simulate(sim_key, {N}, {T}))
    with precision(np.float64):
        cell = jax.random.fold_in(jax.random.key(0), 0)
        keys = jax.vmap(lambda r: jax.random.fold_in(cell, r))(jnp.arange(32))
        table = jax.jit(jax.vmap(one))(keys)
        print(json.dumps(dict(mr=np.asarray(table.estimate[:, 0]).tolist(),
                              status=np.asarray(table.status).tolist())))
""")


def test_width_8_study_command_and_width_32_vmap_run_and_agree(tmp_path):
    out = tmp_path / "study"
    env = dict(os.environ, JAXMED_NO_CACHE="1")
    cmd = [sys.executable, "-m", "jaxmed", "study", "semi-synthetic", "--n", str(N), "--horizon",
           str(T), "--reps", str(REPS), "--estimators", "MR", "--no-progress", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["batch_size"] == 8 and manifest["estimators"] == ["MR"]
    from jaxmed import study

    res = study.load(out)
    assert (res.status == 0).all()

    wide = subprocess.run([sys.executable, "-c", _WIDTH32], env=env, capture_output=True,
                          text=True, timeout=420)
    assert wide.returncode == 0, wide.stderr[-3000:]
    got = json.loads(wide.stdout.strip().splitlines()[-1])
    mr = np.asarray(got["mr"])
    assert mr.shape == (32, 5) and np.isfinite(mr[:, :4]).all()
    assert all(s == 0 for s in got["status"])
    np.testing.assert_allclose(mr[:REPS], res.estimate[0, :, 0, :], rtol=1e-8, atol=1e-9)


_LONGTERM = textwrap.dedent("""
    import json
    import numpy as np
    from jaxmed import study
    from jaxmed._src.study import catalog
    design = catalog.get_design("longterm-s1")
    spec = catalog.default_estimator(design)
    import jax
    jax.config.update("jax_enable_x64", True)  # study.run estimates in float64
    one = jax.jit(lambda k: spec.fn(jax.random.split(k)[1],
                                    design.simulate(jax.random.split(k)[0], 200, 10)))
    cell = jax.random.fold_in(jax.random.key(0), 0)
    out = dict(single=[np.asarray(one(jax.random.fold_in(cell, r)).estimate).tolist()
                       for r in (0, 31)])
    for width in (8, 32):
        res = study.run(design, spec, study.make_grid(200, 10), reps=32, key=0,
                        batch_size=width, progress=False)
        out[width] = dict(estimate=res.estimate.tolist(), se=res.se.tolist(),
                          status=res.status.tolist())
    print(json.dumps(out))
""")


@pytest.mark.slow  # CI time: 64 s loaded; the width-8/32 subprocess test of the mediation study stays in CI
def test_longterm_study_runs_at_width_8_and_32_and_agrees():
    """The long-term estimators call LAPACK (Cholesky, LU, eigenvalues); batched under vmap,
    a width-32 ``study.run`` of longterm-s1 (N = 200, T = 10) hung on 2 cores (0% CPU, gdb:
    ``ParallelBatchMap`` in ``lapack_dpotrf_ffi``). Their ``EstimatorSpec.fn`` now computes a
    vmapped batch one replication after another (``sequential_vmap``). Truth: each replication
    equals the unbatched call on its documented keys (replications 0 and 31)."""
    env = dict(os.environ, JAXMED_NO_CACHE="1")
    done = subprocess.run([sys.executable, "-c", _LONGTERM], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    a, b = got["8"], got["32"]
    est8, est32 = np.asarray(a["estimate"]), np.asarray(b["estimate"])
    assert est8.shape == (1, 32, 4, 3) and np.isfinite(est8).all()
    assert all(s == 0 for s in a["status"][0] + b["status"][0])
    np.testing.assert_allclose(est32, est8, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.asarray(b["se"]), np.asarray(a["se"]), rtol=1e-9, atol=1e-10)
    single = np.asarray(got["single"])
    np.testing.assert_allclose(est8[0, [0, 31]], single, rtol=1e-10, atol=1e-11)
