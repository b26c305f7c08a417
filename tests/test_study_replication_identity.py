"""A warm study does not trace its replications (``replication_identity``): what a trace tells is
read back from the record of a process that traced it, keyed by a description of the design and
the estimator, and the numbers are those of a process that traced and lowered everything itself.

Studies run in fresh subprocesses (as users run them) with their own cache directories, on a
registered design with jaxmed's default estimator (toy1: the binary pipeline, cheap to
compile). Truths: a run with ``JAXMED_NO_CACHE=1`` (every program traced and lowered from the
function; bit for bit), and the descriptions of objects that differ in one setting.
"""

import dataclasses
import functools
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmed import MediationConfig
from jaxmed._src.study import program_cache
from jaxmed._src.study.catalog import default_estimator
from jaxmed._src.study.replication_identity import describe, replication_identity
from jaxmed.sim import get_design

_SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    from jaxmed import study
    from jaxmed.sim import get_design
    from jaxmed._src.study import program_cache
    from jaxmed._src.study.catalog import default_estimator

    design = get_design("toy1")
    res = study.run(design, default_estimator(design), [(30, 5), (40, 5)], 2, 0,
                    progress=False, n_buckets={n_buckets!r})
    print(json.dumps(dict(counts=dict(program_cache.counts),
                          estimate=np.asarray(res.estimate).tolist(),
                          se=np.asarray(res.se).tolist())))
