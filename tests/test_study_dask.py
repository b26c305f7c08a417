"""Studies on a Dask cluster: bit-identical to one process, resumable, a killed worker loses nothing.

One ``distributed.LocalCluster`` of 2 single-threaded worker processes for the module. It
is started with ``distributed.scheduler.allowed-failures = 0``, so a task whose worker dies
fails at once with ``KilledWorker`` and the driver's resubmission (not the scheduler's own
rescheduling) must recover it. The test design and estimator travel to the workers by value
(``cloudpickle.register_pickle_by_value``), as a design defined in a user's script does.
"""

import dataclasses
import os
import signal
import sys

import cloudpickle
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.study.chunk_store import ChunkStore

sys.path.insert(0, os.path.dirname(__file__))
import _study_fixtures  # noqa: E402
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign, assert_identical  # noqa: E402

distributed = pytest.importorskip("distributed")

KEY = 5
BATCH = 2


@dataclasses.dataclass(frozen=True)
class SelfKillingDesign(ToyDesign):
    """The toy design, except that the first worker process to trace it kills itself.

    The marker file is created atomically (O_EXCL) by exactly one process, which writes its
    pid and SIGKILLs itself in the middle of its task; every later trace runs normally.
    """

    marker: str = ""
    driver_pid: int = 0

    def simulate(self, key, n, horizon):
        if os.getpid() != self.driver_pid:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().simulate(key, n, horizon)


@pytest.fixture(scope="module")
def client():
    import dask

    cloudpickle.register_pickle_by_value(_study_fixtures)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    cloudpickle.unregister_pickle_by_value(_study_fixtures)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The single-process study (same batch size) and its store."""
    out = tmp_path_factory.mktemp("single") / "study"
    res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, batch_size=BATCH,
                    progress=False)
    return res, out


@pytest.fixture(scope="module")
def reference(single):
    return single[0]


def _chunk_names(out):
    return sorted(os.path.basename(p) for _, p in ChunkStore(out).chunk_files())


def test_dask_study_is_bit_identical_and_resumes_only_missing_chunks(client, single, tmp_path):
    reference, single_out = single
    out = tmp_path / "dask"
    seen = []
    res = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, batch_size=BATCH,
                    client=client, progress=lambda c, r: seen.append((c, tuple(r.tolist()))))
    assert_identical(res, reference)
    assert_identical(study.load(out), reference)
    # every replication reported once, in chunks of one block (the default chunk size)
    assert sorted(r for c, reps in seen for r in reps) == sorted(list(range(REPS)) * len(GRID))
    assert res.n_computed == len(GRID) * REPS and res.chunk_size == BATCH
    assert res.device.startswith("dask, ")
    assert _chunk_names(out) == _chunk_names(single_out)  # the same chunk files
    # resume: remove two chunk files; only their replications are computed again
    store = ChunkStore(out)
    files = store.chunk_files()
    removed = [files[1], files[-1]]
    for _, p in removed:
        os.unlink(p)
    seen.clear()
    again = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, client=client,
                      progress=lambda c, r: seen.append((c, tuple(r.tolist()))))
    expected = sorted((c, tuple(np.load(p.replace(str(out), str(single_out)))["rep"].tolist()))
                      for c, p in removed)
    assert sorted(seen) == expected
    assert again.n_computed == sum(len(r) for _, r in expected)
    assert_identical(again, reference)
    # complete: nothing is submitted
    done = study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, out=out, client=client,
                     progress=False)
    assert done.n_computed == 0 and done.compile_s == 0.0
    assert_identical(done, reference)


def test_a_worker_killed_mid_task_loses_nothing(client, reference, tmp_path):
    marker = tmp_path / "killed.pid"
    design = SelfKillingDesign(marker=str(marker), driver_pid=os.getpid())
    before = set(client.run(os.getpid).values())
    out = tmp_path / "dask"
    res = study.run(design, NOISE_SPEC, GRID, REPS, KEY, out=out, batch_size=BATCH,
                    client=client, progress=False)
    killed = int(marker.read_text())
    assert killed in before  # a worker process of the cluster died during its first task
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)
    assert_identical(res, reference)
    assert_identical(study.load(out), reference)
    assert not [f for f in os.listdir(ChunkStore(out).chunk_dir) if f.endswith(".part")]


def test_errors_of_the_computation_reach_the_driver(client, tmp_path):
    from jaxmed._src.effect_table import EstimatorSpec

    wrong = EstimatorSpec("wrong", ("all",), NOISE_SPEC.effects, NOISE_SPEC.fn)  # fn gives 2 rows
    with pytest.raises(ValueError, match=r"^estimator: 'wrong' returned estimate of shape \(2, 2\)"):
        study.run(ToyDesign(), wrong, [(8, 3)], 2, KEY, out=tmp_path / "w", batch_size=1,
                  client=client, progress=False)
    with pytest.raises(ValueError, match="^out: a study on a Dask cluster needs a study directory"):
        study.run(ToyDesign(), NOISE_SPEC, [(8, 3)], 2, KEY, batch_size=1, client=client,
                  progress=False)
    with pytest.raises(ValueError, match="^devices: with a Dask client"):
        study.run(ToyDesign(), NOISE_SPEC, [(8, 3)], 2, KEY, out=tmp_path / "d", batch_size=1,
                  client=client, devices=[object()], progress=False)


def _count_cache_hits(dask_worker):
    """Installs (once per worker process) a JAX monitoring listener counting persistent
    compilation-cache hits; returns the count so far."""
    import jax

    # the state lives on the worker object (this function arrives by value, with fresh globals)
    state = getattr(dask_worker, "_test_cache_hits", None)
    if state is None:
        state = dask_worker._test_cache_hits = {"n": 0, "installed": False}
    if not state["installed"]:
        def listener(event, **kwargs):
            if event == "/jax/compilation_cache/cache_hits":
                state["n"] += 1
        jax.monitoring.register_event_listener(listener)
        state["installed"] = True
    return state["n"]


def test_workers_load_programs_from_the_drivers_persistent_cache(client, tmp_path):
    """A study first run in this process writes its programs to the persistent compilation
    cache; the worker processes, which never compiled it, load them from there when the study
    runs on Dask (cache hits counted by JAX's monitoring events in the workers) instead of
    compiling again."""
    import jax

    from jaxmed._src import execution

    if execution.cache_disabled():
        pytest.skip("JAXMED_NO_CACHE is set")
    design = ToyDesign(sigma=0.37)  # a program no other test compiled
    study.run(design, NOISE_SPEC, GRID, REPS, KEY, out=tmp_path / "one", batch_size=BATCH,
              progress=False)
    cache = jax.config.jax_compilation_cache_dir
    assert cache and os.listdir(cache)
    before = sum(client.run(_count_cache_hits).values())
    res = study.run(design, NOISE_SPEC, GRID, REPS, KEY, out=tmp_path / "dask",
                    batch_size=BATCH, client=client, progress=False)
    after = sum(client.run(_count_cache_hits).values())
    assert_identical(res, study.load(tmp_path / "one"))
    assert after - before >= 1, (before, after)
