"""Tests run in float64 (jaxmed's estimation precision), with a persistent compilation cache of
their own that is on only inside the tests that turn it on, and XLA at -O0 (below).

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

import pytest

# Compilation dominates this suite's time on 2 cores. XLA's LLVM backend at -O0 compiles the
# mediation pipeline about 1.4x faster (measured 63 s -> 44 s, medians of two); the programs are
# the same HLO, only the machine code is less optimised, and results move by rounding (~1e-15
# relative: no FMA contraction), far inside every tolerance. Subprocesses and Dask workers
# inherit it (tests that add flags append to XLA_FLAGS). Unset by JAXMED_TEST_XLA_OPT=default.
if os.environ.get("JAXMED_TEST_XLA_OPT", "0") != "default" and \
        "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402 (after XLA_FLAGS: the backend reads them when it starts)

jax.config.update("jax_enable_x64", True)

# Files that take longest first (measured, seconds under load), so that the xdist workers do
# not end on one long file while the others idle (longest-processing-time-first scheduling).
LONGEST_FIRST = ("test_execution_any_width.py", "test_mediation_influence.py",
                 "test_longterm_estimators.py", "test_docs_blocks.py", "test_mediation_api.py",
                 "test_differentiable_weights.py", "test_docstring_examples.py",
                 "test_longterm_streaming.py", "test_differentiable_mediation.py",
                 "test_differentiable_policy_optimisation.py", "test_mediation_time_effects.py",
                 "test_study_dask.py", "test_study_dask_cli.py", "test_study_n_buckets.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    order = {id(item): k for k, item in enumerate(items)}
    items.sort(key=lambda it: (rank.get(os.path.basename(str(it.fspath)), len(rank)), order[id(it)]))

_SESSION_CACHE = None
if not os.environ.get("JAXMED_CACHE_DIR"):
    _SESSION_CACHE = tempfile.mkdtemp(prefix="jaxmed-test-xla-")
    os.environ["JAXMED_CACHE_DIR"] = _SESSION_CACHE


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


# A cache the caller configured for the whole run (JAX_COMPILATION_CACHE_DIR, as the mutation
# runs in CONTRIBUTING.md do, one short pytest process per mutant) stays on; None otherwise.
_CACHE_DIR_AT_START = jax.config.jax_compilation_cache_dir


@pytest.fixture(autouse=True)
def _persistent_cache_off_after_each_test():
    yield
    if jax.config.jax_compilation_cache_dir != _CACHE_DIR_AT_START:
        from jax._src import compilation_cache

        from jaxmed._src import execution

        jax.config.update("jax_compilation_cache_dir", _CACHE_DIR_AT_START)
        compilation_cache.reset_cache()
        execution._enabled_dir = None