""")


def _run(cache, n_buckets="auto", no_cache=False):
    env = dict(os.environ, JAXMED_CACHE_DIR=str(cache))
    env.pop("JAXMED_NO_CACHE", None)
    if no_cache:
        env["JAXMED_NO_CACHE"] = "1"
    out = subprocess.run([sys.executable, "-c", _SCRIPT.format(n_buckets=n_buckets)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    counts = res.pop("counts")
    return {k: counts.get(k, 0) for k in ("facts_read", "facts_written", "traced_later", "read",
                                         "exported")}, {f: np.asarray(res[f]) for f in ("estimate", "se")}


def _same(a, b):
    for f in ("estimate", "se"):
        assert a[f].tobytes() == b[f].tobytes(), (f, a[f], b[f])
    assert np.isfinite(a["estimate"][..., 0, :]).all()  # MR (baselines: NaN on DDE, DME)


@pytest.mark.parametrize("n_buckets", ["auto", None])
def test_a_warm_study_reads_what_tracing_told_and_gets_the_same_numbers(tmp_path, n_buckets):
    cache = tmp_path / "xla"
    # "auto": both cells padded to N = 40 (a simulation program per N, one estimation program;
    # facts for the sizing trace and the estimation program); None: one program per cell
    facts = 2
    first_counts, first = _run(cache, n_buckets)
    assert first_counts["facts_written"] == facts and first_counts["facts_read"] == 0
    warm_counts, warm = _run(cache, n_buckets)
    assert warm_counts == dict(facts_read=facts, facts_written=0, traced_later=0,
                               read=first_counts["exported"], exported=0)
    _same(warm, first)
    # the programs gone, the records kept: the replications are traced when their programs
    # are exported again
    for name in os.listdir(cache / program_cache.SUBDIR):
        if name.endswith(program_cache.SUFFIX):
            os.unlink(cache / program_cache.SUBDIR / name)
    again_counts, again = _run(cache, n_buckets)
    assert again_counts["facts_read"] == facts and again_counts["traced_later"] >= 1
    assert again_counts["exported"] == first_counts["exported"]
    _same(again, first)
    _, direct = _run(tmp_path / "none", n_buckets, no_cache=True)
    _same(direct, first)


def test_a_damaged_record_is_traced_again(tmp_path):
    cache = tmp_path / "xla"
    _, first = _run(cache, None)
    records = [n for n in os.listdir(cache / program_cache.SUBDIR) if n.endswith(program_cache.FACTS)]
    assert len(records) == 2
    victim = cache / program_cache.SUBDIR / records[0]
    victim.write_bytes(victim.read_bytes()[:-5])
    counts, again = _run(cache, None)
    assert (counts["facts_read"], counts["facts_written"]) == (1, 1)
    _same(again, first)


def _estimator(config=None, design="semi-synthetic"):
    from jaxmed._src.mediation.effects import mediation_estimator_spec

    d = get_design(design)
    if config is None:
        return d, default_estimator(d)
    return d, mediation_estimator_spec(d.target_policy, d.control_policy, config)


def test_the_identity_tells_designs_settings_and_sizes_apart():
    d, spec = _estimator()
    base = replication_identity("replication", d, spec, 200, 25)
    assert base is not None
    assert base == replication_identity("replication", *_estimator(), 200, 25)  # rebuilt
    others = [replication_identity("replication", d, spec, 100, 25),
              replication_identity("replication", d, spec, 200, 50),
              replication_identity("estimate", d, spec, 200, 25),
              replication_identity("replication", *_estimator(design="variance-1"), 200, 25),
              replication_identity("replication", *_estimator(MediationConfig(q_ridge=1e-3)),
                                   200, 25),
              replication_identity("replication", *_estimator(MediationConfig(state_knots=6)),
                                   200, 25)]
    assert None not in others
    assert len({base, *others}) == 1 + len(others)


def test_a_target_policy_of_other_weights_is_another_identity():
    d, spec = _estimator()
    moved = d.target_policy._replace(weights=d.target_policy.weights + 0.1)
    spec2 = default_estimator(dataclasses.replace(d, target_policy=moved))
    assert replication_identity("replication", d, spec, 50, 5) != \
        replication_identity("replication", d, spec2, 50, 5)


@dataclasses.dataclass(frozen=True)
class _UsersConfig:
    scale: float = 1.0


def test_what_is_not_jaxmed_s_own_is_not_described():
    assert describe(lambda x: x) is None
    assert describe(_UsersConfig()) is None
    assert describe(object()) is None
    assert describe((1.0, [2, 3], {"a": np.float64(1.5)})) is not None
    # jaxmed's estimator function is described; a user's wrapper of it, or a partial of it
    # holding a user's function, is not
    d, spec = _estimator()
    assert describe(spec.fn) is not None
    users = dataclasses.replace(spec, fn=lambda key, data: spec.fn(key, data))
    assert describe(users.fn) is None
    assert replication_identity("replication", d, users, 10, 5) is None
    assert describe(functools.partial(spec.fn, lambda: None)) is None
    assert describe(functools.partial(spec.fn, 1.0)) is not None
    deep = 1.0
    for _ in range(40):
        deep = (deep,)
    assert describe(deep) is None


def test_arrays_keys_and_jax_functions_are_described_by_value_and_name():
    a = describe(jnp.asarray([1.0, 2.0]))
    assert a == describe(np.asarray([1.0, 2.0]))
    assert a != describe(jnp.asarray([1.0, 2.5]))
    assert a != describe(jnp.asarray([1.0, 2.0], jnp.float32))
    assert describe(jax.random.key(0)) != describe(jax.random.key(1))
    assert describe(jnp.tanh) != describe(jnp.sin)
    assert describe(jnp.tanh) is not None
    assert describe(MediationConfig()) == describe(MediationConfig())
    assert describe(MediationConfig()) != describe(MediationConfig(rho_trunc=60.0))


def test_every_registered_design_with_its_default_estimator_is_described():
    # the long-term estimators are ``custom_vmap`` wrappers (sequential_vmap) of jaxmed functions
    from jaxmed.sim import list_designs

    identities = {}
    for name in list_designs():
        d = get_design(name)
        identities[name] = replication_identity("replication", d, default_estimator(d), 100, 10)
    assert None not in identities.values(), identities
    groups = {}
    for name, ident in identities.items():
        groups.setdefault(ident, []).append(name)
    # the same identity only where the data-generating process is the same (variance-2 is
    # the semi-synthetic design's, toy2-state Toy I's): the same data for the same key
    shared = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    assert shared == [["semi-synthetic", "variance-2"], ["toy1", "toy2-state"]]
    for a, b in shared:
        da, db = (get_design(x).simulate(jax.random.key(3), 20, 4) for x in (a, b))
        for x, y in zip(da, db):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
