"""Lowered study programs kept on disk (``program_cache``): a second process reads them instead of
tracing and lowering again, and gets the numbers of a process that lowered them itself.

Each study runs in a fresh subprocess (as users run them), with its own cache directory. The
counts come from ``program_cache.counts`` (programs read from disk, programs exported); the
truth for the numbers is a run with ``JAXMED_NO_CACHE=1``, which lowers every program
directly from the function (bit for bit equal), and, for the padded cells, the unpadded run
(equal to 1e-12).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed._src.study import program_cache

_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {tests!r})
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jaxmed import study
    from jaxmed._src.effect_table import EstimatorSpec, EffectTable
    from jaxmed._src.mediation.padding import pad_trajectories, real_trajectories
    from jaxmed._src.study import program_cache
    from _study_fixtures import NOISE_SPEC, ToyDesign

    def masked_effects(key, data):  # mean S_0 and mean reward over the real trajectories
        del key
        w = real_trajectories(data.mask)
        n = jnp.sum(w)
        rows = []
        for x in (data.state[:, 0, 0], jnp.mean(data.reward, axis=1)):
            m = jnp.sum(w * x) / n
            se = jnp.sqrt(jnp.sum(w * (x - m) ** 2) / (n - 1) / n)
            rows.append((m, se))
        est = jnp.asarray([[m for m, _ in rows]])
        se = jnp.asarray([[s for _, s in rows]])
        return EffectTable(est, se, est - 2 * se, est + 2 * se, jnp.int32(0))

    PAD_SPEC = EstimatorSpec("masked", ("all",), ("s0_mean", "reward_mean"), masked_effects,
                             pad=pad_trajectories)

    noise_fn = NOISE_SPEC.fn

    def callback_effects(key, data):  # a host callback: jax.export refuses it
        table = noise_fn(key, data)
        jax.debug.callback(lambda x: None, table.estimate)
        return table

    padded = {padded!r}
    if {callback!r}:
        import dataclasses
        NOISE_SPEC = dataclasses.replace(NOISE_SPEC, name="callback", fn=callback_effects)
    # padded: True (cells padded to N = 8), None (the same cells unpadded), False (NOISE_SPEC)
    spec, grid = ((NOISE_SPEC, [(8, 3), (12, 4)]) if padded is False
                  else (PAD_SPEC, [(6, 3), (8, 3)]))
    res = study.run(ToyDesign(), spec, grid, 4, 0, progress=False,
                    n_buckets=([8] if padded else "auto") if padded is not None else None)
    print(json.dumps(dict(read=program_cache.counts["read"],
                          exported=program_cache.counts["exported"],
                          refused=program_cache.counts["not_exportable"],
                          known=program_cache.counts["known_not_exportable"],
                          estimate=np.asarray(res.estimate).tolist(),
                          se=np.asarray(res.se).tolist())))
""")


def _run(cache, padded=False, no_cache=False, callback=False):
    env = dict(os.environ, JAXMED_CACHE_DIR=str(cache))
    env.pop("JAXMED_NO_CACHE", None)
    if no_cache:
        env["JAXMED_NO_CACHE"] = "1"
    script = _SCRIPT.format(tests=os.path.dirname(__file__), padded=padded, callback=callback)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for f in ("estimate", "se"):
        res[f] = np.asarray(res[f], dtype=float)
    return res


def _programs(cache):
    d = cache / program_cache.SUBDIR
    return sorted(p for p in os.listdir(d) if p.endswith(program_cache.SUFFIX)) if d.exists() else []


def _same(a, b):
    for f in ("estimate", "se"):
        assert a[f].tobytes() == b[f].tobytes(), (f, a[f], b[f])


def test_second_process_reads_the_programs_and_gets_the_same_numbers(tmp_path):
    cache = tmp_path / "xla"
    first = _run(cache)
    assert (first["read"], first["exported"]) == (0, 2)  # one program per cell
    stored = _programs(cache)
    assert len(stored) == 2
    second = _run(cache)
    assert (second["read"], second["exported"]) == (2, 0)
    assert _programs(cache) == stored
    _same(second, first)
    direct = _run(tmp_path / "none", no_cache=True)  # lowered from the function itself
    assert (direct["read"], direct["exported"]) == (0, 0)
    assert _programs(tmp_path / "none") == []
    _same(direct, first)
    assert np.isfinite(first["estimate"]).all()


