"""Executors, the chunk computation and gathering, piece by piece (no Dask cluster here).

Truth: the replications of a whole study run (``study.run``, same batch size), whose keys and
estimator are checked against a numpy reference in ``test_study_runner.py``.
"""

import os
import sys

import jax
import numpy as np
import pytest

from jaxmed import study
from jaxmed._src.study import gather
from jaxmed._src.study.chunk_compute import ChunkComputer, ChunkJob
from jaxmed._src.study.chunk_store import ChunkStore
from jaxmed._src.study.dask_executor import run_chunk_on_worker
from jaxmed._src.study.executors import ChunkRecord, InProcessExecutor
from jaxmed._src.study.plan import ChunkTask, plan_chunks
from jaxmed._src.study.runner import _manifest

sys.path.insert(0, os.path.dirname(__file__))
from _study_fixtures import GRID, NOISE_SPEC, REPS, ToyDesign  # noqa: E402

KEY = 3
BATCH = 2


@pytest.fixture(scope="module")
def reference():
    return study.run(ToyDesign(), NOISE_SPEC, GRID, REPS, KEY, batch_size=BATCH, progress=False)


def _job():
    key = jax.random.key(KEY)
    return ChunkJob(ToyDesign(), NOISE_SPEC, REPS, BATCH, np.asarray(jax.random.key_data(key)),
                    str(jax.random.key_impl(key)), "float64")


def _assert_chunk_matches(reference, cell, reps, chunk):
    for k in ("estimate", "se", "ci_low", "ci_high", "status"):
        assert np.array_equal(getattr(reference, k)[cell, reps], chunk[k], equal_nan=True), k


def test_in_process_executor_yields_the_study_values_chunk_by_chunk(reference):
    done = np.zeros((len(GRID), REPS), bool)
    tasks = plan_chunks(GRID, done, BATCH, 3)
    records = list(InProcessExecutor(jax.local_devices()[:1]).execute(_job(), tasks))
    assert [(r.cell, r.reps.tolist()) for r in records] == [
        (0, [0, 1, 2, 3, 4, 5]), (0, [6]), (1, [0, 1, 2, 3, 4, 5]), (1, [6])]
    arrays = gather.empty_arrays(len(GRID), REPS, 2, 2)
    for r in records:
        assert r.path is None and r.device == "1 x cpu:cpu"
        _assert_chunk_matches(reference, r.cell, r.reps, r.arrays)
        gather.add_record(arrays, r)
    assert arrays["done"].all()
    for k in ("estimate", "se", "ci_low", "ci_high", "status"):
        assert np.array_equal(arrays[k], getattr(reference, k), equal_nan=True)


def test_a_chunk_of_any_blocks_in_any_order_gives_the_same_replications(reference):
    computer = ChunkComputer(_job(), jax.local_devices()[:1])
    reps, chunk, _ = computer.compute(ChunkTask(1, *GRID[1], 0, (3, 0)))
    assert reps.tolist() == [6, 0, 1]
    _assert_chunk_matches(reference, 1, reps, chunk)
    again, _, seconds = computer.compute(ChunkTask(1, *GRID[1], 1, (2,)))
    assert seconds == 0.0 and again.tolist() == [4, 5]  # compiled once per cell


def test_worker_task_writes_its_chunk_and_returns_a_small_record(reference, tmp_path):
    job = _job()
    store = ChunkStore(tmp_path / "s")
    store.open(_manifest(job.design, NOISE_SPEC, GRID, REPS, KEY,
                         np.asarray(job.key_data).ravel().tolist(), BATCH, np.float64))
    import cloudpickle

    payload = cloudpickle.dumps(job)
    task = ChunkTask(0, *GRID[0], 0, (1, 2))
    rec = run_chunk_on_worker("run-a:program-a", payload, task, store.path,
                              store.expected_fingerprint(), (0, 1), 1, None)
    assert isinstance(rec, ChunkRecord) and rec.arrays is None
    assert rec.reps.tolist() == [2, 3, 4, 5] and os.path.exists(rec.path)
    _assert_chunk_matches(reference, 0, rec.reps, gather.record_arrays(rec, store))
    loaded = study.load(store.path)
    assert (loaded.status[0, 2:6] >= 0).all() and (loaded.status[0, :2] == -1).all()
    # a record whose file holds other replications is refused
    with pytest.raises(ValueError, match="^out: chunk file .* holds replications"):
        gather.record_arrays(rec._replace(reps=np.arange(4)), store)
    # a directory the worker cannot see is named
    with pytest.raises(ValueError, match="^out: .* is not visible from Dask worker"):
        run_chunk_on_worker("run-a:program-a", payload, task, str(tmp_path / "nowhere"),
                            store.expected_fingerprint(), (0, 1), 1, None)
