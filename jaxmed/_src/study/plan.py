"""Planning a study: which chunks of which grid cells are still to be computed.

A study of ``reps`` replications per grid cell is cut into *blocks* of ``batch_size``
consecutive replications (block ``b`` holds replications ``b·batch_size ..
min(reps, (b+1)·batch_size) − 1``; the last block may be short). A process computing share
``(index, count)`` owns the blocks ``b`` with ``b % count == index``. The plan lists, cell by
cell, the owned blocks that are not complete in the store, grouped ``blocks_per_chunk`` at a
time into :class:`ChunkTask` s: one task is one chunk file, computed by one executor call
(in this process, or one Dask task). Planning is plain numpy on the ``done`` mask of the
store; nothing is traced or compiled.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["ChunkTask", "owned_blocks", "missing_blocks", "plan_chunks", "block_reps",
           "round_chunk_size"]


class ChunkTask(NamedTuple):
    """One chunk to compute: blocks of one grid cell.

    Attributes:
      cell: index of the grid cell.
      n: its sample size N.
      horizon: its horizon T.
      index: position of the chunk among the cell's planned chunks (0, 1, ...).
      blocks: the block indices it computes (ascending).
    """

    cell: int
    n: int
    horizon: int
    index: int
    blocks: tuple[int, ...]

    def reps(self, batch_size: int, reps: int) -> np.ndarray:
        """The replication indices the chunk covers (those below ``reps``)."""
        return block_reps(self.blocks, batch_size, reps)


def block_reps(blocks: Sequence[int], batch_size: int, reps: int) -> np.ndarray:
    """Replication indices of ``blocks`` (int64, ascending for ascending blocks), below ``reps``.

    >>> block_reps([0, 2], 3, 8).tolist()
    [0, 1, 2, 6, 7]
    """
    idx = (np.asarray(blocks, np.int64)[:, None] * batch_size
           + np.arange(batch_size, dtype=np.int64)[None, :]).ravel()
    return idx[idx < reps]


def owned_blocks(n_blocks: int, share: tuple[int, int]) -> list[int]:
    """Blocks of share ``(index, count)``: ``b`` with ``b % count == index``.

    >>> owned_blocks(7, (1, 3))
    [1, 4]
    """
    index, count = share
    return [b for b in range(n_blocks) if b % count == index]


def missing_blocks(done: np.ndarray, batch_size: int, share: tuple[int, int]) -> list[list[int]]:
    """Per cell, the owned blocks with at least one replication not done.

    Args:
      done: ``(C, reps)`` bool, True where a replication is in the store.
      batch_size: replications per block.
      share: ``(index, count)``.
    """
    done = np.asarray(done, dtype=bool)
    reps = done.shape[1]
    n_blocks = -(-reps // batch_size)
    mine = owned_blocks(n_blocks, share)
    return [[b for b in mine if not row[b * batch_size:min(reps, (b + 1) * batch_size)].all()]
            for row in done]


def plan_chunks(grid: Sequence[tuple[int, int]], done: np.ndarray, batch_size: int,
                blocks_per_chunk: int, share: tuple[int, int] = (0, 1)) -> list[ChunkTask]:
    """The chunks still to compute, cell after cell, in block order.

    Args:
      grid: the (n, horizon) cells.
      done: ``(len(grid), reps)`` bool mask of stored replications.
      batch_size: replications per block.
      blocks_per_chunk: blocks per chunk (``chunk_size // batch_size``).
      share: ``(index, count)`` of this process.

    Returns:
      A list of :class:`ChunkTask`; empty when the share is complete.

    >>> done = np.zeros((2, 5), bool); done[0, :4] = True
    >>> [(t.cell, t.blocks) for t in plan_chunks([(8, 3), (9, 3)], done, 2, 2)]
    [(0, (2,)), (1, (0, 1)), (1, (2,))]
    """
    if blocks_per_chunk < 1:
        raise ValueError(f"blocks_per_chunk: expected a positive integer, got {blocks_per_chunk}")
    tasks = []
    for c, todo in enumerate(missing_blocks(done, batch_size, share)):
        n, h = grid[c]
        for i, start in enumerate(range(0, len(todo), blocks_per_chunk)):
            tasks.append(ChunkTask(c, int(n), int(h), i, tuple(todo[start:start + blocks_per_chunk])))
    return tasks


def round_chunk_size(chunk_size: int | None, per_call: int) -> int:
    """``chunk_size`` rounded up to a multiple of ``per_call`` (default: ``per_call``).

    >>> round_chunk_size(5, 4), round_chunk_size(None, 4)
    (8, 4)
    """
    if chunk_size is None:
        return per_call
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    return per_call * (-(-int(chunk_size) // per_call))