def test_padded_cells_read_their_simulation_and_estimation_programs(tmp_path):
    cache = tmp_path / "xla"
    first = _run(cache, padded=True)
    # simulation at N = 6 and N = 8 (both padded to 8), one estimation program at 8
    assert (first["read"], first["exported"]) == (0, 3)
    second = _run(cache, padded=True)
    assert (second["read"], second["exported"]) == (3, 0)
    _same(second, first)
    _same(_run(tmp_path / "none", padded=True, no_cache=True), first)
    unpadded = _run(tmp_path / "unpadded", padded=None)
    np.testing.assert_allclose(first["estimate"], unpadded["estimate"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first["se"], unpadded["se"], rtol=1e-12, atol=1e-12)


def test_an_unreadable_program_is_exported_again(tmp_path):
    cache = tmp_path / "xla"
    first = _run(cache)
    d = cache / program_cache.SUBDIR
    victim = d / _programs(cache)[0]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated, as by a full disk
    again = _run(cache)
    assert (again["read"], again["exported"]) == (1, 1)
    _same(again, first)
    assert victim.stat().st_size > 100  # written whole again
    assert (_run(cache)["read"], _run(cache)["exported"]) == (2, 0)


def test_a_program_jax_export_refuses_is_lowered_directly(tmp_path):
    cache = tmp_path / "xla"
    first = _run(cache, callback=True)
    assert (first["read"], first["exported"], first["refused"], first["known"]) == (0, 0, 2, 0)
    assert _programs(cache) == []
    again = _run(cache, callback=True)  # the refusal is remembered: no second attempt
    assert (again["read"], again["exported"], again["refused"], again["known"]) == (0, 0, 0, 2)
    _same(again, first)
    direct = _run(tmp_path / "none", no_cache=True, callback=True)
    _same(direct, first)
    _same(_run(tmp_path / "plain"), first)  # the same estimator without the callback


def test_the_jaxpr_digest_sees_constants_and_batching_rules():
    def traced(c):
        return jax.make_jaxpr(lambda x: x * jnp.asarray(c))(jnp.ones(2))

    assert program_cache.jaxpr_digest(traced([1.0, 2.0])) == \
        program_cache.jaxpr_digest(traced([1.0, 2.0]))
    assert program_cache.jaxpr_digest(traced([1.0, 2.0])) != \
        program_cache.jaxpr_digest(traced([1.0, 3.0]))

    def with_rule(rule):
        f = jax.custom_batching.custom_vmap(lambda x: x + 1.0)
        f.def_vmap(rule)
        return jax.make_jaxpr(f)(1.0)

    def rule_a(axis_size, in_batched, x):
        return x + 1.0, in_batched[0]

    def rule_b(axis_size, in_batched, x):
        return x + 2.0, in_batched[0]

    rule_b.__name__, rule_b.__qualname__ = rule_a.__name__, rule_a.__qualname__
    # the same printed jaxpr (the rule appears by name only); the rule's code tells them apart
    assert str(with_rule(rule_a).jaxpr) == str(with_rule(rule_b).jaxpr)
    assert program_cache.jaxpr_digest(with_rule(rule_a)) != \
        program_cache.jaxpr_digest(with_rule(rule_b))
    assert program_cache.jaxpr_digest(with_rule(rule_a)) == \
        program_cache.jaxpr_digest(with_rule(rule_a))

    def rule_closing_over(shift):
        def rule(axis_size, in_batched, x):
            return x + shift, in_batched[0]
        return rule

    # the same code, another number in its closure
    assert program_cache.jaxpr_digest(with_rule(rule_closing_over(1.0))) != \
        program_cache.jaxpr_digest(with_rule(rule_closing_over(2.0)))


def test_no_programs_are_kept_without_the_persistent_cache(monkeypatch):
    monkeypatch.setenv("JAXMED_NO_CACHE", "1")
    assert program_cache.program_dir() is None
