"""``mediation_effects`` through its lowered program kept on disk (``kept_program``): a second
process calls the kept program instead of tracing and lowering the pipeline, and gets the numbers
of ``jax.jit`` bit for bit.

Each run is a fresh subprocess with its own cache directory that turns the persistent cache on
(as the command line does). Truth: the same call with ``JAXMED_NO_CACHE=1`` (``jax.jit``).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from jaxmed._src.study import program_cache

_SCRIPT = textwrap.dedent("""
    import json
    import jax
    import numpy as np
    import jaxmed
    from jaxmed import MediationConfig
    from jaxmed._src import execution
    from jaxmed._src.sim.semi_synthetic import simulate_semi_synthetic
    from jaxmed._src.study import program_cache
    from jaxmed.mediation import mediation_effects

    execution.enable_compilation_cache()
    with jaxmed.precision():
        data = simulate_semi_synthetic(jax.random.key(0), 30, 6)
    out = {{}}
    for name, config in (("default", MediationConfig()), ("ridge", MediationConfig(q_ridge=1e-3))):
        res = mediation_effects(data, "logistic:0.7", key=jax.random.key(1), config=config,
                                check=False)
        again = mediation_effects(data, "logistic:0.7", key=jax.random.key(1), config=config,
                                  check=False)  # the same process: the program is reused
        assert all(np.array_equal(a, b, equal_nan=True)
                   for a, b in zip(jax.tree.leaves(res), jax.tree.leaves(again)))
        out[name] = [np.asarray(x).tolist() for x in jax.tree.leaves(res)]
    print(json.dumps(dict(counts=dict(program_cache.counts), out=out)))
""")


def _run(cache, no_cache=False):
    env = dict(os.environ, JAXMED_CACHE_DIR=str(cache))
    env.pop("JAXMED_NO_CACHE", None)
    if no_cache:
        env["JAXMED_NO_CACHE"] = "1"
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format()], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return res["counts"], res["out"]


def _same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert len(a[name]) == len(b[name])
        for x, y in zip(a[name], b[name]):
            x, y = np.asarray(x, float), np.asarray(y, float)
            assert x.tobytes() == y.tobytes(), (name, x, y)


def test_a_second_process_calls_the_kept_program_with_the_numbers_of_jit(tmp_path):
    cache = tmp_path / "xla"
    first_counts, first = _run(cache)
    assert first_counts.get("exported", 0) == 2 and first_counts.get("read", 0) == 0
    kept = [n for n in os.listdir(cache / program_cache.SUBDIR) if n.endswith(program_cache.SUFFIX)]
    assert len(kept) == 2  # one program per configuration
    second_counts, second = _run(cache)
    assert second_counts.get("read", 0) == 2 and second_counts.get("exported", 0) == 0
    _same(second, first)
    direct_counts, direct = _run(tmp_path / "none", no_cache=True)
    assert direct_counts.get("read", 0) == direct_counts.get("exported", 0) == 0
    _same(direct, first)
    assert np.isfinite(np.asarray(first["default"][0], float)[0]).all()  # MR estimates


def test_what_cannot_be_described_is_jitted_as_before(tmp_path, monkeypatch):
    import jax

    from jaxmed._src.study.kept_program import kept_call

    monkeypatch.setattr(program_cache, "program_dir", lambda: str(tmp_path))
    tree = jax.tree.structure(0.0)
    # a function of the user's own in the settings: not described, nothing kept
    assert kept_call("f", lambda x: x * 2.0, (lambda: None,), (np.ones(3),), tree) is None
    # described settings: kept, and the value is the function's
    out = kept_call("f", lambda x: x * 2.0, ("twice",), (np.ones(3),), tree)
    np.testing.assert_array_equal(np.asarray(out), 2.0 * np.ones(3))
    # a traced output of another structure than the one declared: not kept
    assert kept_call("g", lambda x: (x, x), ("pair",), (np.ones(3),), tree) is None
    assert len([n for n in os.listdir(tmp_path) if n.endswith(program_cache.SUFFIX)]) == 1  # f's
