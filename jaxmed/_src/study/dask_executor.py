"""Running the chunks of a study as tasks on a Dask cluster (``study.run(..., client=...)``).

Each planned chunk is one Dask task. On a worker the task

1. finds (or builds, once per study and worker process) a :class:`ChunkComputer` for the
   study: the study's :class:`ChunkJob` arrives serialised with ``cloudpickle`` (so designs
   and estimators defined in a script or notebook travel by value) and is unpickled only the
   first time a worker meets the study; the compiled program of each grid cell is cached in
   the worker process (also across ``run`` calls with the same design and estimator, which
   are recognised by a hash of their pickled bytes), and JAX's persistent compilation cache (the driver's directory,
   ``jaxmed._src.execution``) lets workers that share a filesystem compile a program once
   between them;
2. computes the chunk (the same blocks, keys and compiled program as in the driver's own
   process: results are bit-identical to a single-process run with the same batch size);
3. writes the chunk file into the study directory itself (atomically: a ``.part`` file,
   then ``os.replace``), and returns only a small record (cell, replication indices, chunk
   path, compile seconds, device).

The driver gathers the records as they finish, reads the chunk files, and shows progress.

Lost workers. When a worker process dies (killed, out of memory, its node gone) the Dask
scheduler moves its tasks to other workers (up to ``distributed.scheduler.allowed-failures``
deaths per task, default 3, after which the task fails with ``KilledWorker``); a chunk it
had finished is already on disk. Tasks that failed with ``KilledWorker`` (or were lost with
the scheduler's state) are submitted again by the driver, for up to ``resubmits`` more
rounds. An exception raised by the computation itself (a bad estimator, an unwritable
directory) is not retried: it stops the study and is raised in the driver, with every
finished chunk kept for a resumed run.

The study directory must be reachable under the same path from every worker (a shared
filesystem; on one machine, any directory).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import threading
import uuid
from typing import Iterable, Iterator

import numpy as np

from jaxmed._src.study.chunk_compute import ChunkComputer, ChunkJob
from jaxmed._src.study.executors import ChunkRecord
from jaxmed._src.study.plan import ChunkTask

__all__ = ["DaskExecutor", "run_chunk_on_worker", "dask_client"]

# Per worker process: run token -> ChunkComputer (one per study run), and program token ->
# the (design, estimator) objects first unpickled for it. A later run with the same design
# and estimator (same cloudpickle bytes) reuses those objects, hence the compiled programs
# cached by identity in ``chunk_compute`` (no second trace or compile in this worker).
_COMPUTERS: "collections.OrderedDict[str, ChunkComputer]" = collections.OrderedDict()
_PROGRAMS: "collections.OrderedDict[str, tuple]" = collections.OrderedDict()
_CACHE_MAX = 4
_LOCK = threading.Lock()


def _remember(cache: collections.OrderedDict, key, value):
    cache[key] = value
    while len(cache) > _CACHE_MAX:
        cache.popitem(last=False)
    return value


def _worker_computer(token: str, payload: bytes, n_devices: int, cache_dir: str | None):
    run_token, program_token = token.split(":")
    with _LOCK:
        computer = _COMPUTERS.get(run_token)
        if computer is not None:
            _COMPUTERS.move_to_end(run_token)
            return computer
        import cloudpickle
        import jax

        from jaxmed._src import execution

        if cache_dir is not None:
            execution.enable_compilation_cache(cache_dir)
        local = jax.local_devices()
        if n_devices > len(local):
            raise ValueError(f"devices: this worker has {len(local)} local devices, the study asks "
                             f"for {n_devices} per worker")
        job = cloudpickle.loads(payload)
        known = _PROGRAMS.get(program_token)
        if known is None:
            known = _remember(_PROGRAMS, program_token, (job.design, job.estimator))
        job = job._replace(design=known[0], estimator=known[1])
        return _remember(_COMPUTERS, run_token, ChunkComputer(job, local[:n_devices]))


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker (called directly)
        return f"pid {os.getpid()}"


def run_chunk_on_worker(token: str, payload: bytes, task: ChunkTask, out: str, fingerprint: str,
                        share: tuple[int, int], n_devices: int,
                        cache_dir: str | None) -> ChunkRecord:
    """The Dask task of one chunk: compute it, write its chunk file, return a small record.

    Args:
      token: ``"RUN:PROGRAM"``: the study run (a random id) and a hash of the pickled design
        and estimator (the worker's cache keys).
      payload: the ``cloudpickle``-d :class:`ChunkJob` (unpickled once per worker and token).
      task: the chunk.
      out: the study directory (absolute path, as seen by the worker).
      fingerprint: the study's fingerprint (stamped into the chunk file).
      share: ``(index, count)`` of the driver's share (tags the ``.part`` temporaries).
      n_devices: local devices of one compiled program on the worker.
      cache_dir: the persistent compilation cache directory, or ``None``.
    """
    from jaxmed._src.study.chunk_store import ChunkStore

    store = ChunkStore(out)
    if not os.path.isdir(store.chunk_dir):
        raise ValueError(f"out: {out} is not visible from Dask worker {_worker_name()} (no "
                         f"{store.chunk_dir}); a study on a cluster needs a directory every "
                         f"worker reaches under the same path")
    store.fingerprint = fingerprint
    computer = _worker_computer(token, payload, n_devices, cache_dir)
    rep_ids, chunk, seconds = computer.compute(task)
    path = store.write_chunk(task.cell, rep_ids, chunk, share=share)
    return ChunkRecord(task.cell, rep_ids, seconds, f"{computer.description} @ {_worker_name()}",
                       path, None)


class DaskExecutor:
    """Submits each chunk as a task to a ``distributed.Client``.

    Args:
      client: a connected ``distributed.Client``.
      devices: local devices per compiled program on each worker (default 1: one device per
        worker process, e.g. one GPU per worker).
      resubmits: rounds of resubmitting the chunks lost with dead workers (``KilledWorker``).
      cache_dir: the persistent compilation cache directory the workers turn on (the
        driver's), or ``None`` to leave theirs as configured.
    """

    def __init__(self, client, devices: int | None = None, resubmits: int = 2,
                 cache_dir: str | None = None):
        if devices is not None and (isinstance(devices, bool) or not isinstance(devices, (int, np.integer))
                                    or devices < 1):
            raise ValueError(f"devices: with a Dask client, expected the number of local devices "
                             f"per worker (a positive int), got {devices!r}")
        if not hasattr(client, "submit"):
            raise ValueError(f"client: expected a distributed.Client, got {type(client).__name__}")
        self.client = client
        self.devices_per_call = int(devices or 1)
        self.resubmits = int(resubmits)
        import jax

        self.sizing_devices = list(jax.local_devices())[:1]  # the driver's, as an estimate
        self.cache_dir = cache_dir

    def execute(self, job: ChunkJob, tasks: Iterable[ChunkTask], store=None,
                share: tuple[int, int] = (0, 1)) -> Iterator[ChunkRecord]:
        import cloudpickle
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        tasks = list(tasks)
        if not tasks:
            return
        if store is None:
            raise ValueError("out: a study on a Dask cluster needs a study directory (out=DIR) "
                             "that the workers write their chunks into")
        out = os.path.abspath(store.path)
        fingerprint = store.expected_fingerprint()
        payload = cloudpickle.dumps(job)
        program = hashlib.sha256(cloudpickle.dumps((job.design, job.estimator))).hexdigest()
        token = f"{uuid.uuid4().hex}:{program}"
        pending, futures = tasks, {}
        try:
            for attempt in range(self.resubmits + 1):
                futures = {
                    self.client.submit(run_chunk_on_worker, token, payload, t, out, fingerprint,
                                       share, self.devices_per_call, self.cache_dir, pure=False,
                                       key=f"jaxmed-chunk-{token[:12]}-{attempt}-c{t.cell}-{t.index}"): t
                    for t in pending}
                lost, lost_error = [], None
                for fut in as_completed(list(futures)):
                    if fut.status == "finished":
                        yield fut.result()
                        continue
                    error = fut.exception() if fut.status == "error" else None
                    if error is not None and not isinstance(error, KilledWorker):
                        raise error
                    lost.append(futures[fut])
                    lost_error = error or RuntimeError(f"task {fut.key} was {fut.status}")
                if not lost:
                    return
                pending = lost
            raise RuntimeError(f"client: {len(pending)} chunks were lost with their workers in "
                               f"{self.resubmits + 1} rounds of submission (last: {lost_error}); "
                               f"finished chunks are stored, run again to resume")
        finally:
            unfinished = [f for f in futures if f.status not in ("finished", "error")]
            if unfinished:
                self.client.cancel(unfinished)

    def describe(self, records=()) -> tuple[int, str]:
        """``(devices per call, description)``: workers and their devices."""
        where = sorted({r.device.split(" @ ")[0] for r in records})
        workers = sorted({r.device.split(" @ ")[-1] for r in records})
        n = len(workers) or len(self.client.scheduler_info().get("workers", {}))
        return self.devices_per_call, (f"dask, {n} worker{'s' if n != 1 else ''}: "
                                       + (", ".join(where) or "nothing computed"))


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, local_workers: int | None = None):
    """A ``distributed.Client`` for the command line, closed (with its cluster) on exit.

    Args:
      scheduler: address of a running scheduler (``tcp://host:8786``; a ``dask-jobqueue``
        cluster or ``dask scheduler``), or
      local_workers: start a ``LocalCluster`` of this many worker processes, one thread each.

    Raises:
      ValueError: dask/distributed are not installed, or the scheduler cannot be reached
        (the message names the option).
    """
    option = "--scheduler" if scheduler is not None else "--local-workers"
    try:
        import distributed
    except ImportError:
        raise ValueError(f"{option}: needs dask and distributed (pip install 'jaxmed[dask]')") from None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=30)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"--scheduler: cannot connect to {scheduler!r} ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = distributed.LocalCluster(n_workers=int(local_workers), threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            yield client
    finally:
        cluster.close()
