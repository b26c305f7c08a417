"""Executors: who computes the planned chunks of a study, and the record each chunk leaves.

An executor has three members the runner uses:

* ``devices_per_call``: devices one compiled program spans (chunk sizes are rounded to a
  multiple of ``batch_size × devices_per_call``);
* ``sizing_devices``: devices whose free memory sets the default ``batch_size``;
* ``execute(job, tasks, store, share)``: computes every :class:`~jaxmed._src.study.plan.ChunkTask`
  of ``tasks``, writes each chunk into ``store`` (a ``ChunkStore``, or ``None`` to keep
  results in memory) as soon as it is finished, and yields one :class:`ChunkRecord` per chunk
  in the order they finish; ``describe(records)`` says where they ran.

:class:`InProcessExecutor` computes the tasks one after another in this process, on its
local devices (the default). ``jaxmed._src.study.dask_executor.DaskExecutor`` submits them
as tasks to a Dask cluster. Both run the same :class:`ChunkComputer`, so a replication's
numbers do not depend on the executor.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

import numpy as np

from jaxmed._src.study.chunk_compute import ChunkComputer, ChunkJob, describe_devices
from jaxmed._src.study.plan import ChunkTask

__all__ = ["ChunkRecord", "InProcessExecutor"]


class ChunkRecord(NamedTuple):
    """What a finished chunk reports back to the runner.

    Attributes:
      cell: grid cell index.
      reps: the replication indices of the chunk (int64).
      compile_s: seconds its executor spent compiling for it (0 when already compiled).
      device: where it ran (e.g. ``"1 x cpu:cpu"``, with the worker's address on Dask).
      path: the chunk file written, or ``None`` without a store.
      arrays: the chunk's values when they are at hand in this process (``estimate``, ``se``,
        ``ci_low``, ``ci_high``, ``status``); ``None`` when they are only in ``path``.
    """

    cell: int
    reps: np.ndarray
    compile_s: float
    device: str
    path: str | None
    arrays: dict | None


class InProcessExecutor:
    """Computes chunks in this process, one after another, on ``devices``.

    Args:
      devices: the local devices of the compiled programs (a 1-D mesh).
    """

    def __init__(self, devices):
        self.devices = list(devices)
        if not self.devices:
            raise ValueError("devices: expected at least one device")
        self.devices_per_call = len(self.devices)
        self.sizing_devices = self.devices

    def execute(self, job: ChunkJob, tasks: Iterable[ChunkTask], store=None,
                share: tuple[int, int] = (0, 1)) -> Iterator[ChunkRecord]:
        computer = ChunkComputer(job, self.devices)
        tasks = list(tasks)
        computer.prepare(tasks)  # every cell's program lowered now, compiled side by side
        for task in tasks:
            rep_ids, chunk, seconds = computer.compute(task)
            path = None
            if store is not None:
                path = store.write_chunk(task.cell, rep_ids, chunk, share=share)
            yield ChunkRecord(task.cell, rep_ids, seconds, computer.description, path, chunk)

    def describe(self, records=()) -> tuple[int, str]:
        """``(devices, description)`` of where chunks are computed."""
        del records
        return len(self.devices), describe_devices(self.devices)
