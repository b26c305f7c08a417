"""``import jaxmed`` makes SciPy's OpenBLAS (the LAPACK of jaxlib's solves) single-threaded,
unless the user chose otherwise (``jaxmed._src.execution.configure_library_threads``): checked
in fresh interpreters, by asking the loaded OpenBLAS itself for its thread count."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROBE = r"""
import ctypes, glob, json, os, sys
pre = sys.argv[1]
if pre == "scipy":
    import scipy.linalg  # noqa: F401
import jaxmed  # noqa: F401
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
# a LAPACK solve, as the pipeline's small systems: jaxlib loads SciPy's OpenBLAS here
jnp.linalg.solve(jnp.eye(4) * 2.0, jnp.ones(4)).block_until_ready()
import scipy
libs = glob.glob(os.path.join(os.path.dirname(scipy.__file__), "..", "scipy.libs",
                              "libscipy_openblas-*.so"))
threads = None
if libs:
    threads = ctypes.CDLL(libs[0]).scipy_openblas_get_num_threads()
print(json.dumps({"env": os.environ.get("OPENBLAS_NUM_THREADS"), "threads": threads,
                  "cpus": os.cpu_count()}))
"""


def _probe(pre="", **env):
    # OpenBLAS also reads GOTO_NUM_THREADS and OMP_NUM_THREADS when its own is unset (other
    # tests in the same worker may have set them, e.g. the command line's thread settings)
    full = {k: v for k, v in os.environ.items()
            if k not in ("OPENBLAS_NUM_THREADS", "JAXMED_BLAS_THREADS", "GOTO_NUM_THREADS",
                         "OMP_NUM_THREADS")}
    full.update(env, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", PROBE, pre], capture_output=True, text=True,
                         env=full, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_sets_single_threaded_openblas_for_the_lapack_kernels():
    got = _probe()
    assert got["env"] == "1"
    if got["threads"] is None:
        pytest.skip("SciPy's OpenBLAS library not found (another LAPACK build)")
    assert got["threads"] == 1


def test_a_users_setting_and_keep_are_respected():
    assert _probe(OPENBLAS_NUM_THREADS="2")["env"] == "2"
    kept = _probe(JAXMED_BLAS_THREADS="keep")
    assert kept["env"] is None
    if kept["threads"] is not None and kept["cpus"] and kept["cpus"] > 1:
        assert kept["threads"] > 1  # OpenBLAS's own default: every core


def test_nothing_is_set_when_scipy_linear_algebra_was_loaded_first():
    # the variable would change nothing in this process, only in its children
    assert _probe("scipy")["env"] is None
