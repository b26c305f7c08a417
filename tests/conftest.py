"""Tests run in float64 (jaxmed's estimation precision), with a persistent compilation cache of
their own that is on only inside the tests that turn it on.

- ``JAXMED_CACHE_DIR`` points at a fresh directory for the session (unless the caller set one),
  so the suite never reads or evicts the user's cache and starts from an empty one, as CI does.
  CLI subprocesses and Dask workers inherit it.
- ``jaxmed.study.run`` and the CLI turn JAX's persistent cache on for the whole process (that is
  their documented behaviour). In this long-lived pytest process that would make every later
  test serialise and write its programs too: slower, and twice a CI run died inside JAX's cache
  (a segmentation fault reading, an abort writing, both in the large ``mediation_core`` program of
  ``test_study_n_buckets.py``, neither reproducible alone). After each test the cache is turned
  off again, so only the tests that use it (study runs, the cache tests) touch it.
"""

import os
import shutil
import tempfile

import jax
import pytest

jax.config.update("jax_enable_x64", True)

_SESSION_CACHE = None
if not os.environ.get("JAXMED_CACHE_DIR"):
    _SESSION_CACHE = tempfile.mkdtemp(prefix="jaxmed-test-xla-")
    os.environ["JAXMED_CACHE_DIR"] = _SESSION_CACHE


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _persistent_cache_off_after_each_test():
    yield
    if jax.config.jax_compilation_cache_dir:
        from jax._src import compilation_cache

        from jaxmed._src import execution

        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()
        execution._enabled_dir = None
