"""Planning the chunks of a study (plain numpy; nothing compiled)."""

import itertools

import numpy as np
import pytest

from jaxmed._src.study.plan import block_reps, owned_blocks, plan_chunks, round_chunk_size

GRID = [(10, 3), (20, 3), (30, 5)]


def _missing_reps_of_owned_blocks(done, batch_size, share):
    """Truth, written from the definition: (cell, rep) of every replication in a block that
    belongs to the share and is not complete (complete blocks are not recomputed)."""
    out = set()
    reps = done.shape[1]
    for c in range(done.shape[0]):
        for r in range(reps):
            b = r // batch_size
            block = range(b * batch_size, min(reps, (b + 1) * batch_size))
            if b % share[1] == share[0] and not all(done[c, q] for q in block):
                out.add((c, r))
    return out


@pytest.mark.parametrize("reps, batch_size, per_chunk, count",
                         [(7, 2, 1, 1), (7, 2, 3, 1), (9, 4, 2, 2), (12, 3, 2, 3), (1, 8, 1, 1)])
def test_plan_covers_exactly_the_missing_blocks_of_each_share(reps, batch_size, per_chunk, count):
    rng = np.random.default_rng(reps * 100 + batch_size)
    for trial in range(5):
        done = rng.random((len(GRID), reps)) < [0.0, 0.5, 0.9, 1.0, 0.3][trial]
        union = set()
        for index in range(count):
            share = (index, count)
            tasks = plan_chunks(GRID, done, batch_size, per_chunk, share)
            planned = [(t.cell, int(r)) for t in tasks for r in t.reps(batch_size, reps)]
            assert len(planned) == len(set(planned))  # no replication planned twice
            assert set(planned) == _missing_reps_of_owned_blocks(done, batch_size, share)
            assert not union & set(planned)  # shares are disjoint
            union |= set(planned)
            for c, group in itertools.groupby(tasks, key=lambda t: t.cell):
                group = list(group)
                assert [t.index for t in group] == list(range(len(group)))
                assert all((t.n, t.horizon) == GRID[c] for t in group)
                blocks = [b for t in group for b in t.blocks]
                assert blocks == sorted(blocks)
                assert all(1 <= len(t.blocks) <= per_chunk for t in group)
                assert all(len(t.blocks) == per_chunk for t in group[:-1])
            # once the planned replications are stored, nothing is left for the share
            after = done.copy()
            for c, r in planned:
                after[c, r] = True
            assert plan_chunks(GRID, after, batch_size, per_chunk, share) == []
        assert union == _missing_reps_of_owned_blocks(done, batch_size, (0, 1))


def test_blocks_replications_and_chunk_sizes():
    assert block_reps([3], 2, 7).tolist() == [6]  # the last block is short
    assert block_reps([0, 1], 4, 5).tolist() == [0, 1, 2, 3, 4]
    assert owned_blocks(5, (0, 1)) == [0, 1, 2, 3, 4]
    assert owned_blocks(5, (2, 3)) == [2]
    assert round_chunk_size(1, 8) == 8 and round_chunk_size(9, 8) == 16 and round_chunk_size(16, 8) == 16
    with pytest.raises(ValueError, match="^chunk_size: expected a positive integer"):
        round_chunk_size(0, 8)
    with pytest.raises(ValueError, match="^blocks_per_chunk"):
        plan_chunks(GRID, np.zeros((3, 4), bool), 2, 0)
