"""The persistent compilation cache: a second process running the same study compiles nothing.

Compile events are counted with ``jax.monitoring`` (not timed): the first process misses the
cache and writes entries, the second process hits it for every compilation the first stored,
writes no new entry, and gets bit-identical numbers. ``JAXMED_NO_CACHE=1`` writes nothing.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import jax
    import numpy as np
    counts = {{"hits": 0, "misses": 0}}
    def listen(event, **kw):
        if event == "/jax/compilation_cache/cache_hits":
            counts["hits"] += 1
        elif event == "/jax/compilation_cache/cache_misses":
            counts["misses"] += 1
    jax.monitoring.register_event_listener(listen)
    from jaxmed import study
    from jaxmed._src import execution
    from _study_fixtures import NOISE_SPEC, ToyDesign
    jax.jit(lambda x: x + 1)(1.0)  # a compilation before the cache was turned on
    execution.enable_compilation_cache()  # what study.run does first (idempotent there)
    # every program is written, however fast it compiles (jaxmed's 0.2 s threshold would
    # leave a program that compiled in 0.19 s a miss in both processes)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    res = study.run(ToyDesign(), NOISE_SPEC, [(8, 3)], 4, 0, progress=False)
    print(json.dumps(dict(counts, estimate=np.asarray(res.estimate).tolist())))
""")


def _run(cache, no_cache=False):
    env = dict(os.environ, JAXMED_CACHE_DIR=str(cache))
    env.pop("JAXMED_NO_CACHE", None)
    if no_cache:
        env["JAXMED_NO_CACHE"] = "1"
    script = _SCRIPT.format(tests=os.path.dirname(__file__))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _entries(cache):
    """XLA's cache files (not their access times, not the exported programs' directory)."""
    if not cache.exists():
        return []
    return sorted(p for p in os.listdir(cache)
                  if not p.endswith("-atime") and os.path.isfile(cache / p))


def test_second_process_hits_the_cache_and_compiles_nothing(tmp_path):
    cache = tmp_path / "xla"
    first = _run(cache)
    stored = _entries(cache)
    assert first["misses"] >= 1 and first["hits"] == 0
    assert len(stored) >= 1
    second = _run(cache)
    assert second["misses"] == 0
    assert second["hits"] == first["misses"]
    assert _entries(cache) == stored
    np.testing.assert_array_equal(np.asarray(second["estimate"]), np.asarray(first["estimate"]))


def test_no_cache_variable_writes_nothing(tmp_path):
    cache = tmp_path / "xla"
    res = _run(cache, no_cache=True)
    assert res["misses"] == 0 and res["hits"] == 0
    assert _entries(cache) == []


def test_an_entry_without_access_time_does_not_stop_the_cache(tmp_path):
    # an entry written by a process without a size limit (an earlier jaxmed, or JAX configured
    # by hand) has no "-atime" file; JAX's size-limited cache then failed every later write
    # (a FileNotFoundError warning) and cached nothing new in that directory
    cache = tmp_path / "xla"
    first = _run(cache)
    stored = _entries(cache)
    assert first["misses"] >= 2 and len(stored) >= 2, (first, stored)
    for name in os.listdir(cache):  # the directory as a process without a size limit leaves it
        if name.endswith("-atime"):
            os.unlink(cache / name)
    os.unlink(cache / stored[-1])  # one program the next run must compile and write again
    again = _run(cache)
    assert again["misses"] == 1 and again["hits"] == first["misses"] - 1
    assert _entries(cache) == stored  # written again
    for name in (n for n in stored if n.endswith("-cache")):  # each has its access time back
        assert os.path.exists(cache / (name[:-len("-cache")] + "-atime")), name
    np.testing.assert_array_equal(np.asarray(again["estimate"]), np.asarray(first["estimate"]))
