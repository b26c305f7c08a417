"""Gathering a study's results: dense per-replication arrays filled chunk by chunk.

The arrays are ``estimate``, ``se``, ``ci_low``, ``ci_high`` ``(C, R, E, K)`` (NaN where
missing) and ``status`` ``(C, R)`` (``STATUS_MISSING`` = -1 where missing), as
``ChunkStore.load`` returns them. A finished chunk (a ``ChunkRecord``) brings its values
along when it was computed in this process, or only the path of its chunk file when a
worker wrote it; :func:`add_record` takes either.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from jaxmed._src.study.chunk_store import STATUS_MISSING

__all__ = ["FIELDS", "empty_arrays", "place", "record_arrays", "add_record"]

FIELDS = ("estimate", "se", "ci_low", "ci_high")


def empty_arrays(n_cells: int, reps: int, n_estimators: int, n_effects: int) -> dict:
    """All replications missing: NaN values, status -1, ``done`` all False.

    >>> a = empty_arrays(2, 3, 1, 2)
    >>> a["estimate"].shape, int(a["status"][0, 0]), bool(a["done"].any())
    ((2, 3, 1, 2), -1, False)
    """
    shape = (n_cells, reps, n_estimators, n_effects)
    arrays = {k: np.full(shape, np.nan) for k in FIELDS}
    arrays["status"] = np.full((n_cells, reps), STATUS_MISSING, dtype=np.int32)
    arrays["done"] = np.zeros((n_cells, reps), dtype=bool)
    return arrays


def place(arrays: dict, cell: int, reps: np.ndarray, chunk: Mapping[str, np.ndarray]) -> None:
    """Writes one chunk's values at ``[cell, reps]`` (and marks them done when tracked)."""
    for k in (*FIELDS, "status"):
        arrays[k][cell, reps] = chunk[k]
    if "done" in arrays:
        arrays["done"][cell, reps] = True


def record_arrays(record, store) -> dict:
    """The values of a finished chunk: carried by the record, or read from its chunk file.

    Raises:
      ValueError: the file the record names holds other replications (a concurrent writer
        replaced it), or cannot be read (see ``ChunkStore.read_chunk``).
    """
    if record.arrays is not None:
        return record.arrays
    if store is None or record.path is None:
        raise ValueError(f"store: chunk of cell {record.cell} has neither values nor a file")
    arrays = store.read_chunk(record.path)
    if not np.array_equal(arrays["rep"], record.reps):
        raise ValueError(f"out: chunk file {record.path} holds replications "
                         f"{arrays['rep'][:5].tolist()}..., expected {record.reps[:5].tolist()}...")
    return arrays


def add_record(arrays: dict, record, store=None) -> None:
    """Places a finished chunk (a ``ChunkRecord``) into ``arrays``."""
    place(arrays, record.cell, record.reps, record_arrays(record, store))
